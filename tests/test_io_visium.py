"""td.io.read_visium on the real mouse brain outs and on small synthetic outs folders."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import topdown as td
from topdown.errors import DataFileError, InputError

LIB = "visium_mouse_brain_v1"


def test_real_outs_raw_matrix_old_positions(visium_outs):
    with pytest.warns(UserWarning, match="filtered_feature_bc_matrix"):
        a = td.io.read_visium(visium_outs)
    assert a.n_obs == 2702 and a.n_vars == 100  # in-tissue spots only, by default
    assert (a.obs["in_tissue"] == 1).all()
    pos = pd.read_csv(visium_outs / "spatial" / "tissue_positions_list.csv", header=None,
                      index_col=0)
    # obsm['spatial'] = (x, y) = (pxl_col_in_fullres, pxl_row_in_fullres), scanpy convention
    np.testing.assert_array_equal(a.obsm["spatial"], pos.loc[a.obs_names, [5, 4]].to_numpy())
    lib = a.uns["spatial"][LIB]
    assert set(lib["images"]) == {"lowres"}
    assert lib["images"]["lowres"].shape == (600, 576, 3)
    assert lib["scalefactors"]["tissue_lowres_scalef"] == pytest.approx(0.051033426)
    assert lib["scalefactors"]["spot_diameter_fullres"] == pytest.approx(89.44395653112628)
    # raw integer UMI counts kept
    assert float(a.X.sum()) == float(np.rint(a.X.sum()))


def test_real_outs_keep_all_spots(visium_outs):
    a = td.io.read_visium(visium_outs, in_tissue_only=False, library_id="brain")
    assert a.n_obs == 4992 and int(a.obs["in_tissue"].sum()) == 2702
    assert list(a.uns["spatial"]) == ["brain"]
    assert a.obs_names.is_unique


def _write_outs(root: Path, *, n=6, positions="new", matrix="filtered_mtx", hires=True,
                dup=False, empty=False) -> Path:
    """A tiny, valid Space Ranger outs folder."""
    outs = root / "outs"
    sp = outs / "spatial"
    sp.mkdir(parents=True)
    bcs = [f"AAAC{i:04d}-1" for i in range(n)]
    rows = np.arange(n) * 10 + 100
    cols = np.arange(n) * 20 + 50
    df = pd.DataFrame({"barcode": bcs, "in_tissue": [1] * (n - 1) + [0], "array_row": np.arange(n),
                       "array_col": np.arange(n), "pxl_row_in_fullres": rows, "pxl_col_in_fullres": cols})
    if dup:
        df.loc[1, "barcode"] = df.loc[0, "barcode"]
    if positions == "new":
        df.to_csv(sp / "tissue_positions.csv", index=False)
    else:
        df.to_csv(sp / "tissue_positions_list.csv", index=False, header=False)
    (sp / "scalefactors_json.json").write_text(json.dumps(
        {"spot_diameter_fullres": 10.0, "tissue_hires_scalef": 0.5, "tissue_lowres_scalef": 0.1,
         "fiducial_diameter_fullres": 15.0}))
    if hires:
        Image.fromarray(np.full((200, 200, 3), 200, np.uint8)).save(sp / "tissue_hires_image.png")
    Image.fromarray(np.full((40, 40, 3), 200, np.uint8)).save(sp / "tissue_lowres_image.png")
    mdir = outs / ("filtered_feature_bc_matrix" if matrix == "filtered_mtx" else "raw_feature_bc_matrix")
    mdir.mkdir()
    genes = ["G1", "G2", "G3"]
    with gzip.open(mdir / "barcodes.tsv.gz", "wt") as f:
        f.write("\n".join(df["barcode"]) + "\n")
    with gzip.open(mdir / "features.tsv.gz", "wt") as f:
        f.write("".join(f"ID{g}\t{g}\tGene Expression\n" for g in genes))
    entries = [] if empty else [(g + 1, c + 1, c + g + 1) for c in range(n) for g in range(3)]
    with gzip.open(mdir / "matrix.mtx.gz", "wt") as f:
        f.write("%%MatrixMarket matrix coordinate integer general\n%\n")
        f.write(f"3 {n} {len(entries)}\n")
        f.write("".join(f"{g} {c} {v}\n" for g, c, v in entries))
    return outs


def test_synthetic_outs_new_positions_filtered_hires(tmp_path):
    outs = _write_outs(tmp_path)
    a = td.io.read_visium(outs)
    assert a.n_obs == 6  # a filtered matrix is not re-filtered
    np.testing.assert_array_equal(a.obsm["spatial"][:, 0], np.arange(6) * 20 + 50)  # x = col
    np.testing.assert_array_equal(a.obsm["spatial"][:, 1], np.arange(6) * 10 + 100)  # y = row
    assert set(a.uns["spatial"][tmp_path.name]["images"]) == {"hires", "lowres"}
    assert list(a.var_names) == ["G1", "G2", "G3"]
    assert a.X[2, 1] == 4


def test_synthetic_outs_old_positions_raw(tmp_path):
    outs = _write_outs(tmp_path, positions="old", matrix="raw", hires=False)
    with pytest.warns(UserWarning, match="in_tissue_only=False"):
        a = td.io.read_visium(outs)
    assert a.n_obs == 5


def test_corrupt_h5(tmp_path):
    outs = _write_outs(tmp_path)
    shutil.rmtree(outs / "filtered_feature_bc_matrix")
    (outs / "filtered_feature_bc_matrix.h5").write_bytes(b"not an hdf5 file at all")
    with pytest.raises(DataFileError, match="corrupt"):
        td.io.read_visium(outs)


def test_empty_matrix(tmp_path):
    outs = _write_outs(tmp_path, empty=True, n=3)
    with pytest.raises(InputError, match="no counts"):
        td.io.read_visium(outs)


def test_duplicate_barcodes(tmp_path):
    outs = _write_outs(tmp_path, dup=True)
    with pytest.raises(InputError, match="duplicate"):
        td.io.read_visium(outs)


def test_missing_pieces(tmp_path):
    outs = _write_outs(tmp_path)
    (outs / "spatial" / "scalefactors_json.json").unlink()
    with pytest.raises(DataFileError, match="scalefactors"):
        td.io.read_visium(outs)
    with pytest.raises(DataFileError, match="not found"):
        td.io.read_visium(tmp_path / "nope")
    (outs / "spatial" / "tissue_positions.csv").unlink()
    with pytest.raises(DataFileError, match="tissue_positions"):
        td.io.read_visium(outs)


def test_segment_regions_scale_and_provenance(visium_outs, monkeypatch):
    """segment_regions picks the lowres image and passes µm/px from the 55 µm spot."""
    from topdown.seg.regionmap import RegionMap
    from topdown.tl import _segment_regions

    seen = {}

    def fake_segment(image, model, pixel_size_um=None, **kw):
        seen.update(shape=image.shape, dtype=image.dtype, px=pixel_size_um, model=model, kw=kw)
        lab = np.zeros((image.shape[0] // 4, image.shape[1] // 4), np.uint8)
        lab[20:120, 30:100] = 1
        probs = np.full((2, *lab.shape), 0.5, np.float16)
        return RegionMap(lab, ("tissue",), downsample=4.0, probabilities=probs,
                         image_shape=image.shape[:2], meta={"model": "fake", "weights_sha256": "abc"})

    monkeypatch.setattr(_segment_regions, "_segment_fn", lambda: fake_segment)
    a = td.io.read_visium(visium_outs, in_tissue_only=False)
    td.tl.segment_regions(a, "fake_model")
    sf = a.uns["spatial"][LIB]["scalefactors"]
    assert seen["shape"] == (600, 576, 3) and seen["dtype"] == np.uint8
    assert seen["px"] == pytest.approx(55.0 / sf["spot_diameter_fullres"] / sf["tissue_lowres_scalef"])
    st = a.uns["regions"]["libraries"][LIB]
    assert st["scale_to_fullres"] == pytest.approx(4.0 / sf["tissue_lowres_scalef"])
    prov = st["provenance"]
    assert prov["model_argument"] == "fake_model" and prov["model"] == "fake" and prov["weights_sha256"] == "abc"
    assert prov["topdown_version"] == td.__version__ and prov["parameters"]["image_key"] == "lowres"
    # AdaBN is opt-in (on the real brain section it helped one model and harmed another), and recorded
    assert seen["kw"]["adapt_norm"] is False and prov["parameters"]["adapt_norm"] is False
    td.tl.segment_regions(a, "fake_model", adapt_norm=True)
    assert seen["kw"]["adapt_norm"] is True
    assert a.uns["regions"]["libraries"][LIB]["provenance"]["parameters"]["adapt_norm"] is True
    td.tl.segment_regions(a, "fake_model", tta=False)  # segment() options pass through, recorded
    assert seen["kw"]["tta"] is False
    assert a.uns["regions"]["libraries"][LIB]["provenance"]["parameters"]["tta"] is False
    gj = json.loads(st["geojson"])
    xs = np.array(gj["features"][0]["geometry"]["coordinates"][0])[:, 0]
    assert xs.min() == pytest.approx(30 * 4 / sf["tissue_lowres_scalef"])  # full-res pixels


def test_segment_regions_failure_leaves_adata_untouched(visium_outs, monkeypatch):
    from topdown.tl import _segment_regions

    def boom(*a, **k):
        raise InputError("model exploded")

    monkeypatch.setattr(_segment_regions, "_segment_fn", lambda: boom)
    a = td.io.read_visium(visium_outs, in_tissue_only=False)
    keys = set(a.uns)
    with pytest.raises(InputError):
        td.tl.segment_regions(a, "x")
    assert set(a.uns) == keys
    b = a.copy()
    del b.uns["spatial"][LIB]["scalefactors"]
    with pytest.raises(InputError, match="scalefactors"):
        td.tl.segment_regions(b, "x")
    with pytest.raises(InputError, match="library_id"):
        td.tl.segment_regions(a, "x", library_id="other")
