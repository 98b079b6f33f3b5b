"""`topdown train` and `topdown segment` end to end on a tiny SimDataset-format folder."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from test_seg_train import make_dataset, toy_frame

import topdown as td
from topdown.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def cli_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    make_dataset(root / "ds", n=8)
    out = root / "m.pt"
    code = main(["train", "--data", str(root / "ds"), "--out", str(out), "--epochs", "2",
                 "--batch-size", "4", "--widths", "8,16", "--device", "cpu", "--seed", "2",
                 "--orientation", "upright"])
    assert code == 0
    return out


def test_train_writes_checkpoint_and_resumes(cli_model, capsys, tmp_path):
    meta = json.loads(cli_model.with_suffix(".json").read_text())
    assert meta["classes"] == ["cortex", "striatum"] and meta["seed"] == 2
    assert meta["metrics"]["epochs_done"] == 2 and "val_miou" in meta["metrics"]
    assert meta["train_config"]["precision"] in ("fp32", "bf16")
    assert (cli_model.parent / "m.pt.state.safetensors").is_file()
    capsys.readouterr()
    code = main(["train", "--data", str(cli_model.parent / "ds"), "--out", str(cli_model), "--epochs", "3",
                 "--batch-size", "4", "--widths", "8,16", "--device", "cpu", "--seed", "2", "--resume",
                 "--precision", "fp32"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["epochs"] == 3
    augment = json.loads(cli_model.with_suffix(".json").read_text())["train_config"]["augment"]
    assert augment["any_orientation"] is False and augment["rotate_deg"] == 30.0  # kept on --resume
    assert json.loads(cli_model.with_suffix(".json").read_text())["train_config"]["precision"] == "fp32"
    assert td.seg.load(cli_model).orientation == "upright"


def test_train_warm_starts_from_a_checkpoint(cli_model, capsys, tmp_path):
    out = tmp_path / "warm.pt"
    code = main(["train", "--data", str(cli_model.parent / "ds"), "--out", str(out), "--init", str(cli_model),
                 "--epochs", "1", "--batch-size", "4", "--lr", "1e-4", "--device", "cpu", "--no-class-balance"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["epochs"] == 1
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["train_config"]["init"]["source"] == str(cli_model)
    assert meta["widths"] == [8, 16]  # the starting checkpoint's architecture
    assert td.seg.load(out).orientation == "upright"  # kept from the starting model
    assert main(["train", "--data", str(cli_model.parent / "ds"), "--out", str(out), "--init", "no_such_model",
                 "--epochs", "1"]) == 2
    assert "no_such_model" in capsys.readouterr().err


def test_segment_writes_geojson_and_labels(cli_model, tmp_path, capsys):
    img, _ = toy_frame(np.random.default_rng(5), 60)
    Image.fromarray(img).save(tmp_path / "img.png")
    out, lab = tmp_path / "r.geojson", tmp_path / "labels.png"
    code = main(["segment", str(tmp_path / "img.png"), "--model", str(cli_model), "--pixel-size", "2",
                 "--out", str(out), "--labels", str(lab)])
    assert code == 0
    fc = json.loads(out.read_text())
    assert fc["type"] == "FeatureCollection"
    assert fc["topdown"]["downsample"] == pytest.approx(2.0)
    assert {f["properties"]["region"] for f in fc["features"]} <= {"cortex", "striatum"}
    labels = np.asarray(Image.open(lab))
    assert labels.shape == (30, 30) and labels.max() <= 2
    code = main(["segment", str(tmp_path / "img.png"), "--model", str(cli_model), "--pixel-size", "2",
                 "--out", str(out), "--labels", str(lab), "--labels-full", "--adapt-norm", "--no-tta",
                 "--spot-diameter", "55"])
    assert code == 0 and np.asarray(Image.open(lab)).shape == (60, 60)
    assert json.loads(out.read_text())["topdown"]["params"]["tta"] is False
    warned = [ln for ln in capsys.readouterr().err.splitlines() if "warning" in ln]
    # the 30 x 30 px map is too small for AdaBN: one line, in the CLI's own format
    assert len(warned) == 1 and warned[0].startswith("topdown segment: warning: adapt_norm skipped")


@pytest.mark.parametrize("argv, needle", [
    (["segment", "{d}/missing.png", "--model", "{m}", "--pixel-size", "1", "--out", "{d}/r.geojson"], "not found"),
    (["segment", "{d}/img.png", "--model", "{m}", "--out", "{d}/r.geojson"], "--pixel-size"),
    (["segment", "{d}/img.png", "--model", "no_such_model", "--pixel-size", "1", "--out", "{d}/r.geojson"],
     "unknown model"),
    (["segment", "{d}/img.png", "--model", "{m}", "--pixel-size", "1", "--out", "{d}/img.png"], "overwrite"),
    (["train", "--data", "{d}/nope", "--out", "{d}/x.pt"], "not found"),
    (["segment", "{d}/img.png", "--model", "{m}", "--pixel-size", "1", "--out", "{d}/r.geojson",
      "--spot-diameter", "-5"], "spot_diameter_um must be a number of µm > 0"),
])
def test_cli_errors_are_one_line(cli_model, tmp_path, capsys, argv, needle):
    Image.fromarray(np.full((20, 20, 3), 200, np.uint8)).save(tmp_path / "img.png")
    argv = [a.format(d=tmp_path, m=cli_model) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1


def test_help_has_examples(capsys):
    for cmd in ("train", "segment"):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        assert "Example" in capsys.readouterr().out
