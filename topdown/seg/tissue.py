"""Tissue vs. background on a thumbnail (Otsu), used to veto the model outside tissue.

H&E: optical density (white glass = low OD). DAPI: intensity (dark glass), smoothed more
because nuclei are sparse. Holes enclosed by tissue are filled, so that ventricles or
vessels inside a section are left to the model (they may be region classes).
Glass is assumed present only if the low Otsu class covers most of the thumbnail border
(sections lie inside the slide; a crop full of tissue has tissue at its border) and is
clearly apart from the high class; otherwise the detector abstains (``None``) and the
model's own ``outside`` class decides. Absolute
levels are not used: real scans have grey or tinted glass (e.g. Visium lowres images).
"""

from __future__ import annotations

import numpy as np


def tissue_mask(rgb: np.ndarray, modality: str = "he") -> np.ndarray | None:
    """Boolean tissue mask of a uint8 RGB thumbnail, or ``None`` when no empty glass is seen
    (blank image, or a crop full of tissue): then tissue vs glass is left to the model."""
    from scipy import ndimage as ndi
    from skimage.filters import threshold_otsu

    rgb = np.asarray(rgb, dtype=np.float32)
    if modality == "dapi":
        signal = rgb.mean(axis=2) / 255.0
        sigma, gap = 4.0, 0.04
    else:
        signal = (-np.log10((rgb + 1.0) / 256.0)).mean(axis=2)
        sigma, gap = 2.0, 0.05
    smooth = ndi.gaussian_filter(signal, sigma)
    if min(smooth.shape) < 8:
        return None
    if float(smooth.max() - smooth.min()) < 1e-3:  # featureless: no tissue anywhere
        return np.zeros(smooth.shape, dtype=bool)
    thr = threshold_otsu(smooth)
    mask = smooth > thr
    border = np.concatenate([mask[0], mask[-1], mask[:, 0], mask[:, -1]])
    apart = float(smooth[mask].mean() - smooth[~mask].mean()) > gap
    if border.mean() > 0.4 or not apart:  # no empty glass around the tissue
        return None
    mask = ndi.binary_dilation(mask, iterations=2)
    return ndi.binary_fill_holes(mask)
