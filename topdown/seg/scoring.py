"""Confusion matrices of a model over dataset frames (shared by evaluate, train and finetune).

(Kept apart from ``evaluate.py``: importing a module named like a lazily exported
function would shadow that function on the package.)
"""

from __future__ import annotations

import numpy as np

from .data import dataset_pixel_size, read_frame
from .image import ImageSource
from .metrics import confusion


def confusion_on(model, ds, indices, *, device: str = "cpu", batch_size: int = 4) -> np.ndarray:
    """Summed confusion matrix of ``model`` over frames ``indices`` of ``ds`` (at the model's px)."""
    from .infer import predict

    n = model.n_labels
    cm = np.zeros((n, n), dtype=np.int64)
    px = model.pixel_size_um or dataset_pixel_size(ds)
    for i in indices:
        image, mask = read_frame(ds, int(i), px)
        src = ImageSource(image, background=model.background_value)
        labels, _ = predict(model, src, 1.0, device=device, batch_size=batch_size, probabilities=False)
        cm += confusion(mask, labels, n)
    return cm
