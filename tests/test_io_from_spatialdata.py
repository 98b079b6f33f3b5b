"""td.io.from_spatialdata on SpatialData objects built here (circles + multiscale image, polygons)."""

from __future__ import annotations

import anndata as ad
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

import topdown as td
from topdown.errors import InputError

sd = pytest.importorskip("spatialdata")


def _sdata(polygons: bool = False):
    from spatialdata.models import Image2DModel, ShapesModel, TableModel
    from spatialdata.transformations import Identity, Scale

    rng = np.random.default_rng(3)
    n = 30
    xy_px = np.c_[rng.uniform(10, 290, n), rng.uniform(10, 190, n)]  # image pixels
    img = np.full((1, 200, 300), 10, np.uint8)
    for x, y in xy_px.astype(int):
        img[0, y - 2:y + 3, x - 2:x + 3] = 250
    image = Image2DModel.parse(img, dims=("c", "y", "x"), scale_factors=[2],
                               transformations={"global": Scale([2.0, 2.0], axes=("x", "y"))})
    xy_g = xy_px * 2.0  # global units
    if polygons:
        geom = [shapely.box(x - 3, y - 3, x + 3, y + 3) for x, y in xy_g]
        gdf = gpd.GeoDataFrame(geometry=geom, index=pd.RangeIndex(n) + 100)
    else:
        gdf = gpd.GeoDataFrame({"radius": np.full(n, 5.0)}, geometry=shapely.points(xy_g), index=pd.RangeIndex(n) + 100)
    shapes = ShapesModel.parse(gdf, transformations={"global": Identity()})
    order = rng.permutation(n)
    table = ad.AnnData(X=rng.poisson(2, (n, 4)).astype(np.float32)[order],
                       obs=pd.DataFrame({"region": pd.Categorical(["cells"] * n), "instance": (np.arange(n) + 100)[order]},
                                        index=[f"c{i}" for i in order]))
    table = TableModel.parse(table, region="cells", region_key="region", instance_key="instance")
    sdata = sd.SpatialData(images={"dapi": image}, shapes={"cells": shapes}, tables={"table": table})
    return sdata, xy_px[order]


def test_from_spatialdata_circles():
    sdata, xy_px = _sdata()
    a = td.io.from_spatialdata(sdata, microns_per_pixel=0.5, max_image_side=200)
    np.testing.assert_allclose(a.obsm["spatial"], xy_px)
    lib = a.uns["spatial"]["cells"]
    sf = lib["scalefactors"]
    assert sf["tissue_hires_scalef"] == 0.5 and lib["images"]["hires"].shape == (100, 150)
    assert sf["spot_diameter_fullres"] == pytest.approx(5.0) and sf["microns_per_pixel"] == 0.5
    assert lib["metadata"]["technology"] == "visium"
    p = np.floor(a.obsm["spatial"] * 0.5).astype(int)
    assert lib["images"]["hires"][p[:, 1], p[:, 0]].mean() > 3 * lib["images"]["hires"].mean()
    assert td.get.fullres_um_per_px(a, "cells") == 0.5


def test_from_spatialdata_polygons_and_errors():
    sdata, xy_px = _sdata(polygons=True)
    a = td.io.from_spatialdata(sdata, library_id="s1")
    np.testing.assert_allclose(a.obsm["spatial"], xy_px)
    assert a.uns["spatial"]["s1"]["images"]["hires"].shape == (200, 300)
    assert a.uns["cell_boundaries"]["offsets"][-1] == 5 * a.n_obs
    assert a.uns["spatial"]["s1"]["metadata"]["technology"] == "cells"
    with pytest.raises(InputError, match="no table"):
        td.io.from_spatialdata(sdata, table_key="other")
    with pytest.raises(InputError, match="no image"):
        td.io.from_spatialdata(sdata, image_key="he")


def test_round_trip_with_to_spatialdata():
    sdata, _ = _sdata()
    a = td.io.from_spatialdata(sdata, microns_per_pixel=0.5)
    b = td.io.from_spatialdata(td.io.to_spatialdata(a), region="cells_spots")
    np.testing.assert_allclose(b.obsm["spatial"], a.obsm["spatial"])  # hires scale 1: same pixels
    np.testing.assert_array_equal(b.uns["spatial"]["cells_spots"]["images"]["hires"], a.uns["spatial"]["cells"]["images"]["hires"])
