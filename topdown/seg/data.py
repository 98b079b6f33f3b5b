"""Reading training frames from a SimDataset (or any object with the same interface)."""

from __future__ import annotations

import os

import numpy as np

from ..errors import InputError


def open_dataset(ds):
    """A SimDataset from a path, or ``ds`` itself if it already is one (duck-typed)."""
    if isinstance(ds, (str, os.PathLike)):
        from ..sim.dataset import SimDataset

        return SimDataset(ds)
    for attr in ("classes", "__len__", "__getitem__"):
        if not hasattr(ds, attr):
            raise InputError(f"expected a SimDataset or its folder, got {type(ds).__name__} (no .{attr}).")
    return ds


def dataset_pixel_size(ds) -> float | None:
    px = getattr(ds, "pixel_size_um", None)
    return None if px is None else float(px)


def _frame_scale(rec: dict, pixel_size_um: float | None) -> float | None:
    """Zoom factor from a frame's own pixel size to ``pixel_size_um`` (None: keep as is)."""
    own = rec.get("pixel_size_um")
    if pixel_size_um and own and abs(float(own) / pixel_size_um - 1) > 1e-3:
        return float(own) / pixel_size_um
    return None


def read_frame(ds, i: int, pixel_size_um: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Frame ``i`` as ``(uint8 RGB, uint8 labels)``, resampled to ``pixel_size_um`` if its own differs."""
    from .resample import resample_array

    if hasattr(ds, "read_image") and hasattr(ds, "records"):
        rec = ds.records[i]
        image, mask = ds.read_image(rec), ds.read_mask(rec)
    else:
        image, mask, *rest = ds[i]
        rec = rest[-1] if rest and isinstance(rest[-1], dict) else {}
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    image = image[..., :3].astype(np.uint8, copy=False)
    mask = np.asarray(mask)
    f = _frame_scale(rec, pixel_size_um)
    if f is not None:
        image, mask = resample_array(image, f), resample_array(mask, f, order=0)
    return image, mask


def read_labels(ds, i: int, pixel_size_um: float | None = None) -> np.ndarray:
    """The label mask of frame ``i`` alone (as :func:`read_frame` gives it), without decoding the image."""
    from .resample import resample_array

    if not (hasattr(ds, "read_mask") and hasattr(ds, "records")):
        return read_frame(ds, i, pixel_size_um)[1]
    rec = ds.records[i]
    mask = np.asarray(ds.read_mask(rec))
    f = _frame_scale(rec, pixel_size_um)
    return mask if f is None else resample_array(mask, f, order=0)


def split(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic frame-level train/validation split (no validation below 2 frames)."""
    idx = np.random.default_rng([int(seed), 99991]).permutation(n)
    n_val = 0 if n < 2 or val_fraction <= 0 else min(n - 1, max(1, int(round(n * val_fraction))))
    return np.sort(idx[n_val:]), np.sort(idx[:n_val])
