"""Helpers shared by the readers: matrix checks, image loading."""

from __future__ import annotations

import numpy as np

from .._image import read_image as read_image  # the one image-file reader (shared with sim)
from ..errors import InputError


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
