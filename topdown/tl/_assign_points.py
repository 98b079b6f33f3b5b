"""Give every transcript (point) the region it lies in, and count genes per region.

The look-up is one vectorised index into the stored label raster (O(n), no Python loop):
point coordinates -> map pixels through the stored :class:`~topdown.seg.MapScale` (and,
for micrometres, the library's µm -> full-res affine), then ``labels[row, col]``. Counts
are one ``np.bincount`` over ``region * n_genes + gene``.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np
import pandas as pd

from ..errors import InputError
from ..get import SpatialLayout, StoredRegions, affine_matrix
from ..seg.regionmap import OUTSIDE, RegionMap
from . import _overlap
from ._assign_regions import _as_stores

Coords = Literal["fullres", "um", "map"]


class PointsAssignment(NamedTuple):
    """What :func:`assign_points` returns (unpacks as ``region, counts``)."""

    region: pd.Series
    """The region of each point (categorical, index of ``points``; ``'outside'`` off tissue)."""
    counts: object
    """AnnData: obs = regions (the classes, then ``'outside'``), var = genes, ``X`` = counts (CSR)."""


def _pick_store(adata, regions, regions_key: str, library_id: str | None) -> tuple[str, StoredRegions]:
    if adata is None and (regions is None or isinstance(regions, str)):
        raise InputError("assign_points needs regions: pass an AnnData holding them (td.tl.segment_regions) "
                         "or regions= (a RegionMap, StoredRegions or GeoDataFrame in full-res pixels).")
    if isinstance(regions, RegionMap):  # the raster alone: no polygons (from_regionmap would trace them)
        return "*", StoredRegions(classes=regions.classes, colors=dict(regions.colors), labels=regions.labels,
                                  scale=regions.scale.with_image_scalef(1.0))
    stores = _as_stores(adata, regions, regions_key)
    if "*" in stores:  # regions given directly: one map for every point
        return "*", stores["*"]
    if library_id is not None:
        if str(library_id) not in stores:
            raise InputError(f"library_id '{library_id}' has no segmented regions in "
                             f"adata.uns['{regions_key}'] (have: {sorted(stores)}); pass one of those.")
        return str(library_id), stores[str(library_id)]
    if len(stores) > 1:
        raise InputError(f"adata.uns['{regions_key}'] has regions for several libraries {sorted(stores)}; "
                         "pass library_id= naming the one the points come from.")
    return next(iter(stores.items()))


def _um_affine(adata, lib: str, store: StoredRegions, transform) -> np.ndarray:
    """3x3 µm -> full-res pixel affine: ``transform``, the reader's, ``microns_per_pixel`` or the
    map's own pixel size (the last two with the origins of µm and pixels at the same place)."""
    if transform is None:
        layout = SpatialLayout(adata) if adata is not None else None
        lib_d = (layout.libraries.get(lib) or {}) if layout is not None else {}
        transform = (lib_d.get("metadata") or {}).get("transform")
        if transform is None:
            um = layout.fullres_um_per_px(lib) if lib_d else None
            if not um and store.scale.um and store.scale.fullres:
                um = store.scale.um / store.scale.fullres
            if not um:
                raise InputError(f"points in µm, but library '{lib}' has no µm -> pixel transform (its "
                                 "uns['spatial'] metadata has no 'transform' and its scalefactors no "
                                 "'microns_per_pixel'); pass transform= (3x3 µm -> full-res pixel affine) "
                                 "or coords='fullres'.")
            transform = np.diag([1.0 / um, 1.0 / um, 1.0])
    return affine_matrix(transform)


def _columns(points, x: str, y: str, gene: str) -> tuple[np.ndarray, np.ndarray, pd.Categorical]:
    if not isinstance(points, pd.DataFrame):
        raise InputError(f"points must be a pandas DataFrame of transcripts, got {type(points).__name__}.")
    missing = [c for c in (x, y, gene) if c not in points.columns]
    if missing:
        raise InputError(f"points has no column(s) {missing} (columns: {list(points.columns)[:12]}); "
                         "pass x=, y=, gene= naming them (MERSCOPE: x='global_x', y='global_y', coords='um').")
    try:
        px = np.asarray(points[x], dtype=np.float64)
        py = np.asarray(points[y], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"points['{x}'] and points['{y}'] must be numbers ({exc}).") from exc
    bad = ~(np.isfinite(px) & np.isfinite(py))
    if bad.any():
        raise InputError(f"{int(bad.sum())} of {len(px)} points have NaN or infinite coordinates; drop them "
                         f"first (points = points[np.isfinite(points[['{x}', '{y}']]).all(axis=1)]).")
    genes = points[gene]
    genes = genes.array if isinstance(genes.dtype, pd.CategoricalDtype) else pd.Categorical(genes)
    if (genes.codes < 0).any():
        raise InputError(f"{int((genes.codes < 0).sum())} points have no gene in points['{gene}']; drop them first.")
    return px, py, genes


def _to_map(px: np.ndarray, py: np.ndarray, store: StoredRegions, coords: str, affine) -> np.ndarray:
    """``(n, 2)`` map-pixel coordinates; one fused affine, so no full-res copy is kept."""
    if coords == "map":
        a = np.eye(3)
    else:
        per = store.scale.per_map("fullres")
        a = (affine if coords == "um" else np.eye(3)) / per
    xy = np.empty((len(px), 2), dtype=np.float64)
    for k in (0, 1):
        out = xy[:, k]
        np.multiply(px, a[k, 0], out=out)
        if a[k, 1]:
            out += py * a[k, 1]
        out += a[k, 2]
    return xy


#: points handled at once (bounds the temporaries: about 50 bytes per point of a chunk)
_CHUNK = 1 << 20


def _region_codes(px: np.ndarray, py: np.ndarray, store: StoredRegions, coords: str, affine) -> np.ndarray:
    """Category code of every point: ``k - 1`` for label ``k``, ``len(classes)`` (outside) for 0."""
    n_cls = len(store.classes)
    lut = np.r_[n_cls, np.arange(n_cls)].astype(np.int8 if n_cls < 127 else np.int32)
    codes = np.empty(len(px), dtype=lut.dtype)
    gdf = None if store.has_raster else store.to_geodataframe()
    for s in range(0, len(px), _CHUNK):
        part = slice(s, s + _CHUNK)
        xy = _to_map(px[part], py[part], store, coords, affine)
        if gdf is None:
            lab, _ = _overlap.raster_lookup(store.labels, xy)
        else:
            lab = _overlap.vector_points(xy * store.scale.per_map("fullres"), gdf.geometry.values,
                                         gdf["label"].to_numpy())
        codes[part] = lut[lab]
    return codes


def _count(codes: np.ndarray, gene_codes: np.ndarray, n_cat: int, n_genes: int) -> np.ndarray:
    """``(n_cat, n_genes)`` int64 counts of the (region, gene) pairs, one bincount per chunk."""
    flat = np.zeros(n_cat * n_genes, dtype=np.int64)
    for s in range(0, len(codes), _CHUNK):
        key = codes[s:s + _CHUNK].astype(np.int64)
        key *= n_genes
        key += gene_codes[s:s + _CHUNK]
        flat += np.bincount(key, minlength=n_cat * n_genes)
    return flat.reshape(n_cat, n_genes)


def assign_points(adata, points: pd.DataFrame, *, regions=None, x: str = "x", y: str = "y", gene: str = "gene",
                  coords: Coords = "fullres", transform=None, library_id: str | None = None,
                  regions_key: str = "regions", key_added: str | None = None) -> PointsAssignment:
    """Give every point (transcript) its region, and count each gene per region.

    Parameters
    ----------
    adata
        AnnData holding segmented regions in ``uns[regions_key]``
        (:func:`segment_regions`); may be ``None`` when ``regions`` is given.
    points
        One row per transcript: coordinate columns ``x``, ``y`` and a ``gene`` column
        (MERSCOPE ``detected_transcripts.csv``: ``x="global_x", y="global_y", coords="um"``).
    regions
        Instead of the stored regions: a :class:`~topdown.seg.RegionMap` (its image pixels
        are the full-res pixels), a :class:`~topdown.get.StoredRegions`, a GeoDataFrame of
        polygons in full-res pixels with a ``region`` column, or a ``uns`` key.
    x, y, gene
        Column names.
    coords
        Units of ``x``/``y``: ``"fullres"`` (full-resolution pixels, those of
        ``obsm['spatial']``), ``"um"`` (micrometres, placed with ``transform``, else the
        reader's µm -> pixel affine in ``uns['spatial'][library_id]['metadata']['transform']``,
        else ``microns_per_pixel``, else the map's ``pixel_size_um``) or ``"map"`` (pixels of
        the stored label raster).
    transform
        3x3 (or 2x3) affine from µm to full-res pixels, e.g. MERSCOPE's
        ``images/micron_to_mosaic_pixel_transform.csv`` as an array (``coords="um"`` only).
    library_id
        Library whose regions to use (needed when ``uns[regions_key]`` holds several).
    regions_key
        ``uns`` key written by :func:`segment_regions`.
    key_added
        When given, also store the count table in ``adata.uns[key_added]``
        (``{"counts": DataFrame region x gene, "library_id", "coords"}``).

    Returns
    -------
    ``(region, counts)``: ``region`` is a categorical Series aligned with ``points``
    (categories: the classes, then ``'outside'``, for points off tissue or off the map);
    ``counts`` an AnnData with one observation per category, one variable per gene and
    sparse integer counts in ``X`` (``obs['n_points']`` holds the row sums).

    Examples
    --------
    >>> import pandas as pd, topdown as td
    >>> tx = pd.read_csv("detected_transcripts.csv")  # doctest: +SKIP
    >>> region, counts = td.tl.assign_points(adata, tx, x="global_x", y="global_y", coords="um")  # doctest: +SKIP
    >>> counts.to_df()  # doctest: +SKIP
    """
    import anndata as ad
    from scipy import sparse

    if coords not in ("fullres", "um", "map"):
        raise InputError(f"coords must be 'fullres', 'um' or 'map', got {coords!r}.")
    if transform is not None and coords != "um":
        raise InputError("transform= maps micrometres to pixels; pass coords='um' with it.")
    if key_added is not None and adata is None:
        raise InputError("key_added= stores the counts in adata.uns: pass an AnnData, or key_added=None.")
    lib, store = _pick_store(adata, regions, regions_key, library_id)
    px, py, genes = _columns(points, x, y, gene)
    if not store.has_raster and coords == "map":
        raise InputError(f"the regions of library '{lib}' are polygons without a label raster; "
                         "give the points in 'fullres' or 'um' coordinates.")
    affine = _um_affine(adata, lib, store, transform) if coords == "um" else None
    codes = _region_codes(px, py, store, coords, affine)
    categories = [*store.classes, OUTSIDE]
    region = pd.Series(pd.Categorical.from_codes(codes, categories=categories), index=points.index,
                       name=key_added or "region")
    flat = _count(codes, genes.codes, len(categories), len(genes.categories))
    gene_names = [str(g) for g in genes.categories]
    counts = ad.AnnData(X=sparse.csr_matrix(flat), obs=pd.DataFrame(index=categories),
                        var=pd.DataFrame(index=gene_names))
    counts.obs["n_points"] = flat.sum(axis=1)
    counts.uns["region_colors"] = np.array([store.colors.get(c, "#000000") for c in categories], dtype=object)
    counts.uns["assign_points"] = {"library_id": lib, "regions_key": regions_key, "coords": coords}
    if key_added is not None:
        adata.uns[key_added] = {"counts": pd.DataFrame(flat, index=categories, columns=gene_names),
                                "library_id": lib, "coords": coords}
    return PointsAssignment(region, counts)
