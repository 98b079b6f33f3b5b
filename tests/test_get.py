"""td.get: reading regions and DE results back; the coordinate systems of a segmentation."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import shapely

import topdown as td
from topdown.errors import InputError
from topdown.seg.regionmap import FullresScale, ImageScale, MapScale, RegionMap


def _adata(libraries=("L1",), scalef: float = 0.5, downsample: float = 2.0) -> ad.AnnData:
    """Two regions side by side (map cols 0-3: a, 4-7: b, rows 0-5) stored per library."""
    lab = np.zeros((6, 8), np.uint8)
    lab[:, :4], lab[:, 4:] = 1, 2
    a = ad.AnnData(X=np.ones((2, 1), np.float32), obs=pd.DataFrame(index=["s0", "s1"]))
    a.obsm["spatial"] = np.array([[1.0, 1.0], [20.0, 5.0]])
    a.uns["spatial"] = {lib: {"images": {"hires": np.zeros((12, 16, 3), np.uint8)},
                              "scalefactors": {"tissue_hires_scalef": scalef, "spot_diameter_fullres": 2.0}}
                        for lib in libraries}
    for lib in libraries:
        rmap = RegionMap(lab, ("a", "b"), downsample=downsample, pixel_size_um=10.0)
        td.tl.segment_regions(a, rmap, library_id=lib, drop_empty_tissue=False)
    return a


def test_regions_are_polygons_in_fullres_pixels():
    gdf = td.get.regions(_adata(scalef=0.5, downsample=2.0))  # 2 / 0.5 = 4 full-res px per map px
    assert list(gdf["region"]) == ["a", "b"] and list(gdf["label"]) == [1, 2]
    assert gdf.geometry.iloc[0].equals(shapely.box(0, 0, 16, 24))
    assert gdf.geometry.iloc[1].equals(shapely.box(16, 0, 32, 24))
    assert gdf["area_px"].tolist() == [16 * 24, 16 * 24]


def test_regions_names_the_library_to_pick():
    a = _adata(libraries=("L1", "L2"))
    with pytest.raises(InputError, match="several libraries"):
        td.get.regions(a)
    with pytest.raises(InputError, match="no regions for library 'L3'"):
        td.get.regions(a, library_id="L3")
    assert len(td.get.regions(a, library_id="L2")) == 2
    with pytest.raises(InputError, match="segment_regions"):
        td.get.regions(a, key="elsewhere")


def test_region_de_df_orders_columns_and_keeps_params():
    a = ad.AnnData(X=np.zeros((1, 1)))
    a.uns["de"] = {"params": {"method": "wilcoxon", "exploratory": True},
                   "results": {"padj": np.array([0.5]), "gene": np.array(["g"]), "extra": np.array([1]),
                               "region": np.array(["r"])}}
    df = td.get.region_de_df(a, key="de")
    assert list(df.columns) == ["region", "gene", "padj", "extra"]
    assert df.attrs["method"] == "wilcoxon" and df.attrs["exploratory"] is True
    assert tuple(td.get.REGION_DE_COLUMNS[:4]) == ("region", "group", "reference", "gene")
    with pytest.raises(InputError, match="region_de"):
        td.get.region_de_df(a)


def test_the_old_reader_names_still_work():
    from topdown.tl._region_de import COLUMNS, results_table

    assert results_table is td.get.region_de_df and COLUMNS == td.get.REGION_DE_COLUMNS


def test_map_scale_converts_between_coordinate_systems():
    s = MapScale(image=2.0, fullres=4.0, um=10.0)
    xy = np.array([[3.0, 5.0], [0.0, 7.5]])
    for system, per in (("image", 2.0), ("fullres", 4.0), ("um", 10.0), ("map", 1.0)):
        np.testing.assert_array_equal(s.to_map(xy, system), xy / per)
        np.testing.assert_array_equal(s.from_map(s.to_map(xy, system), system), xy)
    assert s.to_map(8.0) == 2.0  # lengths too (a spot radius); full-res by default
    with pytest.raises(ValueError, match="unknown coordinate system"):
        s.per_map("hires")
    with pytest.raises(ValueError, match="unknown"):
        MapScale(image=2.0).per_map("fullres")
    placed = MapScale(image=2.0, um=10.0).with_image_scalef(0.5)
    assert placed == MapScale(image=2.0, fullres=4.0, um=10.0)


def test_pixel_scales_round_trip_and_compose():
    """fullres -> image -> map -> fullres is the identity, and µm agree whichever way they go."""
    fullres = FullresScale(image=0.1736, um=0.2737)  # a Visium hires image: tissue_hires_scalef, µm/px
    img_um = fullres.size("um", of="image")
    image = ImageScale(map=img_um / 16.0, um=img_um)  # inference with a 16 µm/px model
    rmap = RegionMap(np.zeros((4, 4), np.uint8), ("a",), downsample=image.size("image", of="map"),
                     pixel_size_um=16.0)
    mapped = rmap.scale.on_fullres(fullres)
    xy = np.array([[0.0, 0.0], [1234.5, 987.25], [31.0, 4096.0]])
    on_image = fullres.convert(xy, "fullres", "image")
    on_map = image.convert(on_image, "image", "map")
    np.testing.assert_allclose(mapped.convert(on_map, "map", "fullres"), xy, rtol=1e-12)
    np.testing.assert_allclose(mapped.convert(xy, "fullres", "map"), on_map, rtol=1e-12)
    um = fullres.convert(xy, "fullres", "um")
    for system, scale, at in (("image", image, on_image), ("map", mapped, on_map), ("fullres", mapped, xy)):
        np.testing.assert_allclose(scale.convert(at, system, "um"), um, rtol=1e-12)
    for scale in (fullres, image, mapped):  # every pair of known systems round-trips
        known = [s for s in ("fullres", "image", "map", "um") if s == scale.OWN or getattr(scale, s, None)]
        for a in known:
            for b in known:
                np.testing.assert_allclose(scale.convert(scale.convert(xy, a, b), b, a), xy, rtol=1e-12)
                assert scale.size(a, of=b) * scale.size(b, of=a) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="'fullres' coordinates is unknown"):
        image.convert(xy, "image", "fullres")
    with pytest.raises(ValueError, match="unknown coordinate system"):
        fullres.convert(xy, "fullres", "hires")


def test_pixel_scales_keep_the_old_numbers_to_the_last_bit():
    s, u, f, step = 0.1736, 0.2737, 0.91 / 16.0, 7
    xy = np.array([[1234.5, 987.25], [0.1, 3.3]])
    fullres, image = FullresScale(image=s, um=u), ImageScale(map=f, um=0.91)
    assert np.array_equal(fullres.convert(xy, "fullres", "image"), xy * s)  # segment_regions' points * scalef
    assert np.array_equal(fullres.convert(np.array([600.0, 576.0]), "image", "fullres"), np.array([600, 576]) / s)
    assert fullres.size("um", of="image") == u / s  # µm per image pixel: full_um / scalef
    assert image.size("image", of="map") == 1.0 / f  # RegionMap.downsample
    assert image.convert(step, "image", "map") == step * f  # tissue_step
    assert image.convert(step, "image", "um") == step * 0.91  # µm per thumbnail pixel
    assert MapScale(image=1 / f).on_fullres(fullres) == MapScale(image=1 / f).with_image_scalef(s)
    assert MapScale(image=1 / f).on_fullres(fullres).fullres == (1 / f) / s


def test_spatial_layout_gives_the_fullres_scale():
    layout = td.get.SpatialLayout(_adata(scalef=0.5))
    assert layout.fullres_scale("L1") == FullresScale(image=0.5, um=55.0 / 2.0)
    assert layout.fullres_scale("L1").size("um", of="image") == 55.0


def test_regionmap_and_stored_regions_carry_the_scale():
    rmap = RegionMap(np.ones((3, 3), np.uint8), ("a",), downsample=2.0, pixel_size_um=10.0)
    assert rmap.scale == MapScale(image=2.0, um=10.0)
    np.testing.assert_array_equal(rmap.lookup(np.array([[5.9, 0.0], [6.0, 0.0]])), [1, 0])
    stored = td.get.load_store(_adata(scalef=0.5, downsample=2.0), "regions")["L1"]
    assert stored.scale.fullres == stored.scale_to_fullres == 4.0
    assert stored.scale.um == stored.pixel_size_um == 10.0
    back = td.get.StoredRegions.from_uns(stored.to_uns())  # the h5ad schema keeps both numbers
    assert (back.scale.fullres, back.scale.um) == (4.0, 10.0)


def test_spatial_layout_is_read_once_and_says_what_is_wrong():
    a = _adata(libraries=("L1", "L2"))
    a.uns["spatial"]["L1"]["images"]["lowres"] = np.zeros((3, 4, 3), np.uint8)
    a.uns["spatial"]["L1"]["scalefactors"]["tissue_lowres_scalef"] = np.float32(0.125)
    layout = td.get.SpatialLayout(a)
    assert layout.xy is layout.xy and layout.xy.dtype == np.float64  # validated once, kept
    assert layout.resolve(None) == ["L1", "L2"] and layout.resolve("L2") == ["L2"]
    key, img, scalef = layout.image("L1")
    assert (key, img.shape, scalef) == ("hires", (12, 16, 3), 0.5)  # hires before lowres
    assert layout.image("L1", "lowres")[2] == 0.125
    assert type(layout.scalefactors("L1")["tissue_lowres_scalef"]) is float
    assert layout.technology("L1") == "visium" and layout.fullres_um_per_px("L1") == 55.0 / 2.0
    with pytest.raises(InputError, match="library_id 'L3' is not in"):
        layout.resolve("L3")
    with pytest.raises(InputError, match="no lowres image"):
        layout.image("L2", "lowres")
    bare = ad.AnnData(X=np.zeros((1, 1)))
    bare.uns["spatial"] = "not a dict"
    empty = td.get.SpatialLayout(bare)
    assert empty.libraries == {}
    with pytest.raises(InputError, match="uns\\['spatial'\\] is missing or empty"):
        empty.require()
    with pytest.raises(InputError, match="obsm\\['spatial'\\] is missing"):
        empty.xy  # noqa: B018
    bad = ad.AnnData(X=np.zeros((1, 1)))
    bad.obsm["spatial"] = np.array([[np.nan, 1.0]])
    with pytest.raises(InputError, match="NaN"):
        td.get.spatial_coords(bad)
