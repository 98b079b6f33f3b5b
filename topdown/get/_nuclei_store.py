"""How segmented nuclei live in ``adata.uns[key]`` (h5ad-serialisable) and come back.

Layout of ``adata.uns[key]`` (default key ``"nuclei"``), beside the regions' layout::

    {"libraries": {library_id: {
         "geojson": str,              # FeatureCollection, nucleus outlines in FULL-RES pixels
         "centroids": float (n, 2),   # x, y in full-res pixels
         "area_um2": float (n,),
         "region": str (n,),          # region under each centroid ("" without regions)
         "image_key": str, "pixel_size_um": float,  # µm per image pixel segmented
         "provenance": {...}}},
     "per_region": DataFrame}         # library, region, n_nuclei, area_mm2, nuclei_per_mm2
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from ..errors import InputError


def nuclei(adata, nuclei_key: str = "nuclei", library_id: str | None = None):
    """The segmented nuclei of one library as a GeoDataFrame (full-resolution pixels).

    Parameters
    ----------
    adata
        AnnData after :func:`topdown.tl.segment_nuclei`.
    nuclei_key
        ``uns`` key of the stored nuclei.
    library_id
        Library to read; may be omitted when one library was segmented.

    Returns
    -------
    :class:`geopandas.GeoDataFrame` with ``x``, ``y`` (centroid), ``area_um2``, ``region``
    and the outline ``geometry``.

    Examples
    --------
    >>> import topdown as td
    >>> td.get.nuclei(adata).plot()  # doctest: +SKIP
    """
    import geopandas as gpd
    import shapely

    store = adata.uns.get(nuclei_key)
    if not isinstance(store, dict) or not store.get("libraries"):
        raise InputError(f"adata.uns['{nuclei_key}'] holds no nuclei; run td.tl.segment_nuclei(adata) first.")
    libs = store["libraries"]
    if library_id is None:
        if len(libs) != 1:
            raise InputError(f"adata.uns['{nuclei_key}'] holds several libraries {sorted(libs)}; pass library_id=.")
        library_id = next(iter(libs))
    if str(library_id) not in libs:
        raise InputError(f"library '{library_id}' has no nuclei in adata.uns['{nuclei_key}'] "
                         f"(available: {sorted(libs)}).")
    d = libs[str(library_id)]
    feats = json.loads(str(d.get("geojson") or '{"features": []}'))["features"]
    geoms = [shapely.geometry.shape(f["geometry"]) if f.get("geometry") else None for f in feats]
    xy = np.asarray(d["centroids"], dtype=float).reshape(-1, 2)
    if len(geoms) != len(xy):
        geoms = list(shapely.points(xy))
    region = np.asarray(d.get("region", np.full(len(xy), "", dtype=object))).astype(str)
    return gpd.GeoDataFrame({"x": xy[:, 0], "y": xy[:, 1], "area_um2": np.asarray(d["area_um2"], float),
                             "region": region}, geometry=geoms)


def nuclei_per_region(adata, nuclei_key: str = "nuclei") -> pd.DataFrame:
    """Nuclei counts, tissue areas and densities per library and region.

    Examples
    --------
    >>> import topdown as td
    >>> td.get.nuclei_per_region(adata).head()  # doctest: +SKIP
    """
    store = adata.uns.get(nuclei_key)
    if not isinstance(store, dict) or "per_region" not in store:
        raise InputError(f"adata.uns['{nuclei_key}'] holds no per-region counts; run td.tl.segment_nuclei "
                         "after td.tl.segment_regions.")
    return pd.DataFrame(store["per_region"])
