"""Unlabelled target images for domain adaptation: read, checked, at the model's pixel size.

A target image is resampled whole to the model's µm/px (real sections to adapt to are
thumbnails or low-resolution scans, a few megapixels at the model's resolution), checked
against the model's modality (an H&E model given a dark-field DAPI or a greyscale image,
a DAPI model given a brightfield one) and for tissue (a blank image teaches nothing), and
its tissue is found with :func:`~topdown.seg.tissue.tissue_mask`, so adaptation draws
crops from tissue, not glass.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from .image import open_image
from .resample import map_shape, resample_tile, visium_pixel_size_for
from .tissue import tissue_mask

#: largest target map (model pixels) read whole
MAX_TARGET_PIXELS = 40_000_000
#: median luminance (0-255) below which an image is dark-field (fluorescence, DAPI)
DARK_FIELD_LUMINANCE = 90.0
#: mean channel spread (0-255) below which an image is greyscale
GREY_SPREAD = 2.0
#: luminance range (1st-99th percentile, 0-255) below which an image is blank
BLANK_RANGE = 10.0


@dataclass
class TargetImage:
    """One target image at the model's resolution.

    Attributes
    ----------
    name, sha256
        Where it came from and a hash of its file (or array) bytes.
    image
        ``(h, w, 3)`` uint8 at the model's pixel size.
    tissue
        ``(h, w)`` boolean tissue mask.
    """

    name: str
    sha256: str
    image: np.ndarray
    tissue: np.ndarray


def image_sha256(image) -> str:
    """SHA-256 of an image file's bytes, or of an array's (dtype, shape and data)."""
    if isinstance(image, (str, os.PathLike)):
        from .checkpoint import file_sha256

        return file_sha256(Path(image).expanduser())
    a = np.ascontiguousarray(np.asarray(image))
    return hashlib.sha256(f"{a.dtype}{a.shape}".encode() + a.tobytes()).hexdigest()


def image_look(rgb: np.ndarray) -> str:
    """``"dark"`` (dark field: DAPI, fluorescence), ``"grey"`` (no colour) or ``"colour"`` (e.g. H&E).

    Examples
    --------
    >>> image_look(np.zeros((8, 8, 3), np.uint8)), image_look(np.full((8, 8, 3), 200, np.uint8))
    ('dark', 'grey')
    """
    rgb = np.asarray(rgb, dtype=np.float32)
    lum = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    if float(np.median(lum)) < DARK_FIELD_LUMINANCE:
        return "dark"
    spread = np.abs(rgb[..., 0] - rgb[..., 1]) + np.abs(rgb[..., 1] - rgb[..., 2])
    return "grey" if float(spread.mean()) < GREY_SPREAD else "colour"


def check_modality(rgb: np.ndarray, modality: str, name: str) -> None:
    """One-line :class:`InputError` when ``rgb`` does not look like a ``modality`` image."""
    look = image_look(rgb)
    if modality == "he" and look != "colour":
        kind = "a dark-field (DAPI / fluorescence)" if look == "dark" else "a greyscale"
        raise InputError(f"{name} looks like {kind} image but the model reads H&E (colour brightfield); "
                         "give H&E images of the model's tissue, or use a DAPI model.")
    if modality == "dapi" and look != "dark":
        raise InputError(f"{name} looks like a brightfield image (light background) but the model reads DAPI "
                         "(bright nuclei on dark glass); give DAPI images, or use an H&E model.")


def _pixel_size(image, pixel_size_um, model_px: float | None, name: str, flag: str) -> float:
    """Map pixels per image pixel."""
    if model_px is None or (isinstance(pixel_size_um, str) and pixel_size_um == "model"):
        return 1.0
    if pixel_size_um is None and isinstance(image, (str, os.PathLike)):
        pixel_size_um = visium_pixel_size_for(image)
    if pixel_size_um is None:
        raise InputError(f"the pixel size of {name} is unknown and the model works at {model_px:g} µm/px: "
                         f"pass {flag} <µm per pixel of the images>.")
    px = float(pixel_size_um)
    if not np.isfinite(px) or not 1e-3 <= px <= 1e4:
        raise InputError(f"{flag} must be micrometres per pixel between 0.001 and 10000, got {pixel_size_um}")
    return px / model_px


def load_target(image, pixel_size_um, model_px: float | None, modality: str, *,
                flag: str = "pixel_size_um") -> TargetImage:
    """Read one target image at the model's resolution, with its tissue mask.

    Parameters
    ----------
    image
        Array, PIL image or path (as for :func:`~topdown.seg.segment`).
    pixel_size_um
        µm per pixel of ``image`` (``None``: from a Visium ``scalefactors_json.json`` beside
        ``tissue_*_image.png``; ``"model"``: the model's).
    model_px, modality
        The model's µm per pixel and modality.
    flag
        How the user gives the pixel size, for the error message (``--pixel-size`` ...).

    Returns
    -------
    TargetImage

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> img = np.full((64, 64, 3), 240, np.uint8); img[16:48, 16:48] = (200, 120, 170)
    >>> t = load_target(img, 2.0, 4.0, "he")
    >>> t.image.shape, bool(t.tissue[16, 16]), bool(t.tissue[0, 0])
    ((32, 32, 3), True, False)
    """
    name = f"'{image}'" if isinstance(image, (str, os.PathLike)) else "the image"
    src = open_image(image, background=0 if modality == "dapi" else 255)
    factor = _pixel_size(image, pixel_size_um, model_px, name, flag)
    H, W = map_shape(src.shape, factor)
    if H * W > MAX_TARGET_PIXELS:
        raise InputError(f"{name} would be {H} x {W} px at the model's resolution; check {flag} or give a "
                         "lower-resolution image (a thumbnail of the section).")
    rgb = resample_tile(src, 0, H, 0, W, factor)
    lum = rgb.astype(np.float32).mean(axis=2)
    if float(np.percentile(lum, 99) - np.percentile(lum, 1)) < BLANK_RANGE:
        raise InputError(f"{name} shows no tissue (a blank image); give images of tissue sections.")
    check_modality(rgb, modality, name)
    step = max(1, int(np.ceil(max(H, W) / 1024)))
    mask = tissue_mask(rgb[::step, ::step], modality, pixel_size_um=None if model_px is None else model_px * step)
    if mask is None:
        tissue = np.ones((H, W), dtype=bool)
    else:
        if not mask.any():
            raise InputError(f"{name} shows no tissue (a blank image); give images of tissue sections.")
        tissue = mask[np.minimum(np.arange(H) // step, mask.shape[0] - 1)][:, np.minimum(np.arange(W) // step,
                                                                                          mask.shape[1] - 1)]
    return TargetImage(name=str(image) if isinstance(image, (str, os.PathLike)) else "array",
                       sha256=image_sha256(image), image=rgb, tissue=tissue)


def load_targets(images, pixel_size_um, model_px: float | None, modality: str, *,
                 flag: str = "pixel_size_um") -> list[TargetImage]:
    """:func:`load_target` for one image or a list (``pixel_size_um``: one value or one per image)."""
    if not isinstance(images, (list, tuple)):
        images = [images]
    if not images:
        raise InputError("no target images given; give at least one unlabelled image to adapt to.")
    pxs = list(pixel_size_um) if isinstance(pixel_size_um, (list, tuple)) else [pixel_size_um] * len(images)
    if len(pxs) == 1:
        pxs = pxs * len(images)
    if len(pxs) != len(images):
        raise InputError(f"{len(pxs)} pixel sizes for {len(images)} images; give one, or one per image ({flag}).")
    return [load_target(img, px, model_px, modality, flag=flag) for img, px in zip(images, pxs, strict=True)]


def tissue_crops(targets: list[TargetImage], side: int, n: int, rng: np.random.Generator,
                 min_tissue: float = 0.5) -> np.ndarray:
    """``(n, side, side, 3)`` float32 random crops of the targets, each at least ``min_tissue`` tissue.

    Images smaller than ``side`` are mirror-padded; where no window reaches ``min_tissue``
    the most tissue-rich windows are used.
    """
    from scipy import ndimage as ndi

    candidates = []
    for t in targets:
        img, tis = t.image, t.tissue
        ph, pw = max(0, side - img.shape[0]), max(0, side - img.shape[1])
        if ph or pw:
            img = np.pad(img, ((0, ph), (0, pw), (0, 0)), mode="reflect" if min(img.shape[:2]) > 1 else "edge")
            tis = np.pad(tis, ((0, ph), (0, pw)), mode="edge")
        frac = ndi.uniform_filter(tis.astype(np.float32), side, mode="constant")
        half = side // 2
        valid = frac[half:img.shape[0] - side + half + 1, half:img.shape[1] - side + half + 1]
        ok = np.argwhere(valid >= min(min_tissue, float(valid.max())))
        candidates.append((img, ok))
    crops = []
    for _ in range(n):
        img, ok = candidates[int(rng.integers(len(candidates)))]
        r0, c0 = ok[int(rng.integers(len(ok)))]
        crops.append(img[r0:r0 + side, c0:c0 + side].astype(np.float32) / 255.0)
    return np.stack(crops)
