"""Export region polygons as GeoJSON (QuPath opens it classified and coloured)."""

from __future__ import annotations

import json
import os
from typing import Any

from .._files import atomic_write_text, output_file
from ..get import regions
from ._qupath import qupath_properties


def write_geojson(adata, path: str | os.PathLike, *, regions_key: str = "regions",
                  library_id: str | None = None, overwrite: bool = True,
                  metadata: dict[str, Any] | None = None, key: str | None = None) -> None:
    """Write the region polygons (full-res pixel coordinates) to a GeoJSON file, atomically.

    Each feature has properties ``region``, ``label``, ``color_hex`` (``'#rrggbb'``),
    ``area_px`` and those QuPath reads (*File > Import objects*, or drag the file onto the
    full-resolution image): ``objectType: "annotation"``, ``classification: {"name": region,
    "color": [r, g, b], "colorRGB": packed}``, ``color`` (``[r, g, b]``; QuPath refuses a
    file whose ``color`` is a hex string), ``name`` and ``isLocked``.
    :func:`topdown.io.read_geojson` and :func:`topdown.io.read_geojson_regions` read the file
    back, also after editing in QuPath.

    Parameters
    ----------
    adata
        AnnData with stored regions (``uns[regions_key]``), or a GeoDataFrame with ``region``,
        ``geometry`` and optionally ``label``, ``color`` (hex) and ``area_px``.
    path
        Output ``.geojson`` file.
    regions_key, library_id
        ``uns`` key and library of the regions (AnnData only).
    overwrite
        Allow replacing an existing (writable) file.
    metadata
        Stored as the collection's top-level ``"topdown"`` member (provenance).
    key
        Deprecated name of ``regions_key`` (a FutureWarning).

    Examples
    --------
    >>> import topdown as td
    >>> td.io.write_geojson(adata, "regions.geojson")  # doctest: +SKIP
    """
    import geopandas as gpd

    out = output_file(path, overwrite=overwrite)
    gdf = adata if isinstance(adata, gpd.GeoDataFrame) else regions(adata, regions_key, library_id, key=key)
    fc = json.loads(gdf.to_json(drop_id=True))
    for feat in fc["features"]:
        props = feat["properties"]
        props["color_hex"] = props.get("color") or "#000000"
        props.update(qupath_properties(props["region"], props["color_hex"]))
    if metadata is not None:
        fc["topdown"] = metadata
    atomic_write_text(out, json.dumps(fc))
