"""Outputs: write_annotated round-trip, GeoJSON, SpatialData, scanpy/squidpy plotting."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import anndata as ad  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from scipy import ndimage as ndi  # noqa: E402

import topdown as td  # noqa: E402
from topdown.errors import OutputError  # noqa: E402
from topdown.seg.regionmap import RegionMap  # noqa: E402

LIB = "visium_mouse_brain_v1"


def handmade_regions(img: np.ndarray) -> RegionMap:
    """Tissue by H&E saturation, split into a dorsal and a ventral region; half resolution."""
    sat = img[..., 0].astype(float) - img[..., 1]
    tissue = ndi.binary_opening(ndi.gaussian_filter(sat, 2) > 12, iterations=2)[::2, ::2]
    lab = tissue.astype(np.uint8)
    lab[tissue & (np.arange(lab.shape[0])[:, None] > 125)] = 2
    probs = np.stack([1 - 0.3 * tissue, 0.3 + 0.6 * tissue, np.full(lab.shape, 0.1)]).astype(np.float16)
    return RegionMap(lab, ("dorsal", "ventral"), downsample=2.0, probabilities=probs,
                     image_shape=img.shape[:2], meta={"model": "handmade"})


@pytest.fixture
def annotated(visium_outs):
    a = td.io.read_visium(visium_outs, in_tissue_only=False)
    rmap = handmade_regions(a.uns["spatial"][LIB]["images"]["lowres"])
    td.tl.segment_regions(a, rmap)
    td.tl.assign_regions(a)
    return a


def test_real_visium_assignment_is_sensible(annotated):
    a = annotated
    frac = a.obsm["region_fractions"]
    np.testing.assert_allclose(frac.to_numpy().sum(1), 1.0, atol=1e-5)
    in_t = a.obs["in_tissue"].to_numpy() == 1
    on = a.obs["region"].to_numpy() != "outside"
    assert on[in_t].mean() > 0.95 and (~on[~in_t]).mean() > 0.95
    assert a.uns["region_assignment"]["alignment"][LIB]["fit"] > 0.95
    conf = a.obs["region_confidence"].to_numpy()
    assert (conf >= 0).all() and (conf <= 1.0 + 1e-6).all()


def test_write_annotated_round_trip_keeps_everything(annotated, tmp_path):
    a = annotated
    a.obs["user_col"] = np.arange(a.n_obs)
    a.layers["counts"] = a.X.copy()
    a.obsm["user_emb"] = np.ones((a.n_obs, 2))
    a.uns["user"] = {"note": "mine", "nested": {"k": 3}}
    path = tmp_path / "annot.h5ad"
    td.io.write_annotated(a, path)
    assert not list(tmp_path.glob(".*part"))
    b = td.io.read_annotated(path)
    assert b.obs["region"].dtype == "category"
    assert list(b.obs["region"].cat.categories) == list(a.obs["region"].cat.categories)
    assert (b.obs["region"] == a.obs["region"]).all()
    pd.testing.assert_frame_equal(b.obsm["region_fractions"], a.obsm["region_fractions"])
    np.testing.assert_allclose(b.obs["region_confidence"], a.obs["region_confidence"])
    assert list(b.uns["region_colors"]) == list(a.uns["region_colors"])
    assert b.uns["user"]["nested"]["k"] == 3 and "user_emb" in b.obsm and "counts" in b.layers
    st_a = a.uns["regions"]["libraries"][LIB]
    st_b = b.uns["regions"]["libraries"][LIB]
    assert st_b["geojson"] == st_a["geojson"]
    np.testing.assert_array_equal(st_b["labels"], st_a["labels"])
    np.testing.assert_array_equal(st_b["max_probability"], st_a["max_probability"])
    # the reloaded object can be re-assigned from its stored regions with the same result
    c = b.copy()
    td.tl.assign_regions(c)
    assert (c.obs["region"] == a.obs["region"]).all()


def test_write_annotated_is_atomic(tmp_path):
    a = ad.AnnData(X=np.ones((2, 2), np.float32))
    a.uns["bad"] = object()
    path = tmp_path / "x.h5ad"
    with pytest.raises(OutputError, match="serialisable"):
        td.io.write_annotated(a, path)
    assert not path.exists() and not list(tmp_path.iterdir())
    with pytest.raises(OutputError):
        td.io.write_annotated(ad.AnnData(X=np.ones((1, 1))), tmp_path)  # a folder


def test_geojson_export(annotated, tmp_path):
    p = tmp_path / "regions.geojson"
    td.io.write_geojson(annotated, p)
    gj = json.loads(p.read_text())
    assert gj["type"] == "FeatureCollection"
    names = {f["properties"]["region"] for f in gj["features"]}
    assert names == {"dorsal", "ventral"}
    import geopandas as gpd

    gdf = gpd.read_file(p)
    sf = annotated.uns["spatial"][LIB]["scalefactors"]["tissue_lowres_scalef"]
    # polygons are in full-res pixels: the image spans 576 / scalef
    assert gdf.total_bounds[2] <= 576 / sf + 1e-6 and gdf.total_bounds[2] > 300 / sf


def test_to_spatialdata(annotated):
    sdata = td.io.to_spatialdata(annotated)
    assert f"{LIB}_regions" in sdata.shapes and f"{LIB}_spots" in sdata.shapes
    assert f"{LIB}_lowres" in sdata.images
    table = sdata.tables["table"]
    assert table.n_obs == annotated.n_obs and "region" in table.obs
    spots = sdata.shapes[f"{LIB}_spots"]
    np.testing.assert_allclose(np.c_[spots.geometry.x, spots.geometry.y], annotated.obsm["spatial"])
    from spatialdata.transformations import get_transformation

    tr = get_transformation(sdata.images[f"{LIB}_lowres"], to_coordinate_system=LIB)
    sf = annotated.uns["spatial"][LIB]["scalefactors"]["tissue_lowres_scalef"]
    np.testing.assert_allclose(tr.to_affine_matrix(("x", "y"), ("x", "y"))[0, 0], 1 / sf)


def test_scanpy_and_squidpy_plot_the_regions(annotated):
    import matplotlib.pyplot as plt
    import scanpy as sc
    import squidpy as sq

    a = annotated
    sq.pl.spatial_scatter(a, color="region", library_id=LIB, img_res_key="lowres")
    fig = plt.gcf()
    assert fig.axes
    plt.close("all")
    colors_before = list(a.uns["region_colors"])
    sc.pl.spatial(a, color="region", library_id=LIB, img_key="lowres", show=False)
    assert list(a.uns["region_colors"]) == colors_before  # our palette was used, not replaced
    plt.close("all")


def test_pl_regions_overlay(annotated, tmp_path):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    out = td.pl.regions(annotated, ax=ax, show=False)
    assert out is ax and len(ax.collections) >= 2
    p = tmp_path / "overlay.png"
    ax2 = td.pl.regions(annotated, save=p)
    assert p.stat().st_size > 1000 and ax2 is not None
    plt.close("all")
