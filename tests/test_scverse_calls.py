"""The scverse calls of the issue on ``topdown annotate``'s output (the real Visium section).

Two outputs of ``topdown annotate`` on the real 10x Visium mouse brain section:

- ``model``: segmented by the tiny untrained test checkpoint (a raster region map, so the
  SpatialData also has its Labels element). Being untrained it finds few regions
  (hippocampus on almost every spot, a couple of spots outside), so
- ``hand``: the case built deliberately, three hand-drawn bands (``--regions``, a GeoJSON of
  three rectangles side by side across the tissue, full-res pixels), each holding hundreds
  of spots, for ``nhood_enrichment`` and ``rank_genes_groups`` on well-populated regions.

On each: ``sc.tl.rank_genes_groups(adata, "region")``, ``sq.pl.spatial_scatter`` and
``sc.pl.spatial`` coloured by region (Agg, nothing shown), ``sq.gr.spatial_neighbors`` +
``sq.gr.nhood_enrichment``, ``td.io.to_spatialdata`` and a zarr write/read.
"""

from __future__ import annotations

import geopandas as gpd
import matplotlib.pyplot as plt
import numpy as np
import pytest
import shapely
from matplotlib.colors import to_hex

import topdown as td
from topdown.cli import main

LIB = "visium_mouse_brain_v1"


@pytest.fixture(scope="module")
def outputs(visium_outs, checkpoint, tmp_path_factory):
    """annotate's h5ad for each case, written once for the module."""
    d = tmp_path_factory.mktemp("annotate")
    assert main(["annotate", str(visium_outs), "--model", str(checkpoint), "--out", str(d / "model.h5ad"),
                 "--check-alignment", "warn"]) == 0
    xy = td.io.read_visium(visium_outs).obsm["spatial"]
    (x0, y0), (x1, y1) = xy.min(0) - 200, xy.max(0) + 200
    e = np.linspace(x0, x1, 4)
    bands = gpd.GeoDataFrame({"region": ["left", "middle", "right"]},
                             geometry=[shapely.box(e[i], y0, e[i + 1], y1) for i in range(3)])
    bands.to_file(d / "bands.geojson", driver="GeoJSON")
    assert main(["annotate", str(visium_outs), "--regions", str(d / "bands.geojson"),
                 "--out", str(d / "hand.h5ad")]) == 0
    return {"model": d / "model.h5ad", "hand": d / "hand.h5ad"}


@pytest.fixture(params=["model", "hand"])
def adata(request, outputs):
    a = td.io.read_annotated(outputs[request.param])
    a.uns["case"] = request.param
    return a


def _palette(a) -> dict[str, str]:
    return dict(zip(a.obs["region"].cat.categories, (to_hex(c) for c in a.uns["region_colors"]), strict=True))


def _spot_colors(fig, n: int) -> list[str]:
    """Face colours of the one collection in ``fig`` with a patch per spot."""
    cols = [c for ax in fig.axes for c in ax.collections if len(c.get_facecolor()) == n]
    assert len(cols) == 1
    return [to_hex(c) for c in cols[0].get_facecolor()]


def test_the_outputs_are_what_the_cases_say(adata):
    counts = adata.obs["region"].value_counts()
    assert adata.n_obs == 2702 and counts.sum() == 2702
    if adata.uns["case"] == "hand":
        assert set(counts.index) == {"left", "middle", "right"} and counts.min() > 500
    else:
        assert len(counts) >= 2 and set(counts.index) <= {"cortex", "hippocampus", "thalamus", "outside"}


def test_rank_genes_groups(adata):
    import scanpy as sc

    sc.pp.normalize_total(adata)
    sc.pp.log1p(adata)
    sc.tl.rank_genes_groups(adata, "region")
    r = adata.uns["rank_genes_groups"]
    cats = tuple(adata.obs["region"].cat.categories)
    assert r["params"]["groupby"] == "region" and r["names"].dtype.names == cats
    assert r["names"].shape == (adata.n_vars,)
    for g in cats:
        assert set(r["names"][g]) == set(adata.var_names)
        assert np.isfinite(r["scores"][g]).all() and ((r["pvals_adj"][g] >= 0) & (r["pvals_adj"][g] <= 1)).all()
    df = sc.get.rank_genes_groups_df(adata, group=cats[0])
    assert len(df) == adata.n_vars


def test_squidpy_spatial_scatter_uses_the_region_colours(adata):
    import squidpy as sq

    pal = _palette(adata)
    sq.pl.spatial_scatter(adata, color="region", library_id=LIB, img_res_key="lowres")
    drawn = _spot_colors(plt.gcf(), adata.n_obs)
    plt.close("all")
    assert drawn == [pal[r] for r in adata.obs["region"]]
    assert _palette(adata) == pal  # our palette was used, not replaced


def test_scanpy_spatial_uses_the_region_colours(adata):
    import scanpy as sc

    pal = _palette(adata)
    sc.pl.spatial(adata, color="region", library_id=LIB, img_key="lowres", show=False)
    drawn = _spot_colors(plt.gcf(), adata.n_obs)
    plt.close("all")
    assert drawn == [pal[r] for r in adata.obs["region"]]
    assert _palette(adata) == pal


def test_nhood_enrichment(adata):
    import squidpy as sq

    sq.gr.spatial_neighbors(adata)
    assert adata.obsp["spatial_connectivities"].shape == (adata.n_obs, adata.n_obs)
    sq.gr.nhood_enrichment(adata, cluster_key="region", n_perms=100, seed=0, show_progress_bar=False)
    res = adata.uns["region_nhood_enrichment"]
    k = len(adata.obs["region"].cat.categories)
    assert k >= 2 and res["zscore"].shape == (k, k) and res["count"].shape == (k, k)
    # z is NaN only where no permutation can change the count (squidpy divides by a zero
    # std), e.g. the model case's two isolated 'outside' spots: no outside-outside pair
    assert (np.isfinite(res["zscore"]) | (res["count"] == 0)).all()
    np.testing.assert_allclose(res["zscore"], res["zscore"].T)
    np.testing.assert_array_equal(res["count"], res["count"].T)
    if adata.uns["case"] == "hand":
        # contiguous bands: each is enriched next to itself, the outer two never touch
        z, n = res["zscore"], res["count"]
        cats = list(adata.obs["region"].cat.categories)
        assert (np.diag(z) > 10).all() and (z[~np.eye(k, dtype=bool)] < 0).all()
        assert n[cats.index("left"), cats.index("right")] == 0


def test_to_spatialdata_zarr_round_trip(adata, tmp_path):
    import spatialdata as sd

    s = td.io.to_spatialdata(adata)
    s.write(tmp_path / "x.zarr")
    b = sd.read_zarr(tmp_path / "x.zarr")
    assert set(b.images) == {f"{LIB}_lowres"}
    assert set(b.shapes) == {f"{LIB}_spots", f"{LIB}_regions"}
    t = b.tables["table"]
    assert list(t.obs_names) == list(adata.obs_names) and list(t.obs["region"]) == list(adata.obs["region"])
    assert list(t.uns["region_colors"]) == list(adata.uns["region_colors"])
    np.testing.assert_allclose(np.c_[b.shapes[f"{LIB}_spots"].geometry.x, b.shapes[f"{LIB}_spots"].geometry.y],
                               adata.obsm["spatial"])
    pal = _palette(adata)
    reg = b.tables["regions"]
    # every region with a spot has a polygon, drawn in the spots' colour
    assert set(adata.obs["region"].astype(str)) - {"outside"} <= set(reg.obs["region"].cat.categories)
    for name, col in zip(reg.obs["region"].cat.categories, reg.uns["region_colors"], strict=True):
        assert name not in pal or to_hex(col) == pal[name]
    stored = adata.uns["regions"]["libraries"][LIB]
    if adata.uns["case"] == "model":
        assert set(b.labels) == {f"{LIB}_region_map"} and set(b.tables) == {"table", "regions", "region_map"}
        np.testing.assert_array_equal(np.asarray(b.labels[f"{LIB}_region_map"]), stored["labels"])
    else:
        assert not b.labels and set(b.tables) == {"table", "regions"}
