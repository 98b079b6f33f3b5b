"""One rule turning any image array into uint8 pixels (shared by io, seg and tl).

:func:`to_uint8` is the only conversion: ``td.io.read_image`` (what the readers store in
``uns['spatial']``), the tiles :class:`topdown.seg.image.ImageSource` feeds the network
(``td.seg.segment``, and through it ``td.tl.segment_regions``) all go through it.

========================  ==================================================================
input                     uint8 output
========================  ==================================================================
uint8                     unchanged (the same bytes)
bool                      ``False`` -> 0, ``True`` -> 255
float, every finite       ``round(v * 255)`` (the skimage convention; no stretch)
value in [0, 1]
any other float or        linear stretch of the 0.5th..99.5th percentile of the finite
integer (uint16, int32,   values to 0..255, clipped, rounded (robust to hot pixels and to
...)                      12-bit data stored as uint16)
NaN / +inf / -inf         0 / 255 / 0 (NaN as the low end); the range ignores them; an
                          image with no finite value is refused
(H, W), (H, W, 1)         greyscale: (H, W), or (H, W, 3) with ``rgb=True``
(H, W, 3)                 RGB
(H, W, 2), (H, W, 4)      grey + alpha, RGB + alpha: composited onto ``background`` (default
                          255, white glass of bright-field H&E; segmentation passes its
                          model's glass value, 0 for DAPI) with weight alpha / alpha's full
                          scale (255 for uint8, the dtype's maximum for other integers, 1 for
                          floats), then alpha is dropped; alpha 255 leaves pixels unchanged
========================  ==================================================================

The range (the [0, 1] test and the percentiles) is taken from the colour channels of a
strided sample of the image, :func:`sample_step` (the whole image up to 1024 pixels a
side), so that an image read tile by tile maps every tile the same way as the whole.

:func:`read_image` is the one reader of an image file decoded whole (the readers of
:mod:`topdown.io` and :func:`topdown.sim.calibrate`), within the pixel limit of
:mod:`topdown._limits`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ._limits import check_image_pixels, open_pillow, tiff_shape
from .errors import DataFileError, InputError

#: longest side of the strided sample the value range is taken from
SAMPLE_SIDE = 1024
#: percentiles mapped to 0 and 255 for images that are neither uint8, bool nor floats in [0, 1]
STRETCH_PERCENTILES = (0.5, 99.5)


def sample_step(shape: tuple[int, ...], max_side: int = SAMPLE_SIDE) -> int:
    """Stride of the sample of an image of ``shape`` (H, W, ...): at most ``max_side`` pixels a side."""
    return max(1, int(np.ceil(max(shape[0], shape[1]) / max_side)))


def needs_range(dtype) -> bool:
    """Whether pixels of ``dtype`` are mapped through a value range (all but uint8 and bool)."""
    dtype = np.dtype(dtype)
    return dtype != np.uint8 and dtype.kind != "b"


def _colour(a: np.ndarray) -> np.ndarray:
    """The colour channels of ``a`` (alpha dropped)."""
    return a[..., :-1] if a.ndim == 3 and a.shape[2] in (2, 4) else a


def value_range(sample: np.ndarray, name: str = "image") -> tuple[float, float] | None:
    """``(lo, hi)`` mapped to 0 and 255, from a sample of the image (``None`` for uint8 / bool).

    Floats whose finite values all lie in [0, 1] give ``(0.0, 1.0)``; other images the
    :data:`STRETCH_PERCENTILES` of their finite colour values (``hi = lo + 1`` when flat).

    Raises
    ------
    InputError
        The sample holds no finite value.
    """
    sample = np.asarray(sample)
    if not needs_range(sample.dtype):
        return None
    values = _colour(sample).astype(np.float64)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        raise InputError(f"{name}: the image has no finite values.")
    if sample.dtype.kind == "f" and finite.min() >= 0.0 and finite.max() <= 1.0:
        return 0.0, 1.0
    lo, hi = np.percentile(finite, list(STRETCH_PERCENTILES))
    if hi <= lo:
        hi = lo + 1.0
    return float(lo), float(hi)


def _alpha_scale(dtype: np.dtype) -> float:
    """The value of a fully opaque alpha of ``dtype``."""
    if dtype == np.uint8 or dtype.kind == "b":
        return 255.0
    return float(np.iinfo(dtype).max) if dtype.kind in "ui" else 1.0


def to_uint8(a, *, limits: tuple[float, float] | None = None, background: int = 255,
             rgb: bool = False, name: str = "image") -> np.ndarray:
    """``a`` as uint8 pixels by the module's rule (see the table in :mod:`topdown._image`).

    Parameters
    ----------
    a
        ``(H, W)``, ``(H, W, 1)``, ``(H, W, 2)``, ``(H, W, 3)`` or ``(H, W, 4)`` array of any
        real dtype (a tile of a larger image when ``limits`` is given).
    limits
        ``(lo, hi)`` of the whole image (:func:`value_range` of its sample) when ``a`` is a
        tile; by default taken from ``a`` itself. Ignored for uint8 and bool.
    background
        Grey level (0..255) that transparent pixels are composited onto.
    rgb
        Return ``(H, W, 3)`` for greyscale too (channels repeated).
    name
        The image's name in error messages.

    Returns
    -------
    ``(H, W)`` (greyscale, unless ``rgb``) or ``(H, W, 3)`` C-contiguous uint8 array.

    Examples
    --------
    >>> to_uint8(np.array([[0.0, 0.5, 1.0]]))
    array([[  0, 128, 255]], dtype=uint8)
    >>> to_uint8(np.array([[[10, 20, 30, 0]]], np.uint8))
    array([[[255, 255, 255]]], dtype=uint8)
    """
    a = np.asarray(a)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (2, 3, 4)):
        raise InputError(f"{name}: expected an (H, W) greyscale or (H, W, 3|4) colour image, got shape {a.shape}.")
    dtype = a.dtype
    if dtype.kind == "b":
        a = a.astype(np.uint8) * 255
    alpha = None
    if a.ndim == 3 and a.shape[2] in (2, 4):
        alpha, a = a[..., -1], a[..., :-1]
    if needs_range(dtype):
        if limits is None:
            step = sample_step(a.shape)
            limits = value_range(a[::step, ::step], name)
        lo, hi = limits
        a = np.nan_to_num(a.astype(np.float32), nan=lo, posinf=hi, neginf=lo)
        a = np.clip((a - lo) * (255.0 / (hi - lo)), 0, 255).round().astype(np.uint8)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if alpha is not None:
        w = np.clip(alpha.astype(np.float32) / _alpha_scale(dtype), 0, 1)
        w = w[..., None] if a.ndim == 3 else w
        a = (a * w + int(background) * (1 - w)).round().astype(np.uint8)
    if rgb and a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    return np.ascontiguousarray(a, dtype=np.uint8)


def pil_array(im) -> np.ndarray:
    """The pixels of a PIL image as an array for :func:`to_uint8`.

    Greyscale, RGB and their alpha versions keep their bands (``L``, ``LA``, ``RGB``,
    ``RGBA``); 16- and 32-bit greyscale become uint16 / int32, ``F`` float32; palette,
    bilevel and other colour spaces are converted to RGB (RGBA when they carry transparency).
    """
    mode = im.mode
    if mode in ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "1", "La", "RGBa", "RGBX"):
        im = im.convert("RGBA" if "transparency" in im.info or mode in ("PA", "La", "RGBa") else "RGB")
    elif mode.startswith("I;16"):
        return np.asarray(im).astype(np.uint16)
    elif mode == "I":
        return np.asarray(im, dtype=np.int32)
    return np.asarray(im)


def read_image(path: str | os.PathLike, max_pixels: int | None = None) -> np.ndarray:
    """An image as uint8 (H, W) or (H, W, 3); TIFF via tifffile, others via Pillow.

    Other dtypes, value ranges and alpha are converted by the package's one rule,
    :func:`topdown._image.to_uint8` (uint8 unchanged; floats in [0, 1] times 255; others
    stretched between the 0.5th and 99.5th percentile; transparent pixels composited onto
    white, alpha dropped).

    The image is decoded whole, so its size is checked from the header first (see
    :func:`topdown._limits.check_image_pixels`: ``max_pixels`` or ``$TOPDOWN_MAX_IMAGE_PIXELS``).
    """
    p = Path(path)
    try:
        if p.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            check_image_pixels(tiff_shape(p), p, max_pixels, tiled_reader=False)  # decoded whole
            img = tifffile.imread(p)
        else:
            with open_pillow(p, max_pixels, tiled_reader=False) as im:
                img = pil_array(im)
    except (InputError, DataFileError):  # the size limit, a broken TIFF header: already one clear line
        raise
    except Exception as exc:
        raise DataFileError(f"cannot read the image '{p}' ({type(exc).__name__}: {exc}); "
                            "it is corrupt or not an image.") from exc
    return to_uint8(img, name=f"the image '{p}'")
