"""Pixel-size normalisation: resample image tiles to the model's µm/px.

``factor = image_pixel_size_um / model_pixel_size_um`` model pixels per image pixel.
Map pixel ``i`` covers image coordinates ``[i / factor, (i + 1) / factor)``; each output
tile is computed from exactly that source box (plus a margin for the filter), so tiles
resampled one by one join without seams and the full-resolution image is never needed
as a whole. Downsampling is antialiased (PIL's bilinear filter widens with the scale).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from ..errors import DataFileError, InputError

#: Visium spot diameter in micrometres (fixed by the slide design)
VISIUM_SPOT_DIAMETER_UM = 55.0


def map_shape(shape: tuple[int, int], factor: float) -> tuple[int, int]:
    """Shape of the model-resolution map of an image of ``shape``."""
    return max(1, int(round(shape[0] * factor))), max(1, int(round(shape[1] * factor)))


def resample_tile(source, r0: int, r1: int, c0: int, c1: int, factor: float) -> np.ndarray:
    """uint8 RGB map pixels ``[r0:r1, c0:c1]`` of ``source`` (an ImageSource) at ``factor``."""
    from PIL import Image

    H, W = source.shape
    if abs(factor - 1.0) < 1e-9:
        out = source.read(r0, r1, c0, c1)
        if out.shape[:2] != (r1 - r0, c1 - c0):  # map rounding can pass the image edge
            out = np.pad(out, ((0, r1 - r0 - out.shape[0]), (0, c1 - c0 - out.shape[1]), (0, 0)), mode="edge")
        return out
    y0, y1 = min(r0 / factor, H), min(r1 / factor, H)
    x0, x1 = min(c0 / factor, W), min(c1 / factor, W)
    margin = int(math.ceil(2.0 / factor)) + 2 if factor < 1 else 2
    by0, by1 = max(0, int(math.floor(y0)) - margin), min(H, int(math.ceil(y1)) + margin)
    bx0, bx1 = max(0, int(math.floor(x0)) - margin), min(W, int(math.ceil(x1)) + margin)
    block = source.read(by0, by1, bx0, bx1)
    box = (x0 - bx0, y0 - by0, max(x1 - bx0, x0 - bx0 + 1e-3), max(y1 - by0, y0 - by0 + 1e-3))
    im = Image.fromarray(block, mode="RGB")
    out = im.resize((c1 - c0, r1 - r0), resample=Image.BILINEAR, box=box, reducing_gap=None)
    return np.asarray(out)


def resample_array(image: np.ndarray, factor: float, *, order: int = 1) -> np.ndarray:
    """Resample a whole (small) array by ``factor`` with the same pixel mapping as the tiles.

    ``order=0`` (nearest) for label images, ``order=1`` (antialiased bilinear) otherwise.
    """
    from PIL import Image

    image = np.asarray(image)
    h, w = map_shape(image.shape[:2], factor)
    if abs(factor - 1.0) < 1e-9 and (h, w) == image.shape[:2]:
        return image.copy()
    if order == 0:
        rows = np.minimum(((np.arange(h) + 0.5) / factor).astype(np.int64), image.shape[0] - 1)
        cols = np.minimum(((np.arange(w) + 0.5) / factor).astype(np.int64), image.shape[1] - 1)
        return image[rows][:, cols]
    if image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3:
        return np.asarray(Image.fromarray(image).resize((w, h), Image.BILINEAR, box=(
            0, 0, min(w / factor, image.shape[1]), min(h / factor, image.shape[0]))))
    chans = image[..., None] if image.ndim == 2 else image
    out = np.stack([np.asarray(Image.fromarray(chans[..., k].astype(np.float32), mode="F").resize(
        (w, h), Image.BILINEAR, box=(0, 0, min(w / factor, image.shape[1]), min(h / factor, image.shape[0]))))
        for k in range(chans.shape[2])], axis=-1)
    out = out[..., 0] if image.ndim == 2 else out
    return out.astype(image.dtype) if image.dtype.kind == "f" else np.clip(np.round(out), 0, None).astype(image.dtype)


def pixel_size_from_scalefactors(scalefactors, image: str = "lowres") -> float:
    """Micrometres per pixel of a Visium image from Space Ranger ``scalefactors_json.json``.

    Full-resolution µm/px = 55 µm / ``spot_diameter_fullres``; the hires / lowres images
    divide that by ``tissue_hires_scalef`` / ``tissue_lowres_scalef``.

    Parameters
    ----------
    scalefactors
        Path to ``scalefactors_json.json`` or its parsed dict.
    image
        ``"lowres"``, ``"hires"`` or ``"fullres"``.

    Examples
    --------
    >>> pixel_size_from_scalefactors({"spot_diameter_fullres": 89.4, "tissue_lowres_scalef": 0.0307})
    ... # doctest: +ELLIPSIS
    20.03...
    """
    if isinstance(scalefactors, (str, os.PathLike)):
        p = Path(scalefactors)
        if not p.is_file():
            raise DataFileError(f"scalefactors file not found: '{p}' (expected spatial/scalefactors_json.json).")
        try:
            scalefactors = json.loads(p.read_text())
        except ValueError as exc:
            raise DataFileError(f"'{p}' is not valid JSON: {exc}") from exc
    if "spot_diameter_fullres" not in scalefactors:
        raise InputError("scalefactors lack 'spot_diameter_fullres'; pass pixel_size_um (--pixel-size) instead.")
    full = VISIUM_SPOT_DIAMETER_UM / float(scalefactors["spot_diameter_fullres"])
    if image == "fullres":
        return full
    key = {"lowres": "tissue_lowres_scalef", "hires": "tissue_hires_scalef"}.get(image)
    if key is None:
        raise InputError(f"image must be 'lowres', 'hires' or 'fullres', got {image!r}")
    if key not in scalefactors:
        raise InputError(f"scalefactors lack '{key}'; pass pixel_size_um (--pixel-size) instead.")
    return full / float(scalefactors[key])


def visium_pixel_size_for(path: str | os.PathLike) -> float | None:
    """Pixel size of ``tissue_{lowres,hires}_image.png`` from the ``scalefactors_json.json`` beside it."""
    p = Path(path)
    sf = p.parent / "scalefactors_json.json"
    name = p.name.lower()
    kind = "lowres" if "lowres" in name else "hires" if "hires" in name else None
    if kind is None or not sf.is_file():
        return None
    return pixel_size_from_scalefactors(sf, kind)
