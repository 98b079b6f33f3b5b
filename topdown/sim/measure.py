"""Measure a real, unlabelled tissue image the way the simulator describes one.

:func:`measure_image` returns an :class:`ImageMeasurement`: the glass (background) level and
colour, the stain vectors (Macenko colour deconvolution), the stain amounts in the
simulator's own stain basis, the blur, the noise and, where the pixel size resolves them,
nuclear size and density. :func:`topdown.sim.calibrate` turns the measurements of several
images into a spec whose appearance ranges cover them.

Bright-field pixels are first linearised (the simulator's camera, like most slide
scanners, writes sRGB), so optical densities here are the simulator's: ``OD = -ln(T)``
with ``T`` the linear transmission relative to the glass.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from ..errors import InputError
from .artefacts import _HED_FROM_RGB, _RGB_FROM_HED

#: nuclei are measured only at or below this pixel size (µm/px); coarser pixels blend them
NUCLEI_MAX_PIXEL_UM = 1.0
#: standard deviation of the simulator's noise source, uniform on [0, 1] (``artefacts.noise``)
UNIFORM_SD = 1.0 / np.sqrt(12.0)
#: pixels with an optical density below this (summed over RGB) carry too little stain for Macenko
MACENKO_MIN_OD = 0.15
#: the smaller of the two smoothings of the gradient-ratio blur estimate (px; the other is twice)
REBLUR_SIGMA = 1.0
#: blur variance (px²) the estimate finds in an unblurred step edge (pixel sampling), subtracted
GRID_VARIANCE = 0.2


@dataclass
class ImageMeasurement:
    """What :func:`measure_image` found in one image.

    Attributes
    ----------
    name
        The image's name (its path, or ``image[i]`` for an array).
    modality
        ``"he"`` or ``"dapi"``.
    pixel_size_um
        µm per pixel, as given.
    shape
        ``(H, W)`` pixels.
    tissue_fraction
        Fraction of the image covered by tissue.
    glass_rgb
        Median colour of the glass (background) in 0..1 (sRGB pixel values), ``None`` when
        the image shows no glass.
    glass_spread
        Relative variation of the smoothed glass brightness (5th-95th percentile / median):
        uneven illumination; ``None`` without glass.
    hematoxylin, eosin
        Unit optical-density RGB vectors (Macenko), H&E only.
    stain_angle_deg
        Angle of the measured hematoxylin and eosin vectors to the simulator's (Ruifrok &
        Johnston) vectors, degrees.
    hed_od
        Median tissue optical density on the simulator's hematoxylin, eosin and DAB axes.
    signal
        DAPI: median tissue brightness above the background (0..1).
    blur_px
        Gaussian blur sigma (pixels) of the sharpest edges.
    noise_sd
        Standard deviation of the pixel noise (0..1 scale) in flat background.
    nuclei
        ``{"diameter_um", "density_per_mm2", "n"}`` when resolvable, else ``None``.
    notes
        Remarks (e.g. why nuclei were not measured).
    """

    name: str
    modality: str
    pixel_size_um: float
    shape: tuple[int, int]
    tissue_fraction: float
    glass_rgb: tuple[float, float, float] | None = None
    glass_spread: float | None = None
    hematoxylin: tuple[float, float, float] | None = None
    eosin: tuple[float, float, float] | None = None
    stain_angle_deg: tuple[float, float] | None = None
    hed_od: tuple[float, float, float] | None = None
    signal: float | None = None
    blur_px: float = 0.0
    noise_sd: float = 0.0
    nuclei: dict[str, float] | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain mapping (rounded floats) for printing or JSON."""
        return {k: _rounded(v) for k, v in dataclasses.asdict(self).items()}


def _rounded(v: Any) -> Any:
    if isinstance(v, float):
        return round(v, 4)
    if isinstance(v, tuple | list):
        return type(v)(_rounded(x) for x in v)
    if isinstance(v, dict):
        return {k: _rounded(x) for k, x in v.items()}
    return v


# --------------------------------------------------------------------------- pixels
def srgb_to_linear(a: np.ndarray) -> np.ndarray:
    """sRGB values in 0..1 -> linear light (IEC 61966-2-1)."""
    a = np.asarray(a, dtype=np.float32)
    return np.where(a <= 0.04045, a / 12.92, ((a + 0.055) / 1.055) ** 2.4).astype(np.float32)


def check_modality(img: np.ndarray, modality: str, name: str) -> None:
    """Refuse an image of the other modality with a one-line InputError naming the fix."""
    grey = img.ndim == 2 or float(np.percentile(np.ptp(img[::4, ::4].astype(np.int16), axis=2), 99)) < 6
    bright = float(np.median(img)) > 120
    if modality == "he" and (grey or not bright):
        what = "greyscale" if grey else "dark with bright signal"
        raise InputError(f"{name} is {what}, like a fluorescence (DAPI) image, but the spec is H&E "
                         f"bright-field; give an H&E image, or a spec with imaging.modality: dapi.")
    if modality == "dapi" and (not grey or bright):
        what = "in colour" if not grey else "bright on a bright background"
        raise InputError(f"{name} is {what}, like a bright-field (H&E) image, but the spec is DAPI "
                         f"fluorescence; give a DAPI image, or a spec with imaging.modality: he.")


def tissue_mask(signal: np.ndarray, name: str) -> np.ndarray:
    """Tissue (True) vs glass of a stain signal (H&E: OD; DAPI: brightness), by Otsu.

    An image with no empty glass (tissue edge to edge) is all tissue; an image whose signal
    is flat and faint has no tissue (InputError).
    """
    from skimage.filters import threshold_otsu

    smooth = ndi.gaussian_filter(signal.astype(np.float32), 2.0)
    step = max(1, int(np.ceil(max(smooth.shape) / 1024)))
    sample = smooth[::step, ::step]
    lo, hi = np.percentile(sample, [1, 99])
    if hi - lo < 0.05:
        if hi < 0.1:
            raise InputError(f"{name} shows no tissue (a flat, blank image); give an image of a "
                             f"stained section, or leave this one out.")
        return np.ones(smooth.shape, bool)
    thr = threshold_otsu(sample)
    mask = smooth > thr
    low = float(np.median(sample[sample <= thr]))
    if low > 0.25:  # the low class is stained too: a field full of tissue
        return np.ones(smooth.shape, bool)
    frac = float(mask.mean())
    if frac < 0.005:
        raise InputError(f"{name} shows no tissue ({frac:.1%} of the image is stained); give an image "
                         f"of a stained section, or leave this one out.")
    return ndi.binary_fill_holes(mask)  # pale tissue ringed by stained tissue is tissue


def _away(mask: np.ndarray, px: int) -> np.ndarray:
    """Pixels of ``mask`` farther than ``px`` from its outside."""
    return ndi.binary_erosion(mask, iterations=px) if px > 0 else mask


# --------------------------------------------------------------------------- stains
def macenko(od: np.ndarray, alpha: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Hematoxylin and eosin unit OD vectors of ``(n, 3)`` tissue optical densities (Macenko 2009).

    The OD points are projected on the plane of their two main directions; the stain
    vectors are the directions at the ``alpha`` and ``100 - alpha`` percentiles of the
    angle in that plane. Hematoxylin is the one absorbing more red.
    """
    od = od[od.sum(axis=1) > MACENKO_MIN_OD]
    if len(od) < 50:
        raise InputError("too few stained pixels to measure the stain vectors; give an image with "
                         "more stained tissue.")
    _, vecs = np.linalg.eigh(np.cov(od, rowvar=False))
    plane = vecs[:, [2, 1]]
    plane[:, 0] *= np.sign(plane[:, 0].sum()) or 1.0
    proj = od @ plane
    phi = np.arctan2(proj[:, 1], proj[:, 0])
    a_lo, a_hi = np.percentile(phi, [alpha, 100 - alpha])
    v1 = plane @ np.array([np.cos(a_lo), np.sin(a_lo)])
    v2 = plane @ np.array([np.cos(a_hi), np.sin(a_hi)])
    v1, v2 = (np.abs(v) / np.linalg.norm(v) for v in (v1, v2))  # OD vectors are non-negative
    return (v1, v2) if v1[0] > v2[0] else (v2, v1)


def angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Angle between two vectors, degrees."""
    c = float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


def _he_stains(lin: np.ndarray, tissue: np.ndarray, glass: np.ndarray, m: ImageMeasurement) -> None:
    step = max(1, int(np.ceil(np.sqrt(tissue.sum() / 200_000))))
    pix = lin[::step, ::step][tissue[::step, ::step]]
    od = -np.log(np.clip(pix / np.maximum(glass, 1e-3), 1e-3, 1.0))
    h, e = macenko(od)
    m.hematoxylin, m.eosin = tuple(map(float, h)), tuple(map(float, e))
    m.stain_angle_deg = (angle_deg(h, _RGB_FROM_HED[0]), angle_deg(e, _RGB_FROM_HED[1]))
    m.hed_od = tuple(float(v) for v in np.median(od @ _HED_FROM_RGB, axis=0))


# --------------------------------------------------------------------------- blur, noise
def noise_sd(img: np.ndarray, flat: np.ndarray) -> float:
    """Pixel noise standard deviation in the ``flat`` pixels: per channel, the MAD of neighbour
    differences / sqrt 2 (insensitive to slow shading), averaged over the channels."""
    img = img[..., None] if img.ndim == 2 else img
    return float(np.mean([_channel_noise(img[..., c], flat) for c in range(img.shape[2])]))


def _channel_noise(ch: np.ndarray, flat: np.ndarray) -> float:
    d = np.concatenate([(ch[:, 1:] - ch[:, :-1])[flat[:, 1:] & flat[:, :-1]],
                        (ch[1:] - ch[:-1])[flat[1:] & flat[:-1]]])
    if d.size < 100:
        return 0.0
    mad = float(np.median(np.abs(d - np.median(d))))
    if mad > 0:
        return 1.4826 * mad / np.sqrt(2.0)
    keep = np.abs(d) <= np.percentile(np.abs(d), 99)  # quantised, nearly noiseless: RMS of the bulk
    return float(np.sqrt(np.mean(d[keep] ** 2) / 2.0))


def blur_sigma(grey: np.ndarray, where: np.ndarray | None = None) -> float:
    """Gaussian blur sigma (px) of the sharpest edges, by the ratio of two smoothed gradients.

    At an edge blurred by ``s``, the gradient magnitude after smoothing by ``a`` is
    proportional to ``1 / sqrt(s² + a²)``, so the ratio ``R`` of the gradients at
    ``a = 1`` and ``b = 2`` px gives ``s² = (b² - R² a²) / (R² - 1)`` (after Zhuo & Sim
    2011), less the pixel grid's own :data:`GRID_VARIANCE`; the median over the local
    gradient maxima among the strongest 2 %.
    """
    a, b = REBLUR_SIGMA, 2.0 * REBLUR_SIGMA
    ga = ndi.gaussian_gradient_magnitude(grey, a)
    peak = ga == ndi.maximum_filter(ga, 3)
    if where is not None:
        peak &= where
    vals = ga[peak]
    if vals.size < 20:
        return 0.0
    strong = peak & (ga >= np.percentile(vals, 98)) & (ga > 0)
    gb = ndi.maximum_filter(ndi.gaussian_gradient_magnitude(grey, b), 3)[strong]
    ratio = ga[strong] / np.maximum(gb, 1e-9)
    s2 = (b ** 2 - ratio ** 2 * a ** 2) / np.maximum(ratio ** 2 - 1.0, 1e-6) - GRID_VARIANCE
    return float(np.sqrt(max(float(np.median(s2)), 0.0)))


# --------------------------------------------------------------------------- nuclei
def measure_nuclei(signal: np.ndarray, tissue: np.ndarray, pixel_size_um: float) -> dict[str, float] | None:
    """Median nucleus diameter (µm) and density (per mm² of tissue) from a nuclear signal.

    ``signal``: hematoxylin OD (H&E) or brightness (DAPI). Nuclei are the Otsu-bright
    blobs inside the tissue, 2-40 µm across; ``None`` when fewer than 20 are found.
    """
    from skimage.filters import threshold_otsu

    vals = signal[tissue]
    if vals.size < 100:
        return None
    blobs = ndi.binary_opening((signal > threshold_otsu(vals)) & tissue, iterations=1)
    labels, n = ndi.label(blobs)
    if n == 0:
        return None
    area_um2 = np.bincount(labels.ravel())[1:] * pixel_size_um ** 2
    diam = np.sqrt(4.0 * area_um2 / np.pi)
    keep = (diam >= 2.0) & (diam <= 40.0)
    if keep.sum() < 20:
        return None
    tissue_mm2 = tissue.sum() * pixel_size_um ** 2 / 1e6
    return {"diameter_um": float(np.median(diam[keep])), "density_per_mm2": float(keep.sum() / tissue_mm2),
            "n": float(keep.sum())}


# --------------------------------------------------------------------------- one image
def measure_image(image: np.ndarray, pixel_size_um: float, modality: str = "he", *,
                  name: str = "image") -> ImageMeasurement:
    """Measure one uint8 image (``(H, W)`` or ``(H, W, 3)``) of ``modality``.

    Parameters
    ----------
    image
        uint8 pixels (see :func:`topdown._image.to_uint8` for other types).
    pixel_size_um
        µm per pixel of the image.
    modality
        ``"he"`` (bright-field) or ``"dapi"`` (fluorescence).
    name
        The image's name in messages.

    Returns
    -------
    ImageMeasurement

    Raises
    ------
    InputError
        An image of the other modality, or one showing no tissue.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.full((128, 128, 3), 235, np.uint8); img[32:96, 32:96] = (150, 90, 170)
    >>> m = measure_image(img, 2.0)
    >>> round(m.tissue_fraction, 1), m.glass_rgb[0] > 0.9
    (0.3, True)
    """
    img = np.asarray(image)
    check_modality(img, modality, name)
    rgb = np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img
    srgb = rgb.astype(np.float32) / 255.0
    grey = srgb.mean(axis=2)
    if modality == "he":
        lin = srgb_to_linear(srgb)
        signal = -np.log(np.clip(lin, 1e-3, 1.0)).sum(axis=2) / 3.0
        signal = signal - np.percentile(signal[::4, ::4], 1)  # OD above the brightest glass
    else:
        signal = grey - np.percentile(grey[::4, ::4], 1)
    tissue = tissue_mask(signal, name)
    m = ImageMeasurement(name=name, modality=modality, pixel_size_um=float(pixel_size_um),
                         shape=(int(img.shape[0]), int(img.shape[1])), tissue_fraction=float(tissue.mean()))
    glass = _away(~tissue, 3)
    if glass.sum() >= 100:
        m.glass_rgb = tuple(float(v) for v in np.median(srgb[glass], axis=0))
        level = ndi.gaussian_filter(grey, 4.0)[glass]
        p5, p50, p95 = np.percentile(level, [5, 50, 95])
        m.glass_spread = float((p95 - p5) / max(p50, 1e-3))
    else:
        m.notes.append("no glass in the image: background not measured; noise measured in tissue")
    flat = glass if glass.sum() >= 100 else _away(tissue, 1)
    m.noise_sd = noise_sd(srgb, flat)
    m.blur_px = blur_sigma(grey)
    if modality == "he":
        white = (srgb_to_linear(np.array(m.glass_rgb, np.float32)) if m.glass_rgb is not None
                 else np.percentile(lin[::4, ::4].reshape(-1, 3), 99, axis=0))
        _he_stains(lin, tissue, white, m)
        nuclear = (-np.log(np.clip(lin / np.maximum(white, 1e-3), 1e-3, 1.0))) @ _HED_FROM_RGB[:, 0]
    else:
        m.signal = float(np.median(signal[tissue]))
        nuclear = signal
    if pixel_size_um <= NUCLEI_MAX_PIXEL_UM:
        m.nuclei = measure_nuclei(nuclear, tissue, float(pixel_size_um))
        if m.nuclei is None:
            m.notes.append("nuclei: too few found to measure")
    else:
        m.notes.append(f"nuclei: not resolvable at {pixel_size_um:g} µm/px (needs <= {NUCLEI_MAX_PIXEL_UM:g})")
    return m
