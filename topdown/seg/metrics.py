"""Confusion-matrix metrics for region segmentation.

IoU and Dice per label (outside included); the means (mIoU, mean Dice) skip labels absent
from both truth and prediction (their IoU is undefined, reported as NaN), so a class that
never occurs neither helps nor hurts the score. Pixels labelled ``ignore_index`` in the
truth are not counted.
"""

from __future__ import annotations

import numpy as np


def confusion(truth: np.ndarray, pred: np.ndarray, n_labels: int, ignore_index: int = 255) -> np.ndarray:
    """``(n, n)`` int64 matrix: rows = truth, columns = prediction."""
    t = np.asarray(truth).ravel().astype(np.int64)
    p = np.asarray(pred).ravel().astype(np.int64)
    ok = (t != ignore_index) & (t >= 0) & (t < n_labels)
    return np.bincount(t[ok] * n_labels + np.clip(p[ok], 0, n_labels - 1),
                       minlength=n_labels * n_labels).reshape(n_labels, n_labels)


def scores(cm: np.ndarray, names: list[str] | None = None) -> dict:
    """Per-label IoU and Dice, their means over present labels, and pixel accuracy."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    fp, fn = cm.sum(0) - tp, cm.sum(1) - tp
    union = tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
        dice = np.where(union > 0, 2 * tp / (2 * tp + fp + fn), np.nan)
    names = names or [str(i) for i in range(len(cm))]
    total = cm.sum()
    return {
        "iou": {n: (None if np.isnan(v) else float(v)) for n, v in zip(names, iou, strict=True)},
        "dice": {n: (None if np.isnan(v) else float(v)) for n, v in zip(names, dice, strict=True)},
        "miou": float(np.nanmean(iou)) if np.any(union > 0) else float("nan"),
        "mdice": float(np.nanmean(dice)) if np.any(union > 0) else float("nan"),
        "pixel_accuracy": float(tp.sum() / total) if total else float("nan"),
        "n_pixels": int(total),
    }
