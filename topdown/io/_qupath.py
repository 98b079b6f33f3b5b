"""QuPath GeoJSON: read hand-drawn region annotations, and the properties QuPath reads back.

QuPath (v0.2 to v0.5) exports objects (*File > Export objects as GeoJSON*) as a
FeatureCollection, or a bare list of Features, in full-resolution image pixels (x = column,
y = row; the ``fullres`` system of ``docs/architecture.md``). Each feature's ``properties``
hold ``objectType`` (``"annotation"``, ``"detection"``, ``"cell"``, ...; ``object_type`` in
v0.2) and ``classification``: ``{"name": str, "color": [r, g, b]}`` (older versions write
``colorRGB``, a packed signed ARGB integer), and optionally ``name`` and ``isLocked``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._files import existing_path
from .._version import __version__
from ..errors import InputError

#: how overlapping annotations are resolved (documented in :func:`read_geojson`)
OVERLAP_RULE = "the smaller annotation lies on top (equal areas: the later one in the file)"
_POLYGONAL = ("Polygon", "MultiPolygon")
_FIX = "export the annotations from QuPath with File > Export objects as GeoJSON"


# -- colours ----------------------------------------------------------------------------
def hex_to_rgb(color: str) -> list[int]:
    """``'#rrggbb'`` (or any matplotlib colour) as QuPath's ``[r, g, b]`` (ints 0-255).

    Examples
    --------
    >>> hex_to_rgb("#1f77b4")
    [31, 119, 180]
    """
    import matplotlib.colors as mcolors

    return [int(round(v * 255)) for v in mcolors.to_rgb(color)]


def rgb_to_hex(rgb: Sequence[int]) -> str:
    """QuPath's ``[r, g, b]`` (ints 0-255) as ``'#rrggbb'``.

    Examples
    --------
    >>> rgb_to_hex([31, 119, 180])
    '#1f77b4'
    """
    return "#{:02x}{:02x}{:02x}".format(*(int(v) for v in rgb[:3]))


def packed_argb(rgb: Sequence[int]) -> int:
    """``[r, g, b]`` as QuPath < 0.4 packs a colour (``colorRGB``): opaque ARGB, signed 32-bit.

    Examples
    --------
    >>> packed_argb([255, 0, 0])
    -65536
    """
    v = (255 << 24) | (int(rgb[0]) << 16) | (int(rgb[1]) << 8) | int(rgb[2])
    return v - (1 << 32)


def qupath_properties(region: str, color: str) -> dict[str, Any]:
    """The feature properties QuPath reads: an annotation classified ``region`` in ``color``.

    ``color`` (the object's colour) is ``[r, g, b]``: QuPath reads a ``color`` property as
    a number or an RGB array and refuses the whole file on a hex string. The classification
    holds ``color`` (QuPath >= 0.4) and the packed ``colorRGB`` (QuPath 0.2-0.3).

    Examples
    --------
    >>> qupath_properties("cortex", "#ff0000")["classification"]
    {'name': 'cortex', 'color': [255, 0, 0], 'colorRGB': -65536}
    """
    rgb = hex_to_rgb(color)
    return {"objectType": "annotation", "name": str(region), "isLocked": False, "color": rgb,
            "classification": {"name": str(region), "color": rgb, "colorRGB": packed_argb(rgb)}}


def _color_of(props: dict, cls: Any, where: str) -> str | None:
    """Hex colour of a feature: classification ``color`` / ``colorRGB``, else a ``color``
    property (topdown's own export), else ``None``."""
    raw = cls.get("color", cls.get("colorRGB")) if isinstance(cls, dict) else None
    if raw is None:
        raw = props.get("color")
    if raw is None:
        return None
    if isinstance(raw, bool):
        raise InputError(f"{where}: the classification colour {raw!r} is not a colour; {_FIX}.")
    if isinstance(raw, (int, np.integer)):  # QuPath < 0.3: packed (signed) ARGB
        v = int(raw) & 0xFFFFFF
        return rgb_to_hex([(v >> 16) & 255, (v >> 8) & 255, v & 255])
    if isinstance(raw, (list, tuple)) and len(raw) in (3, 4) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 255 for v in raw):
        return rgb_to_hex([int(round(v)) for v in raw])
    if isinstance(raw, str):
        import matplotlib.colors as mcolors

        if mcolors.is_color_like(raw):
            return mcolors.to_hex(raw)
    raise InputError(f"{where}: the classification colour {raw!r} is not [r, g, b] with values 0-255; "
                     f"fix it or {_FIX}.")


# -- parsing ----------------------------------------------------------------------------
def _load_features(path) -> tuple[list, str, str]:
    """The features of a GeoJSON file, its resolved path and its SHA-256."""
    p = existing_path(path, "GeoJSON file")
    if p.is_dir():
        raise InputError(f"'{p}' is a folder; pass the .geojson file QuPath exported.")
    raw = p.read_bytes()
    try:
        doc = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"'{p}' is not JSON ({e}); {_FIX}.") from None
    if isinstance(doc, dict) and doc.get("type") == "Feature":
        doc = [doc]
    elif isinstance(doc, dict) and isinstance(doc.get("features"), list):
        doc = doc["features"]
    if not isinstance(doc, list):
        kind = doc.get("type") if isinstance(doc, dict) else type(doc).__name__
        raise InputError(f"'{p}' holds a {kind}, not a FeatureCollection or a list of Features; {_FIX}.")
    if not doc:
        raise InputError(f"'{p}' holds no features (an empty collection); draw and classify annotations "
                         f"in QuPath first, then {_FIX}.")
    return doc, str(p), hashlib.sha256(raw).hexdigest()


def _props(feat: dict) -> dict:
    props = feat.get("properties")
    return props if isinstance(props, dict) else {}


def _feature_name(i: int, feat: dict) -> str:
    props = _props(feat)
    label = props.get("name") or feat.get("id") or props.get("region")
    return f"feature {i}" + (f" ('{label}')" if label else "")


def _class_name(props: dict, cls: Any) -> str | None:
    if isinstance(cls, str):
        return cls or None
    if isinstance(cls, dict):
        if cls.get("name"):
            return str(cls["name"])
        if cls.get("names"):  # derived classes, e.g. ["Tumor", "Positive"]
            return ": ".join(str(n) for n in cls["names"])
    return None if props.get("region") is None else str(props["region"])  # topdown's own export


def _geometry(feat: dict, where: str, path: str):
    import shapely
    from shapely.geometry import shape

    geom = feat.get("geometry")
    if not isinstance(geom, dict) or "type" not in geom:
        raise InputError(f"'{path}' {where} has no geometry; {_FIX}.")
    kind = geom["type"]
    if kind == "GeometryCollection":  # QuPath writes one for some edited shapes
        kinds = sorted({g.get("type") for g in geom.get("geometries", []) if isinstance(g, dict)})
        if not kinds or set(kinds) - set(_POLYGONAL):
            kind = f"GeometryCollection of {kinds}"
    if kind not in (*_POLYGONAL, "GeometryCollection"):
        raise InputError(f"'{path}' {where} is a {kind}, not an area (Polygon or MultiPolygon); regions "
                         "must be area annotations: delete points and lines in QuPath or export only the "
                         "region annotations.")
    try:
        g = shape(geom)
    except Exception as e:  # malformed coordinates
        raise InputError(f"'{path}' {where} has malformed coordinates ({e}); {_FIX}.") from None
    coords = shapely.get_coordinates(g)
    if not np.isfinite(coords).all():
        raise InputError(f"'{path}' {where} has non-finite coordinates; {_FIX}.")
    if not g.is_valid:  # self-intersections from hand drawing
        g = shapely.make_valid(g)
        polys = [p for p in getattr(g, "geoms", [g]) if p.geom_type in _POLYGONAL]
        g = shapely.union_all(polys) if polys else shapely.Polygon()
    if g.is_empty or g.area <= 0:
        raise InputError(f"'{path}' {where} encloses no area; delete it in QuPath or redraw it.")
    return g


def read_geojson(path: str | os.PathLike, *, object_types: Sequence[str] | None = None,
                 default_class: str | None = None, flatten: bool = False):
    """Read region annotations from a QuPath (or topdown) GeoJSON file.

    Parameters
    ----------
    path
        A ``.geojson`` file: a FeatureCollection or a bare list of Features with Polygon or
        MultiPolygon geometries in full-resolution image pixels (x = column, y = row), as
        QuPath's *File > Export objects as GeoJSON* or :func:`topdown.io.write_geojson` writes.
    object_types
        Keep only these ``objectType`` values (e.g. ``("annotation",)``); ``None`` keeps all.
        A feature without ``objectType`` counts as an ``"annotation"``.
    default_class
        Class name for unclassified features; ``None`` (default) raises an error naming them.
    flatten
        Resolve overlaps and merge each class into one (Multi)Polygon: the result then has no
        overlapping rows and can be passed as ``regions=`` to :func:`topdown.tl.assign_regions`.
        Overlaps are resolved as in a stack of paper cut-outs: the smaller annotation lies on
        top (equal areas: the later one in the file), so a region drawn inside another one
        keeps its area and is cut out of the larger one.

    Returns
    -------
    geopandas.GeoDataFrame with columns ``region`` (class name), ``color`` (hex; from the
    classification's ``color`` or packed ``colorRGB``, else a default per class),
    ``object_type``, ``name`` and ``geometry``: one row per feature, in file order, or one
    per class with ``flatten=True`` (then ``label`` 1..n in first-seen order, not
    ``name``).

    Raises
    ------
    topdown.errors.InputError
        When the file is not JSON, is empty, holds a geometry that is not an area, an
        unclassified feature (without ``default_class``), or a malformed colour.

    Examples
    --------
    >>> import topdown as td
    >>> gdf = td.io.read_geojson("drawn.geojson", object_types=["annotation"])  # doctest: +SKIP
    >>> gdf[["region", "color", "object_type"]]  # doctest: +SKIP
    """
    gdf, _, _ = _read(path, object_types, default_class)
    return flatten_regions(gdf) if flatten else gdf


def _read(path, object_types: Sequence[str] | None, default_class: str | None):
    """One row per kept feature, the resolved path and the file's SHA-256."""
    import geopandas as gpd

    from ..seg.regionmap import default_colors

    feats, where_file, sha = _load_features(path)
    rows = []
    keep = None if object_types is None else {str(t).lower() for t in object_types}
    for i, feat in enumerate(feats):
        if not isinstance(feat, dict):
            raise InputError(f"'{where_file}' feature {i} is a {type(feat).__name__}, not a Feature; {_FIX}.")
        props = _props(feat)
        otype = str(props.get("objectType", props.get("object_type", "annotation"))).lower()
        if keep is not None and otype not in keep:
            continue
        where = _feature_name(i, feat)
        cls = props.get("classification")
        name = _class_name(props, cls) or default_class
        if name is None:
            raise InputError(f"'{where_file}' {where} ({otype}) has no classification; classify it in QuPath "
                             "(right-click > Set classification) or pass default_class='<region name>'.")
        rows.append({"region": name, "color": _color_of(props, cls, f"'{where_file}' {where}"),
                     "object_type": otype, "name": str(props.get("name") or ""),
                     "geometry": _geometry(feat, where, where_file)})
    if not rows:
        raise InputError(f"'{where_file}' has no features of object type {sorted(keep or [])}; pass "
                         "object_types= with the types it holds (e.g. 'detection').")
    gdf = gpd.GeoDataFrame(rows, columns=["region", "color", "object_type", "name", "geometry"],
                           geometry="geometry")
    defaults = default_colors(list(dict.fromkeys(gdf["region"])))
    first: dict[str, str] = {}  # a class keeps the first colour it is given
    for r, c in zip(gdf["region"], gdf["color"], strict=True):
        if c is not None:
            first.setdefault(r, c)
    gdf["color"] = [first.get(r, defaults[r]) for r in gdf["region"]]
    return gdf, where_file, sha


def flatten_regions(gdf):
    """One non-overlapping (Multi)Polygon per class; the smaller feature lies on top.

    ``gdf`` has ``region``, ``color`` and ``geometry`` columns (one row per drawn feature);
    the result has ``region``, ``label`` (1..n, classes in first-seen order), ``color``,
    ``object_type``, ``area_px`` and ``geometry``. A class covered entirely by smaller ones
    keeps its row, with an empty geometry.
    """
    import geopandas as gpd
    import shapely

    geoms = list(gdf.geometry.values)
    order = sorted(range(len(geoms)), key=lambda i: (-geoms[i].area, i))  # bottom -> top
    covered = shapely.Polygon()
    visible = [None] * len(geoms)
    for i in reversed(order):  # top first: each keeps what nothing above it covers
        visible[i] = geoms[i].difference(covered)
        covered = covered.union(geoms[i])
    classes = list(dict.fromkeys(str(r) for r in gdf["region"]))
    rows = []
    for lab, name in enumerate(classes, start=1):
        sel = [k for k, r in enumerate(gdf["region"]) if str(r) == name]
        geom = shapely.union_all([visible[k] for k in sel])
        rows.append({"region": name, "label": lab, "color": gdf["color"].iloc[sel[0]],
                     "object_type": "annotation", "area_px": float(geom.area), "geometry": geom})
    return gpd.GeoDataFrame(rows, columns=["region", "label", "color", "object_type", "area_px", "geometry"],
                            geometry="geometry")


def _check_in_image(gdf, extent: tuple[float, float], lib: str, path: str) -> None:
    """Every drawn region lies on the library's image (full-res pixels, 1 % + 2 px slack)."""
    H, W = extent
    tol = 2.0 + 0.01 * max(H, W)
    for _, row in gdf.iterrows():
        if row.geometry.is_empty:
            continue
        x0, y0, x1, y1 = row.geometry.bounds
        if x0 < -tol or y0 < -tol or x1 > W + tol or y1 > H + tol:
            raise InputError(
                f"'{path}': region '{row['region']}' spans x {x0:.0f}..{x1:.0f}, y {y0:.0f}..{y1:.0f} but the "
                f"image of library '{lib}' is {W:.0f} x {H:.0f} full-resolution pixels; export the "
                "annotations drawn on this library's full-resolution image (QuPath writes full-res pixels), "
                "or pass the right library_id=.")


def _drawn_regions(source, object_types, default_class) -> tuple[Any, str, dict]:
    """The flattened regions of a GeoJSON path or GeoDataFrame, a name for messages, provenance."""
    import geopandas as gpd

    from ..seg.regionmap import default_colors

    if isinstance(source, gpd.GeoDataFrame):
        if "region" not in source.columns:
            raise InputError("the GeoDataFrame has no 'region' column; add one naming each polygon's region.")
        gdf = source.copy()
        defaults = default_colors(list(dict.fromkeys(gdf["region"].astype(str))))
        if "color" not in gdf.columns:
            gdf["color"] = [defaults[str(r)] for r in gdf["region"]]
        return flatten_regions(gdf), "<GeoDataFrame>", {"source": "GeoDataFrame"}
    drawn, where, sha = _read(source, object_types, default_class)
    return flatten_regions(drawn), where, {"source": "geojson", "path": where, "sha256": sha}


def _to_fullres(flat, layout, lib: str, coordinates: str):
    """``flat`` with its polygons in full-res pixels (they are in ``coordinates``)."""
    import shapely

    if coordinates == "fullres":
        return flat
    f = layout.scalefactors(lib).get(f"tissue_{coordinates}_scalef")
    if not f:
        raise InputError(f"coordinates must be 'fullres' or an image key with a tissue_<key>_scalef "
                         f"('hires', 'lowres'); library '{lib}' has no tissue_{coordinates}_scalef.")
    flat = flat.copy()
    flat["geometry"] = shapely.transform(flat.geometry.values, lambda xy: xy / float(f))
    flat["area_px"] = flat.geometry.area
    return flat


def _check_frame(flat, layout, lib: str, where: str) -> None:
    """Warn when the polygons look drawn on a stored (hires/lowres) image, not the full-res one:
    few spots lie in them, many would if they were in that image's pixels."""
    import warnings

    import shapely

    adata = layout.adata
    xy = layout.xy
    if "in_tissue" in adata.obs and adata.obs["in_tissue"].astype(int).any():
        xy = xy[adata.obs["in_tissue"].to_numpy().astype(int) == 1]
    union = shapely.union_all(flat.geometry.values)
    if not len(xy) or union.is_empty:
        return
    on = float(shapely.contains_xy(union, xy[:, 0], xy[:, 1]).mean())
    for key in ("hires", "lowres"):
        f = layout.scalefactors(lib).get(f"tissue_{key}_scalef")
        if not f or on >= 0.5 or f > 0.9:
            continue
        on_k = float(shapely.contains_xy(union, xy[:, 0] * f, xy[:, 1] * f).mean())
        if on_k >= max(0.6, on + 0.2):
            warnings.warn(f"'{where}': the drawn regions hold {on:.0%} of the spots, but {on_k:.0%} if their "
                          f"coordinates are {key}-image pixels (QuPath had the {key} image open); if so, pass "
                          f"coordinates='{key}'.", UserWarning, stacklevel=3)
            return


def read_geojson_regions(adata, source, library_id: str | None = None, key_added: str = "regions", *,
                         object_types: Sequence[str] | None = ("annotation",),
                         default_class: str | None = None, coordinates: str = "fullres",
                         image_key: str | None = None, copy: bool = False):
    """Store hand-drawn regions (QuPath GeoJSON) in ``adata.uns[key_added]``, like a segmentation.

    The annotations take the place of :func:`topdown.tl.segment_regions`:
    :func:`topdown.tl.assign_regions`, :func:`topdown.tl.region_de`, ``td.pl.regions`` and
    :func:`topdown.io.write_geojson` then work on them unchanged. The regions are stored as
    exact polygons (no raster), flattened by the rule of :func:`read_geojson`
    (``flatten=True``): where annotations overlap, the smaller one lies on top (equal areas:
    the later one in the file), so a region drawn inside another is cut out of it.

    Parameters
    ----------
    adata
        AnnData with ``obsm['spatial']`` and ``uns['spatial']`` (full-res pixel coordinates).
    source
        Path of a GeoJSON file (QuPath's export, or :func:`topdown.io.write_geojson`'s), or a
        GeoDataFrame with ``region`` and ``geometry`` (optional ``color``).
    library_id
        Library the annotations were drawn on; may be omitted when there is one.
    key_added
        ``uns`` key receiving the regions (that of ``assign_regions(regions_key=)``).
    object_types
        ``objectType`` values to keep (default: annotations; detections and cells are skipped).
    default_class
        Class name for unclassified annotations; ``None`` raises an error naming them.
    coordinates
        Pixels of the image the annotations were drawn on: ``"fullres"`` (default; the slide
        itself, as for ``obsm['spatial']``), or ``"hires"`` / ``"lowres"`` when QuPath had
        Space Ranger's ``tissue_hires_image.png`` open (divided by ``tissue_<key>_scalef``).
        A warning suggests it when the regions fit the spots only in such pixels.
    image_key
        Image whose extent the polygons are checked against (default: hires, else lowres).
    copy
        Return a modified copy instead of changing ``adata`` in place.

    Returns
    -------
    ``None`` (or the copy). Sets ``adata.uns[key_added]['libraries'][library_id]`` (replacing
    a segmentation of that library there) with the polygons in full-res pixels, ``classes``
    (in first-seen order), ``colors`` and ``provenance`` (file, SHA-256, overlap rule).
    Nothing is changed if an error is raised.

    Raises
    ------
    topdown.errors.InputError
        As :func:`read_geojson`, and when a region lies outside the library's image or a
        class is named ``outside``.

    Examples
    --------
    Annotations drawn in QuPath on the slide of a Visium section, then the spots labelled:

    >>> import topdown as td
    >>> adata = td.io.read_visium("outs")  # doctest: +SKIP
    >>> td.io.read_geojson_regions(adata, "drawn_in_qupath.geojson")  # doctest: +SKIP
    >>> td.tl.assign_regions(adata)  # doctest: +SKIP
    """
    from ..get import SpatialLayout, StoredRegions, store_entry
    from ..seg.regionmap import OUTSIDE, default_colors

    layout = SpatialLayout(adata)
    libs = layout.resolve(library_id)
    if len(libs) != 1:
        raise InputError(f"adata has several libraries {libs}; pass library_id= (the one the annotations "
                         "were drawn on).")
    lib = libs[0]
    flat, where, prov = _drawn_regions(source, object_types, default_class)
    if OUTSIDE in set(flat["region"]):
        raise InputError(f"'{where}': the class name '{OUTSIDE}' is reserved for what lies outside every region; "
                         "rename that class in QuPath.")
    flat = _to_fullres(flat, layout, lib, coordinates)
    try:
        key, image, scalef = layout.image(lib, image_key)
    except InputError:  # no image to check against (cells without an image)
        key, image, scalef = "", None, None
    if image is not None:
        _check_in_image(flat, (image.shape[0] / scalef, image.shape[1] / scalef), lib, where)
    if "spatial" in adata.obsm and len(layout.libraries) == 1:
        _check_frame(flat, layout, lib, where)
    colors = {**default_colors([]), **dict(zip(flat["region"], flat["color"], strict=True))}
    prov.update({"model_name": "hand-drawn annotations", "object_types": list(object_types or []),
                 "coordinates": coordinates, "overlap_rule": OVERLAP_RULE, "topdown_version": __version__})
    shown = flat[~flat.geometry.is_empty]
    stored = StoredRegions(classes=tuple(flat["region"]), colors=colors, image_key=key,
                           image_shape=None if image is None else tuple(int(v) for v in image.shape[:2]),
                           geojson=shown.drop(columns=["object_type"]).to_json(drop_id=True), provenance=prov)
    out = adata.copy() if copy else adata
    out.uns[key_added] = store_entry(adata.uns.get(key_added), lib, stored)
    return out if copy else None
