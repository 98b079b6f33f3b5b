"""td.io.read_merscope / read_cells on the real MERFISH mini crop, converted to MERSCOPE layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely
import tifffile
from PIL import Image

import topdown as td
from topdown.errors import DataFileError
from topdown.seg.regionmap import RegionMap

SHRINK = 4  # the fixture stores the mosaic at 1/4 of the JPEG size (fast tests)


def _polygons(csv_gz: Path) -> pd.Series:
    """GiottoData boundary CSV (x, y negated, poly_ID) -> polygons in µm (y not negated)."""
    df = pd.read_csv(csv_gz)
    codes, ids = pd.factorize(df["poly_ID"].astype(str))
    order = np.argsort(codes, kind="stable")
    xy = np.c_[df["x"].to_numpy(), -df["y"].to_numpy()][order]
    polys = shapely.make_valid(shapely.polygons(shapely.linearrings(xy, indices=codes[order])))
    return pd.Series(polys, index=ids.astype(str))


def convert_mini_to_merscope(src: Path, out: Path) -> dict:
    """Write the MERSCOPE layout: cell_by_gene.csv, cell_metadata.csv, cell_boundaries.parquet,
    images/mosaic_DAPI_z{0,1}.tif + micron_to_mosaic_pixel_transform.csv."""
    out.mkdir(parents=True, exist_ok=True)
    polys = _polygons(src / "cell_boundaries" / "z0_polygons.gz")
    tx = pd.read_csv(src / "vizgen_transcripts.gz")
    pts = shapely.points(tx[["global_x", "global_y"]].to_numpy())
    tree = shapely.STRtree(polys.to_numpy())
    ti, ci = tree.query(pts, predicate="within")
    ti, first = np.unique(ti, return_index=True)  # a transcript counts once
    ci = ci[first]
    cbg = pd.crosstab(pd.Categorical(polys.index[ci], categories=polys.index),
                      tx["gene"].to_numpy()[ti], dropna=False)
    cbg.index.name = "cell"
    cbg.to_csv(out / "cell_by_gene.csv")
    cent = shapely.centroid(polys.to_numpy())
    b = shapely.bounds(polys.to_numpy())
    meta = pd.DataFrame({"fov": 0, "volume": shapely.area(polys.to_numpy()),
                         "center_x": shapely.get_x(cent), "center_y": shapely.get_y(cent),
                         "min_x": b[:, 0], "max_x": b[:, 2], "min_y": b[:, 1], "max_y": b[:, 3]},
                        index=pd.Index(polys.index, name="EntityID"))
    meta.to_csv(out / "cell_metadata.csv")
    pd.DataFrame({"EntityID": polys.index, "ZIndex": 0,
                  "Geometry": shapely.to_wkb(polys.to_numpy())}).to_parquet(out / "cell_boundaries.parquet")
    ext = json.loads((src / "image_extent.json").read_text())
    imgs = out / "images"
    imgs.mkdir(exist_ok=True)
    for z in (0, 1):
        im = Image.open(src / "images" / f"mini_dataset_dapi_z{z}.jpg").convert("L")
        im = im.resize((im.width // SHRINK, im.height // SHRINK), Image.Resampling.BOX)
        tifffile.imwrite(imgs / f"mosaic_DAPI_z{z}.tif", np.asarray(im))
    w, h = im.size
    sx = w / (ext["xmax"] - ext["xmin"])
    sy = h / (ext["ymax"] - ext["ymin"])
    top = -ext["ymax"]  # row 0 of the image is at (negated) y = ymax
    m = np.array([[sx, 0, -sx * ext["xmin"]], [0, sy, -sy * top], [0, 0, 1.0]])
    np.savetxt(imgs / "micron_to_mosaic_pixel_transform.csv", m, delimiter=" ")
    blank = [c for c in cbg.columns if c.lower().startswith("blank")]
    return {"n_cells": len(polys), "n_assigned": len(ti), "blank": blank,
            "n_gene_counts": int(cbg.drop(columns=blank).to_numpy().sum()), "transform": m, "shape": (h, w),
            "polygons": polys, "cell_by_gene": cbg, "meta": meta}


@pytest.fixture(scope="module")
def merscope_dir(tmp_path_factory):
    from conftest import SHARED_DATA

    src = SHARED_DATA / "merfish_mouse_brain_mini"
    if not src.exists():
        pytest.skip(f"real data '{src}' is absent")
    out = tmp_path_factory.mktemp("merscope") / "region_0"
    info = convert_mini_to_merscope(src, out)
    return out, info


def test_read_merscope(merscope_dir):
    path, info = merscope_dir
    a = td.io.read_merscope(path)
    assert a.n_obs == info["n_cells"] and a.n_obs > 100
    assert int(a.X.sum()) == info["n_gene_counts"] > 10_000
    assert info["blank"] and not set(info["blank"]) & set(a.var_names)
    assert a.obsm["blank_counts"].shape == (a.n_obs, len(info["blank"]))
    assert int(a.X.sum() + a.obsm["blank_counts"].sum()) == info["n_assigned"]
    lib = a.uns["spatial"]["region_0"]
    h, w = info["shape"]
    assert lib["images"]["hires"].shape == (h, w)  # small enough: not shrunk
    assert lib["scalefactors"]["tissue_hires_scalef"] == 1.0
    um_px = lib["scalefactors"]["microns_per_pixel"]
    assert um_px == pytest.approx(500.0 / w, rel=1e-3)
    xy = a.obsm["spatial"]
    assert (xy[:, 0] >= 0).all() and (xy[:, 0] <= w).all() and (xy[:, 1] >= 0).all() and (xy[:, 1] <= h).all()
    assert "cell_boundaries" in a.uns
    # mid z plane chosen (z0, z1 -> z1)
    assert lib["metadata"]["technology"] == "merscope"


def test_cells_sit_on_nuclei_in_the_dapi_image(merscope_dir):
    """Transform and y-flip are right: DAPI is brighter under cell centroids than elsewhere."""
    path, _ = merscope_dir
    a = td.io.read_merscope(path)
    img = a.uns["spatial"]["region_0"]["images"]["hires"].astype(float)
    xy = np.floor(a.obsm["spatial"]).astype(int)
    xy[:, 0] = np.clip(xy[:, 0], 0, img.shape[1] - 1)
    xy[:, 1] = np.clip(xy[:, 1], 0, img.shape[0] - 1)
    at_cells = img[xy[:, 1], xy[:, 0]].mean()
    flipped = img[img.shape[0] - 1 - xy[:, 1], xy[:, 0]].mean()
    assert at_cells > 1.3 * img.mean() and at_cells > 1.2 * flipped


def test_generic_reader_matches(merscope_dir):
    path, info = merscope_dir
    cells = info["meta"].join(info["cell_by_gene"].drop(columns=info["blank"]))
    img = tifffile.imread(path / "images" / "mosaic_DAPI_z1.tif")
    a = td.io.read_cells(cells, img, transform=info["transform"], x="center_x", y="center_y",
                         boundaries=info["polygons"], library_id="mini", max_image_side=500)
    b = td.io.read_merscope(path)
    np.testing.assert_allclose(a.obsm["spatial"], b.obsm["spatial"])
    assert set(a.var_names) == set(b.var_names)
    sf = a.uns["spatial"]["mini"]["scalefactors"]
    assert max(a.uns["spatial"]["mini"]["images"]["hires"].shape) <= 500
    assert sf["tissue_hires_scalef"] == pytest.approx(500 / max(img.shape), rel=1e-2)


def test_segment_and_assign_cells(merscope_dir, monkeypatch):
    from topdown.tl import _segment_regions

    path, _ = merscope_dir
    a = td.io.read_merscope(path)
    lib = a.uns["spatial"]["region_0"]
    seen = {}

    def fake_segment(image, model, pixel_size_um=None, **kw):
        seen["px"] = pixel_size_um
        h, w = image.shape[:2]
        lab = np.ones((h // 8, w // 8), np.uint8)
        lab[:, lab.shape[1] // 2:] = 2
        return RegionMap(lab, ("left", "right"), downsample=8.0, image_shape=(h, w))

    monkeypatch.setattr(_segment_regions, "_segment_fn", lambda: fake_segment)
    td.tl.segment_regions(a, "fake")
    assert seen["px"] == pytest.approx(lib["scalefactors"]["microns_per_pixel"])
    td.tl.assign_regions(a)
    assert a.uns["region_assignment"]["mode"]["region_0"] == "polygon"
    fr = a.obsm["region_fractions"].to_numpy()
    np.testing.assert_allclose(fr.sum(1), 1.0, atol=1e-6)
    b = a.copy()
    td.tl.assign_regions(b, mode="centroid")
    agree = (a.obs["region"].to_numpy() == b.obs["region"].to_numpy()).mean()
    assert agree > 0.95
    h, w = lib["images"]["hires"].shape[:2]
    x, y = a.obsm["spatial"].T
    on_map = (x < (w // 8) * 8) & (y < (h // 8) * 8)
    right = on_map & (x > (w // 8) * 8 / 2 + 1)
    assert right.sum() > 50 and (b.obs["region"].to_numpy()[right] == "right").all()
    assert (b.obs["region"].to_numpy()[~on_map] == "outside").all()


def test_merscope_missing_files(tmp_path):
    with pytest.raises(DataFileError, match="cell_by_gene"):
        td.io.read_merscope(tmp_path)
