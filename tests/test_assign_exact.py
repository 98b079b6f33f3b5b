"""Exactness of region assignment: known regions + known spots -> known fractions and labels."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import shapely

import topdown as td
from topdown.errors import InputError
from topdown.seg.regionmap import RegionMap
from topdown.tl._overlap import disk_rect_area

SCALEF = 0.5  # image pixels per full-res pixel
DOWN = 2.0  # image pixels per map pixel  -> 4 full-res px per map pixel
SPOT_D = 12.0  # full-res px


def synthetic_labels() -> np.ndarray:
    """40x40 map: A = cols 5..19, B = cols 20..34 (rows 5..34), C = a 10x10 block inside B."""
    lab = np.zeros((40, 40), dtype=np.uint8)
    lab[5:35, 5:20] = 1
    lab[5:35, 20:35] = 2
    lab[10:20, 25:35] = 3
    return lab


def truth_polygons(scale: float = 4.0) -> dict[str, shapely.Geometry]:
    """The same regions as exact polygons in full-res pixels."""
    a = shapely.box(5, 5, 20, 35)
    c = shapely.box(25, 10, 35, 20)
    b = shapely.box(20, 5, 35, 35).difference(c)
    return {k: shapely.affinity.scale(g, scale, scale, origin=(0, 0)) for k, g in
            {"A": a, "B": b, "C": c}.items()}


def make_adata(xy_fullres, *, in_tissue=None, library_id="lib1", spot_d=SPOT_D, probs=None,
               technology="visium", labels=None) -> ad.AnnData:
    """AnnData with spots at ``xy_fullres`` and the synthetic regions stored as uns['regions']."""
    xy = np.asarray(xy_fullres, dtype=float)
    n = len(xy)
    a = ad.AnnData(X=np.ones((n, 3), dtype=np.float32),
                   obs=pd.DataFrame(index=[f"s{i}" for i in range(n)]),
                   var=pd.DataFrame(index=["g1", "g2", "g3"]))
    a.obsm["spatial"] = xy
    if in_tissue is not None:
        a.obs["in_tissue"] = np.asarray(in_tissue, dtype=int)
    lab = synthetic_labels() if labels is None else labels
    img = np.full((80, 80, 3), 240, np.uint8)
    a.uns["spatial"] = {library_id: {"images": {"hires": img},
                                     "scalefactors": {"tissue_hires_scalef": SCALEF,
                                                      "spot_diameter_fullres": spot_d},
                                     "metadata": {"technology": technology}}}
    rmap = RegionMap(lab, ("A", "B", "C"), downsample=DOWN, probabilities=probs,
                     image_shape=(80, 80), meta={"model": "handmade"})
    td.tl.segment_regions(a, rmap, library_id=library_id)
    return a


def expected_fractions(xy, d, polys) -> np.ndarray:
    disks = shapely.buffer(shapely.points(np.asarray(xy, float)), d / 2, quad_segs=2048)
    area = shapely.area(disks)
    cols = [shapely.area(shapely.intersection(disks, polys[k])) / area for k in ("A", "B", "C")]
    cols = np.stack(cols, axis=1)
    return np.column_stack([cols, 1 - cols.sum(axis=1)])


def test_disk_rect_area_matches_shapely():
    rng = np.random.default_rng(0)
    n = 300
    cx, cy = rng.uniform(-2, 2, (2, n))
    r = rng.uniform(0.05, 2.5, n)
    x0, y0 = rng.uniform(-3, 3, (2, n))
    x1, y1 = x0 + rng.uniform(0, 3, n), y0 + rng.uniform(0, 3, n)
    got = disk_rect_area(x0 - cx, x1 - cx, y0 - cy, y1 - cy, r)
    disks = shapely.buffer(shapely.points(np.c_[cx, cy]), r, quad_segs=1024)
    exp = shapely.area(shapely.intersection(disks, shapely.box(x0, y0, x1, y1)))
    exp = exp / shapely.area(disks) * np.pi * r**2
    np.testing.assert_allclose(got, exp, atol=1e-6 * np.maximum(1, r**2).max())


def test_disk_fractions_exact_and_labels():
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 160, (400, 2))
    a = make_adata(xy)
    td.tl.assign_regions(a, check_alignment="ignore")
    fr = a.obsm["region_fractions"]
    assert list(fr.columns) == ["A", "B", "C", "outside"]
    exp = expected_fractions(xy, SPOT_D, truth_polygons())
    np.testing.assert_allclose(fr.to_numpy(), exp, atol=1e-3)
    np.testing.assert_allclose(fr.to_numpy().sum(axis=1), 1.0, atol=1e-6)
    # label = largest region share when tissue share >= 0.5, else outside
    tissue = 1 - exp[:, 3]
    want = np.where(tissue >= 0.5, np.array(["A", "B", "C"])[exp[:, :3].argmax(1)], "outside")
    clear = np.abs(tissue - 0.5) > 1e-3  # skip numerically ambiguous ties
    assert (a.obs["region"].to_numpy()[clear] == want[clear]).all()
    assert list(a.obs["region"].cat.categories) == ["A", "B", "C", "outside"]
    assert len(a.uns["region_colors"]) == 4


def test_spots_on_boundaries():
    # full-res: A|B boundary at x = 80; C's left edge at x = 100, C spans y 40..80
    xy = [[80, 100],  # on the A|B boundary: half / half
          [100, 80],  # on C's bottom-left corner: C 1/4, B 3/4
          [20, 100],  # on A's left edge (tissue edge): A 1/2, outside 1/2
          [20, 20],   # on the outer corner of A: A 1/4
          [60, 100]]  # well inside A
    a = make_adata(xy)
    td.tl.assign_regions(a, check_alignment="ignore")
    fr = a.obsm["region_fractions"].to_numpy()
    np.testing.assert_allclose(fr[0], [0.5, 0.5, 0, 0], atol=1e-9)
    np.testing.assert_allclose(fr[1], [0, 0.75, 0.25, 0], atol=1e-9)
    np.testing.assert_allclose(fr[2], [0.5, 0, 0, 0.5], atol=1e-9)
    np.testing.assert_allclose(fr[3], [0.25, 0, 0, 0.75], atol=1e-9)
    np.testing.assert_allclose(fr[4], [1, 0, 0, 0], atol=1e-9)
    # ties go to the earlier class; exactly half tissue counts as tissue
    assert a.obs["region"].tolist() == ["A", "B", "A", "outside", "A"]


def test_confidence_is_fraction_times_mean_probability():
    lab = synthetic_labels()
    probs = np.zeros((4, *lab.shape), np.float32)
    pmax = np.array([1.0, 0.9, 0.6, 0.8])[lab]  # per-label max probability
    probs[0] = pmax  # channel choice does not matter: max over channels is stored
    xy = [[80, 100], [60, 100], [120, 60]]
    a = make_adata(xy, probs=probs)
    td.tl.assign_regions(a, check_alignment="ignore")
    conf = a.obs["region_confidence"].to_numpy()
    # float16 storage of probabilities: 1e-3 tolerance
    np.testing.assert_allclose(conf, [0.5 * 0.9, 1.0 * 0.9, 1.0 * 0.8], atol=1e-3)


def test_vector_regions_exact():
    polys = {"tri": shapely.Polygon([(10, 10), (150, 20), (60, 140)]),
             "disk": shapely.Point(120, 120).buffer(30, quad_segs=256)}
    polys["disk"] = polys["disk"].difference(polys["tri"])
    import geopandas as gpd

    gdf = gpd.GeoDataFrame({"region": list(polys)}, geometry=list(polys.values()))
    rng = np.random.default_rng(2)
    xy = rng.uniform(0, 160, (300, 2))
    a = make_adata(xy)
    td.tl.assign_regions(a, regions=gdf, check_alignment="ignore", key_added="vec")
    disks = shapely.buffer(shapely.points(xy), SPOT_D / 2, quad_segs=2048)
    exp = np.stack([shapely.area(shapely.intersection(disks, polys[k])) / shapely.area(disks)
                    for k in polys], 1)
    got = a.obsm["vec_fractions"][list(polys)].to_numpy()
    np.testing.assert_allclose(got, exp, atol=1e-3)
    assert "vec_colors" in a.uns and a.obs["vec"].dtype == "category"


def test_centroid_mode_and_cells():
    # full-res px 4 per map px: x in [20, 80) is A, x = 80 exactly is B (pixel floor rule)
    xy = [[20.0, 100], [79.999, 100], [80.0, 100], [110, 50], [0.0, 0.0], [-5, 300]]
    a = make_adata(xy, technology="merscope")
    td.tl.assign_regions(a, check_alignment="ignore")
    assert a.uns["region_assignment"]["mode"]["lib1"] == "centroid"
    assert a.obs["region"].tolist() == ["A", "A", "B", "C", "outside", "outside"]
    assert "region_fractions" not in a.obsm  # one-hot for centroids: not stored
    np.testing.assert_allclose(a.obs["region_confidence"], 1.0)  # no probabilities given


def test_polygon_mode_with_cell_boundaries():
    from topdown.io._generic import boundaries_to_uns

    cells = [shapely.box(70, 90, 90, 110), shapely.box(30, 30, 50, 50), shapely.box(0, 0, 10, 10)]
    a = make_adata([[80, 100], [40, 40], [5, 5]], technology="merscope")
    a.uns["cell_boundaries"] = boundaries_to_uns(cells, a.obs_names, np.eye(3))
    td.tl.assign_regions(a, check_alignment="ignore")
    assert a.uns["region_assignment"]["mode"]["lib1"] == "polygon"
    fr = a.obsm["region_fractions"].to_numpy()
    np.testing.assert_allclose(fr[0], [0.5, 0.5, 0, 0], atol=1e-9)
    # box 30..50 vs A starting at 20: fully A
    np.testing.assert_allclose(fr[1], [1, 0, 0, 0], atol=1e-9)
    np.testing.assert_allclose(fr[2], [0, 0, 0, 1], atol=1e-9)


def test_cells_without_outlines_are_named():
    """Outlines for some cells only: auto mode warns and uses centroids; polygon mode refuses."""
    from topdown.io._generic import boundaries_to_uns

    a = make_adata([[80, 100], [40, 40], [5, 5]], technology="merscope")
    a.uns["cell_boundaries"] = boundaries_to_uns([shapely.box(70, 90, 90, 110)], a.obs_names[:1], np.eye(3))
    missing = f"2 of 3 cells have no outline .*\\({a.obs_names[1]}, {a.obs_names[2]}\\)"
    with pytest.warns(UserWarning, match=missing + ", so all its cells are assigned in mode 'centroid'"):
        td.tl.assign_regions(a, check_alignment="ignore")
    assert a.uns["region_assignment"]["mode"]["lib1"] == "centroid"
    assert a.obs["region"].tolist() == ["B", "A", "outside"]
    with pytest.raises(InputError, match=missing + "; add their outlines, or pass mode='centroid'"):
        td.tl.assign_regions(a, mode="polygon", check_alignment="ignore")


def test_several_libraries_with_library_key():
    a1 = make_adata([[60, 100], [0, 0]], library_id="L1")
    a2 = make_adata([[120, 60], [140, 140]], library_id="L2")
    # the second library's regions are shifted: segment it with a different map
    lab2 = np.zeros((40, 40), np.uint8)
    lab2[30:40, 30:40] = 2
    td.tl.segment_regions(a2, RegionMap(lab2, ("A", "X", "Y"), downsample=DOWN, image_shape=(80, 80)),
                          library_id="L2")
    a = ad.concat({"L1": a1, "L2": a2}, label="library_id", uns_merge="unique", index_unique="-")
    a.uns["regions"] = {"libraries": {**a1.uns["regions"]["libraries"], **a2.uns["regions"]["libraries"]}}
    td.tl.assign_regions(a, library_key="library_id", check_alignment="ignore")
    assert a.obs["region"].tolist() == ["A", "outside", "outside", "X"]
    # the union of both libraries' classes in first-seen order, less those no spot holds
    assert list(a.obs["region"].cat.categories) == ["A", "X", "outside"]
    assert list(a.obsm["region_fractions"].columns) == ["A", "B", "C", "X", "Y", "outside"]


def strip_labels() -> np.ndarray:
    """A wide, short tissue strip (rows 4..11, cols 2..37): not symmetric under x <-> y."""
    lab = np.zeros((40, 40), np.uint8)
    lab[4:12, 2:20] = 1
    lab[4:12, 20:38] = 2
    return lab


def test_swapped_axes_are_caught_and_adata_untouched():
    rng = np.random.default_rng(3)
    xy = np.c_[rng.uniform(10, 150, 200), rng.uniform(18, 46, 200)]  # on the strip
    a = make_adata(xy[:, ::-1].copy(), labels=strip_labels())
    before = (set(a.obs.columns), set(a.obsm.keys()), set(a.uns.keys()))
    with pytest.raises(InputError, match="swapped"):
        td.tl.assign_regions(a)
    assert (set(a.obs.columns), set(a.obsm.keys()), set(a.uns.keys())) == before
    with pytest.warns(UserWarning, match="swapped"):
        td.tl.assign_regions(a, check_alignment="warn")
    assert "region" in a.obs


def test_wrong_scalefactor_is_caught():
    rng = np.random.default_rng(4)
    xy = np.c_[rng.uniform(10, 150, 200), rng.uniform(18, 46, 200)]
    a = make_adata(xy * SCALEF, labels=strip_labels())  # coordinates given in hires-image pixels by mistake
    with pytest.raises(InputError, match="hires-image pixels"):
        td.tl.assign_regions(a)


def test_bad_inputs_raise_clear_errors():
    a = make_adata([[60, 100]])
    b = a.copy()
    del b.obsm["spatial"]
    with pytest.raises(InputError, match="obsm\\['spatial'\\]"):
        td.tl.assign_regions(b)
    c = a.copy()
    del c.uns["regions"]
    with pytest.raises(InputError, match="segment_regions"):
        td.tl.assign_regions(c)
    d = a.copy()
    d.obs["lib"] = "other_library"
    with pytest.raises(InputError, match="same library"):
        td.tl.assign_regions(d, library_key="lib")
    e = a.copy()
    del e.uns["spatial"]["lib1"]["scalefactors"]["spot_diameter_fullres"]
    with pytest.raises(InputError, match="spot_diameter_fullres"):
        td.tl.assign_regions(e, mode="disk")
    assert "region" not in e.obs and "region_fractions" not in e.obsm


def test_copy_returns_new_object():
    a = make_adata([[60, 100]])
    out = td.tl.assign_regions(a, copy=True, check_alignment="ignore")
    assert "region" in out.obs and "region" not in a.obs


def test_wrong_library_is_named():
    rng = np.random.default_rng(5)
    xy = np.c_[rng.uniform(10, 150, 200), rng.uniform(18, 46, 200)]  # on the L1 strip
    a = make_adata(xy, library_id="L1", labels=strip_labels())
    lab2 = np.zeros((40, 40), np.uint8)
    lab2[25:38, 5:35] = 1  # L2's tissue is elsewhere
    a.uns["spatial"]["L2"] = a.uns["spatial"]["L1"]
    td.tl.segment_regions(a, RegionMap(lab2, ("A",), downsample=DOWN, image_shape=(80, 80)),
                          library_id="L2")
    assert set(a.uns["regions"]["libraries"]) == {"L1", "L2"}
    with pytest.raises(InputError, match="library 'L1'"):
        td.tl.assign_regions(a, library_id="L2")
    with pytest.raises(InputError, match="several libraries"):
        td.tl.assign_regions(a)
    td.tl.assign_regions(a, library_id="L1")
    assert (a.obs["region"] != "outside").mean() > 0.9


def test_segment_regions_all_libraries(monkeypatch):
    from topdown.tl import _segment_regions

    calls = []

    def fake(image, model, pixel_size_um=None, **kw):
        calls.append(pixel_size_um)
        return RegionMap(synthetic_labels(), ("A", "B", "C"), downsample=DOWN, image_shape=image.shape[:2])

    monkeypatch.setattr(_segment_regions, "_segment_fn", lambda: fake)
    a = make_adata([[60, 100]])
    a.uns["spatial"]["lib2"] = dict(a.uns["spatial"]["lib1"])
    a.uns["spatial"]["lib2"]["scalefactors"] = {**a.uns["spatial"]["lib1"]["scalefactors"],
                                                "microns_per_pixel": 2.0}
    td.tl.segment_regions(a, "m", key_added="r2")
    assert set(a.uns["r2"]["libraries"]) == {"lib1", "lib2"}
    # lib1: 55 um / 12 px spot / scalef 0.5; lib2: 2 um/px / 0.5
    np.testing.assert_allclose(calls, [55 / SPOT_D / SCALEF, 2.0 / SCALEF])


def test_segment_regions_hashes_a_checkpoint_path_the_segmenter_left_unhashed(monkeypatch, tmp_path):
    """Provenance names the weights by ``weights_sha256``, the key checkpoints and infer use."""
    import hashlib

    from topdown.get import load_store
    from topdown.tl import _segment_regions

    ckpt = tmp_path / "m.safetensors"
    ckpt.write_bytes(b"weights")

    def fake(image, model, pixel_size_um=None, **kw):
        return RegionMap(synthetic_labels(), ("A", "B", "C"), downsample=DOWN, image_shape=image.shape[:2])

    monkeypatch.setattr(_segment_regions, "_segment_fn", lambda: fake)
    a = make_adata([[60, 100]])
    td.tl.segment_regions(a, str(ckpt), key_added="r")
    prov = load_store(a, "r")["lib1"].provenance
    assert prov["weights_sha256"] == hashlib.sha256(b"weights").hexdigest()
    assert "weights_hash" not in prov


def _with_speck() -> np.ndarray:
    lab = synthetic_labels()
    lab[36:39, 36:39] = 1  # a detached speck (a fiducial mark, debris) outside the section
    return lab


def test_segment_regions_drops_tissue_without_spots():
    from topdown.get import load_store

    on_a = [60, 100]  # full-res; map (row 25, col 15): region A
    on_speck = [150, 150]  # map (37, 37): the speck
    a = make_adata([on_a, on_speck], in_tissue=[1, 0], labels=_with_speck())
    stored = load_store(a, "regions")["lib1"]
    assert stored.labels[36:39, 36:39].max() == 0  # only an out-of-tissue spot on it: dropped
    assert np.array_equal(stored.labels, synthetic_labels())
    assert stored.provenance["dropped_tissue_pieces"] == 1
    kept = load_store(make_adata([on_a, on_speck], in_tissue=[1, 1], labels=_with_speck()), "regions")["lib1"]
    assert np.array_equal(kept.labels, _with_speck())
    # no spot on any tissue (e.g. coordinates in another frame): left for assign's alignment check
    off = load_store(make_adata([[2, 2]], labels=_with_speck()), "regions")["lib1"]
    assert np.array_equal(off.labels, _with_speck())


def test_segment_regions_keeps_everything_when_asked_or_unsure():
    from topdown.get import load_store

    a = make_adata([[60, 100]], labels=_with_speck())
    rmap = RegionMap(_with_speck(), ("A", "B", "C"), downsample=DOWN, image_shape=(80, 80))
    td.tl.segment_regions(a, rmap, library_id="lib1", key_added="all", drop_empty_tissue=False)
    assert np.array_equal(load_store(a, "all")["lib1"].labels, _with_speck())
    a.uns["spatial"]["lib2"] = dict(a.uns["spatial"]["lib1"])  # two libraries, no library_key
    td.tl.segment_regions(a, rmap, library_id="lib1", key_added="two")
    assert np.array_equal(load_store(a, "two")["lib1"].labels, _with_speck())
    a.obs["section"] = "lib1"
    td.tl.segment_regions(a, rmap, library_id="lib1", key_added="keyed", library_key="section")
    assert load_store(a, "keyed")["lib1"].labels[36:39, 36:39].max() == 0
    with pytest.raises(InputError, match="library_key 'nope'"):
        td.tl.segment_regions(a, rmap, library_id="lib1", library_key="nope")


def test_keep_tissue_at_probabilities_and_identity():
    lab = _with_speck()
    probs = np.full((4, *lab.shape), 0.25, np.float16)
    rmap = RegionMap(lab, ("A", "B", "C"), probabilities=probs)
    out = rmap.keep_tissue_at(np.array([[10.0, 10.0]]))
    assert out is not rmap and rmap.labels[37, 37] == 1  # the input map is untouched
    assert out.probabilities[0, 37, 37] == 1 and out.probabilities[1:, 37, 37].sum() == 0
    assert out.probabilities[0, 10, 10] == np.float16(0.25)
    assert rmap.keep_tissue_at(np.array([[10.0, 10.0], [37.5, 37.5]])) is rmap  # every piece has a point


def test_empty_regions_are_not_categories_and_colours_stay_aligned():
    """A region no spot falls in is no category (scanpy's group-wise tools refuse empty groups),
    and uns['region_colors'] keeps one colour per remaining category, in order."""
    import scanpy as sc

    rng = np.random.default_rng(0)
    a = make_adata([[60, 100], [62, 100], [64, 102], [66, 104], [140, 140], [142, 140], [144, 142],
                    [146, 144]])
    a.X = rng.poisson(5, a.shape).astype(np.float32)
    td.tl.assign_regions(a, check_alignment="ignore")
    cats = list(a.obs["region"].cat.categories)
    assert set(cats) == set(a.obs["region"].astype(str)) and len(cats) < 4   # some class holds no spot
    colors = RegionMap(np.zeros((2, 2), np.uint8), ("A", "B", "C")).colors   # what the map gives each name
    assert list(a.uns["region_colors"]) == [colors[c] for c in cats]
    sc.tl.rank_genes_groups(a, "region", method="t-test")       # fails on an empty category
    assert set(a.uns["rank_genes_groups"]["names"].dtype.names) == set(cats)
