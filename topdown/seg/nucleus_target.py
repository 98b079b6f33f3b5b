"""Nucleus instance targets and DAPI intensity normalisation (shared by training and inference).

A nucleus model is a :class:`~topdown.seg.SegModel` whose classes are three bins of the
*normalised distance to the nucleus edge* (0 at the edge, 1 at the nucleus's innermost
pixel): ``nucleus_edge`` (< 0.35), ``nucleus_mid`` (0.35-0.65) and ``nucleus_core``
(>= 0.65); label 0 is background. Touching nuclei meet in ``nucleus_edge`` pixels, so their
cores stay apart and seed a watershed (see :mod:`topdown.seg.nuclei_infer`). Because it is an
ordinary softmax segmentation, the region model's checkpoint, resampling and tiled
inference code is used unchanged.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError

#: the classes of a nucleus model, edge -> core (label k = NUCLEUS_CLASSES[k - 1])
NUCLEUS_CLASSES = ("nucleus_edge", "nucleus_mid", "nucleus_core")
#: normalised-distance bin edges between edge / mid / core
DISTANCE_BINS = (0.35, 0.65)
#: representative normalised distance of background and each class (soft distance map)
BIN_CENTRES = np.array([0.0, 0.2, 0.5, 0.85], dtype=np.float32)


def normalised_distance(ids: np.ndarray) -> np.ndarray:
    """Per-nucleus distance to its own edge, divided by the nucleus's maximum (float32, 0 outside).

    Parameters
    ----------
    ids
        ``(H, W)`` integer instance image (0 = background).

    Examples
    --------
    >>> ids = np.zeros((9, 9), int); ids[1:8, 1:8] = 1
    >>> d = normalised_distance(ids)
    >>> float(d[4, 4]), float(d[0, 0])
    (1.0, 0.0)
    """
    from scipy import ndimage
    from skimage.segmentation import find_boundaries

    ids = np.asarray(ids)
    if ids.ndim != 2:
        raise InputError(f"a nucleus instance image must be 2-D, got shape {ids.shape}")
    inner = (ids > 0) & ~find_boundaries(ids, mode="inner")
    dist = ndimage.distance_transform_edt(inner).astype(np.float32)
    dist[ids > 0] += 1.0
    n = int(ids.max())
    if n == 0:
        return np.zeros(ids.shape, np.float32)
    peak = np.asarray(ndimage.maximum(dist, ids, index=np.arange(n + 1)), dtype=np.float32)
    peak[0] = 1.0
    out = dist / np.maximum(peak[ids], 1e-6)
    out[ids == 0] = 0.0
    return out


def nucleus_target(ids: np.ndarray) -> np.ndarray:
    """Class labels (uint8: 0 background, 1 edge, 2 mid, 3 core) of an instance image.

    Examples
    --------
    >>> ids = np.zeros((11, 11), int); ids[1:10, 1:10] = 1
    >>> t = nucleus_target(ids)
    >>> int(t[0, 0]), int(t[1, 1]), int(t[5, 5])
    (0, 1, 3)
    """
    d = normalised_distance(ids)
    t = np.digitize(d, DISTANCE_BINS).astype(np.uint8) + 1
    t[np.asarray(ids) == 0] = 0
    return t


def to_grey(image: np.ndarray) -> np.ndarray:
    """Greyscale float32 of a 2-D, RGB or RGBA image (channel maximum: a blue or grey DAPI stain alike).

    Examples
    --------
    >>> to_grey(np.zeros((2, 2, 3), np.uint8)).shape
    (2, 2)
    """
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] in (3, 4):
        a = a[..., :3].max(axis=2)
    if a.ndim != 2:
        raise InputError(f"an image must be (H, W), (H, W, 3) or (H, W, 4), got shape {a.shape}")
    return a.astype(np.float32, copy=False)


def nuclear_signal(image: np.ndarray, modality: str) -> np.ndarray:
    """The nuclear stain as a float32 grey image with nuclei bright.

    DAPI: :func:`to_grey`. H&E: 255 minus the red channel (hematoxylin absorbs red; the
    pink eosin counterstain does not), so nuclei are bright on a dark ground as in DAPI.

    Examples
    --------
    >>> nuclear_signal(np.full((2, 2, 3), 255, np.uint8), "he").max()
    0.0
    """
    a = np.asarray(image)
    if modality != "he":
        return to_grey(a)
    red = a[..., 0] if a.ndim == 3 else a
    return 255.0 - red.astype(np.float32)


def intensity_range(grey: np.ndarray, *, lo: float = 1.0, hi: float = 99.8) -> tuple[float, float]:
    """Robust ``(low, high)`` grey levels: the ``lo`` / ``hi`` percentiles of a subsample.

    Examples
    --------
    >>> intensity_range(np.arange(100, dtype=float).reshape(10, 10))
    (0.99, 98.802)
    """
    step = max(1, int(np.sqrt(grey.size / 4e6)))
    sample = np.asarray(grey[::step, ::step], dtype=np.float32)
    a, b = np.percentile(sample, [lo, hi])
    return round(float(a), 6), round(float(b), 6)


def normalise(grey: np.ndarray, limits: tuple[float, float]) -> np.ndarray:
    """uint8 image with ``limits[0]`` -> 0 and ``limits[1]`` -> 255 (clipped).

    Examples
    --------
    >>> normalise(np.array([[0.0, 5.0, 20.0]]), (0.0, 10.0)).tolist()
    [[0, 128, 255]]
    """
    a, b = limits
    out = (np.asarray(grey, np.float32) - a) * (255.0 / max(b - a, 1e-6))
    return np.clip(np.round(out), 0, 255).astype(np.uint8)
