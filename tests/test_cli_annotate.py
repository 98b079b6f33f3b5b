"""``topdown annotate``: read -> segment -> assign -> write, with any checkpoint."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

import topdown as td
from topdown.cli import main


def test_annotate_visium_outs(visium_outs, checkpoint, tmp_path, capsys):
    out = tmp_path / "x.h5ad"
    png = tmp_path / "o.png"
    code = main(["annotate", str(visium_outs), "--model", str(checkpoint), "--out", str(out),
                 "--overlay", str(png), "--check-alignment", "warn"])
    assert code == 0
    a = td.io.read_annotated(out)
    assert a.n_obs == 2702 and "region" in a.obs and "region_fractions" in a.obsm
    # the categories are the classes (and outside) that some spot holds, a subset of the model's;
    # the fractions keep a column per class
    cats = set(a.obs["region"].cat.categories)
    assert cats == set(a.obs["region"].astype(str)) and cats <= {"cortex", "hippocampus", "thalamus", "outside"}
    assert len(a.uns["region_colors"]) == len(cats)
    assert list(a.obsm["region_fractions"].columns) == ["cortex", "hippocampus", "thalamus", "outside"]
    lib = a.uns["regions"]["libraries"]["visium_mouse_brain_v1"]
    prov = lib["provenance"]
    assert prov["weights_sha256"] == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert prov["model"] == "tiny_untrained" and prov["model_argument"] == str(checkpoint) and prov["topdown_version"] == td.__version__
    # segmented at the real pixel size: lowres image = 55 µm / spot_diameter / scalef per px
    sf = a.uns["spatial"]["visium_mouse_brain_v1"]["scalefactors"]
    img_um = 55.0 / sf["spot_diameter_fullres"] / sf["tissue_lowres_scalef"]
    assert prov["parameters"]["image_pixel_size_um"] == pytest.approx(img_um)
    assert bool(prov["parameters"]["drop_empty_tissue"]) is True
    assert lib["labels"].shape[0] == pytest.approx(600 * img_um / 20.0, abs=2)
    assert png.stat().st_size > 1000


def test_annotate_h5ad_input(checkpoint, tmp_path):
    from test_assign_exact import make_adata

    rng = np.random.default_rng(0)
    a = make_adata(rng.uniform(20, 140, (30, 2)))
    del a.uns["regions"]
    src = tmp_path / "in.h5ad"
    a.write_h5ad(src)
    out = tmp_path / "out.h5ad"
    code = main(["annotate", str(src), "--model", str(checkpoint), "--out", str(out),
                 "--check-alignment", "ignore", "--library-id", "lib1"])
    assert code == 0
    b = td.io.read_annotated(out)
    assert b.n_obs == 30 and b.obs["region"].notna().all()
    assert main(["annotate", str(src), "--model", str(checkpoint), "--out", str(tmp_path / "keep.h5ad"),
                 "--check-alignment", "ignore", "--keep-empty-tissue"]) == 0
    params = td.io.read_annotated(tmp_path / "keep.h5ad").uns["regions"]["libraries"]["lib1"]["provenance"]
    assert bool(params["parameters"]["drop_empty_tissue"]) is False


def test_annotate_bad_input(tmp_path, checkpoint, capsys):
    code = main(["annotate", str(tmp_path / "missing"), "--model", str(checkpoint),
                 "--out", str(tmp_path / "o.h5ad")])
    err = capsys.readouterr().err
    assert code == 2 and "not found" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    f = tmp_path / "notes.txt"
    f.write_text("hello")
    assert main(["annotate", str(f), "--model", str(checkpoint), "--out", str(tmp_path / "o.h5ad")]) == 2
    h = tmp_path / "in.h5ad"
    h.write_bytes(b"garbage")
    assert main(["annotate", str(h), "--model", str(checkpoint), "--out", str(h)]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert h.read_bytes() == b"garbage"


def test_annotate_help(capsys):
    with pytest.raises(SystemExit):
        main(["annotate", "--help"])
    assert "Example" in capsys.readouterr().out
