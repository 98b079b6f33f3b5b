"""Tables of results stored in an AnnData: region polygons, region-level DE."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..errors import InputError
from ._regions_store import load_store

#: Columns of the tidy region-level DE table (:func:`topdown.tl.region_de`), in order.
REGION_DE_COLUMNS = ("region", "group", "reference", "gene", "log2fc", "lfc_se", "stat", "pvalue",
                     "padj", "base_mean", "n_samples_group", "n_samples_reference", "n_cells_group",
                     "n_cells_reference", "method", "exploratory")


def regions(adata, regions_key: str = "regions", library_id: str | None = None, *, key: str | None = None):
    """The segmented region polygons of one library, in full-resolution pixels.

    Parameters
    ----------
    adata
        AnnData after :func:`topdown.tl.segment_regions` (or ``assign_regions`` with
        ``regions=``).
    regions_key
        ``uns`` key of the stored regions (``key_added`` of :func:`topdown.tl.segment_regions`).
    library_id
        Library to read; may be omitted when ``uns[regions_key]`` holds one library only.
    key
        Deprecated name of ``regions_key``.

    Returns
    -------
    :class:`geopandas.GeoDataFrame` with columns ``region``, ``label``, ``color``,
    ``geometry`` (and ``area_px`` for segmented rasters).

    Examples
    --------
    >>> import topdown as td
    >>> td.get.regions(adata).plot(color=td.get.regions(adata)["color"])  # doctest: +SKIP
    """
    if key is None:
        key = regions_key
    else:
        warnings.warn("td.get.regions(key=) is deprecated: pass regions_key=", FutureWarning, stacklevel=2)
    stores = load_store(adata, key)
    if library_id is None:
        if len(stores) > 1:
            raise InputError(f"uns['{key}'] holds several libraries {sorted(stores)}; pass library_id=.")
        library_id = next(iter(stores))
    if str(library_id) not in stores:
        raise InputError(f"no regions for library '{library_id}' (have: {sorted(stores)}).")
    return stores[str(library_id)].to_geodataframe()


def region_de_df(adata, key: str = "region_de") -> pd.DataFrame:
    """The tidy DataFrame stored by :func:`topdown.tl.region_de` in ``adata.uns[key]``.

    Parameters
    ----------
    adata
        AnnData on which ``region_de`` ran (or one read back from h5ad).
    key
        ``uns`` key of the results (``key_added`` of ``region_de``).

    Returns
    -------
    DataFrame with the columns of :data:`REGION_DE_COLUMNS` first; ``attrs`` holds
    ``method``, ``exploratory`` and the call's ``params``.

    Examples
    --------
    >>> import topdown as td
    >>> res = td.get.region_de_df(adata)  # doctest: +SKIP
    """
    if key not in adata.uns or "results" not in adata.uns[key]:
        raise InputError(f"adata.uns['{key}'] holds no region DE results; run td.tl.region_de(adata) first.")
    rec = adata.uns[key]
    df = pd.DataFrame({c: np.asarray(v) for c, v in rec["results"].items()})
    cols = REGION_DE_COLUMNS
    df = df[[c for c in cols if c in df.columns] + [c for c in df.columns if c not in cols]]
    df.attrs.update({"method": rec["params"].get("method"),
                     "exploratory": bool(rec["params"].get("exploratory", False)),
                     "params": dict(rec["params"])})
    return df
