"""The cell outlines that readers store in ``adata.uns['cell_boundaries']``."""

from __future__ import annotations

import numpy as np
import pandas as pd


def cell_polygons(adata, idx: np.ndarray | slice):
    """Cell boundary polygons (full-res px) of observations ``idx``, or ``None``.

    ``None`` when ``adata.uns['cell_boundaries']`` is absent (readers of :mod:`topdown.io` store
    it for MERSCOPE, Xenium, Visium HD and spatialdata shapes). A cell the store lacks gets
    ``None`` in the returned object array (:func:`missing_outlines` names them).

    Examples
    --------
    >>> import anndata as ad
    >>> adata = ad.AnnData(np.zeros((2, 1)))
    >>> adata.obs_names = ["a", "b"]
    >>> adata.uns["cell_boundaries"] = {"obs_names": np.array(["a"]), "offsets": np.array([0, 4]),
    ...                                 "coords": np.array([[0., 0], [2, 0], [2, 2], [0, 2]])}
    >>> [None if p is None else p.area for p in cell_polygons(adata, np.arange(2))]
    [4.0, None]
    """
    import shapely

    cb = adata.uns.get("cell_boundaries")
    if not isinstance(cb, dict) or "coords" not in cb:
        return None
    names = pd.Index(np.asarray(cb["obs_names"]).astype(str))
    pos = names.get_indexer(adata.obs_names[idx])
    offsets = np.asarray(cb["offsets"], dtype=np.int64)
    coords = np.asarray(cb["coords"], dtype=np.float64)
    polys = shapely.polygons(shapely.linearrings(coords, indices=np.repeat(
        np.arange(len(offsets) - 1), np.diff(offsets))))
    out = np.full(len(pos), None, dtype=object)
    have = pos >= 0
    out[have] = shapely.make_valid(polys[pos[have]])
    return out


def missing_outlines(adata, idx: np.ndarray | slice, cells) -> str | None:
    """``None`` when every cell of ``idx`` has an outline in ``cells``; else a phrase naming those without.

    Examples
    --------
    >>> import anndata as ad
    >>> adata = ad.AnnData(np.zeros((3, 1)))
    >>> adata.obs_names = ["a", "b", "c"]
    >>> missing_outlines(adata, np.arange(3), np.array([object(), None, None]))
    "2 of 3 cells have no outline in adata.uns['cell_boundaries'] (b, c)"
    """
    gap = np.asarray([c is None for c in cells], dtype=bool)
    if not gap.any():
        return None
    names = list(adata.obs_names[idx][gap][:5])
    more = ", ..." if gap.sum() > len(names) else ""
    return (f"{int(gap.sum())} of {len(gap)} cells have no outline in adata.uns['cell_boundaries'] "
            f"({', '.join(map(str, names))}{more})")
