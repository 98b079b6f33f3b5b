"""How segmented regions live in ``adata.uns[key]`` (h5ad-serialisable) and come back.

Layout of ``adata.uns[key]`` (default key ``"regions"``)::

    {"libraries": {library_id: {
         "geojson": str,            # FeatureCollection, polygons in FULL-RES pixels
         "classes": [str],          # region names, label k = classes[k-1]
         "colors": [hex],           # colour of each class (same order)
         "outside_color": hex,
         "labels": uint8/uint16 (h, w) raster at map resolution (0 = outside),
         "max_probability": float16 (h, w) (only when the model gave probabilities),
         "scale_to_fullres": float, # full-res pixels per map pixel
         "pixel_size_um": float,    # micrometres per map pixel (NaN when unknown)
         "image_key": str, "image_shape": [H, W],
         "provenance": {...}}},     # model, weights hash, topdown version, parameters
     "classes": [str]}              # union over libraries, in first-seen order
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError
from ..seg.regionmap import OUTSIDE, FullresScale, MapScale, RegionMap


@dataclass
class StoredRegions:
    """Regions of one library, in full-res pixel coordinates.

    ``scale`` places the raster (``labels``, ``max_probability``) on the other coordinate
    systems: full-res pixels (``scale.fullres``, stored as ``scale_to_fullres``) and
    micrometres (``scale.um``, stored as ``pixel_size_um``) per map pixel.
    """

    classes: tuple[str, ...]
    colors: dict[str, str]
    labels: np.ndarray | None = None
    max_probability: np.ndarray | None = None
    scale: MapScale = MapScale(image=None, fullres=1.0)
    image_key: str = ""
    image_shape: tuple[int, int] | None = None
    geojson: str | None = None
    provenance: dict[str, Any] = field(default_factory=dict)

    # -- construction ---------------------------------------------------------------
    @classmethod
    def from_regionmap(cls, rmap: RegionMap, scalef: float | FullresScale, image_key: str = "",
                       provenance: dict | None = None) -> StoredRegions:
        """The regions of ``rmap`` placed on full-res pixels.

        ``scalef``: the size of one full-res pixel in the segmented image's pixels, a
        :class:`~topdown.seg.regionmap.FullresScale` or its ``image`` number (Visium
        ``tissue_*_scalef``); ``scale.fullres`` = ``rmap.downsample / scalef``.
        """
        fullres = scalef if isinstance(scalef, FullresScale) else FullresScale(image=float(scalef))
        maxp = None
        if rmap.probabilities is not None:
            maxp = np.asarray(rmap.probabilities).max(axis=0).astype(np.float16)
        nmax = len(rmap.classes)
        labels = np.asarray(rmap.labels).astype(np.uint8 if nmax < 256 else np.uint16)
        out = cls(classes=tuple(rmap.classes), colors=dict(rmap.colors), labels=labels,
                  max_probability=maxp, scale=rmap.scale.on_fullres(fullres), image_key=image_key,
                  image_shape=tuple(int(v) for v in rmap.image_shape) if rmap.image_shape else None,
                  provenance=dict(provenance or {}))
        out.geojson = out.to_geodataframe().to_json(drop_id=True)
        return out

    @classmethod
    def from_geodataframe(cls, gdf, colors: dict | None = None,
                          region_col: str = "region") -> StoredRegions:
        """Polygons already in full-res pixels (a ``region`` column names each one)."""
        from ..seg.regionmap import default_colors

        if region_col not in gdf.columns:
            raise InputError(f"the regions GeoDataFrame has no '{region_col}' column; "
                             "add one naming the region of each polygon.")
        names = [str(v) for v in dict.fromkeys(gdf[region_col].astype(str))]
        cols = default_colors(names)
        if "color" in gdf.columns:
            cols.update({str(r): str(c) for r, c in zip(gdf[region_col], gdf["color"], strict=True)})
        cols.update(colors or {})
        return cls(classes=tuple(names), colors=cols, geojson=gdf.to_json(drop_id=True))

    # -- views ----------------------------------------------------------------------
    @property
    def scale_to_fullres(self) -> float:
        """Full-res pixels per map pixel."""
        return self.scale.per_map("fullres")

    @property
    def pixel_size_um(self) -> float | None:
        """Micrometres per map pixel (``None`` when unknown)."""
        return self.scale.um

    @property
    def has_raster(self) -> bool:
        return self.labels is not None

    def to_geodataframe(self):
        """Region polygons in full-res pixels (columns region, label, color, geometry)."""
        import geopandas as gpd
        import shapely

        if self.labels is not None:
            rmap = RegionMap(self.labels, self.classes, downsample=1.0, colors=self.colors)
            gdf = rmap.to_geodataframe(coords="map")
            gdf["geometry"] = shapely.transform(gdf.geometry.values,
                                                lambda xy: self.scale.from_map(xy, "fullres"))
            gdf["area_px"] = gdf.geometry.area
            return gpd.GeoDataFrame(gdf, geometry="geometry")
        gdf = gpd.GeoDataFrame.from_features(json.loads(self.geojson)["features"])
        if "label" not in gdf.columns:
            gdf["label"] = [self.classes.index(str(r)) + 1 for r in gdf["region"]]
        gdf["color"] = [self.colors.get(str(r), "#000000") for r in gdf["region"]]
        return gdf

    # -- (de)serialisation -----------------------------------------------------------
    def to_uns(self) -> dict:
        d: dict[str, Any] = {
            "geojson": self.geojson or "",
            "classes": np.array(self.classes, dtype=object),
            "colors": np.array([self.colors.get(c, "#000000") for c in self.classes], dtype=object),
            "outside_color": self.colors.get(OUTSIDE, "#d9d9d9"),
            "scale_to_fullres": float(self.scale_to_fullres),
            "pixel_size_um": float("nan") if self.pixel_size_um is None else float(self.pixel_size_um),
            "image_key": self.image_key,
            "provenance": _h5_safe(self.provenance),
        }
        if self.labels is not None:
            d["labels"] = self.labels
        if self.max_probability is not None:
            d["max_probability"] = self.max_probability
        if self.image_shape is not None:
            d["image_shape"] = np.array(self.image_shape, dtype=np.int64)
        return d

    @classmethod
    def from_uns(cls, d: dict) -> StoredRegions:
        classes = tuple(str(c) for c in np.asarray(d["classes"]).tolist())
        colors = dict(zip(classes, (str(c) for c in np.asarray(d["colors"]).tolist()), strict=True))
        colors[OUTSIDE] = str(d.get("outside_color", "#d9d9d9"))
        psz = float(d.get("pixel_size_um", float("nan")))
        shape = d.get("image_shape")
        return cls(classes=classes, colors=colors,
                   labels=None if d.get("labels") is None else np.asarray(d["labels"]),
                   max_probability=None if d.get("max_probability") is None
                   else np.asarray(d["max_probability"]),
                   scale=MapScale(image=None, fullres=float(d.get("scale_to_fullres", 1.0)),
                                  um=None if math.isnan(psz) else psz),
                   image_key=str(d.get("image_key", "")),
                   image_shape=None if shape is None else tuple(int(v) for v in np.asarray(shape)),
                   geojson=str(d.get("geojson", "")) or None,
                   provenance=dict(d.get("provenance", {})))


def _h5_safe(obj):
    """Make a provenance dict writable to h5ad: drop None, stringify exotic values."""
    if isinstance(obj, dict):
        return {str(k): _h5_safe(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, (list, tuple)):
        vals = [v for v in obj if v is not None]
        if all(isinstance(v, (int, float, bool, np.number)) for v in vals) and vals:
            return np.asarray(vals)
        return np.array([str(v) for v in vals], dtype=object)
    if isinstance(obj, (str, int, float, bool, np.number, np.ndarray)):
        return obj
    return str(obj)


def load_store(adata, key: str) -> dict[str, StoredRegions]:
    """All libraries' regions under ``adata.uns[key]``; clear error when absent."""
    store = adata.uns.get(key)
    if not isinstance(store, dict) or "libraries" not in store or not store["libraries"]:
        raise InputError(
            f"adata.uns['{key}'] holds no segmented regions; run "
            f"td.tl.segment_regions(adata, model, key_added='{key}') first, or pass regions= "
            "(a RegionMap or a GeoDataFrame of polygons in full-resolution pixels).")
    return {str(lib): StoredRegions.from_uns(d) for lib, d in store["libraries"].items()}


def store_entry(existing: dict | None, library_id: str, stored: StoredRegions) -> dict:
    """A NEW uns dict with ``library_id`` set to ``stored`` (the old dict is not modified)."""
    libs = dict((existing or {}).get("libraries", {})) if isinstance(existing, dict) else {}
    libs[str(library_id)] = stored.to_uns()
    classes: list[str] = []
    for d in libs.values():
        for c in np.asarray(d["classes"]).tolist():
            if c not in classes:
                classes.append(str(c))
    return {"libraries": libs, "classes": np.array(classes, dtype=object)}
