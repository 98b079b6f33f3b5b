"""td.io.read_visium_hd on a small spec-conformant Visium HD outs folder written here."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from _tenx_files import write_10x_h5
from PIL import Image

import topdown as td
from topdown.errors import DataFileError, InputError

UM_PX = 0.2738
GENES = ["Gfap", "Slc17a7", "Gad1", "Mbp"]


def _spatial(folder, bin_um, full_hw):
    sp = folder / "spatial"
    sp.mkdir(parents=True)
    sf = {"tissue_hires_scalef": 0.2, "tissue_lowres_scalef": 0.05, "fiducial_diameter_fullres": 100.0,
          "spot_diameter_fullres": bin_um / UM_PX, "bin_size_um": float(bin_um), "microns_per_pixel": UM_PX,
          "regist_target_img_scalef": 0.2}
    (sp / "scalefactors_json.json").write_text(json.dumps(sf))
    h, w = full_hw
    hires = np.full((int(h * 0.2), int(w * 0.2), 3), 230, np.uint8)
    hires[: hires.shape[0] // 2] = 90  # dark upper half: tissue
    Image.fromarray(hires).save(sp / "tissue_hires_image.png")
    Image.fromarray(hires[::4, ::4]).save(sp / "tissue_lowres_image.png")
    return sp


@pytest.fixture
def hd(tmp_path):
    rng = np.random.default_rng(1)
    root = tmp_path / "HD_brain" / "outs"
    full_hw = (1000, 1200)
    for bin_um in (8, 16):
        folder = root / "binned_outputs" / f"square_{bin_um:03d}um"
        sp = _spatial(folder, bin_um, full_hw)
        step = bin_um / UM_PX
        rows, cols = np.mgrid[0: int(full_hw[0] // step), 0: int(full_hw[1] // step)]
        rows, cols = rows.ravel(), cols.ravel()
        bc = [f"s_{bin_um:03d}um_{r:05d}_{c:05d}-1" for r, c in zip(rows, cols, strict=True)]
        pos = pd.DataFrame({"barcode": bc, "in_tissue": (rows < rows.max() / 2).astype(np.int32),
                            "array_row": rows, "array_col": cols,
                            "pxl_row_in_fullres": (rows + 0.5) * step, "pxl_col_in_fullres": (cols + 0.5) * step})
        pos.to_parquet(sp / "tissue_positions.parquet", index=False)
        keep = pos[pos["in_tissue"] == 1]
        counts = rng.poisson(2.0, (len(keep), len(GENES) + 1))
        write_10x_h5(folder / "filtered_feature_bc_matrix.h5", counts, keep["barcode"], GENES + ["NegCtrl"],
                     ["Gene Expression"] * len(GENES) + ["Antibody Capture"])
    seg = root / "segmented_outputs"
    seg.mkdir()
    centres = rng.uniform(100, 900, (25, 2))
    feats = [{"type": "Feature", "properties": {"cell_id": i + 1}, "geometry": {"type": "Polygon", "coordinates": [[
        [x - 15, y - 10], [x + 15, y - 10], [x + 15, y + 10], [x - 15, y + 10], [x - 15, y - 10]]]}}
        for i, (x, y) in enumerate(centres)]
    (seg / "cell_segmentations.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    cell_counts = rng.poisson(5.0, (25, len(GENES)))
    ids = [f"cellid_{i + 1:09d}-1" for i in range(25)][::-1]
    write_10x_h5(seg / "filtered_feature_cell_matrix.h5", cell_counts, ids, GENES, ["Gene Expression"] * len(GENES))
    return root, centres[::-1], cell_counts


def test_read_visium_hd_bins(hd):
    root, *_ = hd
    a = td.io.read_visium_hd(root)
    pos = pd.read_parquet(root / "binned_outputs" / "square_008um" / "spatial" / "tissue_positions.parquet")
    assert a.n_obs == int(pos["in_tissue"].sum()) and a.var_names.tolist() == GENES
    assert a.X.dtype == np.int32 and a.X.format == "csr"
    p = pos.set_index("barcode").loc[a.obs_names]
    np.testing.assert_allclose(a.obsm["spatial"], p[["pxl_col_in_fullres", "pxl_row_in_fullres"]].to_numpy())
    lib = a.uns["spatial"]["HD_brain"]
    assert lib["metadata"]["technology"] == "visium_hd" and lib["metadata"]["bin_size_um"] == 8.0
    assert lib["metadata"]["positions_file"] == "tissue_positions.parquet"
    assert td.get.fullres_um_per_px(a, "HD_brain") == UM_PX
    assert lib["images"]["hires"].shape == (200, 240, 3)
    # bins sit on the dark (tissue) half of the hires image
    xy = np.floor(a.obsm["spatial"] * lib["scalefactors"]["tissue_hires_scalef"]).astype(int)
    assert (lib["images"]["hires"][xy[:, 1], xy[:, 0], 0] == 90).all()
    assert "HD_brain" in td.io.read_visium_hd(root / "binned_outputs" / "square_016um", bin_size=16).uns["spatial"]
    b = td.io.read_visium_hd(root, bin_size=16, library_id="s16")
    assert b.n_obs < a.n_obs and b.uns["spatial"]["s16"]["metadata"]["bin_size_um"] == 16.0


def test_read_visium_hd_cells(hd):
    root, centres, cell_counts = hd
    a = td.io.read_visium_hd(root, cells=True)
    assert a.n_obs == 25 and a.obs_names[0] == "cellid_000000025-1"
    np.testing.assert_array_equal(a.X.toarray(), cell_counts)
    np.testing.assert_allclose(a.obsm["spatial"], centres)
    assert len(a.uns["cell_boundaries"]["offsets"]) == 26
    lib = a.uns["spatial"]["HD_brain"]
    assert lib["scalefactors"]["microns_per_pixel"] == UM_PX and "hires" in lib["images"]
    assert lib["metadata"]["technology"] == "visium_hd" and lib["metadata"]["cells"]


def test_read_visium_hd_missing(hd, tmp_path):
    root, *_ = hd
    with pytest.raises(DataFileError, match=r"square_002um.*square_008um"):
        td.io.read_visium_hd(root, bin_size=2)
    with pytest.raises(DataFileError, match="segmented_outputs"):
        td.io.read_visium_hd(tmp_path, cells=True)
    feats = json.loads((root / "segmented_outputs" / "cell_segmentations.geojson").read_text())
    feats["features"] = feats["features"][1:]
    (root / "segmented_outputs" / "cell_segmentations.geojson").write_text(json.dumps(feats))
    with pytest.raises(InputError, match="different runs"):
        td.io.read_visium_hd(root, cells=True)
