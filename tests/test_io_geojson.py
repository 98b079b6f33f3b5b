"""QuPath and napari round trips: regions out as QuPath GeoJSON and back, hand-drawn
annotations through assign_regions and region_de, napari shapes."""

from __future__ import annotations

import json

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import shapely

import topdown as td
from topdown.errors import InputError
from topdown.seg.regionmap import RegionMap

SCALEF = 0.5  # hires pixels per full-res pixel: the 80 x 80 image spans 160 x 160 full-res px
SPOT_D = 12.0


def spots_adata(xy, library_id: str = "lib1", n_genes: int = 3, X=None) -> ad.AnnData:
    xy = np.asarray(xy, dtype=float)
    X = np.ones((len(xy), n_genes), np.float32) if X is None else X
    a = ad.AnnData(X=X, obs=pd.DataFrame(index=[f"s{i}" for i in range(len(xy))]),
                   var=pd.DataFrame(index=[f"g{j}" for j in range(X.shape[1])]))
    a.obsm["spatial"] = xy
    a.uns["spatial"] = {library_id: {"images": {"hires": np.full((80, 80, 3), 240, np.uint8)},
                                     "scalefactors": {"tissue_hires_scalef": SCALEF,
                                                      "spot_diameter_fullres": SPOT_D},
                                     "metadata": {"technology": "visium"}}}
    return a


def segmented(xy, c_cols: tuple[int, int] = (25, 35)) -> ad.AnnData:
    """Spots plus model-like regions: A | B with C in B (4 full-res px per map pixel)."""
    a = spots_adata(xy)
    lab = np.zeros((40, 40), np.uint8)
    lab[5:35, 5:20] = 1
    lab[5:35, 20:35] = 2
    lab[10:20, c_cols[0]:c_cols[1]] = 3
    rmap = RegionMap(lab, ("A", "B", "C"), downsample=2.0, image_shape=(80, 80),
                     colors={"A": "#1f77b4", "B": "#ff7f0e", "C": "#2ca02c", "outside": "#d9d9d9"})
    td.tl.segment_regions(a, rmap, library_id="lib1")
    return a


def grid(step: float = 8.0, lo: float = 4.0, hi: float = 156.0) -> np.ndarray:
    v = np.arange(lo, hi, step)
    return np.array([(x, y) for y in v for x in v])


def feature(coords, name=None, color=None, object_type="annotation", kind="Polygon", **cls_extra):
    props = {"objectType": object_type, "isLocked": False}
    if name is not None:
        props["classification"] = {"name": name, **({"color": color} if color is not None else {}), **cls_extra}
    return {"type": "Feature", "id": "0b7e1c52-3f0a-4a0c-9a53-0c7ad1d6c0de",
            "geometry": {"type": kind, "coordinates": coords}, "properties": props}


def box(x0, y0, x1, y1):
    return [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]


def write(tmp_path, doc, name="drawn.geojson"):
    p = tmp_path / name
    p.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return p


# -- QuPath-format round trip ---------------------------------------------------------------
def test_qupath_round_trip(tmp_path):
    a = segmented(grid())
    p = tmp_path / "regions.geojson"
    td.io.write_geojson(a, p)
    doc = json.loads(p.read_text())
    stored = td.get.regions(a)
    hexes = dict(zip(stored["region"], stored["color"], strict=True))
    for f in doc["features"]:
        props = f["properties"]
        assert props["objectType"] == "annotation" and props["isLocked"] is False
        cls = props["classification"]
        assert cls["name"] == props["region"] == props["name"]
        rgb = [int(hexes[cls["name"]][k:k + 2], 16) for k in (1, 3, 5)]
        assert cls["color"] == props["color"] == rgb and props["color_hex"] == hexes[cls["name"]]
        assert cls["colorRGB"] == (0xFF << 24 | rgb[0] << 16 | rgb[1] << 8 | rgb[2]) - (1 << 32)
        assert all(isinstance(v, int) and 0 <= v <= 255 for v in cls["color"])
    back = td.io.read_geojson(p)
    assert list(back["region"]) == ["A", "B", "C"]
    assert set(back["object_type"]) == {"annotation"}
    assert dict(zip(back["region"], back["color"], strict=True)) == hexes
    want = {"A": 15 * 30 * 16.0, "B": (15 * 30 - 100) * 16.0, "C": 100 * 16.0}
    for r, g in zip(back["region"], back.geometry, strict=True):
        exp = stored.geometry[stored["region"] == r].iloc[0]
        assert g.area == pytest.approx(want[r], rel=1e-9)
        assert shapely.symmetric_difference(g, exp).area < 1e-6 * want[r]
    # into a fresh AnnData: the drawn regions label the spots as the model's did
    fresh = spots_adata(grid())
    td.io.read_geojson_regions(fresh, p)
    st = fresh.uns["regions"]["libraries"]["lib1"]
    assert list(st["classes"]) == ["A", "B", "C"] and list(st["colors"]) == [hexes[c] for c in "ABC"]
    assert st["provenance"]["source"] == "geojson" and "smaller" in st["provenance"]["overlap_rule"]
    td.tl.assign_regions(a)
    td.tl.assign_regions(fresh)
    assert (fresh.obs["region"].astype(str) == a.obs["region"].astype(str)).all()
    np.testing.assert_allclose(fresh.obsm["region_fractions"].to_numpy(),
                               a.obsm["region_fractions"].to_numpy(), atol=2e-3)
    # and out again: the second export holds the same classes, colours and polygons
    p2 = tmp_path / "again.geojson"
    td.io.write_geojson(fresh, p2)
    again = td.io.read_geojson(p2)
    assert list(again["region"]) == ["A", "B", "C"] and list(again["color"]) == list(back["color"])
    np.testing.assert_allclose(again.area, back.area, rtol=1e-9)
    td.pl.regions(fresh, save=tmp_path / "overlay.png", show=False)  # the overlay draws them
    assert (tmp_path / "overlay.png").stat().st_size > 0
    # the h5ad keeps the drawn regions
    fresh.write_h5ad(tmp_path / "a.h5ad")
    assert list(td.get.regions(ad.read_h5ad(tmp_path / "a.h5ad"))["region"]) == ["A", "B", "C"]


def test_hand_written_qupath_file(tmp_path):
    red = -65536  # 0xFFFF0000 as QuPath < 0.3 packs it (signed ARGB)
    doc = {"type": "FeatureCollection", "features": [
        feature(box(10, 10, 80, 150), "cortex", colorRGB=red),
        feature([box(90, 10, 110, 60), box(120, 10, 150, 60)], "striatum", [0, 128, 255], kind="MultiPolygon"),
        feature(box(20, 20, 40, 40), "lesion", [10, 20, 30]),     # inside cortex: smaller lies on top
        feature(box(90, 100, 150, 150)),                          # unclassified annotation
        feature(box(30, 30, 34, 34), "Tumor", [200, 0, 0], object_type="detection"),
    ]}
    p = write(tmp_path, doc)
    with pytest.raises(InputError, match=r"feature 3 .*no classification.*default_class=") as err:
        td.io.read_geojson(p)
    assert "\n" not in str(err.value)
    gdf = td.io.read_geojson(p, default_class="tissue")
    assert list(gdf["region"]) == ["cortex", "striatum", "lesion", "tissue", "Tumor"]
    assert list(gdf["object_type"]) == ["annotation"] * 4 + ["detection"]
    assert list(gdf["color"][:3]) == ["#ff0000", "#0080ff", "#0a141e"]
    assert gdf.geometry.iloc[1].geom_type == "MultiPolygon" and gdf.geometry.iloc[1].area == 20 * 50 + 30 * 50
    flat = td.io.read_geojson(p, object_types=["annotation"], default_class="tissue", flatten=True)
    assert list(flat["region"]) == ["cortex", "striatum", "lesion", "tissue"]
    assert list(flat["label"]) == [1, 2, 3, 4]
    area = dict(zip(flat["region"], flat.area, strict=True))
    assert area["cortex"] == 70 * 140 - 20 * 20 and area["lesion"] == 20 * 20
    # a bare list of features, QuPath 0.2's object_type key, only detections kept
    v02 = [dict(f, properties={"object_type": f["properties"]["objectType"],
                               "classification": f["properties"].get("classification", {"name": "x"})})
           for f in doc["features"]]
    det = td.io.read_geojson(write(tmp_path, v02, "v02.json"), object_types=["detection"])
    assert list(det["region"]) == ["Tumor"] and list(det["color"]) == ["#c80000"]
    # into an AnnData: detections skipped, spots get the class of the polygon they lie in
    xy = np.array([[50, 100], [30, 30], [100, 30], [140, 40], [120, 120], [100, 80]], float)
    a = spots_adata(xy)
    td.io.read_geojson_regions(a, p, default_class="tissue")
    td.tl.assign_regions(a, mode="centroid", check_alignment="ignore")
    assert a.obs["region"].astype(str).tolist() == ["cortex", "lesion", "striatum", "striatum", "tissue",
                                                    "outside"]
    assert list(a.uns["region_colors"][:3]) == ["#ff0000", "#0080ff", "#0a141e"]


def test_hand_drawn_regions_flow_into_region_de(tmp_path):
    """Four sections, each annotated by hand (left = A, right = B); gene g0 doubles in A of the
    disease sections only."""
    p = write(tmp_path, {"type": "FeatureCollection", "features": [
        feature(box(0, 0, 80, 160), "A", [255, 0, 0]), feature(box(80, 0, 160, 160), "B", [0, 0, 255])]})
    rng = np.random.default_rng(0)
    xy = grid(step=10.0, lo=5.0, hi=155.0)  # 15 x 15 spots, none on the A|B edge
    parts = []
    for s, cond in enumerate(["healthy", "healthy", "disease", "disease"]):
        mu = np.full((len(xy), 40), 6.0) * rng.lognormal(0.0, 0.15, 40)  # sample-to-sample noise
        if cond == "disease":
            mu[xy[:, 0] < 80, 0] *= 3.0
        counts = rng.negative_binomial(4, 4 / (4 + mu))
        a = spots_adata(xy, library_id=f"s{s}", X=counts.astype(np.float32))
        td.io.read_geojson_regions(a, p)
        td.tl.assign_regions(a)
        assert (a.obs["region"].astype(str) == np.where(xy[:, 0] < 80, "A", "B")).all()
        a.obs["sample"], a.obs["condition"] = f"s{s}", cond
        a.obs_names = [f"s{s}_{i}" for i in range(a.n_obs)]
        parts.append(a)
    res = td.tl.region_de(ad.concat(parts), condition_key="condition", sample_key="sample",
                          reference="healthy", engine="nbglm", key_added=None)
    assert set(res["region"]) == {"A", "B"}
    g0 = res.set_index(["region", "gene"]).loc[("A", "g0")]
    assert g0["log2fc"] == pytest.approx(np.log2(3.0), abs=0.3) and g0["padj"] < 1e-3
    assert (res.loc[res["region"] == "B", "padj"] > 0.05).all()


# -- napari ---------------------------------------------------------------------------------
def test_napari_shapes_structure():
    a = segmented(grid(), c_cols=(25, 32))  # C inside B: B is a ring with a hole
    shapes, kw = td.io.to_napari_shapes(a)
    assert kw["shape_type"] == "polygon" and kw["name"] == "regions"
    n = len(shapes)
    region, hole = kw["properties"]["region"], kw["properties"]["hole"]
    # A, B (a ring around the C cut-out, so B has a hole) and C, plus B's hole
    assert n == 4 and len(region) == n and len(hole) == n and hole.tolist() == [False, False, False, True]
    assert kw["face_color"].shape == (n, 4) and kw["edge_color"].shape == (n, 4)
    assert region.tolist()[:3] == ["A", "B", "C"] or region.tolist()[:3] == ["B", "A", "C"]
    assert region[-1] == "B" and kw["face_color"][-1, 3] == 0 and kw["face_color"][0, 3] == 0.5
    for s in shapes:
        assert s.ndim == 2 and s.shape[1] == 2 and s.shape[0] >= 3
    # (row, col) order: A spans columns 20..80 and rows 20..140 in full-res pixels
    a_shape = shapes[region.tolist().index("A")]
    assert a_shape[:, 1].min() == 20 and a_shape[:, 1].max() == 80
    assert a_shape[:, 0].min() == 20 and a_shape[:, 0].max() == 140
    c_shape = shapes[region.tolist().index("C")]  # C: columns 100..128, rows 40..80
    assert (c_shape[:, 0].min(), c_shape[:, 0].max(), c_shape[:, 1].min(), c_shape[:, 1].max()) == (40, 80, 100, 128)
    np.testing.assert_allclose(kw["edge_color"][region.tolist().index("C")], [0x2c / 255, 0xa0 / 255, 0x2c / 255, 1])
    half, _ = td.io.to_napari_shapes(td.get.regions(a), scale=SCALEF)
    np.testing.assert_allclose(half[0], shapes[0] * SCALEF)


# -- bad inputs -----------------------------------------------------------------------------
@pytest.mark.parametrize(("doc", "match"), [
    ("{not json", "is not JSON.*Export objects as GeoJSON"),
    ({"type": "FeatureCollection", "features": []}, "no features.*draw and classify"),
    ([], "no features"),
    ({"type": "Polygon", "coordinates": box(0, 0, 1, 1)}, "holds a Polygon, not a FeatureCollection"),
    ([feature([3, 4], "A", kind="Point")], "is a Point, not an area.*area annotations"),
    ([feature([[0, 0], [5, 5]], "A", kind="LineString")], "is a LineString, not an area"),
    ([feature(box(0, 0, 10, 10), "A", [300, 0, 0])], r"colour \[300, 0, 0\].*0-255"),
    ([feature(box(0, 0, 0, 10), "A")], "encloses no area"),
    ([feature([[[0, 0], [1]]], "A")], "malformed coordinates"),
    ([feature(box(0, 0, 10, 10), "A", object_type="detection")], "no features of object type.*object_types="),
    ([feature(box(0, 0, 500, 90), "A")], r"spans x 0\.\.500.*160 x 160 full-resolution pixels.*library_id"),
    ([feature(box(0, 0, 10, 10), "outside")], "'outside' is reserved"),
])
def test_bad_inputs_one_line_errors(tmp_path, doc, match):
    a = spots_adata(grid())
    with pytest.raises(InputError, match=match) as err:
        td.io.read_geojson_regions(a, write(tmp_path, doc))
    assert "\n" not in str(err.value)
    assert "regions" not in a.uns  # nothing changed


def test_geodataframe_source_and_library_choice(tmp_path):
    import geopandas as gpd

    a = spots_adata(grid())
    a.uns["spatial"]["lib2"] = a.uns["spatial"]["lib1"]
    drawn = gpd.GeoDataFrame({"region": ["big", "small"]},
                             geometry=[shapely.box(0, 0, 160, 160), shapely.box(40, 40, 80, 80)])
    with pytest.raises(InputError, match="several libraries.*library_id="):
        td.io.read_geojson_regions(a, drawn)
    b = td.io.read_geojson_regions(a, drawn, library_id="lib2", copy=True)
    assert "regions" not in a.uns and list(b.uns["regions"]["libraries"]) == ["lib2"]
    gdf = td.get.regions(b, library_id="lib2")
    assert dict(zip(gdf["region"], gdf.area, strict=True)) == {"big": 160 * 160 - 40 * 40, "small": 40 * 40}


def test_annotations_drawn_on_the_hires_image(tmp_path):
    """QuPath had tissue_hires_image.png open: coordinates are hires pixels (x 0.5 here)."""
    xy = grid()
    full = [feature(box(0, 0, 80, 160), "A", [255, 0, 0]), feature(box(80, 0, 160, 160), "B", [0, 0, 255])]
    hires = [feature([[[x * SCALEF, y * SCALEF] for x, y in f["geometry"]["coordinates"][0]]],
                     f["properties"]["classification"]["name"]) for f in full]
    a, b = spots_adata(xy), spots_adata(xy)
    td.io.read_geojson_regions(a, write(tmp_path, full, "full.geojson"))
    with pytest.warns(UserWarning, match="coordinates='hires'"):
        td.io.read_geojson_regions(spots_adata(xy), write(tmp_path, hires, "hires.geojson"))
    td.io.read_geojson_regions(b, tmp_path / "hires.geojson", coordinates="hires")
    ga, gb = td.get.regions(a), td.get.regions(b)
    assert list(gb["region"]) == ["A", "B"]
    np.testing.assert_allclose(gb.area, ga.area)
    assert b.uns["regions"]["libraries"]["lib1"]["provenance"]["coordinates"] == "hires"
    with pytest.raises(InputError, match="tissue_midres_scalef"):
        td.io.read_geojson_regions(b, tmp_path / "hires.geojson", coordinates="midres")


def test_cli_annotate_with_drawn_regions(tmp_path, capsys):
    from topdown.cli import main

    xy = grid()
    src = tmp_path / "in.h5ad"
    spots_adata(xy).write_h5ad(src)
    drawn = write(tmp_path, [feature(box(0, 0, 80, 160), "A", [255, 0, 0]),
                             feature(box(80, 0, 160, 160), "B", [0, 0, 255])])
    out = tmp_path / "out.h5ad"
    assert main(["annotate", str(src), "--regions", str(drawn), "--out", str(out)]) == 0
    a = td.io.read_annotated(out)
    assert (a.obs["region"].astype(str) == np.where(xy[:, 0] < 80, "A", "B")).all()
    assert a.uns["regions"]["libraries"]["lib1"]["provenance"]["model_name"] == "hand-drawn annotations"
    # the drawn file is an input: never overwritten; a model and drawn regions exclude each other
    assert main(["annotate", str(src), "--regions", str(drawn), "--out", str(drawn)]) == 2
    with pytest.raises(SystemExit):
        main(["annotate", str(src), "--regions", str(drawn), "--model", "x", "--out", str(out)])
    bad = write(tmp_path, "{not json", "bad.geojson")
    capsys.readouterr()
    assert main(["annotate", str(src), "--regions", str(bad), "--out", str(tmp_path / "o2.h5ad")]) == 2
    err = capsys.readouterr().err.strip()
    assert "is not JSON" in err and len(err.splitlines()) == 1


def test_write_geojson_from_a_geodataframe(tmp_path):
    """What `topdown segment --out` writes: a GeoDataFrame, QuPath properties, provenance."""
    import geopandas as gpd

    gdf = gpd.GeoDataFrame({"region": ["A", "B"], "color": ["#ff0000", "#00ff00"]},
                           geometry=[shapely.box(0, 0, 10, 10), shapely.box(10, 0, 20, 10)])
    p = tmp_path / "seg.geojson"
    td.io.write_geojson(gdf, p, metadata={"classes": ["A", "B"]})
    doc = json.loads(p.read_text())
    assert doc["topdown"] == {"classes": ["A", "B"]}
    assert [f["properties"]["color"] for f in doc["features"]] == [[255, 0, 0], [0, 255, 0]]
    back = td.io.read_geojson(p)
    assert list(back["region"]) == ["A", "B"] and list(back["color"]) == ["#ff0000", "#00ff00"]


def test_odd_but_valid_features(tmp_path):
    """Null properties with default_class, a self-intersecting hand-drawn bow tie, derived classes."""
    bow = [[[0, 0], [10, 10], [10, 0], [0, 10], [0, 0]]]
    doc = [{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": box(20, 20, 30, 30)},
            "properties": None},
           feature(bow),
           {"type": "Feature", "geometry": {"type": "GeometryCollection", "geometries": [
               {"type": "Polygon", "coordinates": box(40, 40, 50, 50)}]},
            "properties": {"classification": "C"}}]
    doc[1]["properties"]["classification"] = {"names": ["Tumor", "Positive"], "color": [1, 2, 3]}
    gdf = td.io.read_geojson(write(tmp_path, doc), default_class="tissue")
    assert list(gdf["region"]) == ["tissue", "Tumor: Positive", "C"]
    assert gdf.geometry.iloc[1].is_valid and gdf.geometry.iloc[1].area == pytest.approx(50.0)
    assert gdf.geometry.iloc[2].area == 100
