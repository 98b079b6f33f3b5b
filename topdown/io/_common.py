"""Helpers shared by the readers: matrix checks, image loading."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._image import pil_array, to_uint8
from .._limits import check_image_pixels, open_pillow, tiff_shape
from ..errors import DataFileError, InputError


def check_matrix(adata, source: str) -> None:
    """Refuse empty matrices and duplicate barcodes, naming the file."""
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise InputError(f"the count matrix '{source}' is empty ({adata.n_obs} barcodes x {adata.n_vars} "
                         "genes); check that the file was copied completely.")
    total = adata.X.sum() if adata.X is not None else 0
    if not total:
        raise InputError(f"the count matrix '{source}' holds no counts (all {adata.n_obs} x "
                         f"{adata.n_vars} entries are zero); check that the file was copied completely.")
    if adata.obs_names.has_duplicates:
        dup = adata.obs_names[adata.obs_names.duplicated()][0]
        raise InputError(f"duplicate barcode/cell id '{dup}' in '{source}'; each observation must be "
                         "unique (merge or rename the duplicates).")


def read_image(path: str | Path, max_pixels: int | None = None) -> np.ndarray:
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


def downsample_image(img: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """Shrink ``img`` so its longer side is at most ``max_side``; returns (image, scale)."""
    from PIL import Image

    h, w = img.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    if scale >= 1.0:
        return img, 1.0
    nh, nw = max(1, int(round(h * scale))), max(1, int(round(w * scale)))
    out = np.asarray(Image.fromarray(img).resize((nw, nh), Image.Resampling.BOX))
    # exact per-axis scale would differ slightly; use the mean (sub-pixel)
    return out, float((nh / h + nw / w) / 2.0)
