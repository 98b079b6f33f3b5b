"""RegionMap: the result of segmenting an image into anatomical regions.

The raster lives at the model's working resolution (``pixel_size_um`` of the model), which
for a whole slide is much coarser than the image: ``downsample`` image pixels per map
pixel. Polygons and look-ups are in *image* pixel coordinates (x = column, y = row),
which is what Visium ``obsm['spatial']`` uses after scaling.

Coordinate systems (:data:`COORDINATE_SYSTEMS`), all with x = column, y = row and the
origin at the top-left corner of the first pixel:

- ``"fullres"``: full-resolution pixels, those of ``adata.obsm['spatial']``;
- ``"image"``: pixels of the segmented image (e.g. Visium's hires image: ``tissue_hires_scalef``
  image pixels per full-res pixel);
- ``"map"``: pixels of the region raster (``RegionMap.labels``);
- ``"um"``: micrometres.

They differ by one scale each. Three small values carry them, each the size of one pixel
of its own system in the others, stored the way round the numbers come (so that every
conversion is the one multiplication or division the code always did, to the last bit):

- :class:`FullresScale`, one full-res pixel: image pixels (Visium ``tissue_<key>_scalef``)
  and µm (``microns_per_pixel``, or 55 µm over ``spot_diameter_fullres``); what a library's
  scalefactors say (``td.get.SpatialLayout.fullres_scale``);
- :class:`ImageScale`, one image pixel: map pixels (the model's resampling factor) and µm;
  what inference works with (``td.seg.segment``);
- :class:`MapScale`, one map pixel: image pixels (``RegionMap.downsample``), full-res pixels
  and µm (``RegionMap.scale`` and the stored regions' ``scale``).

Each converts with ``convert(xy, from_system, to_system)`` and tells sizes with
``size(system, of)`` (units of ``system`` per unit of ``of``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np

OUTSIDE = "outside"
#: names of the coordinate systems of a segmentation (see the module docstring)
COORDINATE_SYSTEMS = ("fullres", "image", "map", "um")


class _PixelScale:
    """The size of one pixel of the system :attr:`OWN` in the other coordinate systems."""

    OWN: ClassVar[str]

    def per_pixel(self, system: str) -> float:
        """Units of ``system`` per pixel of :attr:`OWN` (1.0 for :attr:`OWN` itself)."""
        if system not in COORDINATE_SYSTEMS:
            raise ValueError(f"unknown coordinate system {system!r}; use one of {COORDINATE_SYSTEMS}")
        value = 1.0 if system == self.OWN else getattr(self, system, None)
        if value is None:
            raise ValueError(f"the scale of {self.OWN} pixels in {system!r} coordinates is unknown")
        return float(value)

    def convert(self, xy, from_system: str, to_system: str):
        """``xy`` (array or length) in ``from_system`` units, in ``to_system`` units.

        Through :attr:`OWN` pixels: a division by ``per_pixel(from_system)``, then a
        multiplication by ``per_pixel(to_system)`` (either skipped for :attr:`OWN`).
        """
        own = xy if from_system == self.OWN else xy / self.per_pixel(from_system)
        return own if to_system == self.OWN else own * self.per_pixel(to_system)

    def size(self, system: str, of: str) -> float:
        """Units of ``system`` per unit of ``of`` (``size("um", of="image")``: µm per image pixel)."""
        return self.per_pixel(system) / self.per_pixel(of)


@dataclass(frozen=True)
class FullresScale(_PixelScale):
    """The size of one full-resolution pixel in image pixels and micrometres.

    Attributes
    ----------
    image
        Image pixels per full-res pixel (Visium ``tissue_<key>_scalef``); ``None`` when unknown.
    um
        Micrometres per full-res pixel; ``None`` when unknown.

    Examples
    --------
    >>> s = FullresScale(image=0.5, um=2.0)
    >>> s.convert(np.array([[10.0, 4.0]]), "fullres", "image")
    array([[5., 2.]])
    >>> s.size("um", of="image")
    4.0
    """

    OWN: ClassVar[str] = "fullres"
    image: float | None = None
    um: float | None = None


@dataclass(frozen=True)
class ImageScale(_PixelScale):
    """The size of one image pixel in region-map pixels and micrometres.

    Inference's view: the image is resampled by ``map`` to the model's pixel size, and its
    thumbnail (a stride of the image) is placed on the map by ``convert(stride, "image", "map")``.

    Attributes
    ----------
    map
        Map pixels per image pixel: the factor the image is resampled by to the model's
        pixel size (µm per image pixel over the model's µm per map pixel).
    um
        Micrometres per image pixel; ``None`` when unknown.

    Examples
    --------
    >>> s = ImageScale(map=0.25, um=4.0)
    >>> s.size("image", of="map")  # RegionMap.downsample
    4.0
    >>> s.convert(8, "image", "map")
    2.0
    """

    OWN: ClassVar[str] = "image"
    map: float = 1.0
    um: float | None = None


@dataclass(frozen=True)
class MapScale(_PixelScale):
    """The size of one region-map pixel in the other coordinate systems (x and y alike).

    Attributes
    ----------
    image
        Image pixels per map pixel (``RegionMap.downsample``); ``None`` when unknown.
    fullres
        Full-resolution pixels per map pixel; ``None`` when unknown.
    um
        Micrometres per map pixel; ``None`` when unknown.

    Examples
    --------
    >>> s = MapScale(image=4.0, fullres=8.0)
    >>> s.to_map(np.array([[16.0, 8.0]]), "fullres")
    array([[2., 1.]])
    >>> s.from_map(np.array([[2.0, 1.0]]), "image")
    array([[8., 4.]])
    """

    OWN: ClassVar[str] = "map"
    image: float | None = 1.0
    fullres: float | None = None
    um: float | None = None

    def per_map(self, system: str) -> float:
        """Units of ``system`` per map pixel (1.0 for ``"map"``)."""
        return self.per_pixel(system)

    def to_map(self, xy, system: str = "fullres"):
        """``xy`` (array or length) in ``system`` units, as map pixels."""
        return self.convert(xy, system, "map")

    def from_map(self, xy, system: str = "fullres"):
        """``xy`` (array or length) in map pixels, in ``system`` units."""
        return self.convert(xy, "map", system)

    def on_fullres(self, fullres: FullresScale) -> MapScale:
        """The same map placed on full-res pixels, whose size in image pixels ``fullres`` gives."""
        return MapScale(image=self.image, fullres=self.per_map("image") / fullres.per_pixel("image"), um=self.um)

    def with_image_scalef(self, scalef: float) -> MapScale:
        """The same map placed on full-res pixels, its image having ``scalef`` image pixels per
        full-res pixel (Visium ``tissue_*_scalef``)."""
        return self.on_fullres(FullresScale(image=float(scalef)))


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
    def scale(self) -> MapScale:
        """One map pixel in image pixels (``downsample``) and micrometres (``pixel_size_um``)."""
        return MapScale(image=float(self.downsample), um=self.pixel_size_um)

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
                geom = shapely.transform(geom, lambda xy: self.scale.from_map(xy, "image"))
            name = self.classes[lab - 1]
            rows.append({"region": name, "label": lab, "color": self.colors.get(name, "#000000"),
                         "area_px": float(geom.area), "geometry": geom})
        return gpd.GeoDataFrame(rows, columns=["region", "label", "color", "area_px", "geometry"],
                                geometry="geometry")

    def _map_index(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Map row, column and on-map flag of image-pixel coordinates ``xy`` (x = column, y = row)."""
        xy = self.scale.to_map(np.asarray(xy, dtype=float).reshape(-1, 2), "image")
        col = np.floor(xy[:, 0]).astype(np.int64)
        row = np.floor(xy[:, 1]).astype(np.int64)
        h, w = self.labels.shape
        return row, col, (row >= 0) & (row < h) & (col >= 0) & (col < w)

    def lookup(self, xy: np.ndarray) -> np.ndarray:
        """Labels at image-pixel coordinates ``xy`` (n x 2, x = column, y = row); 0 off the map."""
        row, col, ok = self._map_index(xy)
        out = np.zeros(len(row), dtype=self.labels.dtype)
        out[ok] = self.labels[row[ok], col[ok]]
        return out

    def image_labels(self, shape: tuple[int, int] | None = None) -> np.ndarray:
        """Labels at the centre of every pixel of an image of ``shape`` (``(H, W)``; default:
        the segmented image's): the map seen at image resolution, e.g. to score it against a
        mask of that image.

        Examples
        --------
        >>> import numpy as np, topdown as td
        >>> rmap = td.seg.RegionMap(labels=np.array([[1, 2]], np.uint8), classes=("a", "b"), downsample=2.0)
        >>> rmap.image_labels((2, 4)).tolist()
        [[1, 1, 2, 2], [1, 1, 2, 2]]
        """
        shape = shape if shape is not None else self.image_shape
        h, w = int(shape[0]), int(shape[1])
        rows, cols = np.mgrid[0:h, 0:w]
        return self.lookup(np.column_stack([cols.ravel() + 0.5, rows.ravel() + 0.5])).reshape(h, w)

    def keep_tissue_at(self, xy: np.ndarray) -> RegionMap:
        """A copy without the pieces of tissue that hold none of the points ``xy``.

        A piece is a connected patch of region labels (8-connected). Pieces with no spot or
        cell on them (Visium fiducial marks, debris, dust the model took for tissue) become
        ``outside``; their probabilities become certain ``outside``. If no point lies on any
        tissue at all (points in another coordinate frame), the map is returned unchanged, so
        that the alignment check of :func:`topdown.tl.assign_regions` can report it.

        Parameters
        ----------
        xy
            ``(n, 2)`` image-pixel coordinates (x = column, y = row).

        Returns
        -------
        RegionMap (``self`` if nothing is dropped); ``meta['dropped_tissue_pieces']`` counts
        the pieces removed.

        Examples
        --------
        >>> lab = np.zeros((6, 6), np.uint8); lab[:2, :2] = 1; lab[4:, 4:] = 1
        >>> RegionMap(lab, ("cortex",)).keep_tissue_at(np.array([[0.5, 0.5]])).labels.sum()
        4
        """
        from scipy import ndimage

        tissue = self.labels > 0
        pieces, n = ndimage.label(tissue, structure=np.ones((3, 3), dtype=bool))
        row, col, ok = self._map_index(xy)
        keep = np.zeros(n + 1, dtype=bool)
        keep[pieces[row[ok], col[ok]]] = True
        keep[0] = False
        if not keep.any() or keep[1:].all():
            return self
        drop = tissue & ~keep[pieces]
        labels = self.labels.copy()
        labels[drop] = 0
        probs = None
        if self.probabilities is not None:
            probs = self.probabilities.copy()
            probs[:, drop] = 0
            probs[0, drop] = 1
        meta = {**self.meta, "dropped_tissue_pieces": int(n - keep[1:].sum())}
        return replace(self, labels=labels, probabilities=probs, meta=meta)

    def tissue_fraction(self) -> float:
        """Fraction of the map that is tissue (any region)."""
        return float((self.labels > 0).mean()) if self.labels.size else 0.0
