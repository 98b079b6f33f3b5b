"""RegionMap: the result of segmenting an image into anatomical regions.

The raster lives at the model's working resolution (``pixel_size_um`` of the model), which
for a whole slide is much coarser than the image: ``downsample`` image pixels per map
pixel. Polygons and look-ups are in *image* pixel coordinates (x = column, y = row),
which is what Visium ``obsm['spatial']`` uses after scaling.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

OUTSIDE = "outside"


def default_colors(classes: list[str] | tuple[str, ...]) -> dict[str, str]:
    """Distinct hex colours for ``classes`` (tab20), plus light grey for ``outside``."""
    import matplotlib

    cmap = matplotlib.colormaps["tab20"]
    colors = {name: matplotlib.colors.to_hex(cmap(i % 20)) for i, name in enumerate(classes)}
    colors[OUTSIDE] = "#d9d9d9"
    return colors


def polygons_from_labels(labels: np.ndarray, n_labels: int | None = None) -> dict[int, Any]:
    """Exact polygons of a label raster: label -> (Multi)Polygon in raster pixel units.

    Each pixel ``(r, c)`` is the square ``[c, c+1] x [r, r+1]``; polygons are unions of
    horizontal pixel runs, so they cover exactly the pixels of each label (holes kept).
    Label 0 (outside) is skipped.
    """
    import shapely

    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be 2-D, got shape {labels.shape}")
    h, w = labels.shape
    # run-length encode every row: a run starts where the label changes
    padded = np.full((h, w + 1), -1, dtype=np.int64)
    padded[:, :w] = labels
    change = np.ones((h, w), dtype=bool)
    change[:, 1:] = labels[:, 1:] != labels[:, :-1]
    rows, starts = np.nonzero(change)
    ends = np.empty_like(starts)
    # end of a run = next start in the same row, or w
    nxt = np.r_[starts[1:], w]
    same_row = np.r_[rows[1:] == rows[:-1], False]
    ends[:] = np.where(same_row, nxt, w)
    run_labels = labels[rows, starts]
    out: dict[int, Any] = {}
    keep = run_labels != 0
    rows, starts, ends, run_labels = rows[keep], starts[keep], ends[keep], run_labels[keep]
    for lab in np.unique(run_labels):
        sel = run_labels == lab
        boxes = shapely.box(starts[sel], rows[sel], ends[sel], rows[sel] + 1)
        geom = shapely.union_all(boxes, grid_size=1.0)
        out[int(lab)] = geom
    return out


@dataclass
class RegionMap:
    """Anatomical regions of one image.

    Attributes
    ----------
    labels
        ``(h, w)`` integer raster at the map's resolution; 0 = outside tissue,
        ``k`` = ``classes[k - 1]``.
    classes
        Region names, in label order (without ``outside``).
    pixel_size_um
        Micrometres per *map* pixel (``None`` when unknown).
    downsample
        Image pixels per map pixel (1.0 when the map has the image's resolution).
    probabilities
        Optional ``(len(classes) + 1, h, w)`` class probabilities (channel 0 = outside),
        float16 or float32, at the map's resolution.
    image_shape
        ``(H, W)`` of the segmented image, in its own pixels.
    colors
        Class name -> hex colour (also ``outside``).
    meta
        Provenance: model name, weights hash, parameters.
    """

    labels: np.ndarray
    classes: tuple[str, ...]
    pixel_size_um: float | None = None
    downsample: float = 1.0
    probabilities: np.ndarray | None = None
    image_shape: tuple[int, int] | None = None
    colors: dict[str, str] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels)
        self.classes = tuple(self.classes)
        if self.labels.ndim != 2:
            raise ValueError(f"RegionMap.labels must be 2-D, got shape {self.labels.shape}")
        if self.labels.size and (self.labels.min() < 0 or self.labels.max() > len(self.classes)):
            raise ValueError(
                f"RegionMap.labels has values outside 0..{len(self.classes)} for {len(self.classes)} classes"
            )
        if self.probabilities is not None and self.probabilities.shape != (
            len(self.classes) + 1, *self.labels.shape
        ):
            raise ValueError(
                f"RegionMap.probabilities must have shape {(len(self.classes) + 1, *self.labels.shape)}, "
                f"got {self.probabilities.shape}"
            )
        if self.image_shape is None:
            self.image_shape = (int(round(self.labels.shape[0] * self.downsample)),
                                int(round(self.labels.shape[1] * self.downsample)))
        if not self.colors:
            self.colors = default_colors(self.classes)

    @property
    def names(self) -> list[str]:
        """Label index -> name, including ``outside`` at 0."""
        return [OUTSIDE, *self.classes]

    def to_geodataframe(self, coords: str = "image"):
        """One (Multi)Polygon per present region, holes kept.

        Parameters
        ----------
        coords
            ``"image"`` (image pixels; x = column, y = row) or ``"map"`` (map pixels).

        Returns
        -------
        geopandas.GeoDataFrame with columns ``region``, ``label``, ``color``, ``area_px``
        (area in the chosen pixels) and ``geometry``.
        """
        import geopandas as gpd
        import shapely

        if coords not in ("image", "map"):
            raise ValueError("coords must be 'image' or 'map'")
        polys = polygons_from_labels(self.labels)
        rows = []
        for lab, geom in sorted(polys.items()):
            if coords == "image" and self.downsample != 1.0:
                geom = shapely.transform(geom, lambda xy: xy * self.downsample)
            name = self.classes[lab - 1]
            rows.append({"region": name, "label": lab, "color": self.colors.get(name, "#000000"),
                         "area_px": float(geom.area), "geometry": geom})
        return gpd.GeoDataFrame(rows, columns=["region", "label", "color", "area_px", "geometry"],
                                geometry="geometry")

    def lookup(self, xy: np.ndarray) -> np.ndarray:
        """Labels at image-pixel coordinates ``xy`` (n x 2, x = column, y = row); 0 off the map."""
        xy = np.asarray(xy, dtype=float)
        col = np.floor(xy[:, 0] / self.downsample).astype(np.int64)
        row = np.floor(xy[:, 1] / self.downsample).astype(np.int64)
        h, w = self.labels.shape
        ok = (row >= 0) & (row < h) & (col >= 0) & (col < w)
        out = np.zeros(len(xy), dtype=self.labels.dtype)
        out[ok] = self.labels[row[ok], col[ok]]
        return out

    def tissue_fraction(self) -> float:
        """Fraction of the map that is tissue (any region)."""
        return float((self.labels > 0).mean()) if self.labels.size else 0.0
