"""Find the nuclei of the tissue image held in an AnnData; count them per spot and per region."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd

from .._version import __version__
from ..errors import InputError
from ..get import SpatialLayout, library_column
from ._cells import cell_polygons, missing_outlines


def _nuclei_fn():
    """``topdown.seg.nuclei.nuclei`` (imported lazily: it pulls in torch)."""
    from ..seg.nuclei_infer import nuclei

    return nuclei


def _regions_of(adata, regions_key: str, lib: str):
    """The library's region polygons (full-res pixels), or ``None`` when none are stored."""
    from ..get import regions

    store = adata.uns.get(regions_key)
    if not isinstance(store, dict) or lib not in (store.get("libraries") or {}):
        return None
    return regions(adata, regions_key, lib)


def _per_region(lib: str, region: np.ndarray, gdf, um_per_fullres: float | None) -> pd.DataFrame:
    """Counts, areas (mm²) and densities per region of one library."""
    rows = []
    for name, part in gdf.groupby("region"):
        area_mm2 = float(part.geometry.area.sum()) * (um_per_fullres or np.nan) ** 2 / 1e6
        n = int((region == str(name)).sum())
        rows.append({"library_id": lib, "region": str(name), "n_nuclei": n, "area_mm2": area_mm2,
                     "nuclei_per_mm2": n / area_mm2 if area_mm2 > 0 else np.nan})
    return pd.DataFrame(rows, columns=["library_id", "region", "n_nuclei", "area_mm2", "nuclei_per_mm2"])


def _spot_counts(layout: SpatialLayout, lib: str, xy: np.ndarray, mine: np.ndarray) -> np.ndarray:
    """Nuclei centroids (full-res ``xy``) within each spot's disk (Visium ``spot_diameter_fullres``)."""
    from scipy.spatial import cKDTree

    sf = layout.scalefactors(lib)
    counts = np.zeros(layout.adata.n_obs, dtype=np.int64)
    if not sf.get("spot_diameter_fullres") or not len(xy):
        return counts
    tree = cKDTree(xy)
    spots = layout.xy[mine]
    hits = tree.query_ball_point(spots, r=float(sf["spot_diameter_fullres"]) / 2.0, return_length=True)
    counts[np.flatnonzero(mine)] = np.asarray(hits, dtype=np.int64)
    return counts


def _cell_counts(adata, xy: np.ndarray, mine: np.ndarray, lib: str):
    """Nuclei centroids (full-res ``xy``) inside each cell's outline (``uns['cell_boundaries']``),
    or ``None`` when the cells have no outlines.

    Cells of ``mine`` without an outline get ``<NA>`` (a nullable ``Int64`` array), with a warning
    naming them; otherwise the counts are plain int64.
    """
    from ..seg.nuclei_metrics import centroids_per_polygon

    idx = np.flatnonzero(mine)
    cells = cell_polygons(adata, idx)
    if cells is None:
        return None
    counts = np.zeros(adata.n_obs, dtype=np.int64)
    have = np.asarray([c is not None for c in cells], dtype=bool)
    counts[idx[have]] = centroids_per_polygon(xy, cells[have])
    gap = missing_outlines(adata, idx, cells)
    if gap is None:
        return counts
    warnings.warn(f"library '{lib}': {gap}; their obs['n_nuclei'] is <NA> (the others are counted).",
                  UserWarning, stacklevel=3)
    out = pd.array(counts, dtype="Int64")
    out[idx[~have]] = pd.NA
    return out


def _library_entry(adata, layout: SpatialLayout, lib: str, res, fullres, img_um: float, key: str,
                   regions_key: str, model) -> tuple[dict, pd.DataFrame]:
    import shapely

    gdf = res.to_geodataframe()
    xy_img = res.table[["x", "y"]].to_numpy(float)
    xy = fullres.convert(xy_img, "image", "fullres") if len(xy_img) else xy_img.reshape(0, 2)
    geoms = shapely.transform(gdf.geometry.values, lambda p: fullres.convert(p, "image", "fullres"))
    region = np.full(len(xy), "", dtype=object)
    per_region = pd.DataFrame()
    reg = _regions_of(adata, regions_key, lib)
    if reg is not None and len(xy):
        pts = shapely.points(xy)
        tree = shapely.STRtree(reg.geometry.values)
        pi, ri = tree.query(pts, predicate="within")
        region[pi] = reg["region"].to_numpy().astype(str)[ri]
    if reg is not None:
        per_region = _per_region(lib, region.astype(str), reg, fullres.size("um", of="fullres")
                                 if fullres.um is not None else None)
    feats = [{"type": "Feature", "properties": {"i": i}, "geometry": shapely.geometry.mapping(g)}
             for i, g in enumerate(geoms) if g is not None]
    prov = {**{k: v for k, v in res.meta.items() if k != "params"}, **res.meta.get("params", {}),
            "model_argument": model if isinstance(model, str) else getattr(model, "name", None),
            "image_pixel_size_um": img_um, "topdown_version": __version__}
    entry = {"geojson": json.dumps({"type": "FeatureCollection", "features": feats}),
             "centroids": np.asarray(xy, dtype=np.float64).reshape(-1, 2),
             "area_um2": res.table["area_um2"].to_numpy(np.float64), "region": region.astype(str),
             "image_key": key, "pixel_size_um": float(img_um),
             "provenance": {k: v for k, v in prov.items() if v is not None}}
    return entry, per_region


def segment_nuclei(adata, model: str = "nuclei_dapi", library_id: str | None = None, key_added: str = "nuclei", *,
                   image_key: str | None = None, pixel_size_um: float | None = None, regions_key: str = "regions",
                   library_key: str | None = None, copy: bool = False, **nuclei_kwargs):
    """Find the nuclei in each library's image; count them per spot and per region.

    Parameters
    ----------
    adata
        AnnData with an image in ``uns['spatial'][library_id]['images']`` (Visium, MERSCOPE,
        Xenium readers of :mod:`topdown.io`). The image must resolve nuclei (<= ~1 µm/px).
    model
        A nucleus model (shipped name, path or loaded; see :func:`topdown.seg.nuclei`).
    library_id
        Library to segment; ``None``: every library.
    key_added
        ``uns`` key receiving the nuclei (layout: :mod:`topdown.get._nuclei_store`).
    image_key, pixel_size_um
        Force an image (``"hires"``, ...) / its µm per pixel (else from the scalefactors).
    regions_key
        Where :func:`topdown.tl.segment_regions` stored regions: each nucleus gets its region
        and ``uns[key_added]['per_region']`` the counts, areas (mm²) and nuclei per mm².
    library_key
        ``obs`` column naming each observation's library (several libraries in one AnnData).
    copy
        Return a modified copy instead of changing ``adata`` in place.
    **nuclei_kwargs
        Passed to :func:`topdown.seg.nuclei` (``tile=``, ``seed_level=``, ``progress=True``, ...).

    Returns
    -------
    ``None`` (or the copy). Sets ``uns[key_added]`` and ``obs['n_nuclei']``: for spots with a
    diameter (Visium), the nuclei whose centroid lies in the spot's 55 µm disk; for cells with
    outlines (``uns['cell_boundaries']``: MERSCOPE, Xenium, Visium HD), the nuclei whose centroid
    lies in the cell, so that cells with none or several stand out (the platform's segmentation
    checked against the nuclei). Cells missing from ``uns['cell_boundaries']`` get ``<NA>``
    (a warning names them).

    Examples
    --------
    >>> import topdown as td
    >>> td.tl.segment_nuclei(adata)  # doctest: +SKIP
    >>> adata.obs["n_nuclei"].describe()  # doctest: +SKIP
    >>> adata.obs["n_nuclei"].clip(upper=2).value_counts()  # cells: none, one, two or more  # doctest: +SKIP
    """
    layout = SpatialLayout(adata)
    libs = layout.resolve(library_id)
    owner = library_column(adata, library_key) if library_key is not None else None
    if owner is None and len(layout.require()) > 1 and "spatial" in adata.obsm:
        raise InputError("adata.uns['spatial'] holds several libraries; pass library_key= (the obs column "
                         "naming each spot's library) so that spots are counted against their own image.")
    old = adata.uns.get(key_added)
    store = {"libraries": dict(old.get("libraries", {})) if isinstance(old, dict) else {}}
    tables, counts = [], None
    for lib in libs:
        key, image, _ = layout.image(lib, image_key)
        fullres = layout.fullres_scale(lib, key)
        img_um = float(pixel_size_um) if pixel_size_um is not None else (
            fullres.size("um", of="image") if fullres.um is not None else None)
        res = _nuclei_fn()(image, model, pixel_size_um=img_um, **nuclei_kwargs)
        entry, per_region = _library_entry(adata, layout, lib, res, fullres, img_um, key, regions_key, model)
        store["libraries"][lib] = entry
        tables.append(per_region)
        mine = np.ones(adata.n_obs, bool) if owner is None else owner == lib
        if "spot_diameter_fullres" in layout.scalefactors(lib) and "spatial" in adata.obsm:
            c = _spot_counts(layout, lib, entry["centroids"], mine)
        else:
            c = _cell_counts(adata, entry["centroids"], mine, lib)
        if c is not None:
            counts = c if counts is None else counts + c
    nonempty = [t for t in tables if len(t)]
    if nonempty:
        store["per_region"] = pd.concat(nonempty, ignore_index=True)
    out = adata.copy() if copy else adata
    out.uns[key_added] = store
    if counts is not None:
        out.obs["n_nuclei"] = counts
    return out if copy else None
