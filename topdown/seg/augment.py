"""On-the-fly augmentation aimed at the simulation-to-real gap.

One call :func:`augment` turns a simulated frame (uint8 RGB + label mask) into a random
training crop: geometry (flips, 90° and free rotation, or upright within +/-30°; scale
jitter, elastic warp; one resampling pass), stain jitter in HED space (H&E) or intensity
gain (DAPI), hue/saturation jitter, gamma / brightness / contrast, Gaussian blur, JPEG
compression and Gaussian noise. Every draw comes from the ``rng`` passed in, so a seed
fixes the result.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass, replace
from functools import lru_cache

import numpy as np

from ..errors import InputError

#: rotation range (+/- degrees) of ``"upright"`` training: the presets' own +/-15° and a margin
UPRIGHT_ROTATE_DEG = 30.0


@dataclass
class AugmentConfig:
    """Strengths and probabilities of each augmentation (0 disables a term)."""

    flip: bool = True               # left-right mirror (anatomy allows it: sections are mounted either way)
    any_orientation: bool = True    # also upside-down flips and 90° turns ("free" orientation)
    rotate_deg: float = 180.0       # free rotation range (+/-)
    scale: tuple[float, float] = (0.8, 1.25)   # scale jitter (pixel-size uncertainty)
    elastic_px: float = 4.0         # elastic displacement amplitude (px)
    elastic_grid: int = 6           # control points per side
    p_geometric: float = 0.8        # probability of the rotation/scale/elastic warp
    hed_sigma: float = 0.08         # HED stain jitter: multiplicative +/- sigma per channel
    hed_bias: float = 0.004         # and additive (skimage HED units: OD / 13.8, so 0.004 ~ 0.055 OD)
    hue: float = 0.04               # HSV hue shift (fraction of the circle)
    saturation: tuple[float, float] = (0.7, 1.3)
    gamma: tuple[float, float] = (0.7, 1.4)
    brightness: float = 0.08
    contrast: tuple[float, float] = (0.75, 1.25)
    p_blur: float = 0.3
    blur_sigma: tuple[float, float] = (0.3, 1.5)
    p_jpeg: float = 0.3
    jpeg_quality: tuple[int, int] = (30, 95)
    noise_sigma: tuple[float, float] = (0.0, 0.04)

    def to_dict(self) -> dict:
        return asdict(self)


@lru_cache(maxsize=16)
def _spline_upsampler(g: int, out: int) -> np.ndarray:
    """``(out, g)`` matrix ``Z`` with ``Z @ a @ Z.T == ndi.zoom(a, out / g, order=3, mode="nearest")``
    for any ``(g, g)`` array ``a`` (the zoom is linear and separable): smooth elastic fields
    for the price of two small matrix products."""
    from scipy import ndimage as ndi

    eye = np.eye(g, dtype=np.float64)
    cols = [ndi.zoom(np.outer(e, np.ones(g)), (out / g, out / g), order=3, mode="nearest")[:out, 0]
            for e in eye]
    return np.stack(cols, axis=1).astype(np.float32)


def _warp(image: np.ndarray, mask: np.ndarray, out: int, cfg: AugmentConfig, rng: np.random.Generator,
          background: float, ignore: int) -> tuple[np.ndarray, np.ndarray]:
    from scipy import ndimage as ndi

    h, w = mask.shape
    geometric = rng.random() < cfg.p_geometric
    theta = np.deg2rad(rng.uniform(-cfg.rotate_deg, cfg.rotate_deg)) if geometric else 0.0
    s = float(np.exp(rng.uniform(*np.log(cfg.scale)))) if geometric else 1.0
    # output pixel -> source coordinates: rotate and scale about a random centre
    cy = rng.uniform(min(out / 2, h / 2), max(h - out / 2, h / 2))
    cx = rng.uniform(min(out / 2, w / 2), max(w - out / 2, w / 2))
    yy, xx = np.mgrid[0:out, 0:out].astype(np.float32)
    yy -= (out - 1) / 2
    xx -= (out - 1) / 2
    c, sn = np.cos(theta) / s, np.sin(theta) / s
    sy = c * yy - sn * xx + cy - 0.5
    sx = sn * yy + c * xx + cx - 0.5
    if geometric and cfg.elastic_px > 0:
        g = max(2, cfg.elastic_grid)
        up = _spline_upsampler(g, out)
        for arr in (sy, sx):
            coarse = rng.normal(0, cfg.elastic_px, (g, g)).astype(np.float32)
            arr += up @ coarse @ up.T
    # mirror the sampling grid (both coordinate planes, or the map would shear)
    if cfg.flip and rng.random() < 0.5:
        sy, sx = sy[:, ::-1], sx[:, ::-1]
    if cfg.any_orientation and rng.random() < 0.5:
        sy, sx = sy[::-1], sx[::-1]
    coords = np.stack([sy, sx])
    img = np.stack([ndi.map_coordinates(image[..., k].astype(np.float32), coords, order=1, mode="constant",
                                        cval=background) for k in range(image.shape[2])], axis=-1)
    lab = ndi.map_coordinates(mask, coords, order=0, mode="constant", cval=ignore)
    if cfg.any_orientation:
        k = int(rng.integers(4))
        img, lab = np.rot90(img, k), np.rot90(lab, k)
    return np.ascontiguousarray(img), np.ascontiguousarray(lab)


def orientation_config(orientation: str, base: AugmentConfig | None = None) -> AugmentConfig:
    """Augmentation for ``"free"`` orientation (any rotation or flip) or ``"upright"`` tissue.

    ``"upright"`` keeps dorsal up (rotations within :data:`UPRIGHT_ROTATE_DEG`, left-right
    mirror only), so a model can use where a region lies, e.g. dorsal vs ventral horn. Such
    a model expects images roughly upright; ``"free"`` models take any orientation but must
    tell regions apart by their look and shape alone.
    """
    base = base or AugmentConfig()
    if orientation == "free":
        return replace(base, any_orientation=True, rotate_deg=180.0)
    if orientation == "upright":
        return replace(base, any_orientation=False, rotate_deg=UPRIGHT_ROTATE_DEG)
    raise InputError(f"orientation must be 'free' or 'upright', got {orientation!r}")


def _hed_jitter(img: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    from skimage.color import hed2rgb, rgb2hed

    hed = rgb2hed(np.clip(img, 1e-3, 1))
    alpha = rng.normal(1.0, cfg.hed_sigma, 3)
    beta = rng.normal(0.0, cfg.hed_bias, 3)
    return hed2rgb(hed * alpha + beta)


#: RGB -> YIQ (NTSC); hue is the angle and saturation the length of (I, Q)
_RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ)


def _hue_saturation_jitter(img: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Hue shift and saturation scaling, as one 3x3 colour matrix (a rotation and scaling of
    the YIQ chroma plane: the linear counterpart of an HSV hue/saturation jitter, 20x faster)."""
    theta = 2 * np.pi * rng.uniform(-cfg.hue, cfg.hue)
    sat = rng.uniform(*cfg.saturation)
    c, s = sat * np.cos(theta), sat * np.sin(theta)
    chroma = np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])
    matrix = (_YIQ_TO_RGB @ chroma @ _RGB_TO_YIQ).astype(np.float32)
    return np.clip(img, 0, 1).astype(np.float32, copy=False) @ matrix.T


def augment(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator, *, size: int | None = None,
            config: AugmentConfig | None = None, modality: str = "he",
            ignore_index: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A random augmented crop of ``image`` (uint8 RGB) and ``mask`` (integer labels).

    Parameters
    ----------
    image, mask
        ``(H, W, 3)`` uint8 and ``(H, W)`` labels.
    rng
        Source of all randomness.
    size
        Square crop side (default: ``min(H, W)``).
    config
        Strengths; :class:`AugmentConfig` defaults when ``None``.
    modality
        ``"he"`` (HED stain jitter, white background) or ``"dapi"`` (gain only, black).
    ignore_index
        Label given to pixels warped in from outside the frame (0 = outside tissue; use the
        loss's ignore index for sparse labels).

    Returns
    -------
    ``(float32 (size, size, 3) in [0, 1], int64 (size, size))``.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.full((64, 64, 3), 200, np.uint8); lab = np.zeros((64, 64), np.uint8)
    >>> x, y = augment(img, lab, np.random.default_rng(0), size=32)
    >>> x.shape, y.shape
    ((32, 32, 3), (32, 32))
    """
    cfg = config or AugmentConfig()
    size = int(size or min(mask.shape))
    background = 0.0 if modality == "dapi" else 255.0
    img, lab = _warp(np.asarray(image), np.asarray(mask), size, cfg, rng, background, ignore_index)
    img = img / 255.0
    if modality == "dapi":
        img = img * rng.uniform(0.6, 1.5) + rng.uniform(-cfg.brightness, cfg.brightness) / 2
    else:
        if cfg.hed_sigma > 0 or cfg.hed_bias > 0:
            img = _hed_jitter(img, cfg, rng)
        if cfg.hue > 0:
            img = _hue_saturation_jitter(img, cfg, rng)
        img = img + rng.uniform(-cfg.brightness, cfg.brightness)
    mean = img.mean()
    img = (img - mean) * rng.uniform(*cfg.contrast) + mean
    img = np.clip(img, 0, 1) ** rng.uniform(*cfg.gamma)
    if rng.random() < cfg.p_blur:
        from scipy import ndimage as ndi

        sig = rng.uniform(*cfg.blur_sigma)
        img = ndi.gaussian_filter(img, (sig, sig, 0))
    if rng.random() < cfg.p_jpeg:
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray((np.clip(img, 0, 1) * 255).round().astype(np.uint8)).save(
            buf, format="JPEG", quality=int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1)))
        img = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"), dtype=np.float32) / 255.0
    sigma = rng.uniform(*cfg.noise_sigma)
    if sigma > 0:
        img = img + sigma * rng.standard_normal(img.shape, dtype=np.float32)
    if modality == "dapi":  # keep DAPI grey, as rendered
        img = np.repeat(img.mean(axis=2, keepdims=True), 3, axis=2)
    return np.clip(img, 0, 1).astype(np.float32), lab.astype(np.int64)
