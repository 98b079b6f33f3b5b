"""Hostile and broken inputs (issue 28): no data loss, one-line errors, bounded memory.

Every command runs on scratch copies; inputs are hashed before and after. The guards act
before any work, so no test here trains, renders or segments anything real.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import stat
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_seg_train import make_dataset

import topdown as td
from topdown._files import atomic_write_text, output_file, output_files
from topdown._limits import MAX_IMAGE_PIXELS, check_widths, unet_parameters
from topdown.cli import main
from topdown.errors import DataFileError, InputError, OutputConflictError, OutputError, SpecError
from topdown.io._common import read_image
from topdown.seg.image import open_image


def tree_hash(*paths: Path) -> str:
    """sha256 over the names, bytes and modes of every file under ``paths``."""
    h = hashlib.sha256()
    for base in paths:
        for p in sorted([base] if base.is_file() else base.rglob("*")):
            if p.is_file():
                h.update(str(p).encode() + p.read_bytes() + oct(p.stat().st_mode).encode())
    return h.hexdigest()


def one_line_error(capsys, argv: list[str], needle: str) -> str:
    """Run the CLI; assert exit 2 and one stderr line holding ``needle``, without a traceback."""
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert needle in err, err
    return err


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    import torch

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    td.seg.save(td.seg.SegModel(["cortex", "thalamus"], pixel_size_um=20.0, widths=(4, 8)), path)
    return path


@pytest.fixture
def outs(tmp_path) -> Path:
    """A Space Ranger outs-like folder (the guards run before it is read)."""
    root = tmp_path / "outs"
    (root / "spatial").mkdir(parents=True)
    (root / "spatial" / "scalefactors_json.json").write_text('{"spot_diameter_fullres": 89.4}')
    Image.fromarray(np.full((20, 20, 3), 200, np.uint8)).save(root / "spatial" / "tissue_lowres_image.png")
    (root / "filtered_feature_bc_matrix.h5").write_bytes(b"matrix")
    return root


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if a command gets past its argument checks to the real work."""
    def boom(*a, **k):
        raise AssertionError("the work started before the outputs were checked")

    monkeypatch.setattr("topdown.cli._annotate.read_any", boom)
    monkeypatch.setattr("topdown.seg.segment", boom)


# --- outputs: never an input, never each other, the right kind, read-only respected ---

@pytest.mark.parametrize("target", [
    ["--out", "{o}/spatial/scalefactors_json.json"],
    ["--out", "x.h5ad", "--overlay", "{o}/spatial/tissue_lowres_image.png"],
    ["--out", "{o}/filtered_feature_bc_matrix.h5"],
])
def test_annotate_never_writes_over_a_file_of_the_input_folder(outs, tiny_model, tmp_path, capsys, no_work, target,
                                                             monkeypatch):
    before = tree_hash(outs)
    monkeypatch.chdir(tmp_path)
    one_line_error(capsys, ["annotate", outs, "--model", tiny_model, *[t.format(o=outs) for t in target]],
                   "topdown never writes over or into its inputs")
    assert tree_hash(outs) == before


def test_annotate_refuses_a_link_to_an_input_and_the_model(outs, tiny_model, tmp_path, capsys, no_work):
    link = tmp_path / "link.h5ad"
    link.symlink_to(outs / "filtered_feature_bc_matrix.h5")
    real = tmp_path / "elsewhere" / "hires.png"  # a file of the input reached through a link inside it
    real.parent.mkdir()
    real.write_bytes(b"image")
    (outs / "spatial" / "tissue_hires_image.png").symlink_to(real)
    hard = tmp_path / "hard.h5ad"
    hard.hardlink_to(outs / "filtered_feature_bc_matrix.h5")
    before = tree_hash(outs)
    one_line_error(capsys, ["annotate", outs, "--model", tiny_model, "--out", link], "never writes over or into")
    one_line_error(capsys, ["annotate", outs, "--model", tiny_model, "--out", tmp_path / "a.h5ad", "--overlay", real],
                   "(the same file)")
    one_line_error(capsys, ["annotate", outs, "--model", tiny_model, "--out", hard], "(the same file)")
    assert real.read_bytes() == b"image"
    one_line_error(capsys, ["annotate", outs, "--model", tiny_model, "--out", tmp_path / "a.h5ad",
                            "--overlay", tiny_model], "refusing to overwrite")
    assert tree_hash(outs) == before and tiny_model.read_bytes()[:8] != b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("args, needle", [
    (["--out", "x.h5ad", "--overlay", "x.h5ad"], "--overlay 'x.h5ad' does not fit"),
    (["--out", "X.png", "--overlay", "X.png"], "--out 'X.png' does not fit"),
    (["--out", "scalefactors.json"], "give a name ending in .h5ad"),
])
def test_annotate_output_names_are_checked_before_the_work(outs, tiny_model, tmp_path, capsys, no_work, args, needle,
                                                         monkeypatch):
    monkeypatch.chdir(tmp_path)
    one_line_error(capsys, ["annotate", outs, "--model", tiny_model, *args], needle)
    assert not list(tmp_path.glob("*.png")) and not list(tmp_path.glob("*.h5ad"))


def test_segment_outputs_must_differ_and_fit(tiny_model, tmp_path, capsys, no_work):
    img = tmp_path / "img.png"
    Image.fromarray(np.full((20, 20, 3), 200, np.uint8)).save(img)
    base = ["segment", img, "--model", tiny_model, "--pixel-size", "20"]
    one_line_error(capsys, [*base, "--out", tmp_path / "X", "--labels", tmp_path / "X"], "does not fit")
    one_line_error(capsys, [*base, "--out", tmp_path / "r.geojson", "--labels", tmp_path / "r.geojson"],
                   "--labels")
    one_line_error(capsys, [*base, "--out", tmp_path / "r.geojson", "--labels", img], "refusing to overwrite")
    meta = tiny_model.with_suffix(".json")  # the model's metadata is an input too
    before = meta.read_bytes()
    one_line_error(capsys, [*base, "--out", meta], "refusing to overwrite the input")
    assert meta.read_bytes() == before


@pytest.mark.parametrize("px", ["nan", "inf", "-1", "1e-300", "1e300"])
def test_segment_refuses_absurd_pixel_sizes(tiny_model, tmp_path, capsys, px):
    img = tmp_path / "img.png"
    Image.fromarray(np.full((40, 40, 3), 200, np.uint8)).save(img)
    one_line_error(capsys, ["segment", img, "--model", tiny_model, "--pixel-size", px, "--out", tmp_path / "r.geojson"],
                   "pixel_size_um")
    assert not (tmp_path / "r.geojson").exists()


def test_two_outputs_of_one_command_must_differ(tmp_path):
    with pytest.raises(OutputConflictError, match="--a and --b are the same file"):
        output_files({"--a": (tmp_path / "x.csv", None), "--b": (tmp_path / "sub" / ".." / "x.csv", None)})
    assert output_files({"--a": (tmp_path / "x.csv", "csv"), "--b": (None, "png")})["--b"] is None


def test_an_output_conflict_is_both_an_input_and_an_output_error(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("a")
    with pytest.raises(InputError):
        output_file(src, inputs=(tmp_path,))
    with pytest.raises(OutputError, match="refusing to overwrite the input"):
        output_file(src, inputs=(src,))
    with pytest.raises(InputError, match="into the input folder"):  # new or not: a rerun must behave the same
        output_file(tmp_path / "new.csv", inputs=(tmp_path,))
    assert output_file(tmp_path / "new.csv", inputs=(src,)) == tmp_path / "new.csv"  # beside an input file: fine


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sims") / "good"
    make_dataset(root, n=4, size=32)
    return root


@pytest.mark.parametrize("out, needle", [
    ("{d}/dataset.json", "into the input folder"),
    ("{d}/masks/frame_000000.png", "into the input folder"),
    ("{d}/new_model.pt", "into the input folder"),
    ("{t}/m.json", "does not fit"),
    ("{t}/m.h5ad", "does not fit"),
])
def test_train_never_overwrites_the_dataset_and_writes_only_checkpoints(dataset, tmp_path, capsys, out, needle):
    before = tree_hash(dataset)
    one_line_error(capsys, ["train", "--data", dataset, "--out", out.format(d=dataset, t=tmp_path), "--epochs", "1"],
                   needle)
    assert tree_hash(dataset) == before
    assert not list(tmp_path.iterdir())


def test_train_keeps_a_foreign_json_beside_the_checkpoint(dataset, tmp_path, capsys):
    notes = tmp_path / "notes.json"
    notes.write_text('{"my": "notes"}')
    one_line_error(capsys, ["train", "--data", dataset, "--out", tmp_path / "notes.pt", "--epochs", "1"],
                   "notes.json' exists and is not the metadata")
    assert notes.read_text() == '{"my": "notes"}' and not (tmp_path / "notes.pt").exists()
    with pytest.raises(OutputConflictError, match="not the metadata"):
        td.seg.save(td.seg.SegModel(["a"], widths=(4, 8)), tmp_path / "notes.pt")
    assert notes.read_text() == '{"my": "notes"}'


@pytest.mark.parametrize("flag, value", [("--lr", "nan"), ("--lr", "inf"), ("--lr", "0"), ("--lr", "-1"),
                                         ("--val-fraction", "nan"), ("--batch-size", "0"), ("--threads", "-3")])
def test_train_refuses_non_finite_or_absurd_numbers(dataset, tmp_path, capsys, flag, value):
    one_line_error(capsys, ["train", "--data", dataset, "--out", tmp_path / "m.pt", flag, value],
                   f"{flag[2:].replace('-', '_')} must be a finite number")
    assert not list(tmp_path.iterdir())


def test_read_only_output_is_refused_and_modes_are_kept(tmp_path):
    ro = tmp_path / "ro.csv"
    ro.write_text("precious")
    ro.chmod(0o444)
    with pytest.raises(OutputError, match="read-only"):
        output_file(ro)
    with pytest.raises(OutputError, match="read-only"):
        atomic_write_text(ro, "replaced")
    assert ro.read_text() == "precious" and stat.S_IMODE(ro.stat().st_mode) == 0o444
    kept = tmp_path / "kept.csv"
    kept.write_text("old")
    kept.chmod(0o640)
    atomic_write_text(kept, "new")
    assert kept.read_text() == "new" and stat.S_IMODE(kept.stat().st_mode) == 0o640


def test_cli_refuses_a_read_only_output(outs, tiny_model, tmp_path, capsys, no_work):
    ro = tmp_path / "ro.h5ad"
    ro.write_bytes(b"precious")
    ro.chmod(0o444)
    one_line_error(capsys, ["annotate", outs, "--model", tiny_model, "--out", ro], "read-only")
    assert ro.read_bytes() == b"precious"


# --- images: the size is checked from the header, before decoding ---

def _png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG whose header claims width x height but holds almost no data (cannot be decoded)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))


def test_huge_image_is_refused_from_its_header(tmp_path):
    from PIL import Image as PILImage

    bomb = tmp_path / "bomb.png"
    _png_header_only(bomb, 30_000, 30_000)
    saved = PILImage.MAX_IMAGE_PIXELS
    with pytest.raises(InputError, match="30000 x 30000 = 900,000,000 pixels.*TOPDOWN_MAX_IMAGE_PIXELS"):
        open_image(bomb)
    with pytest.raises(InputError, match="TOPDOWN_MAX_IMAGE_PIXELS"):
        read_image(bomb)
    assert PILImage.MAX_IMAGE_PIXELS == saved  # Pillow's own guard is left as it was
    assert 30_000**2 > MAX_IMAGE_PIXELS


def test_image_limit_can_be_raised_or_lowered(tmp_path, monkeypatch, capsys, tiny_model):
    import tifffile

    png, tif = tmp_path / "img.png", tmp_path / "img.tif"
    Image.fromarray(np.full((40, 50, 3), 200, np.uint8)).save(png)
    tifffile.imwrite(tif, np.full((40, 50), 7, np.uint16))
    assert open_image(png).shape == (40, 50)
    with pytest.raises(InputError, match="50 x 40 = 2,000 pixels"):
        open_image(png, max_pixels=1000)
    monkeypatch.setenv("TOPDOWN_MAX_IMAGE_PIXELS", "1000")
    with pytest.raises(InputError, match="above the limit of 1,000"):
        read_image(tif)
    assert open_image(png, max_pixels=0).shape == (40, 50)  # 0: no limit
    one_line_error(capsys, ["segment", png, "--model", tiny_model, "--pixel-size", "20", "--out",
                            tmp_path / "r.geojson"], "TOPDOWN_MAX_IMAGE_PIXELS")
    monkeypatch.setenv("TOPDOWN_MAX_IMAGE_PIXELS", "lots")
    with pytest.raises(InputError, match="whole number"):
        open_image(png)


# --- Visium files with broken values ---

@pytest.fixture
def outs_copy(visium_outs, tmp_path) -> Path:
    dst = tmp_path / "outs"
    shutil.copytree(visium_outs, dst)
    for p in [dst, *dst.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    return dst


@pytest.mark.parametrize("value", [0, -0.05, "abc", None, True])
def test_visium_bad_scalefactor_is_one_line(outs_copy, value):
    sf_path = outs_copy / "spatial" / "scalefactors_json.json"
    sf = json.loads(sf_path.read_text())
    sf["tissue_lowres_scalef"] = value
    sf_path.write_text(json.dumps(sf))
    with pytest.raises(DataFileError, match="tissue_lowres_scalef is .*must be a positive number"):
        td.io.read_visium(outs_copy, in_tissue_only=True)


@pytest.mark.parametrize("text, needle", [("", "empty or not a CSV"), ("A-1,1,0,0,x,1\n", "not numeric")])
def test_visium_broken_positions_is_one_line(outs_copy, tiny_model, tmp_path, capsys, text, needle):
    (outs_copy / "spatial" / "tissue_positions_list.csv").write_text(text)
    with pytest.raises(DataFileError, match=needle):
        td.io.read_visium(outs_copy)
    one_line_error(capsys, ["annotate", outs_copy, "--model", tiny_model, "--out", tmp_path / "a.h5ad"], needle)


# --- checkpoints with bad metadata or absurd sizes ---

def _checkpoint(path: Path, meta: dict | None) -> Path:
    import torch
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(1)}, str(path), metadata=meta)
    return path


@pytest.mark.parametrize("meta, needle", [
    (None, "has no topdown metadata"),
    ({"topdown": "{not json"}, "not valid JSON"),
    ({"topdown": "[1, 2]"}, "not a JSON object"),
    ({"topdown": json.dumps({"format": "topdown.segmodel"})}, "missing 'classes'"),
    ({"topdown": json.dumps({"format": "topdown.segmodel", "classes": ["a"], "widths": [100_000, 100_000]})},
     "widths must be 2 to 8"),
    ({"topdown": json.dumps({"format": "topdown.segmodel", "classes": ["a"], "widths": [4000] * 6})},
     "above the limit"),
    ({"topdown": json.dumps({"format": "topdown.segmodel", "classes": ["a"], "widths": "big"})}, "widths"),
])
def test_bad_checkpoint_metadata_is_one_line(tmp_path, capsys, meta, needle):
    ckpt = _checkpoint(tmp_path / "c.pt", meta)
    with pytest.raises(DataFileError, match=needle):
        td.seg.load(ckpt)
    img = tmp_path / "img.png"
    Image.fromarray(np.full((20, 20, 3), 200, np.uint8)).save(img)
    one_line_error(capsys, ["segment", img, "--model", ckpt, "--pixel-size", "20", "--out", tmp_path / "r.geojson"],
                   needle)


def test_parameter_count_is_estimated_exactly_before_building():
    from topdown.seg.model import UNet

    for widths, cin, n in [((16, 32, 64, 128, 192), 3, 4), ((8, 16), 1, 2)]:
        assert unet_parameters(widths, cin, n) == sum(p.numel() for p in UNet(cin, n, widths).parameters())
    assert check_widths([np.int64(8), 16]) == (8, 16)
    with pytest.raises(InputError):
        check_widths([8, True])
    with pytest.raises(InputError, match="widths"):
        td.seg.SegModel(["a"], widths=(100_000, 100_000))


@pytest.mark.parametrize("state", [b"garbage", None, {"info": "{}"}, {"info": "[]", "param_groups": "[]"}])
def test_broken_training_state_is_one_line_on_resume(dataset, tmp_path, capsys, state):
    from safetensors.torch import save_file

    argv = ["train", "--data", dataset, "--out", tmp_path / "m.pt", "--epochs", "1", "--widths", "4,8",
            "--batch-size", "2", "--device", "cpu"]
    assert main([str(a) for a in argv]) == 0
    sp = tmp_path / "m.pt.state.safetensors"
    if isinstance(state, bytes):
        sp.write_bytes(state)
    else:
        import torch

        save_file({"opt.0.exp_avg": torch.zeros(1)}, str(sp), metadata=state)
    one_line_error(capsys, [*argv[:-6], "--epochs", "2", "--resume"], "training state")


# --- specs with non-finite or huge numbers ---

@pytest.mark.parametrize("density, needle", [(".inf", "not a finite number"), (".nan", "not a finite number"),
                                             ("1.0e+300", "out of range"), ("[10, .inf]", "not a finite number")])
def test_spec_non_finite_or_huge_density(tmp_path, capsys, density, needle):
    import yaml

    from topdown.sim.presets import load_preset

    text = load_preset("spinal_cord").to_yaml()
    data = yaml.safe_load(text)
    data["regions"][0]["populations"][0]["density"] = "@D@"
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(data).replace("'@D@'", density))
    with pytest.raises(SpecError, match=needle):
        td.sim.TissueSpec.from_yaml(spec)
    one_line_error(capsys, ["simulate", "--spec", spec, "--n", "1", "--out", tmp_path / "sim"], needle)
    assert not (tmp_path / "sim").exists()
