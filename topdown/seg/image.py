"""Image sources for segmentation: arrays, PIL images and files, read tile by tile.

Every source exposes ``shape`` (H, W) and ``read(r0, r1, c0, c1) -> uint8 (h, w, 3)`` RGB,
converted by the package's one rule, :func:`topdown._image.to_uint8`: greyscale replicated
to 3 channels; RGBA / LA composited onto the source's ``background`` (the model's glass:
white for H&E, black for DAPI); floats in [0, 1] times 255; other non-uint8 images
stretched between robust percentiles (0.5 %, 99.5 %). The range is computed once on a
strided thumbnail, so every tile uses the same mapping.
Tiled or striped TIFFs are read lazily (only the tiles a read touches are decoded), so a
whole-slide TIFF is never decoded at once; PNG/JPEG are decoded whole (their formats do not allow tiled reads).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .._image import SAMPLE_SIDE, needs_range, pil_array, sample_step, to_uint8, value_range
from .._limits import check_image_pixels, open_pillow, plane_shape
from ..errors import DataFileError, InputError

_THUMB = SAMPLE_SIDE


class ImageSource:
    """A 2-D image (H, W[, C]) of any dtype, returned as uint8 RGB tiles."""

    def __init__(self, array, *, background: int = 255, name: str = "image") -> None:
        self.array = array  # numpy array, memmap or zarr array, (H, W) or (H, W, C)
        self.name = name
        self.background = int(background)
        shape = tuple(array.shape)
        if len(shape) == 3 and shape[0] in (1, 2, 3, 4) and shape[2] > 4:
            raise InputError(f"{name}: channel-first array of shape {shape}; pass it as (H, W, C) "
                             "(e.g. np.moveaxis(img, 0, -1)).")
        if len(shape) not in (2, 3) or (len(shape) == 3 and shape[2] not in (1, 2, 3, 4)):
            raise InputError(f"{name}: expected an (H, W) greyscale or (H, W, 3|4) colour image, got shape {shape}.")
        if shape[0] == 0 or shape[1] == 0:
            raise InputError(f"{name}: the image is empty (shape {shape}); give a non-empty image.")
        self.shape = (int(shape[0]), int(shape[1]))
        self.channels = 1 if len(shape) == 2 else int(shape[2])
        self.dtype = np.dtype(array.dtype)
        self._range: tuple[float, float] | None = None
        if needs_range(self.dtype):
            self._range = self._robust_range()

    def _raw(self, r0: int, r1: int, c0: int, c1: int, step: int = 1) -> np.ndarray:
        return np.asarray(self.array[r0:r1:step, c0:c1:step])

    def _robust_range(self) -> tuple[float, float] | None:
        """The value range of the whole image (:func:`topdown._image.value_range` of its thumbnail)."""
        step = sample_step(self.shape, _THUMB)
        return value_range(self._raw(0, self.shape[0], 0, self.shape[1], step), self.name)

    def read(self, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        """uint8 RGB pixels ``[r0:r1, c0:c1]`` (clipped to the image; no padding)."""
        a = self._raw(max(r0, 0), min(r1, self.shape[0]), max(c0, 0), min(c1, self.shape[1]))
        return self._to_rgb8(a)

    def thumbnail(self, max_side: int = _THUMB) -> tuple[np.ndarray, int]:
        """Strided uint8 RGB thumbnail and its stride."""
        step = sample_step(self.shape, max_side)
        return self._to_rgb8(self._raw(0, self.shape[0], 0, self.shape[1], step)), step

    def _to_rgb8(self, a: np.ndarray) -> np.ndarray:
        return to_uint8(a, limits=self._range, background=self.background, rgb=True, name=self.name)


class _TiffSegments:
    """Lazy (H, W[, C]) view of a TIFF's first page: decodes only the tiles/strips a read touches."""

    def __init__(self, path: Path) -> None:
        import tifffile

        self.tif = tifffile.TiffFile(str(path))
        page = self.tif.pages[0]
        self.page = page
        self.shape = tuple(page.shape)
        self.dtype = page.dtype
        if page.is_tiled:
            self.seg = (int(page.tilelength), int(page.tilewidth))
        else:
            self.seg = (int(page.rowsperstrip or page.shape[0]), int(page.shape[1]))
        self.nrow = -(-self.shape[0] // self.seg[0])
        self.ncol = -(-self.shape[1] // self.seg[1])

    def __getitem__(self, key):
        rs, cs = key[0], key[1]
        r0, r1, rstep = rs.indices(self.shape[0])
        c0, c1, cstep = cs.indices(self.shape[1])
        nr, nc = len(range(r0, r1, rstep)), len(range(c0, c1, cstep))
        out = np.zeros((nr, nc, *self.shape[2:]), dtype=self.dtype)  # strided: never full size
        fh, page = self.tif.filehandle, self.page
        for i in range(r0 // self.seg[0], -(-r1 // self.seg[0])):
            for j in range(c0 // self.seg[1], -(-c1 // self.seg[1])):
                k = i * self.ncol + j
                y, x = i * self.seg[0], j * self.seg[1]
                # first wanted row/column inside this segment
                ya = max(r0, y) + (-(max(r0, y) - r0)) % rstep
                xa = max(c0, x) + (-(max(c0, x) - c0)) % cstep
                yb, xb = min(r1, y + self.seg[0]), min(c1, x + self.seg[1])
                if ya >= yb or xa >= xb:
                    continue
                fh.seek(page.dataoffsets[k])
                seg, _, _ = page.decode(fh.read(page.databytecounts[k]), k, jpegtables=page.jpegtables)
                block = seg[0][ya - y:yb - y:rstep, xa - x:xb - x:cstep]
                oy, ox = (ya - r0) // rstep, (xa - c0) // cstep
                out[oy:oy + block.shape[0], ox:ox + block.shape[1]] = (
                    block if len(self.shape) == 3 else block[..., 0])
        return out


def _open_tiff(path: Path, max_pixels: int | None = None):
    import tifffile

    try:
        with tifffile.TiffFile(str(path)) as tif:
            page = tif.pages[0]
            lazy = (page.planarconfig == 1 and len(page.shape) in (2, 3) and len(page.dataoffsets) > 1)
            shape = page.shape
        if lazy:
            return _TiffSegments(path)
        check_image_pixels(plane_shape(shape), path, max_pixels)  # decoded whole: size limit
        arr = tifffile.imread(str(path))
    except InputError:
        raise
    except Exception as exc:
        raise DataFileError(f"cannot read TIFF '{path}': {exc}. Check that the file is a complete image.") from exc
    if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[2] > 4:  # planar (C, H, W)
        arr = np.moveaxis(arr, 0, -1)
    return arr


def open_image(image, *, background: int = 255, max_pixels: int | None = None) -> ImageSource:
    """Wrap ``image`` (array, PIL image, path or ImageSource) as an :class:`ImageSource`.

    A PNG, JPEG or untiled TIFF file is decoded whole, so its size is checked from the
    header first: at most ``max_pixels`` pixels (default ``$TOPDOWN_MAX_IMAGE_PIXELS`` or
    :data:`topdown._limits.MAX_IMAGE_PIXELS`, 2**28; 0 = no limit). Tiled and striped
    TIFFs are read tile by tile, without a limit.

    Raises
    ------
    DataFileError
        Missing or unreadable file.
    InputError
        Empty image, unsupported shape, or a file above the pixel limit.
    """
    if isinstance(image, ImageSource):
        return image
    if isinstance(image, (str, os.PathLike)):
        path = Path(image).expanduser()
        if not path.exists():
            raise DataFileError(f"image not found: '{path}'. Check the path.")
        if path.is_dir():
            raise DataFileError(f"'{path}' is a folder; give an image file (PNG, JPEG or TIFF).")
        if path.stat().st_size == 0:
            raise DataFileError(f"image '{path}' is an empty file (0 bytes).")
        if path.suffix.lower() in (".tif", ".tiff", ".btf"):
            return ImageSource(_open_tiff(path, max_pixels), background=background, name=str(path))
        try:
            with open_pillow(path, max_pixels) as im:
                arr = pil_array(im)
        except InputError:
            raise
        except Exception as exc:
            raise DataFileError(f"cannot read image '{path}': {exc}. Give a PNG, JPEG or TIFF file.") from exc
        return ImageSource(arr, background=background, name=str(path))
    try:
        from PIL import Image

        if isinstance(image, Image.Image):
            return ImageSource(pil_array(image), background=background, name="PIL image")
    except ImportError:  # pragma: no cover
        pass
    if hasattr(image, "shape") and hasattr(image, "__getitem__") and not isinstance(image, np.ndarray):
        return ImageSource(image, background=background, name="array")  # zarr / dask / memmap-like
    arr = np.asarray(image)
    if arr.dtype == object:
        raise InputError(f"cannot use an object of type {type(image).__name__} as an image; "
                         "give an array, a PIL image or a file path.")
    return ImageSource(arr, background=background, name="array")
