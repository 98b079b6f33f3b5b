"""Scoring a model on simulated frames with exact masks."""

from __future__ import annotations

from .data import open_dataset
from .metrics import scores
from .scoring import confusion_on


def evaluate(model, ds, *, indices=None, device: str = "cpu") -> dict:
    """Per-class IoU and Dice, mIoU, mean Dice and pixel accuracy of ``model`` on a SimDataset.

    The raw network prediction is scored (no tissue veto), at the model's pixel size (frames
    with another pixel size are resampled, masks by nearest neighbour). Means skip classes
    absent from both truth and prediction; see :mod:`topdown.seg.metrics`.

    Parameters
    ----------
    model
        SegModel, shipped model name or checkpoint path; its classes must match the dataset's.
    ds
        SimDataset or its folder.
    indices
        Frames to score (default: all).
    device
        Torch device.

    Returns
    -------
    dict with ``iou`` and ``dice`` (label name -> value or None), ``miou``, ``mdice``,
    ``pixel_accuracy``, ``n_pixels``, ``n_frames``, ``confusion`` (nested list, rows = truth)
    and ``classes`` (label order, ``outside`` first).

    Examples
    --------
    >>> import topdown as td
    >>> td.seg.evaluate("models/brain.pt", "sims/brain_test")["miou"]  # doctest: +SKIP
    """
    from .checkpoint import load

    ds = open_dataset(ds)
    model = load(model, classes=list(ds.classes), device=device)
    idx = range(len(ds)) if indices is None else list(indices)
    cm = confusion_on(model, ds, idx, device=device)
    out = scores(cm, model.names)
    out.update(n_frames=len(idx), confusion=cm.tolist(), classes=model.names)
    return out
