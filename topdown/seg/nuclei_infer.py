"""Nucleus instance segmentation: a U-Net over nucleus classes, tiled, at the model's µm/px.

A nucleus model has one of two designs (:data:`topdown.seg.nucleus_designs.DESIGNS`):

* ``steps`` (:mod:`topdown.seg.nucleus_flow`): per pixel, background, the nucleus's centre or
  the step towards it; following the steps groups the pixels into nuclei (:func:`step_instances`).
* ``distance`` (:mod:`topdown.seg.nucleus_target`): per pixel, background or one of three
  normalised edge-distance bins. Their expectation is a soft distance map; nuclei are the
  watershed basins of that map inside the foreground (background probability <
  ``fg_threshold``), seeded by its connected plateaus above ``seed_level`` (:func:`instances`).

The network runs through the region model's tiled, pixel-size-normalised inference
(:func:`topdown.seg.infer.predict`); instances are made on blocks of the map with a halo,
keeping the nuclei whose centroid lies in the block's core, so a nucleus cut by a block
seam is found once, whole, by the block that owns its centre.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import InputError
from .nucleus_flow import drop_small_instances, step_instances
from .nucleus_target import (
    BIN_CENTRES,
    intensity_range,
    normalise,
    nuclear_signal,
    to_grey,
)

#: the shipped DAPI nucleus model
DEFAULT_MODEL = "nuclei_dapi"
#: grey-level percentile read as the ground of an image by :func:`check_modality`, and the
#: fraction of full scale above which that ground is light (brightfield). Measured: real and
#: simulated H&E (real_dev, Visium, 0.4 µm/px sims) 108-186 of 255, DAPI (MERFISH crop, sims) 0-18.
MODALITY_GROUND_PERCENTILE = 10
LIGHT_GROUND_FRACTION = 0.3
#: watershed block side and halo, in model pixels (the halo exceeds the largest nucleus)
BLOCK, HALO = 1024, 48


@dataclass
class Nuclei:
    """Nuclei found in an image.

    Attributes
    ----------
    labels
        ``(H, W)`` int32 instance image at the input image's resolution (0 = none).
    table
        One row per nucleus: ``label``, centroid ``y``, ``x`` (image pixels), ``area_um2``.
    pixel_size_um
        µm per pixel of the input image.
    meta
        Model provenance and parameters.

    Examples
    --------
    >>> import topdown as td
    >>> res = td.seg.nuclei("dapi.png", pixel_size_um=0.2)  # doctest: +SKIP
    >>> labels, table = res  # doctest: +SKIP
    """

    labels: np.ndarray
    table: pd.DataFrame
    pixel_size_um: float
    meta: dict = field(default_factory=dict)

    def __iter__(self):
        return iter((self.labels, self.table))

    def __len__(self) -> int:
        return len(self.table)

    def to_geodataframe(self):
        """One polygon per nucleus (image pixel coordinates), indexed by label.

        Examples
        --------
        >>> res.to_geodataframe().area.head()  # doctest: +SKIP
        """
        return label_polygons(self.labels, self.table)


def label_polygons(labels: np.ndarray, table: pd.DataFrame):
    """GeoDataFrame of the outlines of an instance image (``x, y`` = column, row in pixels).

    Each outline is the 0.5 iso-contour of its nucleus's mask (pixel centres on the
    boundary lie half a pixel inside it), the longest ring where a mask has several.

    Examples
    --------
    >>> lab = np.zeros((8, 8), np.int32); lab[2:6, 2:6] = 1
    >>> round(float(label_polygons(lab, pd.DataFrame({"label": [1]})).area.iloc[0]), 1)
    15.5
    """
    import geopandas as gpd
    import shapely
    from scipy import ndimage
    from skimage.measure import find_contours

    ids = [int(v) for v in table["label"]] if len(table) else []
    boxes = ndimage.find_objects(labels.astype(np.int32)) if ids else []
    geoms = []
    for i in ids:
        box = boxes[i - 1] if i - 1 < len(boxes) else None
        if box is None:
            geoms.append(None)
            continue
        mask = np.pad(labels[box] == i, 1).astype(np.float32)
        ring = max(find_contours(mask, 0.5), key=len)
        xy = ring[:, ::-1] + np.array([box[1].start - 1, box[0].start - 1])
        geoms.append(shapely.Polygon(xy) if len(xy) >= 4 else shapely.Point(xy[0]).buffer(0.5))
    return gpd.GeoDataFrame({"label": ids}, geometry=geoms, index=pd.Index(ids, name="nucleus"))


def merge_close_seeds(seeds: np.ndarray, min_distance: float) -> np.ndarray:
    """Give one label to seeds whose centroids lie closer than ``min_distance`` pixels
    (two nuclei cannot be centred that close: one textured nucleus gave several seeds).

    Examples
    --------
    >>> s = np.zeros((5, 12), np.int32); s[2, 2], s[2, 4], s[2, 10] = 1, 2, 3
    >>> np.unique(merge_close_seeds(s, 3.0)).tolist()
    [0, 1, 2]
    """
    from scipy import ndimage
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    n = int(seeds.max())
    if n < 2 or min_distance <= 0:
        return seeds
    cen = np.asarray(ndimage.center_of_mass(seeds > 0, seeds, np.arange(1, n + 1))).reshape(-1, 2)
    pairs = cKDTree(cen).query_pairs(min_distance, output_type="ndarray")
    if not len(pairs):
        return seeds
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    return np.r_[0, comp + 1].astype(np.int32)[seeds]


def instances(probs: np.ndarray, *, fg_threshold: float = 0.5, seed_level: float = 0.5,
              min_area: int = 12, min_seed_distance: float = 0.0) -> np.ndarray:
    """Instance labels (int32) from class probabilities ``(4, H, W)`` by seeded watershed.

    Parameters
    ----------
    probs
        Background, edge, mid, core probabilities (float), as the nucleus model gives them.
    fg_threshold
        A pixel is nucleus where its background probability is below this.
    seed_level
        Seeds are the connected regions where the soft distance exceeds this (0..0.85).
    min_area
        Smaller instances (pixels) are dropped.
    min_seed_distance
        Seeds closer than this (pixels) are merged (:func:`merge_close_seeds`).

    Examples
    --------
    >>> p = np.zeros((4, 20, 20), np.float32); p[0] = 1
    >>> p[0, 5:15, 5:15] = 0; p[3, 5:15, 5:15] = 1
    >>> int(instances(p).max())
    1
    """
    from scipy import ndimage
    from skimage.segmentation import watershed

    probs = np.asarray(probs, dtype=np.float32)
    dist = np.tensordot(BIN_CENTRES, probs, axes=1)
    fg = probs[0] < fg_threshold
    seeds, _ = ndimage.label((dist > seed_level) & fg)
    seeds = merge_close_seeds(seeds, min_seed_distance)
    lab = watershed(-dist, seeds, mask=fg).astype(np.int32)
    return drop_small_instances(lab, min_area)


class BlockInstances:
    """Instances of a probability map built block by block, from bands of map rows that arrive
    top to bottom (:func:`~topdown.seg.infer.predict`'s ``on_band``): each block of ``BLOCK`` px
    is made (``make``: :func:`instances` or :func:`step_instances`) with a halo of ``HALO`` px
    and keeps the nuclei whose centroid it owns, so a nucleus cut by a seam is found once. Only
    the rows a block row still needs are held, so the probabilities never take the whole map.

    Examples
    --------
    >>> p = np.zeros((4, 20, 20), np.float32); p[0] = 1; p[0, 5:15, 5:15] = 0; p[3, 5:15, 5:15] = 1
    >>> build = BlockInstances((20, 20), instances)
    >>> build.add(0, p[:, :12]); build.add(12, p[:, 12:])
    >>> int(build.finish().max())
    1
    """

    def __init__(self, shape: tuple[int, int], make=instances, **kw) -> None:
        self.shape, self.make, self.kw = tuple(shape), make, kw
        self.labels = np.zeros(self.shape, np.int32)
        self._next_label, self._next_row = 1, 0
        self._rows: list[np.ndarray] = []  # bands held, from map row self._held_from
        self._held_from = 0

    def add(self, r0: int, band: np.ndarray) -> None:
        """Take the probabilities ``(C, rows, W)`` of map rows ``r0..``, the rows after those given before."""
        expected = self._held_from + sum(b.shape[1] for b in self._rows)
        if r0 != expected:
            raise ValueError(f"bands must arrive in order: expected row {expected}, got {r0}")
        self._rows.append(np.array(band, copy=True))
        have = r0 + band.shape[1]
        H = self.shape[0]
        while self._next_row < H and have >= min(H, self._next_row + BLOCK + HALO):
            self._block_row(self._next_row)
            self._next_row += BLOCK
            self._drop_below(max(0, self._next_row - HALO))

    def finish(self) -> np.ndarray:
        """The instance labels (int32, map shape) once every row has been added."""
        while self._next_row < self.shape[0]:
            self._block_row(self._next_row)
            self._next_row += BLOCK
        self._rows = []
        return self.labels

    def _held(self) -> np.ndarray:
        if len(self._rows) > 1:
            self._rows = [np.concatenate(self._rows, axis=1)]
        return self._rows[0]

    def _drop_below(self, row: int) -> None:
        if self._rows and row > self._held_from:
            held = self._held()
            self._rows = [held[:, row - self._held_from:]]
            self._held_from = row

    def _block_row(self, r0: int) -> None:
        from scipy import ndimage

        H, W = self.shape
        r1 = min(H, r0 + BLOCK)
        a0, a1 = max(0, r0 - HALO), min(H, r1 + HALO)
        held = self._held()
        rows = held[:, a0 - self._held_from:a1 - self._held_from]
        for c0 in range(0, W, BLOCK):
            c1 = min(W, c0 + BLOCK)
            b0, b1 = max(0, c0 - HALO), min(W, c1 + HALO)
            lab = self.make(rows[:, :, b0:b1].astype(np.float32), **self.kw)
            n = int(lab.max())
            if n == 0:
                continue
            cen = np.asarray(ndimage.center_of_mass(lab > 0, lab, np.arange(1, n + 1))).reshape(-1, 2)
            cy, cx = cen[:, 0] + a0, cen[:, 1] + b0
            own = (cy >= r0) & (cy < r1) & (cx >= c0) & (cx < c1)
            new = np.zeros(n + 1, np.int32)
            new[1:][own] = np.arange(self._next_label, self._next_label + int(own.sum()))
            self._next_label += int(own.sum())
            relab = new[lab]
            view = self.labels[a0:a1, b0:b1]
            put = (relab > 0) & (view == 0)
            view[put] = relab[put]


def _block_instances(probs: np.ndarray, make=instances, **kw) -> np.ndarray:
    """``make`` (:func:`instances` or :func:`step_instances`) over blocks with a halo, the whole
    map at once (:class:`BlockInstances`)."""
    build = BlockInstances(probs.shape[1:], make, **kw)
    build.add(0, probs)
    return build.finish()


#: each design's instance step (:data:`~topdown.seg.nucleus_designs.DESIGNS`)
INSTANCE_STEPS = {"distance": instances, "steps": step_instances}


def check_modality(grey: np.ndarray, full_scale: float, modality: str) -> None:
    """Refuse an image of the other modality: fluorescence has a dark ground, brightfield a light one.

    The ground is the 10th percentile of the grey level (channel maximum): in brightfield even
    the darkest tenth (haematoxylin-dense nuclei) is light, in fluorescence it is dark glass or
    the dark space between nuclei, even where bright debris or packed nuclei cover more than
    half of the field (the median misreads those). It is light above 30 % of ``full_scale``
    (255 for uint8, the dtype's maximum for other integers, the image's maximum for floats).

    Examples
    --------
    >>> check_modality(np.full((50, 50), 240.0), 255.0, "dapi")
    Traceback (most recent call last):
    ...
    topdown.errors.InputError: the image looks like a brightfield (H&E) image ...
    >>> dapi = np.zeros((50, 50)); dapi[:, 10:] = 200.0  # a bright blob over 80 % of a DAPI field
    >>> check_modality(dapi, 255.0, "dapi")
    """
    step = max(1, int(np.sqrt(grey.size / 1e6)))
    ground = float(np.percentile(grey[::step, ::step], MODALITY_GROUND_PERCENTILE))
    light = ground > LIGHT_GROUND_FRACTION * full_scale
    if modality == "dapi" and light:
        raise InputError(f"the image looks like a brightfield (H&E) image (light ground: 10th percentile "
                         f"{ground:g} of {full_scale:g}) but the model is a DAPI model; give a DAPI / "
                         "nuclear-stain fluorescence image or use an H&E nucleus model.")
    if modality == "he" and not light:
        raise InputError(f"the image looks like a fluorescence image (dark ground: 10th percentile {ground:g} "
                         f"of {full_scale:g}) but the model is an H&E model; give a brightfield H&E image or "
                         "use model='nuclei_dapi'.")


def _load_nucleus_model(model, device: str):
    import torch

    from .checkpoint import load
    from .nucleus_designs import design_of

    model = load(model, kind="nuclei", device=device)
    try:
        design = design_of(model.classes)
    except InputError:
        raise InputError(f"model '{model.name}' is a region model (classes {list(model.classes)[:4]}...), not a "
                         f"nucleus model; use model='{DEFAULT_MODEL}' or a checkpoint from td.seg.train_nuclei.") from None
    return model.to(memory_format=torch.channels_last), design  # ~1.8x faster convolutions on CPU


def _noise_sd(grey: np.ndarray) -> float:
    """Pixel noise (robust SD of neighbour differences / sqrt 2) of a subsample."""
    step = max(1, int(np.sqrt(grey.size / 4e6)))
    g = np.asarray(grey[::step], dtype=np.float32)
    d = np.diff(g, axis=1).ravel()
    return float(1.4826 * np.median(np.abs(d - np.median(d))) / np.sqrt(2.0)) if d.size else 0.0


def _prepare(image, model) -> tuple[np.ndarray, str]:
    """The image as a normalised uint8 grey array (nuclei bright), after the bad-input checks."""
    from .image import open_image

    src = open_image(image, background=model.background_value)
    rgb = src.read(0, src.shape[0], 0, src.shape[1])
    check_modality(to_grey(rgb), 255.0, model.modality)  # read() gives uint8 (other dtypes: robust range)
    grey = nuclear_signal(rgb, model.modality)
    lo, hi = intensity_range(grey)
    if hi - lo <= 1e-3 * max(abs(hi), 1.0) or hi - float(np.median(grey)) < 6.0 * _noise_sd(grey):
        raise InputError(f"the image {src.name} is blank (grey levels {lo:g}-{hi:g}, nothing brighter than its "
                         "noise); nothing to segment.")
    return normalise(grey, (lo, hi)), src.name


def _table(lab_map: np.ndarray, factor: float, map_px: float) -> pd.DataFrame:
    n = int(lab_map.max())
    count, row_sum, col_sum = (np.zeros(n + 1) for _ in range(3))
    H, W = lab_map.shape
    for r0 in range(0, H, 64):  # blocks of rows: centroids without image-sized index arrays
        block = lab_map[r0:r0 + 64].ravel()
        rows = np.repeat(np.arange(r0, min(H, r0 + 64), dtype=float), W)
        count += np.bincount(block, minlength=n + 1)
        row_sum += np.bincount(block, weights=rows, minlength=n + 1)
        col_sum += np.bincount(block, weights=np.tile(np.arange(W, dtype=float), len(rows) // W), minlength=n + 1)
    area = count[1:].astype(np.int64)
    keep = np.arange(1, n + 1)[area > 0]
    cen = np.c_[row_sum[keep], col_sum[keep]] / count[keep, None]
    to_img = (cen + 0.5) / factor - 0.5
    return pd.DataFrame({"label": keep.astype(np.int32), "y": to_img[:, 0], "x": to_img[:, 1],
                         "area_um2": area[keep - 1] * map_px ** 2})


def _to_image(lab_map: np.ndarray, shape: tuple[int, int], factor: float) -> np.ndarray:
    rows = np.minimum(((np.arange(shape[0]) + 0.5) * factor).astype(np.int64), lab_map.shape[0] - 1)
    cols = np.minimum(((np.arange(shape[1]) + 0.5) * factor).astype(np.int64), lab_map.shape[1] - 1)
    return lab_map[rows][:, cols]


def nuclei(image, model=DEFAULT_MODEL, pixel_size_um: float | str | None = None, *, tile: int = 1024,
           overlap: int = 32, fg_threshold: float = 0.5, seed_level: float = 0.5, min_area_um2: float = 6.0,
           min_seed_distance_um: float = 0.0, tta: bool = False, device: str = "auto",
           precision: str = "auto", progress: bool = False) -> Nuclei:
    """Find nuclei (instances) in a DAPI (or, with an H&E nucleus model, H&E) image.

    Parameters
    ----------
    image
        Array (greyscale or RGB; any dtype), PIL image or path.
    model
        A shipped nucleus model name (``td.seg.available_models("nuclei")``), a checkpoint
        path or a loaded nucleus SegModel.
    pixel_size_um
        µm per image pixel (required: the image is resampled to the model's µm/px), or
        ``"model"`` if it already has the model's pixel size.
    tile, overlap
        Largest network tile and the overlap, in model pixels (tiles are evened out to cover
        the image with as few pixels as that many tiles allow: :func:`~topdown.seg.infer.balanced_tile`).
    fg_threshold, seed_level, min_area_um2, min_seed_distance_um
        Instance parameters: a pixel is nucleus where its background probability is under
        ``fg_threshold``; nuclei under ``min_area_um2`` are dropped. For a ``distance``
        model (the shipped ones) also the watershed's seed level and the distance under which
        seeds are merged (0: off; see :func:`instances`); a ``steps`` model
        (:func:`~topdown.seg.nucleus_flow.step_instances`) has no seeds to set and ignores them.
    tta, device
        Mirror test-time augmentation; torch device.
    precision
        ``"auto"`` (bfloat16 autocast where the device computes it natively: about 3x faster
        on CPUs with AVX512-BF16 or AMX; else float32), ``"fp32"`` or ``"bf16"``.
    progress
        Show a progress bar over tiles (a 4096² image at 0.4 µm/px takes ~10 s on 2 cores,
        8192² about 3 min).

    Returns
    -------
    Nuclei
        ``labels`` (image resolution), ``table`` (centroids in image pixels, areas), ``meta``.

    Raises
    ------
    InputError
        Unknown pixel size, an image of the other modality, a blank image, or a region model.

    Examples
    --------
    >>> import topdown as td
    >>> labels, table = td.seg.nuclei("dapi.tif", pixel_size_um=0.108)  # doctest: +SKIP
    """
    from .infer import _image_scale, balanced_tile, predict, require_flag
    from .loop import pick_device, pick_precision
    from .resample import map_shape

    require_flag("tta", tta)
    require_flag("progress", progress)
    device = pick_device(device)
    precision = pick_precision(precision, device)
    model, design = _load_nucleus_model(model, device)
    grey, name = _prepare(image, model)
    if pixel_size_um is None:
        raise InputError(f"the pixel size of {name} is unknown and the nucleus model works at "
                         f"{model.pixel_size_um:g} µm/px: pass pixel_size_um=<µm per pixel> (CLI: --pixel-size).")
    from .image import open_image

    src = open_image(grey, background=0)
    scale = _image_scale(image, src, model, pixel_size_um, None, None)
    factor = scale.per_pixel("map")
    net_tile = balanced_tile(max(map_shape(src.shape, factor)), tile, overlap, model.net.multiple)
    min_area = max(1, int(round(min_area_um2 / model.pixel_size_um ** 2)))
    seeds = ({"seed_level": seed_level, "min_seed_distance": min_seed_distance_um / model.pixel_size_um}
             if design == "distance" else {})
    build = BlockInstances(map_shape(src.shape, factor), INSTANCE_STEPS[design], fg_threshold=fg_threshold,
                           min_area=min_area, **seeds)
    predict(model, src, factor, tile=net_tile, overlap=overlap, device=device, tta=bool(tta), precision=precision,
            probabilities=False, on_band=build.add, label_map=False,
            progress_desc="nuclei" if progress else None)
    lab_map = build.finish()
    table = _table(lab_map, factor, model.pixel_size_um)
    if table.empty:
        warnings.warn(f"no nuclei found in {name}; check the image, its modality and pixel_size_um",
                      UserWarning, stacklevel=2)
    meta = {"model": model.name, "design": design, "weights_sha256": model.weights_sha256, "modality": model.modality,
            "model_pixel_size_um": model.pixel_size_um, "image_pixel_size_um": scale.um,
            "params": {"tile": tile, "overlap": overlap, "fg_threshold": fg_threshold, "seed_level": seed_level,
                       "min_area_um2": min_area_um2, "min_seed_distance_um": min_seed_distance_um,
                       "tta": bool(tta), "precision": precision},
            "image": str(image) if isinstance(image, (str, os.PathLike)) else None}
    return Nuclei(labels=_to_image(lab_map, grey.shape, factor), table=table,
                  pixel_size_um=float(scale.um), meta=meta)
