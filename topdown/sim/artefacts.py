"""Image-level artefacts applied after rendering (the masks never change).

Each artefact's strength is drawn from a range ``(lo, hi)`` of the spec's ``artefacts``
block with the frame's random generator, and every drawn value is returned so the dataset
manifest records it. Tears and folds are geometric (they change the masks) and happen in
the layout, not here.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy import ndimage

from ..errors import SpecError

#: artefact -> default range when the spec gives none (0 = off)
DEFAULT_RANGES: dict[str, tuple[float, float]] = {
    "noise": (0.0, 0.0), "blur_px": (0.0, 0.0), "vignetting": (0.0, 0.0),
    "illumination": (0.0, 0.0), "stain_shift": (0.0, 0.0), "debris": (0.0, 0.0),
    "bubbles": (0.0, 0.0), "jpeg_quality": (100.0, 100.0), "fiducial_frame": (0.0, 0.0),
}
#: geometric artefacts, done by the layout (ignored here)
GEOMETRIC = ("tears", "folds")

# Ruifrok & Johnston: RGB optical density <-> haematoxylin, eosin, DAB
_RGB_FROM_HED = np.array([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]], np.float32)
_RGB_FROM_HED /= np.linalg.norm(_RGB_FROM_HED, axis=1, keepdims=True)
_HED_FROM_RGB = np.linalg.inv(_RGB_FROM_HED).astype(np.float32)


def _as_ranges(ranges: Any) -> dict[str, tuple[float, float]]:
    if ranges is None:
        raw: Mapping = {}
    elif dataclasses.is_dataclass(ranges):
        raw = dataclasses.asdict(ranges)
    elif isinstance(ranges, Mapping):
        raw = ranges
    else:
        raise SpecError(f"artefact ranges must be a mapping or dataclass, not {type(ranges).__name__}.")
    out = dict(DEFAULT_RANGES)
    for key, value in raw.items():
        if key in GEOMETRIC or value is None:
            continue
        if key not in DEFAULT_RANGES:
            raise SpecError(f"unknown artefact {key!r}; known: {', '.join(sorted([*DEFAULT_RANGES, *GEOMETRIC]))}.")
        if isinstance(value, (int, float)):
            value = (value, value)
        try:
            lo, hi = (float(v) for v in value)
        except (TypeError, ValueError) as exc:
            raise SpecError(f"artefacts.{key} must be a number or [low, high], got {value!r}.") from exc
        if hi < lo:
            raise SpecError(f"artefacts.{key}: low {lo} is above high {hi}; write [low, high].")
        out[key] = (lo, hi)
    if not 0.0 <= out["noise"][0] <= out["noise"][1] <= 0.95:
        raise SpecError(f"artefacts.noise must lie within [0, 0.95], got {list(out['noise'])}.")
    return out


def sample_artefacts(ranges: Any, rng: np.random.Generator) -> dict[str, float]:
    """Draw one value per image-level artefact from its range (counts are integers)."""
    r = _as_ranges(ranges)
    p: dict[str, float] = {}
    for key, (lo, hi) in r.items():
        v = float(rng.uniform(lo, hi)) if hi > lo else float(lo)
        if key in ("debris", "bubbles"):
            v = int(np.floor(v + rng.uniform()))  # unbiased rounding of the count
        elif key == "jpeg_quality":
            v = int(round(min(max(v, 1.0), 100.0)))
        elif key == "fiducial_frame":
            v = bool(rng.uniform() < v)
        p[key] = v
    return p


def _smooth_field(rng, shape, scale_px: float) -> np.ndarray:
    h, w = shape
    small = (max(2, int(np.ceil(h / scale_px))) + 1, max(2, int(np.ceil(w / scale_px))) + 1)
    coarse = rng.standard_normal(small).astype(np.float32)
    field = ndimage.zoom(coarse, (h / (small[0] - 1), w / (small[1] - 1)), order=3)[:h, :w]
    field = np.pad(field, ((0, h - field.shape[0]), (0, w - field.shape[1])), mode="edge")
    return field / max(float(np.abs(field).max()), 1e-6)


def _disk_blobs(rng, shape, n: int, r_range: tuple[float, float], irregular: float) -> list[np.ndarray]:
    h, w = shape
    yy, xx = np.ogrid[0:h, 0:w]
    out = []
    for _ in range(n):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        r = rng.uniform(*r_range)
        ang = np.arctan2(yy - cy, xx - cx)
        k = rng.integers(2, 6)
        wobble = 1 + irregular * np.sin(k * ang + rng.uniform(0, 6.3)) * rng.uniform(0.3, 1)
        out.append(np.hypot(yy - cy, xx - cx) / (r * wobble))
    return out


def apply_artefacts(image: np.ndarray, ranges: Any = None, rng: np.random.Generator | None = None, *,
                    modality: str = "he", pixel_size_um: float = 1.0,
                    params: Mapping[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Apply image-level artefacts to a rendered ``uint8`` RGB image.

    Parameters
    ----------
    image
        ``H x W x 3`` uint8 render.
    ranges
        The spec's artefact ranges (``spec.artefacts`` dataclass or a dict of ``(lo, hi)``):
        ``noise`` (white-noise fraction 0..0.95), ``blur_px`` (Gaussian sigma), ``vignetting``,
        ``illumination`` (uneven field), ``stain_shift``, ``debris`` (count), ``bubbles``
        (count), ``jpeg_quality`` and ``fiducial_frame`` (probability). ``tears``/``folds``
        are geometric and ignored here.
    rng
        The frame's random generator (same state -> same result).
    modality
        ``"he"`` or ``"dapi"`` (debris and frame dots are dark on H&E, bright on DAPI).
    pixel_size_um
        Scales physical artefacts (bubbles, Visium fiducial dots of 65 µm).
    params
        Already-drawn values (skip sampling; e.g. to reproduce a manifest record).

    Returns
    -------
    (image, params)
        The new ``uint8`` image and the drawn value of every artefact.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.full((64, 64, 3), 230, np.uint8)
    >>> out, p = apply_artefacts(img, {"noise": (0.1, 0.1)}, np.random.default_rng(0))
    >>> out.shape, p["noise"]
    ((64, 64, 3), 0.1)
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    p = dict(params) if params is not None else sample_artefacts(ranges, rng)
    img = np.asarray(image, dtype=np.float32) / 255.0
    h, w = img.shape[:2]
    dark_fg = modality != "dapi"
    if p.get("stain_shift", 0):
        img = _stain_shift(img, float(p["stain_shift"]), rng, modality)
    if p.get("illumination", 0):
        field = 1.0 + float(p["illumination"]) * _smooth_field(rng, (h, w), max(h, w) / 2.0)
        img = img * field[..., None]
    if p.get("vignetting", 0):
        yy, xx = np.ogrid[0:h, 0:w]
        r2 = ((yy - h / 2) / (h / 2)) ** 2 + ((xx - w / 2) / (w / 2)) ** 2
        img = img * (1.0 - float(p["vignetting"]) * r2 / 2.0)[..., None]
    if p.get("debris", 0):
        for d in _disk_blobs(rng, (h, w), int(p["debris"]), (1.0, max(1.5, 0.02 * max(h, w))), 0.5):
            alpha = np.clip(1.5 - d, 0, 1)[..., None] * rng.uniform(0.5, 0.9)
            colour = rng.uniform(0.05, 0.25, 3) * (1, 0.9, 0.8) if dark_fg else np.full(3, rng.uniform(0.5, 1.0))
            img = img * (1 - alpha) + colour * alpha
    if p.get("bubbles", 0):
        rmin = max(3.0, 40.0 / pixel_size_um)
        for d in _disk_blobs(rng, (h, w), int(p["bubbles"]), (rmin, max(rmin + 1, 0.25 * max(h, w))), 0.05):
            edge = np.exp(-((d - 1.0) / 0.04) ** 2)[..., None]
            inside = (d < 1.0)[..., None]
            if dark_fg:
                img = np.where(inside, img * 0.85 + 0.15, img) * (1 - 0.55 * edge)
            else:
                img = np.where(inside, img * 0.8, img) + 0.25 * edge
    if p.get("fiducial_frame", False):
        img = _fiducial_frame(img, pixel_size_um, dark_fg)
    if p.get("blur_px", 0):
        img = ndimage.gaussian_filter(img, (float(p["blur_px"]),) * 2 + (0,))
    if p.get("noise", 0):
        a = float(p["noise"])
        if dark_fg:
            noise = rng.uniform(0, 1, img.shape).astype(np.float32)
        else:
            noise = np.repeat(rng.uniform(0, 1, (h, w, 1)).astype(np.float32), 3, axis=2)
        img = (1 - a) * img + a * noise
    out = np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)
    if not dark_fg:  # fluorescence stays grey
        out[..., 1] = out[..., 2] = out[..., 0]
    q = int(p.get("jpeg_quality", 100))
    if q < 100:
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(out).save(buf, format="JPEG", quality=q)
        buf.seek(0)
        with Image.open(buf) as im:
            out = np.asarray(im.convert("RGB")).copy()
    return out, p


def _stain_shift(img: np.ndarray, amount: float, rng, modality: str) -> np.ndarray:
    if modality == "dapi":
        gain = 1.0 + amount * rng.uniform(-1, 1)
        gamma = 1.0 + 0.5 * amount * rng.uniform(-1, 1)
        return np.clip(img, 0, 1) ** gamma * gain
    od = -np.log(np.clip(img, 1 / 255, 1.0))
    hed = od.reshape(-1, 3) @ _HED_FROM_RGB
    scale = 1.0 + amount * rng.uniform(-1, 1, 3).astype(np.float32)
    bias = 0.05 * amount * rng.uniform(-1, 1, 3).astype(np.float32)
    hed = hed * scale + bias * (hed.sum(axis=1, keepdims=True) > 0.05)
    od2 = np.clip(hed @ _RGB_FROM_HED, 0, None)
    return np.exp(-od2).reshape(img.shape)


def _fiducial_frame(img: np.ndarray, pixel_size_um: float, dark_fg: bool) -> np.ndarray:
    """Visium-like fiducial frame: a square ring of 65 µm dots every 100 µm around the capture area."""
    h, w = img.shape[:2]
    r = max(1.0, 32.5 / pixel_size_um)
    step = max(2.5 * r, 100.0 / pixel_size_um)
    inset = 1.5 * r + 1
    yy, xx = np.ogrid[0:h, 0:w]
    mask = np.zeros((h, w), bool)
    xs = np.arange(inset, w - inset + 1e-6, step)
    ys = np.arange(inset, h - inset + 1e-6, step)
    centres = [(inset, x) for x in xs] + [(h - inset, x) for x in xs] + \
              [(y, inset) for y in ys] + [(y, w - inset) for y in ys]
    for cy, cx in centres:
        y0, y1 = int(max(0, cy - r - 1)), int(min(h, cy + r + 2))
        x0, x1 = int(max(0, cx - r - 1)), int(min(w, cx + r + 2))
        mask[y0:y1, x0:x1] |= (yy[y0:y1] - cy) ** 2 + (xx[:, x0:x1] - cx) ** 2 <= r * r
    colour = np.array([0.35, 0.25, 0.45] if dark_fg else [0.9, 0.9, 0.9], np.float32)
    img = img.copy()
    img[mask] = img[mask] * 0.3 + colour * 0.7
    return img
