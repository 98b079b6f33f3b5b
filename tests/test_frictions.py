"""Small frictions of issue 29 (item 7): progress, device, CLI wording, pl returns, names, env vars."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import re  # noqa: E402
from pathlib import Path  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from test_assign_exact import make_adata  # noqa: E402
from test_de_plots_cli import _fake_results  # noqa: E402
from test_io_visium import _write_outs  # noqa: E402

import topdown as td  # noqa: E402
from topdown.cli import build_parser, main  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    import torch

    torch.manual_seed(0)
    model = td.seg.SegModel(["A", "B", "C"], pixel_size_um=20.0, name="tiny", widths=(8, 16))
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    td.seg.save(model, path)
    return path


@pytest.fixture
def annotated():
    a = make_adata(np.random.default_rng(0).uniform(0, 160, (50, 2)))
    td.tl.assign_regions(a, check_alignment="ignore")
    return a


@pytest.mark.parametrize("quiet", [False, True])
def test_annotate_shows_a_progress_bar(tiny_model, tmp_path, capsys, monkeypatch, quiet):
    a = make_adata(np.random.default_rng(0).uniform(20, 140, (30, 2)))
    del a.uns["regions"]
    src = tmp_path / "in.h5ad"
    a.write_h5ad(src)
    if quiet:
        monkeypatch.setenv("TOPDOWN_NO_PROGRESS", "1")
    else:
        monkeypatch.delenv("TOPDOWN_NO_PROGRESS", raising=False)
    assert main(["annotate", str(src), "--model", str(tiny_model), "--out", str(tmp_path / "o.h5ad"),
                 "--check-alignment", "ignore"]) == 0
    err = capsys.readouterr().err
    assert ("segment: 100%" in err) is not quiet


@pytest.mark.parametrize("command", [["annotate", "in", "--model", "m", "--out", "o.h5ad"],
                                     ["segment", "img.png", "--model", "m", "--out", "o.geojson"]])
def test_cli_device_defaults_to_auto(command):
    assert build_parser().parse_args(command).device == "auto"


def test_python_device_auto_accepted(tiny_model):
    model = td.seg.load(tiny_model, device="auto")
    assert next(model.parameters()).device.type in ("cpu", "cuda")
    img = np.full((64, 64, 3), 200, np.uint8)
    rmap = td.seg.segment(img, tiny_model, pixel_size_um=20.0, device="auto", tta=False)
    assert rmap.labels.shape == (64, 64)
    rmap = td.seg.segment(img, tiny_model, pixel_size_um=20.0, tta=False)  # the default is auto
    with pytest.raises(td.errors.InputError, match="device must be"):
        td.seg.segment(img, tiny_model, pixel_size_um=20.0, device="tpu")


def test_visium_warning_names_the_cli_flag(tmp_path):
    outs = _write_outs(tmp_path, positions="old", matrix="raw", hires=False)
    with pytest.warns(UserWarning, match=r"in_tissue_only=False, or --all-spots on the command line"):
        td.io.read_visium(outs)


def test_pl_returns_none_when_shown(annotated, monkeypatch):
    shown = []
    monkeypatch.setattr(plt, "show", lambda *a, **k: shown.append(1))
    assert td.pl.regions(annotated, show=True) is None
    assert td.pl.regions(annotated) is None  # shown by default (no ax, no save)
    assert isinstance(td.pl.regions(annotated, show=False), plt.Axes)
    res = _fake_results()
    assert td.pl.region_de(res, show=True) is None
    assert td.pl.region_de_counts(res, show=True) is None
    assert td.pl.region_de_heatmap(res, show=True) is None
    assert isinstance(td.pl.region_de_counts(res, show=False), plt.Axes)
    assert len(shown) == 5
    plt.close("all")


def test_regions_key_everywhere(annotated, tmp_path):
    annotated.uns["elsewhere"] = annotated.uns.pop("regions")
    gdf = td.get.regions(annotated, regions_key="elsewhere")
    assert len(gdf) == 3
    with pytest.warns(FutureWarning, match="regions_key"):
        assert len(td.get.regions(annotated, key="elsewhere")) == 3
    assert isinstance(td.pl.regions(annotated, regions_key="elsewhere", show=False), plt.Axes)
    with pytest.warns(FutureWarning, match="regions_key"):
        td.pl.regions(annotated, key="elsewhere", show=False)
    plt.close("all")
    td.io.write_geojson(annotated, tmp_path / "a.geojson", regions_key="elsewhere")
    with pytest.warns(FutureWarning, match="regions_key"):
        td.io.write_geojson(annotated, tmp_path / "b.geojson", key="elsewhere")
    assert (tmp_path / "a.geojson").read_bytes() == (tmp_path / "b.geojson").read_bytes()
    shapes, kw = td.io.to_napari_shapes(annotated, regions_key="elsewhere")
    assert len(shapes) >= 3 and kw["name"] == "elsewhere"
    with pytest.warns(FutureWarning, match="regions_key"):
        td.io.to_napari_shapes(annotated, key="elsewhere")


def test_environment_variables_documented():
    names = set()
    for p in (ROOT / "topdown").rglob("*.py"):
        names |= set(re.findall(r"\bTOPDOWN_[A-Z_]+\b", p.read_text()))
    assert {"TOPDOWN_NO_PROGRESS", "TOPDOWN_DATA_DIR", "TOPDOWN_BLENDER_VERBOSE"} <= names
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Environment variables", 1)[1].split("\n## ", 1)[0]
    assert not sorted(n for n in names if f"`{n}`" not in section)
