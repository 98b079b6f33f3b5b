"""Label every Visium spot or single cell with the anatomical region it lies in."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..errors import InputError
from ..get import SpatialLayout, StoredRegions, library_column, load_store
from ..seg.regionmap import OUTSIDE, RegionMap
from . import _overlap
from ._cells import cell_polygons, missing_outlines

Mode = Literal["auto", "disk", "centroid", "polygon"]


@dataclass
class _Result:
    fractions: np.ndarray | None  # (n, 1 + C) column 0 = outside; None for centroids
    confidence: np.ndarray  # (n,)
    labels: np.ndarray  # (n,) 0..C
    classes: tuple[str, ...]


def _as_stores(adata, regions, regions_key: str) -> dict[str, StoredRegions]:
    import geopandas as gpd

    if regions is None:
        return load_store(adata, regions_key)
    if isinstance(regions, str):
        return load_store(adata, regions)
    if isinstance(regions, dict):
        return {str(k): _as_stores(adata, v, regions_key)["*"] for k, v in regions.items()}
    if isinstance(regions, StoredRegions):
        return {"*": regions}
    if isinstance(regions, RegionMap):
        return {"*": StoredRegions.from_regionmap(regions, scalef=1.0)}
    if isinstance(regions, gpd.GeoDataFrame):
        return {"*": StoredRegions.from_geodataframe(regions)}
    raise InputError(f"regions must be None, a uns key, a RegionMap, a GeoDataFrame or a dict "
                     f"library_id -> one of those; got {type(regions).__name__}.")


def _assign_one(xy: np.ndarray, store: StoredRegions, mode: str, radius: float | None,
                cells=None, quad_segs: int = 64) -> _Result:
    """Fractions (None for centroids) and per-label confidence, or final labels for centroids."""
    import shapely

    n_lab = len(store.classes) + 1
    n = len(xy)
    if mode == "centroid":  # O(n) look-up, no dense (n x C) matrices
        if store.has_raster:
            lab, flat = _overlap.raster_lookup(store.labels, store.scale.to_map(xy))
            if store.max_probability is None:
                conf = np.ones(n, np.float32)
            else:
                conf = store.max_probability.reshape(-1)[np.maximum(flat, 0)].astype(np.float32)
                conf[flat < 0] = 1.0
        else:
            gdf = store.to_geodataframe()
            lab = _overlap.vector_points(xy, gdf.geometry.values, gdf["label"].to_numpy())
            conf = np.ones(n, np.float32)
        return _Result(None, conf, lab, store.classes)
    if store.has_raster:
        to_map = store.scale.to_map  # full-res pixels -> map pixels
        maxp = None if store.max_probability is None else store.max_probability.astype(np.float64)
        if mode == "disk":
            frac, wsum = _overlap.raster_disk_fractions(store.labels, to_map(xy), to_map(radius), n_lab,
                                                        weights=maxp)
        else:  # polygon: exact overlap with the region polygons, probability at the centroid
            _, flat = _overlap.raster_lookup(store.labels, to_map(xy))
            p = np.ones(n) if maxp is None else np.where(flat >= 0, maxp.reshape(-1)[np.maximum(flat, 0)], 1.0)
            frac = _overlap.raster_polygon_fractions(
                store.labels, shapely.transform(cells, to_map), n_lab)
            if frac is None:  # cells much larger than map pixels
                gdf = store.to_geodataframe()
                frac = _overlap.vector_fractions(cells, gdf.geometry.values, gdf["label"].to_numpy(), n_lab)
            wsum = frac * p[:, None]
    else:
        gdf = store.to_geodataframe()
        shapes = cells if mode == "polygon" else shapely.buffer(shapely.points(xy), radius,
                                                                  quad_segs=quad_segs)
        frac = _overlap.vector_fractions(shapes, gdf.geometry.values, gdf["label"].to_numpy(), n_lab)
        wsum = frac
    return _Result(frac, wsum, np.zeros(n, dtype=np.int64), store.classes)


_TIE = 1e-9


def _decide(res: _Result, min_tissue_fraction: float) -> _Result:
    if res.fractions is None:  # centroids: labels and confidence are final
        return res
    frac = res.fractions
    tissue = 1.0 - frac[:, 0]
    if frac.shape[1] > 1:  # ties (within float noise) go to the earlier class
        reg = frac[:, 1:]
        best = 1 + np.argmax(reg >= reg.max(axis=1, keepdims=True) - _TIE, axis=1)
    else:
        best = np.zeros(len(frac), int)
    on = (tissue >= min_tissue_fraction - _TIE) & (tissue > _TIE)
    labels = np.where(on, best, 0)
    conf = res.confidence[np.arange(len(labels)), labels]
    return _Result(frac, conf, labels, res.classes)


_ALIGN_MIN = 0.5
_ALIGN_SAMPLE = 20_000


def _on_tissue(store: StoredRegions, xy: np.ndarray) -> np.ndarray:
    if store.has_raster:
        lab, _ = _overlap.raster_lookup(store.labels, store.scale.to_map(xy))
    else:
        gdf = store.to_geodataframe()
        lab = _overlap.vector_points(xy, gdf.geometry.values, gdf["label"].to_numpy())
    return lab > 0


def _fit(store: StoredRegions, xy: np.ndarray, in_tissue: np.ndarray | None) -> float:
    """How well spots fit the detected tissue: balanced accuracy against ``in_tissue`` when
    it has both values, else the fraction of spots on tissue."""
    if len(xy) == 0:
        return 1.0
    on = _on_tissue(store, xy)
    if in_tissue is not None and in_tissue.any() and (~in_tissue).any():
        return float((on[in_tissue].mean() + (~on[~in_tissue]).mean()) / 2.0)
    return float(on.mean())


def _check_alignment(layout: SpatialLayout, lib: str, store: StoredRegions, xy: np.ndarray, in_tissue: np.ndarray,
                     has_in_tissue: bool, stores: dict[str, StoredRegions], how: str) -> dict[str, Any]:
    """Score the fit of the spots to the detected tissue; try the usual mistakes (swapped x/y,
    coordinates in image pixels, wrong library) and name one that fits much better."""
    if how == "ignore":
        return {}
    if len(xy) > _ALIGN_SAMPLE:  # the check is statistical: a fixed subsample keeps it O(1)
        pick = np.random.default_rng(0).integers(0, len(xy), _ALIGN_SAMPLE)
        xy, in_tissue = xy[pick], in_tissue[pick]
    ref = in_tissue if has_in_tissue else None
    fit = _fit(store, xy, ref)
    report: dict[str, Any] = {"fit": fit, "score": "balanced accuracy vs obs['in_tissue']"
                              if ref is not None and ref.any() and (~ref).any()
                              else "fraction of spots/cells on detected tissue"}
    candidates: dict[str, np.ndarray] = {"x and y are swapped in obsm['spatial']": xy[:, ::-1]}
    try:
        sf = layout.scalefactors(lib)
    except InputError:
        sf = {}
    for key in ("hires", "lowres"):
        f = sf.get(f"tissue_{key}_scalef")
        if f:
            candidates[f"obsm['spatial'] is in {key}-image pixels, not full-res pixels "
                       f"(divide it by tissue_{key}_scalef)"] = xy / f
            candidates[f"obsm['spatial'] was multiplied by tissue_{key}_scalef already "
                       f"(it must be in full-res pixels)"] = xy * f
            candidates[f"obsm['spatial'] is in {key}-image pixels with x and y swapped"] = xy[:, ::-1] / f
    scores = {k: _fit(store, v, ref) for k, v in candidates.items()}
    for other, st in stores.items():
        if other not in (lib, "*"):
            scores[f"the spots belong to library '{other}', not '{lib}' "
                   "(check library_key / library_id)"] = _fit(st, xy, ref)
    best = max(scores, key=scores.get) if scores else None
    msg = f"library '{lib}': the spots/cells fit the detected tissue poorly ({report['score']} {fit:.0%})"
    if best is not None and (scores[best] >= max(0.6, fit + 0.2)
                             or (scores[best] >= 0.9 and scores[best] >= fit + 0.08)):
        report["likely_cause"] = best
        report["likely_cause_fit"] = scores[best]
        full = (f"{msg}, but {scores[best]:.0%} if {best}. The image and the coordinates are "
                "misaligned: fix the coordinates or scalefactors (or pass check_alignment='warn' to "
                "continue anyway).")
        if how == "error":
            raise InputError(full)
        warnings.warn(full, UserWarning, stacklevel=3)
    elif fit < _ALIGN_MIN:
        warnings.warn(f"{msg}. Check that the image, scalefactors and coordinates belong together, "
                      "and that the model suits this tissue.", UserWarning, stacklevel=3)
    return report


def assign_regions(adata, regions=None, key_added: str = "region", *,
                   regions_key: str = "regions", library_key: str | None = None,
                   library_id: str | None = None, mode: Mode = "auto",
                   min_tissue_fraction: float = 0.5, check_alignment: str = "error",
                   quad_segs: int = 64, copy: bool = False):
    """Assign each spot or cell to an anatomical region.

    Visium spots are disks of ``spot_diameter_fullres``: their exact area fraction in each
    region is computed (closed-form disk/pixel overlap on the region raster, or shapely
    intersection with polygon regions). Cells use their centroid, or their boundary
    polygon when ``adata.uns['cell_boundaries']`` exists (``td.io.read_merscope``).

    Parameters
    ----------
    adata
        AnnData with ``obsm['spatial']`` (full-resolution pixels) and ``uns['spatial']``.
    regions
        ``None`` (use ``adata.uns[regions_key]`` from :func:`segment_regions`), a uns key,
        a :class:`~topdown.seg.RegionMap` whose image pixels are full-res pixels, a
        GeoDataFrame of polygons in full-res pixels with a ``region`` column, or a dict
        ``library_id -> one of those``.
    key_added
        Name of the ``obs`` column (and prefix of the other outputs).
    regions_key
        ``uns`` key written by :func:`segment_regions`.
    library_key
        ``obs`` column naming each observation's library (several sections in one
        AnnData). Without it, all observations belong to ``library_id`` (or the only one).
    mode
        ``"disk"`` (Visium spots), ``"centroid"``, ``"polygon"`` (cell boundaries) or
        ``"auto"`` (polygon if every cell has an outline, disk for Visium, centroid otherwise;
        it warns when only some cells have outlines, and ``"polygon"`` then raises).
    min_tissue_fraction
        A disk/cell whose tissue share is below this is ``'outside'``; otherwise it gets the
        region with the largest share (ties: the earlier class).
    check_alignment
        ``"error"`` (default): raise when most (in-tissue) spots fall off the detected
        tissue and a common mistake (swapped x/y, wrong scalefactor, wrong library) fits
        much better; ``"warn"`` only warns; ``"ignore"`` skips the check.
    quad_segs
        Segments per quarter circle for polygon disks (vector regions only).
    copy
        Return a modified copy instead of changing ``adata`` in place.

    Returns
    -------
    ``None`` (or the copy). Sets ``obs[key_added]`` (categorical: the classes, then
    ``'outside'``, that at least one observation holds), ``obs[f'{key_added}_confidence']`` (area fraction of the region times
    the mean max model probability over it), ``obsm[f'{key_added}_fractions']``
    (DataFrame, one column per class and ``'outside'``, rows sum to 1; not written when every library is
    assigned by centroid, where it would be one-hot), ``uns[f'{key_added}_colors']``
    (one per category of ``obs[key_added]``, in its order) and ``uns[f'{key_added}_assignment']`` (parameters, alignment report).
    Nothing is changed if an error is raised.

    Examples
    --------
    >>> import topdown as td
    >>> adata = td.io.read_visium("outs")  # doctest: +SKIP
    >>> td.tl.segment_regions(adata, "mouse_brain_coronal")  # doctest: +SKIP
    >>> td.tl.assign_regions(adata)  # doctest: +SKIP
    >>> adata.obs["region"].value_counts()  # doctest: +SKIP
    """
    if mode not in ("auto", "disk", "centroid", "polygon"):
        raise InputError(f"mode must be 'auto', 'disk', 'centroid' or 'polygon', got {mode!r}.")
    if check_alignment not in ("error", "warn", "ignore"):
        raise InputError("check_alignment must be 'error', 'warn' or 'ignore'.")
    if adata.n_obs == 0:
        raise InputError("adata has no observations (spots/cells) to assign.")
    layout = SpatialLayout(adata)  # the spatial layout, read and checked once
    xy = layout.xy
    stores = _as_stores(adata, regions, regions_key)
    groups = _library_groups(adata, layout, stores, regions_key, library_key, library_id)
    in_tissue = (adata.obs["in_tissue"].to_numpy().astype(bool) if "in_tissue" in adata.obs
                 else np.zeros(adata.n_obs, bool))
    results: dict[str, tuple[np.ndarray, _Result]] = {}
    reports: dict[str, Any] = {}
    modes: dict[str, str] = {}
    for lib, idx in groups:
        store = stores.get(lib, stores.get("*"))
        modes[lib], cells, radius = _library_mode(adata, layout, lib, idx, mode)
        res = _decide(_assign_one(xy[idx], store, modes[lib], radius, cells, quad_segs),
                      min_tissue_fraction)
        reports[lib] = _check_alignment(layout, lib, store, xy[idx], in_tissue[idx],
                                        "in_tissue" in adata.obs, stores, check_alignment)
        results[lib] = (idx, res)
    out = adata.copy() if copy else adata
    _write(out, key_added, _combine(results, stores, adata.n_obs))
    out.uns[f"{key_added}_assignment"] = {
        "regions_key": regions_key if regions is None else "<given>",
        "mode": {str(k): v for k, v in modes.items()},
        "min_tissue_fraction": float(min_tissue_fraction),
        "alignment": {str(k): {kk: (float(vv) if isinstance(vv, float) else str(vv))
                               for kk, vv in v.items()} for k, v in reports.items()},
    }
    return out if copy else None


def _library_groups(adata, layout: SpatialLayout, stores: dict[str, StoredRegions], regions_key: str,
                    library_key: str | None, library_id: str | None) -> list[tuple[str, Any]]:
    """``(library, observation index)`` pairs: which observations each library's regions label."""
    if library_key is not None:
        lib_cat = pd.Categorical(library_column(adata, library_key))
        obs_lib = lib_cat.codes
        present = [str(c) for c in lib_cat.categories[np.unique(obs_lib)]]
        missing = sorted(set(present) - set(stores))
        if "*" not in stores and missing:
            raise InputError(f"libraries {missing} (from obs['{library_key}']) have no segmented regions "
                             f"(have: {sorted(stores)}); the image and the coordinates must come from the "
                             f"same library: run segment_regions for those libraries.")
        return [(str(lib_cat.categories[c]), np.flatnonzero(obs_lib == c)) for c in np.unique(obs_lib)]
    if library_id is not None:
        lib = str(library_id)
        if lib not in stores and "*" not in stores:
            raise InputError(f"library_id '{library_id}' has no segmented regions "
                             f"(have: {sorted(stores)}).")
    elif len(stores) == 1:
        lib = next(iter(stores))
        sp_libs = list(layout.libraries)
        if lib == "*" and len(sp_libs) == 1:
            lib = str(sp_libs[0])
    else:
        raise InputError(f"adata.uns['{regions_key}'] has regions for several libraries "
                         f"{sorted(stores)}: pass library_key= (the obs column naming each "
                         "spot's library) or library_id=.")
    return [(lib, slice(None))]


def _library_mode(adata, layout: SpatialLayout, lib: str, idx, mode: str) -> tuple[str, Any, float | None]:
    """The mode one library is assigned with, its cell polygons (or None) and spot radius."""
    sp = layout.libraries
    cells = gap = None
    radius = None
    if mode in ("auto", "polygon"):
        cells = cell_polygons(adata, idx)
        if mode == "polygon" and cells is None:
            raise InputError("mode='polygon' needs cell boundaries in adata.uns['cell_boundaries'] "
                             "(read with td.io.read_merscope or read_cells(boundaries=...)).")
        if cells is not None:
            gap = missing_outlines(adata, idx, cells)
        if gap is not None and mode == "polygon":
            raise InputError(f"library '{lib}': {gap}; add their outlines, or pass mode='centroid'.")
        cells = None if gap is not None else cells
    if mode == "auto":
        tech = layout.technology(lib) if lib in sp else "cells"
        mode = "polygon" if cells is not None else ("disk" if tech.startswith("visium") else "centroid")
        if gap is not None:
            warnings.warn(f"library '{lib}': {gap}, so all its cells are assigned in mode '{mode}', "
                          "not by their outlines; add the missing outlines to assign by polygon.",
                          UserWarning, stacklevel=3)
    if mode == "disk":
        if lib not in sp:
            raise InputError(f"library '{lib}' is not in adata.uns['spatial'], so the spot diameter "
                             "is unknown; add its scalefactors or use mode='centroid'.")
        d = layout.scalefactors(lib).get("spot_diameter_fullres")
        if not d:
            raise InputError(f"scalefactors of library '{lib}' lack 'spot_diameter_fullres' "
                             "(needed for spot disks); add it or use mode='centroid'.")
        radius = float(d) / 2.0
    return mode, cells, radius


@dataclass
class _Combined:
    """All libraries' results in one set of categories (classes first, ``outside`` last)."""

    categories: list[str]
    colors: dict[str, str]
    codes: np.ndarray
    confidence: np.ndarray
    fractions: np.ndarray | None


def _combine(results: dict[str, tuple[np.ndarray, _Result]], stores: dict[str, StoredRegions],
             n_obs: int) -> _Combined:
    # union of classes in first-seen order, 'outside' last; colours in category order
    classes: list[str] = []
    colors: dict[str, str] = {}
    for st in stores.values():
        for c in st.classes:
            if c not in classes:
                classes.append(c)
            colors.setdefault(c, st.colors.get(c, "#000000"))
    colors.setdefault(OUTSIDE, next((st.colors[OUTSIDE] for st in stores.values()
                                     if OUTSIDE in st.colors), "#d9d9d9"))
    categories = [*classes, OUTSIDE]
    # centroid-only results need no fractions matrix (it would be one-hot)
    want_fractions = any(res.fractions is not None for _, res in results.values())
    fractions = np.zeros((n_obs, len(categories)), np.float32) if want_fractions else None
    confidence = np.zeros(n_obs, np.float32)
    code_dtype = np.int8 if len(categories) < 128 else np.int32
    codes = np.zeros(n_obs, dtype=code_dtype)
    for idx, res in results.values():
        n_c = len(res.classes)
        lab_map = np.array([len(categories) - 1] + [categories.index(c) for c in res.classes],
                           dtype=code_dtype)
        codes[idx] = lab_map[res.labels]
        confidence[idx] = res.confidence
        if fractions is not None:
            rows = np.arange(n_obs)[idx]
            if res.fractions is None:
                fractions[rows, lab_map[res.labels]] = 1.0
            else:
                col = np.r_[lab_map[1:], lab_map[0]]
                fractions[np.ix_(rows, col)] = res.fractions[:, [*range(1, n_c + 1), 0]]
    return _Combined(categories, colors, codes, confidence, fractions)


def _write(out, key_added: str, c: _Combined) -> None:
    # only the categories some observation holds: scanpy's group-wise tools refuse an empty
    # group (sc.tl.rank_genes_groups), and the colours follow the categories kept
    out.obs[key_added] = pd.Categorical.from_codes(c.codes, categories=c.categories).remove_unused_categories()
    out.obs[f"{key_added}_confidence"] = c.confidence
    if c.fractions is not None:
        out.obsm[f"{key_added}_fractions"] = pd.DataFrame(c.fractions, index=out.obs_names.copy(),
                                                          columns=c.categories)
    elif f"{key_added}_fractions" in out.obsm:  # stale, from an earlier disk/polygon assignment
        del out.obsm[f"{key_added}_fractions"]
    out.uns[f"{key_added}_colors"] = np.array([c.colors[k] for k in out.obs[key_added].cat.categories],
                                              dtype=object)
