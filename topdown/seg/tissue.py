"""Tissue vs. background on a thumbnail (Otsu), used to veto the model outside tissue.

H&E: optical density (white glass = low OD). DAPI: intensity (dark glass), smoothed more
because nuclei are sparse. Holes enclosed by tissue are filled, so that ventricles or
vessels inside a section are left to the model (they may be region classes).
If the thumbnail has no clear background (the low Otsu class is itself stained), every
pixel counts as tissue.
"""

from __future__ import annotations

import numpy as np


def tissue_mask(rgb: np.ndarray, modality: str = "he") -> np.ndarray:
    """Boolean tissue mask of a uint8 RGB thumbnail."""
    from scipy import ndimage as ndi
    from skimage.filters import threshold_otsu

    rgb = np.asarray(rgb, dtype=np.float32)
    if modality == "dapi":
        signal = rgb.mean(axis=2) / 255.0
        sigma, floor = 4.0, 0.08
    else:
        signal = (-np.log10((rgb + 1.0) / 256.0)).mean(axis=2)
        sigma, floor = 2.0, 0.12
    smooth = ndi.gaussian_filter(signal, sigma)
    if smooth.size < 4 or float(smooth.max() - smooth.min()) < 1e-3:
        return np.full(smooth.shape, float(smooth.mean()) > floor, dtype=bool)
    thr = threshold_otsu(smooth)
    low = smooth[smooth <= thr]
    if low.size and float(low.mean()) > floor:  # no empty glass in view
        return np.ones(smooth.shape, dtype=bool)
    mask = smooth > thr
    mask = ndi.binary_dilation(mask, iterations=2)
    return ndi.binary_fill_holes(mask)
