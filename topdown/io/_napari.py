"""Region polygons as a napari shapes layer (napari itself is not needed)."""

from __future__ import annotations

from typing import Any

import numpy as np


def to_napari_shapes(data, *, regions_key: str = "regions", library_id: str | None = None, scale: float = 1.0,
                     opacity: float = 0.5, key: str | None = None) -> tuple[list[np.ndarray], dict[str, Any]]:
    """Region polygons as the ``data`` and keyword arguments of napari's ``viewer.add_shapes``.

    Parameters
    ----------
    data
        An AnnData with stored regions (``uns[regions_key]``, from :func:`topdown.tl.segment_regions`
        or :func:`topdown.io.read_geojson_regions`), or a GeoDataFrame with ``region``,
        ``geometry`` and optionally ``color`` (e.g. from :func:`topdown.io.read_geojson`), in
        full-res pixels.
    regions_key, library_id
        ``uns`` key and library of the regions (AnnData only).
    scale
        Multiplies the coordinates: 1 for the full-resolution image, ``tissue_hires_scalef``
        to lay the shapes on the hires image (or add that image with ``scale=1/scalef``).
    opacity
        Alpha of the face colours (edges are opaque).
    key
        Deprecated name of ``regions_key`` (a FutureWarning).

    Returns
    -------
    ``(shapes, kwargs)``: ``shapes`` is a list of ``(N, 2)`` float arrays of vertices in napari's
    ``(row, col)`` order (y first), one per polygon part of each region, the larger ones first so
    that a region drawn inside another is drawn above it. napari polygons have no holes: each
    hole is a further shape with a transparent face and the region's edge colour, flagged in
    ``properties['hole']``. ``kwargs`` holds ``shape_type`` ``"polygon"``, one RGBA
    ``face_color`` and ``edge_color`` per shape, ``properties`` (``region``, ``hole``) and ``name``.

    Examples
    --------
    >>> import topdown as td
    >>> shapes, kwargs = td.io.to_napari_shapes(adata)  # doctest: +SKIP
    >>> viewer.add_shapes(shapes, **kwargs)  # doctest: +SKIP
    """
    import geopandas as gpd
    import matplotlib.colors as mcolors

    from ..get import regions
    from ..seg.regionmap import default_colors

    gdf = data if isinstance(data, gpd.GeoDataFrame) else regions(data, regions_key, library_id, key=key)
    names = [str(r) for r in gdf["region"]]
    colors = (list(gdf["color"]) if "color" in gdf.columns
              else [default_colors(list(dict.fromkeys(names)))[n] for n in names])
    parts: list[tuple[float, np.ndarray, str, str, bool]] = []  # (area, vertices, region, colour, hole)
    for name, color, geom in zip(names, colors, gdf.geometry.values, strict=True):
        for poly in getattr(geom, "geoms", [geom]):
            if poly.is_empty or poly.geom_type != "Polygon":
                continue
            parts.append((poly.area, _rows_cols(poly.exterior, scale), name, color, False))
            parts += [(0.0, _rows_cols(ring, scale), name, color, True) for ring in poly.interiors]
    parts.sort(key=lambda p: (p[4], -p[0]))  # exteriors, largest first; then the holes
    rgba = np.array([mcolors.to_rgba(p[3]) for p in parts], dtype=float).reshape(-1, 4)
    face = rgba.copy()
    face[:, 3] = [0.0 if p[4] else float(opacity) for p in parts]
    kwargs = {"shape_type": "polygon", "face_color": face, "edge_color": rgba,
              "properties": {"region": np.array([p[2] for p in parts], dtype=object),
                             "hole": np.array([p[4] for p in parts], dtype=bool)},
              "name": key or regions_key}
    return [p[1] for p in parts], kwargs


def _rows_cols(ring, scale: float) -> np.ndarray:
    """Vertices of a ring (x, y) as napari's ``(row, col)``, without the repeated last vertex."""
    xy = np.asarray(ring.coords, dtype=float)[:-1, :2]
    return xy[:, ::-1] * float(scale)
