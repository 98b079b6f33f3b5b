"""Export segmented regions as GeoJSON."""

from __future__ import annotations

import os

from .._files import atomic_write_text, output_file
from ..get import regions


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
    gdf = regions(adata, key, library_id)
    atomic_write_text(out, gdf.to_json(drop_id=True))
