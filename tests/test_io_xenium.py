"""td.io.read_xenium on a small spec-conformant Xenium output folder written here."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from _tenx_files import blob_image, write_10x_h5, write_pyramid

import topdown as td
from topdown.errors import DataFileError, InputError

PX = 0.2125
GENES = ["Gfap", "Slc17a7", "Gad1", "Mbp", "Pvalb", "Sst"]
CONTROLS = [("NegControlProbe_00042", "Negative Control Probe"), ("NegControlCodeword_0500", "Negative Control Codeword"),
            ("UnassignedCodeword_0007", "Unassigned Codeword")]


@pytest.fixture
def xenium(tmp_path):
    rng = np.random.default_rng(0)
    n, h, w = 40, 768, 1024
    centres = np.c_[rng.uniform(20, w - 20, n), rng.uniform(20, h - 20, n)]  # level-0 pixels
    ids = [f"{''.join(rng.choice(list('abcdefghijklmnop'), 8))}-1" for _ in range(n)]
    counts = rng.poisson(3.0, (n, len(GENES) + len(CONTROLS)))
    counts[0] = 0
    counts[0, 0] = 1
    root = tmp_path / "Xenium_mini" / "outs"
    root.mkdir(parents=True)
    write_10x_h5(root / "cell_feature_matrix.h5", counts, ids, GENES + [c for c, _ in CONTROLS],
                 ["Gene Expression"] * len(GENES) + [t for _, t in CONTROLS])
    cells = pd.DataFrame({"cell_id": ids, "x_centroid": centres[:, 0] * PX, "y_centroid": centres[:, 1] * PX,
                          "transcript_counts": counts[:, :len(GENES)].sum(1), "control_probe_counts": 0,
                          "cell_area": 50.0, "nucleus_area": 20.0})
    cells.iloc[::-1].to_parquet(root / "cells.parquet")  # another order than the matrix
    (root / "experiment.xenium").write_text(json.dumps({"pixel_size": PX, "run_name": "synthetic",
                                                        "analysis_sw_version": "xenium-2.0.0"}))
    write_pyramid(root / "morphology_focus.ome.tif", blob_image(h, w, centres), levels=3, pixel_size=PX)
    return root, ids, counts, centres


def test_read_xenium(xenium):
    root, ids, counts, centres = xenium
    a = td.io.read_xenium(root, max_image_side=300)
    assert a.obs_names.tolist() == ids and a.var_names.tolist() == GENES
    assert a.X.format == "csr" and a.X.dtype == np.int32
    np.testing.assert_array_equal(a.X.toarray(), counts[:, :len(GENES)])
    np.testing.assert_array_equal(a.obsm["control_counts"], counts[:, len(GENES):])
    assert a.uns["control_features"].tolist() == [c for c, _ in CONTROLS]
    np.testing.assert_array_equal(a.obs["transcript_counts"], counts[:, :len(GENES)].sum(1))
    np.testing.assert_allclose(a.obsm["spatial"], centres)
    np.testing.assert_allclose(a.obsm["spatial_um"], centres * PX)
    lib = a.uns["spatial"]["Xenium_mini"]  # the folder above outs
    sf = lib["scalefactors"]
    assert sf["microns_per_pixel"] == PX and sf["tissue_hires_scalef"] == 0.25
    img = lib["images"]["hires"]
    assert img.shape == (192, 256) and img.dtype == np.uint8  # level 2 of the pyramid, not level 0
    p = np.floor(a.obsm["spatial"] * sf["tissue_hires_scalef"]).astype(int)
    assert img[p[:, 1], p[:, 0]].mean() > 4 * img.mean()  # cells sit on their nuclei
    assert lib["metadata"]["technology"] == "xenium" and lib["metadata"]["run_name"] == "synthetic"
    np.testing.assert_allclose(lib["metadata"]["transform"][:2, :2], np.eye(2) / PX)
    # default max side keeps level 0
    b = td.io.read_xenium(root)
    assert b.uns["spatial"]["Xenium_mini"]["images"]["hires"].shape == (768, 1024)


def test_read_xenium_csv_mex_and_folder_image(xenium, tmp_path):
    """cells.csv.gz, the MEX matrix folder and the XOA 2 morphology_focus/ folder."""
    import scanpy as sc
    from scipy import io as sio

    root, ids, counts, _ = xenium
    cells = pd.read_parquet(root / "cells.parquet")
    cells.to_csv(root / "cells.csv.gz", index=False)
    (root / "cells.parquet").unlink()
    mex = root / "cell_feature_matrix"
    mex.mkdir()
    ref = sc.read_10x_h5(root / "cell_feature_matrix.h5", gex_only=False)
    sio.mmwrite(mex / "matrix.mtx", ref.X.T.astype(np.int64))
    pd.DataFrame({"id": ref.var["gene_ids"], "name": ref.var_names, "type": ref.var["feature_types"]}).to_csv(
        mex / "features.tsv.gz", sep="\t", header=False, index=False)
    pd.Series(ids).to_csv(mex / "barcodes.tsv.gz", sep="\t", header=False, index=False)
    import gzip

    with open(mex / "matrix.mtx", "rb") as src, gzip.open(mex / "matrix.mtx.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    (mex / "matrix.mtx").unlink()
    (root / "cell_feature_matrix.h5").unlink()
    (root / "morphology_focus").mkdir()
    (root / "morphology_focus.ome.tif").rename(root / "morphology_focus" / "morphology_focus_0000.ome.tif")
    a = td.io.read_xenium(root, library_id="x1")
    np.testing.assert_array_equal(a.X.toarray(), counts[:, :len(GENES)])
    assert a.uns["spatial"]["x1"]["images"]["hires"].shape == (768, 1024)


def test_read_xenium_missing_and_inconsistent(xenium, tmp_path):
    root, *_ = xenium
    with pytest.raises(DataFileError, match="cell_feature_matrix.h5"):
        td.io.read_xenium(tmp_path)
    (root / "experiment.xenium").unlink()
    (root / "morphology_focus.ome.tif").unlink()
    with pytest.warns(UserWarning) as rec:
        a = td.io.read_xenium(root)
    assert any("0.2125" in str(r.message) for r in rec) and any("morphology" in str(r.message) for r in rec)
    assert a.uns["spatial"]["Xenium_mini"]["images"] == {}
    cells = pd.read_parquet(root / "cells.parquet")
    cells.iloc[1:].to_parquet(root / "cells.parquet")
    with pytest.raises(InputError, match="different runs"):
        td.io.read_xenium(root)
    (root / "cells.parquet").unlink()
    with pytest.raises(DataFileError, match="cells.parquet"):
        td.io.read_xenium(root)


def _hexagons(ids, centres_um, radius_um, bytes_ids=False):
    """One row per vertex (closed rings, as Xenium writes them), cells in ``ids`` order."""
    angles = np.linspace(0, 2 * np.pi, 7)
    rows = [(c.encode() if bytes_ids else c, x + radius_um * np.cos(a), y + radius_um * np.sin(a))
            for c, (x, y) in zip(ids, centres_um, strict=True) for a in angles]
    return pd.DataFrame(rows, columns=["cell_id", "vertex_x", "vertex_y"])


def test_read_xenium_boundaries(xenium):
    import shapely

    root, ids, _, centres = xenium
    _hexagons(ids[::-1], centres[::-1] * PX, 4.0, bytes_ids=True).to_parquet(root / "cell_boundaries.parquet")
    _hexagons(ids, centres * PX, 2.0).to_csv(root / "nucleus_boundaries.csv.gz", index=False)
    a = td.io.read_xenium(root, load_image=False)
    cb = a.uns["cell_boundaries"]
    assert cb["obs_names"].tolist() == ids and len(cb["offsets"]) == len(ids) + 1
    rings = [cb["coords"][cb["offsets"][i]:cb["offsets"][i + 1]] for i in range(len(ids))]
    cells = [shapely.Polygon(r) for r in rings]  # full-res pixels, in the cells' order
    np.testing.assert_allclose([[p.centroid.x, p.centroid.y] for p in cells], centres, atol=1e-6)
    assert np.allclose([p.area for p in cells], 3 * np.sqrt(3) / 2 * (4.0 / PX) ** 2)
    nuc = td.io.read_xenium(root, load_image=False, boundaries="nucleus").uns["cell_boundaries"]
    assert np.ptp(nuc["coords"][:, 0]) < np.ptp(cb["coords"][:, 0]) and len(nuc["offsets"]) == len(ids) + 1
    assert "cell_boundaries" not in td.io.read_xenium(root, load_image=False, boundaries=None).uns
    with pytest.raises(InputError, match="boundaries must be"):
        td.io.read_xenium(root, boundaries="membrane")
    # a cell without an outline: a warning, centroids only
    _hexagons(ids[1:], centres[1:] * PX, 4.0).to_parquet(root / "cell_boundaries.parquet")
    with pytest.warns(UserWarning, match="1 cells have no cell boundary"):
        assert "cell_boundaries" not in td.io.read_xenium(root, load_image=False).uns
    # a table that is not one ring per cell
    _hexagons(ids, centres * PX, 4.0).sample(frac=1, random_state=0).to_parquet(root / "cell_boundaries.parquet")
    with pytest.raises(DataFileError, match="not consecutive"):
        td.io.read_xenium(root, load_image=False)
