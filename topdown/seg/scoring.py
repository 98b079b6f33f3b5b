"""Confusion matrices of a model over dataset frames (shared by evaluate, train and finetune).

(Kept apart from ``evaluate.py``: importing a module named like a lazily exported
function would shadow that function on the package.)
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from scipy import ndimage

from .data import dataset_pixel_size, read_frame
from .image import ImageSource
from .metrics import confusion


def predictions_on(model, ds, indices, *, device: str = "cpu", batch_size: int = 4,
                   tta: bool = False) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(truth mask, predicted labels)`` of each frame in ``indices``, at the model's pixel size.

    ``tta`` averages each frame with its mirror image, as :func:`topdown.seg.segment` does by default.
    """
    from .infer import predict

    px = model.pixel_size_um or dataset_pixel_size(ds)
    for i in indices:
        image, mask = read_frame(ds, int(i), px)
        src = ImageSource(image, background=model.background_value)
        labels, _ = predict(model, src, 1.0, device=device, batch_size=batch_size, probabilities=False,
                            tta=tta)
        yield mask, labels


def confusion_on(model, ds, indices, *, device: str = "cpu", batch_size: int = 4,
                 tta: bool = False) -> np.ndarray:
    """Summed confusion matrix of ``model`` over frames ``indices`` of ``ds`` (at the model's px)."""
    n = model.n_labels
    cm = np.zeros((n, n), dtype=np.int64)
    for mask, labels in predictions_on(model, ds, indices, device=device, batch_size=batch_size, tta=tta):
        cm += confusion(mask, labels, n)
    return cm


def boundary_band(mask: np.ndarray, width: int) -> np.ndarray:
    """Pixels within ``width`` px (chessboard distance) of a change of label in ``mask``.

    Examples
    --------
    >>> m = np.zeros((1, 6), np.uint8); m[0, 3:] = 1
    >>> boundary_band(m, 1).astype(int)
    array([[0, 0, 1, 1, 0, 0]])
    """
    if width <= 0:
        return np.zeros(mask.shape, dtype=bool)
    size = 2 * int(width) + 1
    return ndimage.maximum_filter(mask, size=size, mode="nearest") != ndimage.minimum_filter(
        mask, size=size, mode="nearest")
