"""Unsupervised domain adaptation: BatchNorm statistics of the images at hand (AdaBN).

A network trained on simulations normalises each layer with the simulations' statistics.
Re-estimating those statistics on real images (Li et al. 2016, "Revisiting batch
normalization for practical domain adaptation") needs no labels and closes part of the
simulation-to-real gap in colour, contrast and texture. Used before fine-tuning
(:func:`~topdown.seg.finetune`) and, optionally, when segmenting
(``td.seg.segment(..., adapt_norm=True)``).
"""

from __future__ import annotations

import numpy as np
import torch

from .loop import crop_origin


def adapt_batchnorm(model, images: list[np.ndarray], rng: np.random.Generator, crop: int, device: str,
                    n_batches: int = 16, batch_size: int = 4) -> None:
    """Replace ``model``'s BatchNorm running statistics by those of random crops of ``images``.

    Cumulative averages (``momentum=None``) over ``n_batches`` batches, without gradients;
    the model is left in eval mode. Models without BatchNorm are unchanged.
    """
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    if not norms:
        return
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    with torch.no_grad():
        for _ in range(n_batches):
            xs = []
            for _ in range(batch_size):
                image = images[int(rng.integers(len(images)))]
                r0, c0 = crop_origin(image.shape, crop, rng)
                xs.append(image[r0:r0 + crop, c0:c0 + crop].astype(np.float32) / 255.0)
            side = min(x.shape[0] for x in xs), min(x.shape[1] for x in xs)
            x = np.stack([x[:side[0], :side[1]] for x in xs])
            model(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous().to(device))
    for m, momentum in zip(norms, saved, strict=True):
        m.momentum = momentum
    model.eval()


def adapt_to_image(model, src, factor: float, *, device: str = "cpu", seed: int = 0, n_tiles: int = 8,
                   tile: int = 256):
    """A copy of ``model`` whose BatchNorm statistics are those of the image ``src``.

    ``n_tiles`` random ``tile``-px windows of the image at the model's resolution
    (``factor`` model pixels per image pixel) are read; crops of them feed
    :func:`adapt_batchnorm`. Reads only those windows, whatever the image size.
    """
    import copy

    from .resample import map_shape, resample_tile

    adapted = copy.deepcopy(model).to(device)
    rng = np.random.default_rng([int(seed), 515])
    H, W = map_shape(src.shape, factor)
    th, tw = min(tile, H), min(tile, W)
    windows = [resample_tile(src, r0, r0 + th, c0, c0 + tw, factor)
               for r0, c0 in zip(rng.integers(0, H - th + 1, n_tiles), rng.integers(0, W - tw + 1, n_tiles),
                                 strict=True)]
    adapt_batchnorm(adapted, windows, rng, crop=min(128, th, tw), device=device)
    return adapted
