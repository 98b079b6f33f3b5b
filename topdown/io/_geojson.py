"""Export segmented regions as GeoJSON (QuPath opens it classified and coloured)."""

from __future__ import annotations

import json
import os

from .._files import atomic_write_text, output_file
from ..get import regions
from ._qupath import qupath_properties


def write_geojson(adata, path: str | os.PathLike, *, key: str = "regions",
                  library_id: str | None = None, overwrite: bool = True) -> None:
    """Write the region polygons (full-res pixel coordinates) to a GeoJSON file, atomically.

    Each feature has properties ``region``, ``label``, ``color``, ``area_px`` and those
    QuPath reads (*File > Import objects*, or drag the file onto the full-resolution image):
    ``objectType: "annotation"``, ``classification: {"name": region, "color": [r, g, b]}``,
    ``name`` and ``isLocked``. :func:`topdown.io.read_geojson` and
    :func:`topdown.io.read_geojson_regions` read the file back, also after editing in QuPath.

    Examples
    --------
    >>> import topdown as td
    >>> td.io.write_geojson(adata, "regions.geojson")  # doctest: +SKIP
    """
    out = output_file(path, overwrite=overwrite)
    gdf = regions(adata, key, library_id)
    fc = json.loads(gdf.to_json(drop_id=True))
    for feat in fc["features"]:
        props = feat["properties"]
        props.update(qupath_properties(props["region"], props.get("color") or "#000000"))
    atomic_write_text(out, json.dumps(fc))
