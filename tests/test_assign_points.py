"""td.tl.assign_points: exact regions of transcripts on a known label map, counts per region x gene."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from test_assign_exact import DOWN, SCALEF, make_adata, synthetic_labels

import topdown as td
from topdown.errors import InputError
from topdown.seg.regionmap import RegionMap

FULL = DOWN / SCALEF  # full-res pixels per map pixel (4)


def expected_region(xy_fullres: np.ndarray) -> list[str]:
    lab = synthetic_labels()
    names = ["outside", "A", "B", "C"]
    out = []
    for x, y in xy_fullres / FULL:
        inside = 0 <= x < lab.shape[1] and 0 <= y < lab.shape[0]
        out.append(names[lab[int(np.floor(y)), int(np.floor(x))]] if inside else "outside")
    return out


@pytest.fixture(scope="module")
def adata():
    return make_adata(np.array([[50.0, 50.0]]))


def test_regions_exact_inside_outside_edges_offmap(adata):
    # map pixel (r, c) covers [c, c+1) x [r, r+1); A = cols 5..19, B = 20..34, C = rows 10..19 x cols 25..34
    xy = np.array([[4 * 10.5, 4 * 10.5],  # A
                   [4 * 20.0, 4 * 6.0],  # left edge of B (edge belongs to the pixel to its right)
                   [4 * 20.0 - 1e-9, 4 * 6.0],  # just left of it: A
                   [4 * 30.0, 4 * 15.0],  # C
                   [4 * 35.0, 4 * 15.0],  # right edge of B/C: first outside pixel
                   [4 * 2.0, 4 * 2.0],  # on the map, off tissue
                   [-1.0, 50.0], [50.0, -0.001], [4 * 40.0, 50.0], [50.0, 1e9],  # off the map
                   [0.0, 0.0]])
    pts = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "gene": list("abcdefghijk")},
                       index=[f"t{i}" for i in range(len(xy))])
    region, counts = td.tl.assign_points(adata, pts)
    assert region.index.equals(pts.index)
    assert list(region.astype(str)) == expected_region(xy)
    assert list(region.astype(str))[:6] == ["A", "B", "A", "C", "outside", "outside"]
    assert list(region.cat.categories) == ["A", "B", "C", "outside"]
    assert list(counts.obs_names) == ["A", "B", "C", "outside"]


@pytest.mark.parametrize("chunk", [997, 1 << 20])
def test_counts_equal_groupby_and_random_regions(adata, monkeypatch, chunk):
    monkeypatch.setattr("topdown.tl._assign_points._CHUNK", chunk)  # several chunks, and one
    rng = np.random.default_rng(0)
    n = 20_000
    xy = rng.uniform(-20, 180, (n, 2))
    pts = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "gene": rng.choice(["g1", "g2", "g3", "Blank-1"], n)})
    region, counts = td.tl.assign_points(adata, pts, key_added="points")
    assert list(region.astype(str)) == expected_region(xy)
    want = pd.crosstab(region, pts["gene"]).reindex(index=counts.obs_names, columns=counts.var_names,
                                                   fill_value=0)
    got = counts.to_df()
    assert (got.to_numpy() == want.to_numpy()).all()
    assert counts.obs["n_points"].sum() == n
    assert counts.X.format == "csr"
    assert (adata.uns["points"]["counts"].to_numpy() == want.to_numpy()).all()


def test_um_transform(adata, tmp_path):
    # points in µm through an affine µm -> full-res: x_px = 2 x_um + 10, y_px = 2 y_um - 6
    m = np.array([[2.0, 0, 10.0], [0, 2.0, -6.0], [0, 0, 1]])
    px = np.array([[4 * 10.5, 4 * 10.5], [4 * 30.0, 4 * 15.0], [4 * 2.0, 4 * 2.0], [4 * 25.5, 4 * 30.5]])
    um = (px - m[:2, 2]) / 2.0
    pts = pd.DataFrame({"global_x": um[:, 0], "global_y": um[:, 1], "gene": ["a", "b", "a", "b"]})
    region, _ = td.tl.assign_points(adata, pts, x="global_x", y="global_y", coords="um", transform=m)
    assert list(region.astype(str)) == ["A", "C", "outside", "B"]
    # the reader's transform in uns['spatial'] is used when none is passed
    b = adata.copy()
    b.uns["spatial"]["lib1"]["metadata"]["transform"] = m
    r2, _ = td.tl.assign_points(b, pts, x="global_x", y="global_y", coords="um")
    assert r2.equals(region)
    # else microns_per_pixel (no offset)
    c = adata.copy()
    c.uns["spatial"]["lib1"]["scalefactors"]["microns_per_pixel"] = 0.5
    r3, _ = td.tl.assign_points(c, pd.DataFrame({"x": px[:, 0] / 2, "y": px[:, 1] / 2, "gene": list("abab")}),
                                coords="um")
    assert list(r3.astype(str)) == ["A", "C", "outside", "B"]
    # map pixels
    r4, _ = td.tl.assign_points(adata, pd.DataFrame({"x": px[:, 0] / 4, "y": px[:, 1] / 4, "gene": list("abab")}),
                                coords="map")
    assert list(r4.astype(str)) == ["A", "C", "outside", "B"]


def test_polygon_regions_without_raster():
    a = ad.AnnData(np.ones((1, 1), np.float32))
    a.obsm["spatial"] = np.zeros((1, 2))
    gdf = RegionMap(synthetic_labels(), ("A", "B", "C")).to_geodataframe()
    gdf["geometry"] = gdf.geometry.scale(FULL, FULL, origin=(0, 0))
    st = td.get.StoredRegions.from_geodataframe(gdf)
    a.uns["regions"] = td.get.store_entry(None, "lib", st)
    xy = np.array([[4 * 10.5, 4 * 10.5], [4 * 30.5, 4 * 15.5], [4 * 2.0, 4 * 2.0]])
    region, counts = td.tl.assign_points(a, pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "gene": list("aab")}))
    assert list(region.astype(str)) == ["A", "C", "outside"]


@pytest.mark.parametrize(("change", "match"), [
    (lambda p: p.drop(columns="gene"), r"no column\(s\) \['gene'\]"),
    (lambda p: p.assign(x=[np.nan, 1.0]), "NaN or infinite coordinates; drop them"),
    (lambda p: p.assign(y=[np.inf, 1.0]), "NaN or infinite coordinates; drop them"),
    (lambda p: p.assign(gene=[None, "a"]), "have no gene"),
    (lambda p: p.to_numpy(), "must be a pandas DataFrame"),
])
def test_bad_points(adata, change, match):
    pts = pd.DataFrame({"x": [1.0, 2.0], "y": [1.0, 2.0], "gene": ["a", "b"]})
    with pytest.raises(InputError, match=match):
        td.tl.assign_points(adata, change(pts))


def test_bad_arguments(adata):
    pts = pd.DataFrame({"x": [1.0], "y": [1.0], "gene": ["a"]})
    bare = ad.AnnData(np.ones((1, 1), np.float32))
    with pytest.raises(InputError, match=r"holds no segmented regions; run td.tl.segment_regions"):
        td.tl.assign_points(bare, pts)
    with pytest.raises(InputError, match="coords must be"):
        td.tl.assign_points(adata, pts, coords="pixels")
    no_um = adata.copy()  # no transform, no microns_per_pixel, no Visium spot diameter
    del no_um.uns["spatial"]["lib1"]["scalefactors"]["spot_diameter_fullres"]
    with pytest.raises(InputError, match="no µm -> pixel transform"):
        td.tl.assign_points(no_um, pts, coords="um")
    with pytest.raises(InputError, match="library_id 'nope'"):
        td.tl.assign_points(adata, pts, library_id="nope")
    with pytest.raises(InputError, match="invertible"):
        td.tl.assign_points(adata, pts, coords="um", transform=np.zeros((3, 3)))


def test_real_merfish_transcripts(merfish_mini):
    """Real MERFISH transcripts (µm) on a label map covering the crop: counts match a groupby."""
    tx = pd.read_csv(merfish_mini / "vizgen_transcripts.gz")
    x0, y0 = tx["global_x"].min(), tx["global_y"].min()
    lab = np.zeros((46, 51), np.uint8)  # 10 µm map pixels over the 500 x 450 µm crop
    lab[:, :25] = 1
    lab[:, 25:] = 2
    lab[40:, :] = 0
    a = ad.AnnData(np.ones((1, 1), np.float32))
    a.obsm["spatial"] = np.zeros((1, 2))
    a.uns["spatial"] = {"mini": {"images": {}, "scalefactors": {"microns_per_pixel": 1.0},
                                 "metadata": {"transform": np.array([[1.0, 0, -x0], [0, 1.0, -y0], [0, 0, 1]])}}}
    st = td.get.StoredRegions.from_regionmap(RegionMap(lab, ("left", "right"), downsample=10.0), scalef=1.0)
    a.uns["regions"] = td.get.store_entry(None, "mini", st)
    region, counts = td.tl.assign_points(a, tx, x="global_x", y="global_y", coords="um")
    cx = ((tx["global_x"] - x0) // 10).astype(int)
    cy = ((tx["global_y"] - y0) // 10).astype(int)
    want = np.where(cy >= 40, "outside", np.where(cx < 25, "left", "right"))
    assert (region.astype(str).to_numpy() == want).all()
    table = pd.crosstab(region, tx["gene"]).reindex(index=counts.obs_names, columns=counts.var_names, fill_value=0)
    assert (counts.to_df().to_numpy() == table.to_numpy()).all()
    assert counts.n_vars == tx["gene"].nunique() and counts.X.sum() == len(tx)


def test_regions_given_directly():
    """A RegionMap (image pixels = full-res pixels) without an AnnData; µm through its pixel size."""
    rmap = RegionMap(synthetic_labels(), ("A", "B", "C"), downsample=FULL, pixel_size_um=8.0)
    xy = np.array([[4 * 10.5, 4 * 10.5], [4 * 30.0, 4 * 15.0], [4 * 2.0, 4 * 2.0], [4 * 25.5, 4 * 30.5]])
    pts = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "gene": list("abab")})
    region, counts = td.tl.assign_points(None, pts, regions=rmap)
    assert list(region.astype(str)) == ["A", "C", "outside", "B"]
    # 8 µm per map pixel = 2 µm per full-res pixel, same origin
    r_um, _ = td.tl.assign_points(None, pts.assign(x=xy[:, 0] * 2, y=xy[:, 1] * 2), regions=rmap, coords="um")
    assert r_um.equals(region)
    with pytest.raises(InputError, match="needs regions"):
        td.tl.assign_points(None, pts)
    with pytest.raises(InputError, match="key_added= stores the counts"):
        td.tl.assign_points(None, pts, regions=rmap, key_added="pts")
