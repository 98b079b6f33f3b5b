"""td.io.read_cosmx on a small spec-conformant CosMx flat-file export written here."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import topdown as td
from topdown.errors import DataFileError, InputError

GENES = ["AATK", "ABL1", "ACTA2", "CD74"]
PX = 0.12028


@pytest.fixture
def cosmx(tmp_path):
    rng = np.random.default_rng(2)
    rows = []
    for fov in (1, 2):
        for cid in range(0, 6):  # cell 0: outside cells
            rows.append({"fov": fov, "cell_ID": cid})
    key = pd.DataFrame(rows)
    counts = rng.poisson(2.0, (len(key), len(GENES) + 2))
    expr = pd.concat([key, pd.DataFrame(counts, columns=GENES + ["NegPrb1", "NegPrb2"])], axis=1)
    expr.to_csv(tmp_path / "Run1_exprMat_file.csv.gz", index=False)
    meta = key.assign(Area=100, CenterX_local_px=rng.uniform(0, 4000, len(key)),
                      CenterY_local_px=rng.uniform(0, 4000, len(key)),
                      CenterX_global_px=rng.uniform(1e4, 2e4, len(key)), CenterY_global_px=rng.uniform(1e4, 2e4, len(key)))
    meta.sample(frac=1.0, random_state=0).to_csv(tmp_path / "Run1_metadata_file.csv.gz", index=False)
    return tmp_path, expr, meta


def test_read_cosmx(cosmx):
    root, expr, meta = cosmx
    a = td.io.read_cosmx(root, library_id="run1")
    cells = expr[expr["cell_ID"] != 0]
    assert a.n_obs == 10 and a.obs_names[0] == "1_1" and a.var_names.tolist() == GENES
    assert a.X.dtype == np.int32 and a.X.format == "csr"
    np.testing.assert_array_equal(a.X.toarray(), cells[GENES].to_numpy())
    np.testing.assert_array_equal(a.obsm["control_counts"], cells[["NegPrb1", "NegPrb2"]].to_numpy())
    m = meta.set_index(meta["cell_ID"].astype(str) + "_" + meta["fov"].astype(str)).loc[a.obs_names]
    np.testing.assert_allclose(a.obsm["spatial"], m[["CenterX_global_px", "CenterY_global_px"]].to_numpy())
    np.testing.assert_allclose(a.obsm["spatial_um"], a.obsm["spatial"] * PX)
    lib = a.uns["spatial"]["run1"]
    assert lib["metadata"]["technology"] == "cosmx" and lib["scalefactors"]["microns_per_pixel"] == pytest.approx(PX)
    # a stitched image at 1/10 of the global pixels
    img = np.zeros((2100, 2100), np.uint8)
    b = td.io.read_cosmx(root, image=img, transform=[[0.1, 0, 0], [0, 0.1, 0], [0, 0, 1]], max_image_side=500)
    np.testing.assert_allclose(b.obsm["spatial"], a.obsm["spatial"] * 0.1)
    sf = b.uns["spatial"][root.name]["scalefactors"]
    assert sf["microns_per_pixel"] == pytest.approx(PX * 10) and sf["tissue_hires_scalef"] == pytest.approx(500 / 2100, rel=1e-2)


def test_read_cosmx_missing(cosmx, tmp_path_factory):
    root, expr, _ = cosmx
    empty = tmp_path_factory.mktemp("empty")
    with pytest.raises(DataFileError, match="exprMat_file"):
        td.io.read_cosmx(empty)
    expr.to_csv(root / "Run2_exprMat_file.csv", index=False)
    with pytest.raises(InputError, match="several"):
        td.io.read_cosmx(root)
