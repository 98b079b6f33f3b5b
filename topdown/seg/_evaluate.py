"""Scoring a model on simulated frames with exact masks."""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .data import open_dataset
from .loop import IGNORE
from .metrics import confusion, scores
from .scoring import boundary_band, predictions_on


def evaluate(model, ds, *, indices=None, boundary_px: int = 1, tta: bool = True,
             device: str = "cpu") -> dict:
    """Per-class IoU and Dice, mIoU, mean Dice and pixel accuracy of ``model`` on a SimDataset.

    The network's prediction is scored as :func:`~topdown.seg.segment` makes it by default
    (mirror-image test-time augmentation, ``tta``) but without the tissue veto, at the
    model's pixel size (frames with another pixel size are resampled, masks by nearest
    neighbour). Means skip classes
    absent from both truth and prediction; see :mod:`topdown.seg.metrics`.

    Where the errors are is reported too: the share of misclassified pixels that lie within
    ``boundary_px`` of a true region boundary, and the same scores on the region interiors
    (those boundary bands left out; a "trimap" view). A model whose errors are all in the
    bands places every region right and is unsure of the border by about a pixel; the
    headline ``miou`` counts every pixel.

    Parameters
    ----------
    model
        SegModel, shipped model name or checkpoint path; its classes must match the dataset's.
    ds
        SimDataset or its folder.
    indices
        Frames to score (default: all).
    boundary_px
        Half-width, in model pixels, of the band around true boundaries used by the
        ``interior`` scores and ``errors_near_boundary`` (0: skip them).
    tta
        Average each frame with its mirror image (:func:`topdown.seg.infer.tta_flips`), as
        ``segment`` does by default; ``False`` scores the single raw pass.
    device
        Torch device (``"auto"``: CUDA when available, else CPU).

    Returns
    -------
    dict with ``iou`` and ``dice`` (label name -> value or None), ``miou``, ``mdice``,
    ``pixel_accuracy``, ``n_pixels``, ``n_frames``, ``tta``, ``confusion`` (nested list, rows = truth)
    and ``classes`` (label order, ``outside`` first); with ``boundary_px > 0`` also
    ``boundary_px``, ``errors_near_boundary`` (fraction of wrong pixels inside the bands)
    and ``interior`` (``iou``, ``miou``, ``pixel_accuracy``, ``n_pixels`` without the bands).

    Examples
    --------
    >>> import topdown as td
    >>> res = td.seg.evaluate("models/brain.pt", "sims/brain_test")  # doctest: +SKIP
    >>> res["miou"], res["interior"]["miou"], res["errors_near_boundary"]  # doctest: +SKIP
    """
    from .checkpoint import load
    from .infer import require_flag
    from .loop import pick_device

    require_flag("tta", tta)
    if int(boundary_px) != boundary_px or boundary_px < 0:
        raise InputError(f"boundary_px must be a whole number of pixels >= 0, got {boundary_px!r}")
    boundary_px = int(boundary_px)
    ds = open_dataset(ds)
    device = pick_device(device)  # "auto" -> cuda or cpu, once for the model and the batches
    model = load(model, classes=list(ds.classes), device=device)
    idx = range(len(ds)) if indices is None else list(indices)
    n = model.n_labels
    cm = np.zeros((n, n), dtype=np.int64)
    cm_interior = np.zeros((n, n), dtype=np.int64)
    for mask, labels in predictions_on(model, ds, idx, device=device, tta=bool(tta)):
        cm += confusion(mask, labels, n)
        if boundary_px:
            cm_interior += confusion(np.where(boundary_band(mask, boundary_px), IGNORE, mask), labels, n)
    out = scores(cm, model.names)
    out.update(n_frames=len(idx), tta=bool(tta), confusion=cm.tolist(), classes=model.names)
    if boundary_px:
        inner = scores(cm_interior, model.names)
        wrong = cm.sum() - np.trace(cm)
        wrong_inside = cm_interior.sum() - np.trace(cm_interior)
        out.update(boundary_px=boundary_px,
                   errors_near_boundary=float((wrong - wrong_inside) / wrong) if wrong else 0.0,
                   interior={k: inner[k] for k in ("iou", "miou", "pixel_accuracy", "n_pixels")})
    return out
