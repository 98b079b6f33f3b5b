"""td.io.read_giotto_merscope on the real Vizgen MERFISH mini crop (transcripts + polygons, no table)."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import shapely

import topdown as td
from topdown.errors import DataFileError


@pytest.fixture(scope="module")
def mini():
    from conftest import SHARED_DATA

    src = SHARED_DATA / "merfish_mouse_brain_mini"
    if not src.exists():
        pytest.skip(f"real data '{src}' is absent")
    return src, td.io.read_giotto_merscope(src)


def _polygons(src, z):
    df = pd.read_csv(src / "cell_boundaries" / f"z{z}_polygons.gz")
    return {pid: shapely.Polygon(np.c_[g["x"], -g["y"]]) for pid, g in df.groupby("poly_ID", sort=False)}


def test_counts_are_transcripts_inside_cells(mini):
    """Independent count: per plane, every polygon's contains_xy over that plane's transcripts."""
    src, a = mini
    tx = pd.read_csv(src / "vizgen_transcripts.gz")
    per_cell: dict[str, int] = {}
    taken = np.zeros(len(tx), bool)
    for z in (0, 1):
        sel = tx["global_z"].to_numpy() == z
        x, y = tx["global_x"].to_numpy()[sel], tx["global_y"].to_numpy()[sel]
        idx = np.flatnonzero(sel)
        for pid, poly in _polygons(src, z).items():
            inside = shapely.contains_xy(shapely.make_valid(poly), x, y) & ~taken[idx]
            taken[idx[inside]] = True
            per_cell[str(pid)] = per_cell.get(str(pid), 0) + int(inside.sum())
    ids = set(map(str, pd.read_csv(src / "cell_boundaries" / "z0_polygons.gz")["poly_ID"]))
    ids |= set(map(str, pd.read_csv(src / "cell_boundaries" / "z1_polygons.gz")["poly_ID"]))
    assert a.n_obs == len(ids) == len(per_cell)  # every polygon id of either plane is a cell
    assert int(taken.sum()) == a.uns["transcripts"]["n_in_cells"] > 20_000
    assert a.uns["transcripts"]["n_total"] == len(tx)
    total = a.obs["transcript_count"].reindex(list(per_cell)).to_numpy()
    np.testing.assert_array_equal(total, list(per_cell.values()))
    assert int(a.X.sum() + a.obsm.get("blank_counts", np.zeros(1)).sum()) == int(taken.sum())
    assert a.X.dtype.kind == "i" and a.X.format == "csr"
    assert a.n_vars + len(a.uns.get("blank_genes", [])) == tx["gene"].nunique()


def test_coordinates_land_on_the_dapi_image(mini):
    """Transform and y-flip are right: cell centroids sit on nuclei, not on their mirror image."""
    src, a = mini
    lib = a.uns["spatial"][src.name]
    img = lib["images"]["hires"].astype(float)
    assert img.shape == (4143, 4603) and lib["scalefactors"]["tissue_hires_scalef"] == 1.0
    assert lib["scalefactors"]["microns_per_pixel"] == pytest.approx(500.0 / 4603, rel=1e-3)
    xy = a.obsm["spatial"]
    assert (xy >= -20).all() and (xy[:, 0] <= img.shape[1] + 20).all() and (xy[:, 1] <= img.shape[0] + 20).all()
    p = np.clip(np.floor(xy).astype(int), 0, [img.shape[1] - 1, img.shape[0] - 1])
    at_cells = img[p[:, 1], p[:, 0]].mean()
    assert at_cells > 2 * img.mean() and at_cells > 1.5 * img[img.shape[0] - 1 - p[:, 1], p[:, 0]].mean()
    assert a.uns["cell_boundaries"]["obs_names"].tolist() == a.obs_names.tolist()
    assert lib["metadata"]["technology"] == "merscope"


def test_keep_empty_false_and_polyt(mini):
    src, a = mini
    b = td.io.read_giotto_merscope(src, stain="polyT", z=1, keep_empty=False, max_image_side=1000)
    assert b.n_obs == int((a.obs["transcript_count"] > 0).sum()) < a.n_obs
    assert (b.obs["transcript_count"] > 0).all()
    lib = b.uns["spatial"][src.name]
    assert max(lib["images"]["hires"].shape) <= 1000
    assert lib["scalefactors"]["tissue_hires_scalef"] == pytest.approx(1000 / 4603, rel=1e-2)


def test_missing_files_say_what_the_folder_holds(mini, tmp_path):
    src, _ = mini
    with pytest.raises(DataFileError, match="vizgen_transcripts.gz"):
        td.io.read_giotto_merscope(tmp_path)
    shutil.copy(src / "vizgen_transcripts.gz", tmp_path)
    with pytest.raises(DataFileError, match="z<k>_polygons"):
        td.io.read_giotto_merscope(tmp_path)
    with pytest.raises(DataFileError, match="read_giotto_merscope"):
        td.io.read_merscope(tmp_path)
