"""``td.io.to_spatialdata``: spots, images, region polygons + table, the region map as Labels."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from test_assign_exact import make_adata, truth_polygons

import topdown as td

LIB = "lib1"


@pytest.fixture
def annotated():
    """Synthetic regions A, B, C (a 40 x 40 map, 4 full-res px per map pixel) and 60 spots."""
    rng = np.random.default_rng(0)
    a = make_adata(rng.uniform(20, 140, (60, 2)))
    td.tl.assign_regions(a)
    return a


def _colors(table) -> dict[str, str]:
    cats = [str(c) for c in table.obs["region"].cat.categories]
    return dict(zip(cats, (str(c) for c in table.uns["region_colors"]), strict=True))


def _check(sdata, a):
    """What every SpatialData made from ``a`` (with a raster) holds."""
    from spatialdata.transformations import get_transformation

    assert set(sdata.images) == {f"{LIB}_hires"}
    assert set(sdata.shapes) == {f"{LIB}_spots", f"{LIB}_regions"}
    assert set(sdata.labels) == {f"{LIB}_region_map"}
    assert set(sdata.tables) == {"table", "regions", "region_map"}
    spot_colors = dict(zip(a.obs["region"].cat.categories, a.uns["region_colors"], strict=True))
    polys = sdata.shapes[f"{LIB}_regions"]
    regions = sdata.tables["regions"]
    attrs = regions.uns["spatialdata_attrs"]
    assert list(attrs["region"]) == [f"{LIB}_regions"] and attrs["region_key"] == "spatialdata_shapes"
    assert attrs["instance_key"] == "spatialdata_instance"
    np.testing.assert_array_equal(regions.obs["spatialdata_instance"], polys.index)
    assert list(regions.obs["region"].astype(str)) == list(polys["region"])
    # same categories (those with a polygon, in the spots' order) and the spots' colours
    assert list(regions.obs["region"].cat.categories) == ["A", "B", "C"]
    assert _colors(regions) == {k: spot_colors[k] for k in "ABC"}
    rmap = sdata.tables["region_map"]
    assert list(rmap.obs["label"]) == [1, 2, 3] and list(rmap.obs["region"].astype(str)) == ["A", "B", "C"]
    assert _colors(rmap) == _colors(regions)
    assert list(rmap.uns["spatialdata_attrs"]["region"]) == [f"{LIB}_region_map"]
    # the labels' transform puts a map pixel onto its full-res pixels: 4 full-res px per map px
    lab = sdata.labels[f"{LIB}_region_map"]
    tr = get_transformation(lab, to_coordinate_system=LIB).to_affine_matrix(("x", "y"), ("x", "y"))
    np.testing.assert_allclose(tr, np.diag([4.0, 4.0, 1.0]))
    # a known label pixel lands under the right spot: spots well inside one region
    truth = truth_polygons()
    xy = a.obsm["spatial"]
    inside = {k: shapely.contains_xy(g.buffer(-8), xy[:, 0], xy[:, 1]) for k, g in truth.items()}
    full_to_map = np.linalg.inv(tr)
    mxy = (np.c_[xy, np.ones(len(xy))] @ full_to_map.T)[:, :2]
    at_spot = np.asarray(lab)[np.floor(mxy[:, 1]).astype(int).clip(0, 39), np.floor(mxy[:, 0]).astype(int).clip(0, 39)]
    for k, ok in inside.items():
        assert ok.any()
        assert (at_spot[ok] == "ABC".index(k) + 1).all()
        assert (a.obs["region"].to_numpy()[ok] == k).all()
    # the polygons are in the same (full-res) coordinates: C's polygon is the truth
    c = polys.geometry[polys["region"] == "C"].iloc[0]
    assert c.symmetric_difference(truth["C"]).area < 1e-6
    np.testing.assert_allclose(get_transformation(polys, to_coordinate_system=LIB).to_affine_matrix(("x", "y"), ("x", "y")), np.eye(3))


def test_to_spatialdata_regions_and_region_map(annotated):
    _check(td.io.to_spatialdata(annotated), annotated)


def test_to_spatialdata_zarr_round_trip(annotated, tmp_path):
    import spatialdata as sd

    s = td.io.to_spatialdata(annotated)
    s.write(tmp_path / "x.zarr")
    b = sd.read_zarr(tmp_path / "x.zarr")
    _check(b, annotated)
    np.testing.assert_array_equal(np.asarray(b.labels[f"{LIB}_region_map"]), annotated.uns["regions"]["libraries"][LIB]["labels"])
    for name in ("regions", "region_map"):
        assert b.tables[name].obs.equals(s.tables[name].obs)
    t = b.tables["table"]
    assert list(t.obs["region"]) == list(annotated.obs["region"])
    assert list(t.uns["region_colors"]) == list(annotated.uns["region_colors"])
    assert b.shapes[f"{LIB}_regions"].geometry.geom_equals_exact(s.shapes[f"{LIB}_regions"].geometry, 1e-9).all()


def test_spatialdata_plot_colours_regions_like_spots(annotated):
    """spatialdata-plot (0.4) draws the polygons and the label map in ``uns['region_colors']``."""
    import matplotlib.pyplot as plt
    import spatialdata_plot  # noqa: F401  (registers .pl)
    from matplotlib.colors import to_hex

    s = td.io.to_spatialdata(annotated)
    spot_colors = dict(zip(annotated.obs["region"].cat.categories, annotated.uns["region_colors"], strict=True))
    fig, ax = plt.subplots()
    s.pl.render_shapes(f"{LIB}_regions", color="region", table_name="regions").pl.show(ax=ax, coordinate_systems=LIB)
    faces = [to_hex(c) for c in ax.collections[0].get_facecolor()]
    polys = s.shapes[f"{LIB}_regions"]
    assert faces == [spot_colors[r] for r in polys["region"]]
    plt.close(fig)
    fig, ax = plt.subplots()
    s.pl.render_labels(f"{LIB}_region_map", color="region", table_name="region_map").pl.show(ax=ax, coordinate_systems=LIB)
    rgba = ax.images[0].get_array()
    lab = np.asarray(s.labels[f"{LIB}_region_map"])
    for k, name in enumerate("ABC", start=1):
        r, c = np.argwhere(lab == k)[0]
        assert to_hex(rgba[r, c][:3] if rgba.dtype.kind == "f" else rgba[r, c][:3] / 255) == spot_colors[name]
    plt.close(fig)


def test_to_spatialdata_hand_drawn_regions_no_labels(tmp_path):
    """Hand-drawn regions (polygons, no raster): polygons and their table, no Labels element."""
    import spatialdata as sd

    a = make_adata(np.array([[30.0, 60.0], [100.0, 60.0], [120.0, 60.0]]))
    del a.uns["regions"]
    gdf = gpd.GeoDataFrame({"region": ["left", "right"]},
                           geometry=[shapely.box(0, 0, 80, 160), shapely.box(80, 0, 160, 160)])
    td.io.read_geojson_regions(a, gdf)
    td.tl.assign_regions(a)
    s = td.io.to_spatialdata(a)
    assert not s.labels and set(s.tables) == {"table", "regions"}
    assert list(s.tables["regions"].obs["region"].cat.categories) == ["left", "right"]
    spot_colors = dict(zip(a.obs["region"].cat.categories, a.uns["region_colors"], strict=True))
    assert _colors(s.tables["regions"]) == {k: spot_colors[k] for k in ("left", "right")}
    s.write(tmp_path / "h.zarr")
    b = sd.read_zarr(tmp_path / "h.zarr")
    assert not b.labels and _colors(b.tables["regions"]) == _colors(s.tables["regions"])


def test_to_spatialdata_without_regions():
    a = make_adata(np.array([[30.0, 60.0]]))
    del a.uns["regions"]
    s = td.io.to_spatialdata(a)
    assert set(s.shapes) == {f"{LIB}_spots"} and set(s.tables) == {"table"} and not s.labels
