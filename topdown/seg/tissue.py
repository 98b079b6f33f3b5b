"""Tissue vs. background on a thumbnail, used to veto the model outside tissue.

H&E: optical density (white glass = low OD), Otsu threshold. Holes enclosed by tissue are
filled, so that ventricles or vessels inside a section are left to the model (they may be
region classes). Glass is assumed present only if the low Otsu class covers most of the
thumbnail border (sections lie inside the slide; a crop full of tissue has tissue at its
border) and is clearly apart from the high class; otherwise the detector abstains
(``None``) and the model's own ``outside`` class decides. Absolute levels are not used:
real scans have grey or tinted glass (e.g. Visium lowres images).

DAPI: only nuclei are bright, so the dark space between them is tissue too. With a known
pixel size, glass is dark space that can hold a disk of :data:`DAPI_GLASS_RADIUS_UM`
(farther from any nucleus than the widest gap between nuclei in a real section); an image
with room for such a disk but none of them is all tissue (a field inside a section: the
model's ``outside`` then needs to be confident, as over any detected tissue), and one too
small to hold a disk is left to the model. Without a pixel size, a smoothed-intensity Otsu
threshold as for H&E.
"""

from __future__ import annotations

import numpy as np

#: dark space in a DAPI image is glass only where it holds a disk of this radius (µm)
DAPI_GLASS_RADIUS_UM = 100.0


def tissue_mask(rgb: np.ndarray, modality: str = "he", pixel_size_um: float | None = None) -> np.ndarray | None:
    """Boolean tissue mask of a uint8 RGB thumbnail, or ``None`` when no empty glass is seen.

    Parameters
    ----------
    rgb
        ``(h, w, 3)`` uint8 thumbnail.
    modality
        ``"he"`` or ``"dapi"``.
    pixel_size_um
        µm per thumbnail pixel, if known (used for DAPI): the image's µm per pixel times the
        thumbnail's stride (``ImageScale.convert(stride, "image", "um")``).

    Returns
    -------
    The mask, all ``False`` for a featureless image, or ``None`` (blank image, an H&E crop
    full of tissue, a DAPI image too small to hold a glass disk): then tissue vs glass is
    left to the model.
    """
    from scipy import ndimage as ndi
    from skimage.filters import threshold_otsu

    rgb = np.asarray(rgb, dtype=np.float32)
    if modality == "dapi":
        signal = rgb.mean(axis=2) / 255.0
        sigma, gap = (1.0 if pixel_size_um else 4.0), 0.04
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
    if modality == "dapi" and pixel_size_um:
        return _dapi_tissue(mask, float(pixel_size_um))
    border = np.concatenate([mask[0], mask[-1], mask[:, 0], mask[:, -1]])
    apart = float(smooth[mask].mean() - smooth[~mask].mean()) > gap
    if border.mean() > 0.4 or not apart:  # no empty glass around the tissue
        return None
    mask = ndi.binary_dilation(mask, iterations=2)
    return ndi.binary_fill_holes(mask)


def _dapi_tissue(nuclei: np.ndarray, pixel_size_um: float) -> np.ndarray | None:
    """Tissue = everything but dark space wide enough to hold a glass disk (an opening)."""
    from scipy import ndimage as ndi

    radius = DAPI_GLASS_RADIUS_UM / pixel_size_um
    far = ndi.distance_transform_edt(~nuclei) > radius  # centres of glass disks
    if not far.any():
        if min(nuclei.shape) > 2 * radius:  # room for glass, and none: a field full of tissue
            return np.ones(nuclei.shape, dtype=bool)
        return None  # too small to tell
    glass = ndi.distance_transform_edt(~far) <= radius
    return ndi.binary_fill_holes(~glass)
