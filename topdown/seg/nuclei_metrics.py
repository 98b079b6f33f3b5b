"""Instance-segmentation scores: matching at an IoU threshold, and centroid-in-polygon scoring."""

from __future__ import annotations

import numpy as np


def match_instances(true: np.ndarray, pred: np.ndarray, iou: float = 0.5, *,
                    ignore_smaller: int = 0) -> dict[str, float]:
    """Precision, recall, F1 at ``iou`` and mean IoU of matched objects, for two instance images.

    With ``iou >= 0.5`` each object has at most one match, so pairs above the threshold
    are the matches (no assignment problem). ``mean_iou`` averages, over the true
    objects, the IoU of each with its best-overlapping prediction (0 when none).

    Parameters
    ----------
    true, pred
        Integer instance images of one shape (0 = background).
    iou
        Match threshold (>= 0.5).
    ignore_smaller
        True objects of fewer pixels are left out (slivers of nuclei cut by the frame edge or
        hidden under others), and so are the predictions lying mostly (>= half their area) on them.

    Examples
    --------
    >>> t = np.zeros((10, 10), int); t[1:5, 1:5] = 1; t[6:9, 6:9] = 2
    >>> p = np.zeros_like(t); p[1:5, 1:6] = 7
    >>> m = match_instances(t, p)
    >>> m["tp"], m["fp"], m["fn"], round(m["f1"], 2)
    (1, 0, 1, 0.67)
    """
    if iou < 0.5:
        raise ValueError("iou must be >= 0.5 (unique matches)")
    true, pred = np.asarray(true).ravel(), np.asarray(pred).ravel()
    if true.shape != pred.shape:
        raise ValueError(f"shapes differ: {true.shape} vs {pred.shape}")
    _, t = np.unique(true, return_inverse=True)
    _, p = np.unique(pred, return_inverse=True)
    t_ids, p_ids = np.unique(true), np.unique(pred)
    nt, npd = len(t_ids), len(p_ids)
    inter = np.bincount(t * npd + p, minlength=nt * npd).reshape(nt, npd).astype(np.float64)
    at, ap = inter.sum(1), inter.sum(0)
    union = at[:, None] + ap[None, :] - inter
    ious = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
    tz, pz = t_ids != 0, p_ids != 0
    keep_t = tz & (at >= ignore_smaller)
    on_ignored = inter[tz & ~keep_t].sum(0) >= 0.5 * np.maximum(ap, 1)
    keep_p = pz & ~on_ignored
    ious = ious[keep_t][:, keep_p]
    n_true, n_pred = int(keep_t.sum()), int(keep_p.sum())
    tp = int((ious > iou).sum()) if ious.size else 0
    best = ious.max(axis=1) if ious.size else np.zeros(n_true)
    prec = tp / n_pred if n_pred else float(n_true == 0)
    rec = tp / n_true if n_true else float(n_pred == 0)
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return {"tp": tp, "fp": n_pred - tp, "fn": n_true - tp, "precision": prec, "recall": rec, "f1": f1,
            "mean_iou": float(best.mean()) if n_true else float("nan")}


def centroids_per_polygon(centroids: np.ndarray, polygons) -> np.ndarray:
    """How many of the ``(n, 2)`` ``x, y`` centroids lie within each polygon (int64, one per polygon).

    Examples
    --------
    >>> import shapely
    >>> cells = [shapely.box(0, 0, 2, 2), shapely.box(3, 0, 5, 2)]
    >>> centroids_per_polygon(np.array([[1.0, 1.0], [1.5, 0.5], [9.0, 9.0]]), cells).tolist()
    [2, 0]
    """
    import shapely

    xy = np.asarray(centroids, dtype=float).reshape(-1, 2)
    polys = np.asarray(list(polygons), dtype=object)
    if not len(xy):
        return np.zeros(len(polys), dtype=np.int64)
    _, cell = shapely.STRtree(polys).query(shapely.points(xy), predicate="within")
    return np.bincount(cell, minlength=len(polys)).astype(np.int64)


def centroid_scores(centroids: np.ndarray, polygons) -> dict[str, float]:
    """Score detections against cell outlines: a cell is found when exactly one centroid lies in it.

    Parameters
    ----------
    centroids
        ``(n, 2)`` detected nucleus centroids ``x, y`` in the polygons' coordinates.
    polygons
        Sequence of shapely polygons (one per cell).

    Returns
    -------
    dict with ``found`` (cells holding exactly one centroid), ``precision`` (found / detections),
    ``recall`` (found / cells), ``f1``.

    Examples
    --------
    >>> import shapely
    >>> cells = [shapely.box(0, 0, 2, 2), shapely.box(3, 0, 5, 2)]
    >>> s = centroid_scores(np.array([[1.0, 1.0], [9.0, 9.0]]), cells)
    >>> s["found"], s["precision"], s["recall"]
    (1, 0.5, 0.5)
    """
    xy = np.asarray(centroids, dtype=float).reshape(-1, 2)
    polys = np.asarray(list(polygons), dtype=object)
    per_cell = centroids_per_polygon(xy, polys)
    found = int((per_cell == 1).sum())
    prec = found / len(xy) if len(xy) else 0.0
    rec = found / len(polys) if len(polys) else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return {"found": found, "n_detected": int(len(xy)), "n_cells": int(len(polys)),
            "precision": prec, "recall": rec, "f1": f1}
