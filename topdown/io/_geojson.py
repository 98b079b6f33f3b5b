"""Export segmented regions as GeoJSON."""

from __future__ import annotations

import os

from .._files import atomic_write_text, output_file


def regions_geodataframe(adata, key: str = "regions", library_id: str | None = None):
    """Region polygons of one library (full-res pixels) as a GeoDataFrame."""
    from ..errors import InputError
    from ..tl._regions_store import load_store

    stores = load_store(adata, key)
    if library_id is None:
        if len(stores) > 1:
            raise InputError(f"uns['{key}'] holds several libraries {sorted(stores)}; pass library_id=.")
        library_id = next(iter(stores))
    if str(library_id) not in stores:
        raise InputError(f"no regions for library '{library_id}' (have: {sorted(stores)}).")
    return stores[str(library_id)].to_geodataframe()


def write_geojson(adata, path: str | os.PathLike, *, key: str = "regions",
                  library_id: str | None = None, overwrite: bool = True) -> None:
    """Write the region polygons (full-res pixel coordinates) to a GeoJSON file, atomically.

    Each feature has properties ``region``, ``label``, ``color``, ``area_px``.

    Examples
    --------
    >>> import topdown as td
    >>> td.io.write_geojson(adata, "regions.geojson")  # doctest: +SKIP
    """
    out = output_file(path, overwrite=overwrite)
    gdf = regions_geodataframe(adata, key, library_id)
    atomic_write_text(out, gdf.to_json(drop_id=True))
