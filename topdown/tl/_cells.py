"""The cell outlines that readers store in ``adata.uns['cell_boundaries']``."""

from __future__ import annotations

import numpy as np
import pandas as pd


def cell_polygons(adata, idx: np.ndarray):
    """Cell boundary polygons (full-res px) of observations ``idx``, or ``None``.

    ``None`` when ``adata.uns['cell_boundaries']`` is absent (readers of :mod:`topdown.io` store
    it for MERSCOPE, Xenium, Visium HD and spatialdata shapes) or lacks one of the cells.
    """
    import shapely

    cb = adata.uns.get("cell_boundaries")
    if not isinstance(cb, dict) or "coords" not in cb:
        return None
    names = pd.Index(np.asarray(cb["obs_names"]).astype(str))
    pos = names.get_indexer(adata.obs_names[idx])
    if (pos < 0).any():
        return None
    offsets = np.asarray(cb["offsets"], dtype=np.int64)
    coords = np.asarray(cb["coords"], dtype=np.float64)
    polys = shapely.polygons(shapely.linearrings(coords, indices=np.repeat(
        np.arange(len(offsets) - 1), np.diff(offsets))))
    return shapely.make_valid(polys[pos])
