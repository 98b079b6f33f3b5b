"""Size limits that keep a hostile or broken input from exhausting memory.

Two guards, both checked from metadata *before* anything large is allocated:

* images decoded whole (PNG, JPEG, untiled TIFF) may hold at most
  :data:`MAX_IMAGE_PIXELS` pixels, read from the file header. Pillow's own guard is left
  as the user set it. Raise the limit with ``max_pixels=`` or the environment variable
  ``TOPDOWN_MAX_IMAGE_PIXELS`` (``0`` switches it off) for a file you trust. Segmentation
  (:func:`topdown.seg.image.open_image`) reads tiled or striped TIFFs tile by tile, with
  no limit (convert a huge slide to one, e.g. ``vips tiffsave in.png out.tif --tile``);
  the readers of :mod:`topdown.io` decode every image whole, so the limit applies to all.
* a segmentation network described by a checkpoint may have at most
  :data:`MAX_MODEL_PARAMETERS` parameters, counted from its ``widths`` before it is built.
"""

from __future__ import annotations

import contextlib
import numbers
import os
import threading
from collections.abc import Iterator, Sequence

from .errors import DataFileError, InputError

#: default pixel limit of an image decoded whole: 2**28 (16384 x 16384, 0.8 GB as RGB);
#: real Visium hires images are 2000 x 2000, the largest real image in the tests 4603 x 4143
MAX_IMAGE_PIXELS = 2**28
#: environment variable overriding :data:`MAX_IMAGE_PIXELS` (0: no limit)
IMAGE_PIXELS_ENV = "TOPDOWN_MAX_IMAGE_PIXELS"
#: parameters of a U-Net built from checkpoint metadata (shipped models have ~2 million)
MAX_MODEL_PARAMETERS = 200_000_000
#: channels of one U-Net level, and number of levels
MAX_WIDTH, MAX_LEVELS = 4096, 8

_PIL_LOCK = threading.Lock()


def max_image_pixels(max_pixels: int | None = None) -> int | None:
    """The pixel limit in force: ``max_pixels`` if given, else the environment's, else the default.

    Returns None when the limit is switched off (``0``).
    """
    value: object = max_pixels
    source = "max_pixels"
    if value is None:
        value, source = os.environ.get(IMAGE_PIXELS_ENV, MAX_IMAGE_PIXELS), IMAGE_PIXELS_ENV
    try:
        limit = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError) as exc:
        raise InputError(f"{source} must be a whole number of pixels (0: no limit), got {value!r}") from exc
    if limit < 0:
        raise InputError(f"{source} must be >= 0 (0: no limit), got {limit}")
    return limit or None


def check_image_pixels(shape: Sequence[int], name: str | os.PathLike, max_pixels: int | None = None, *,
                       tiled_reader: bool = True) -> None:
    """Refuse an image of ``shape`` (H, W, ...) above the pixel limit, before it is decoded.

    ``tiled_reader``: the caller reads tiled TIFFs tile by tile, so the message may suggest one.

    Raises
    ------
    InputError
        The image is larger than the limit; the message says how to raise it.
    """
    limit = max_image_pixels(max_pixels)
    h, w = int(shape[0]), int(shape[1])
    if limit is not None and h * w > limit:
        raise InputError(
            f"image '{name}' is {w} x {h} = {h * w:,} pixels, above the limit of {limit:,} for an image decoded "
            f"whole (it would need about {h * w * 3 / 1e9:.1f} GB). If you trust the file, raise the limit "
            f"with {IMAGE_PIXELS_ENV}={h * w} (or max_pixels=)"
            + (", or convert it to a tiled TIFF, which is read tile by tile." if tiled_reader else "."))


@contextlib.contextmanager
def open_pillow(path: str | os.PathLike, max_pixels: int | None = None, *, tiled_reader: bool = True) -> Iterator:
    """Open ``path`` with Pillow (header only) and check its size before anything is decoded.

    Pillow's own decompression-bomb check is replaced, for this call only, by
    :func:`check_image_pixels` (one limit, one message, adjustable by the user).
    """
    from PIL import Image

    with _PIL_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None  # Image.open reads the header only; the check is just below
        try:
            im = Image.open(path)
        finally:
            Image.MAX_IMAGE_PIXELS = saved
    with im:
        check_image_pixels((im.size[1], im.size[0]), path, max_pixels, tiled_reader=tiled_reader)
        yield im


def plane_shape(shape: Sequence[int]) -> tuple[int, int]:
    """(H, W) of an image array shape (H, W), (H, W, C) or planar (C, H, W) with C <= 4."""
    if len(shape) == 3 and shape[0] in (1, 2, 3, 4) and shape[2] > 4:
        return int(shape[1]), int(shape[2])
    return int(shape[0]), int(shape[1])


def tiff_shape(path: str | os.PathLike) -> tuple[int, int]:
    """(H, W) of a TIFF's first page, from its header."""
    import tifffile

    try:
        with tifffile.TiffFile(str(path)) as tif:
            return plane_shape(tif.pages[0].shape)
    except Exception as exc:  # tifffile raises many types on broken headers
        raise DataFileError(f"cannot read TIFF '{path}': {exc}. Check that the file is a complete image.") from exc


def unet_parameters(widths: Sequence[int], in_channels: int = 3, n_classes: int = 2) -> int:
    """Parameter count of :class:`~topdown.seg.model.UNet` with these ``widths`` (no allocation)."""
    n, cin = 0, in_channels
    for w in widths:  # two 3x3 convolutions (no bias) + two norms (2 x w each) per level
        n += 9 * cin * w + 9 * w * w + 4 * w
        cin = w
    for i in range(len(widths) - 2, -1, -1):
        cin, w = widths[i + 1] + widths[i], widths[i]
        n += 9 * cin * w + 9 * w * w + 4 * w
    return n + widths[0] * n_classes + n_classes


def check_widths(widths: object, in_channels: int = 3, n_classes: int = 2, *, source: str = "widths") -> tuple[int, ...]:
    """Validate U-Net ``widths`` (levels, channels, total size) before the network is built.

    Raises
    ------
    InputError
        Not 2-8 positive integers up to :data:`MAX_WIDTH`, or more than
        :data:`MAX_MODEL_PARAMETERS` parameters in all.
    """
    ok = isinstance(widths, list | tuple) and all(isinstance(w, numbers.Integral) and not isinstance(w, bool)
                                                   for w in widths)
    if not ok or not 2 <= len(widths) <= MAX_LEVELS or not all(1 <= w <= MAX_WIDTH for w in widths):
        raise InputError(f"{source} must be 2 to {MAX_LEVELS} channel counts between 1 and {MAX_WIDTH}, "
                         f"got {widths!r}")
    if not (isinstance(in_channels, int) and 1 <= in_channels <= 16):
        raise InputError(f"in_channels must be an integer between 1 and 16, got {in_channels!r}")
    widths = tuple(int(w) for w in widths)
    n = unet_parameters(widths, in_channels, n_classes)
    if n > MAX_MODEL_PARAMETERS:
        raise InputError(f"{source} {list(widths)} describe a network of {n:,} parameters, above the limit of "
                         f"{MAX_MODEL_PARAMETERS:,} (the shipped models have about 2 million).")
    return widths



def check_number(value: object, name: str, lo: float | None = None, hi: float | None = None, *,
                 lo_open: bool = False) -> float:
    """``value`` as a float, refusing NaN, infinities and values outside ``[lo, hi]`` (``(lo, hi]`` with ``lo_open``).

    Raises
    ------
    InputError
        Naming ``name`` and the allowed range.
    """
    import math

    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must be a number, got {value!r}") from exc
    below = lo is not None and (x <= lo if lo_open else x < lo)
    if not math.isfinite(x) or below or (hi is not None and x > hi):
        span = f"{'(' if lo_open else '['}{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}]"
        raise InputError(f"{name} must be a finite number in {span}, got {value!r}")
    return x
