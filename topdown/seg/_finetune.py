"""Few-shot fine-tuning of a simulation-pretrained model on a handful of labelled real images.

Labels may be full masks or only labelled points (e.g. Visium spots annotated by a
pathologist): points become disks, every other pixel is unlabelled, and the loss is the
partial cross-entropy over labelled pixels only. BatchNorm statistics stay frozen (the few
images would make poor batch statistics); all weights are updated with a small learning
rate, starting from the pretrained ones.
"""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import torch

from ..errors import InputError
from .adabn import adapt_batchnorm
from .augment import AugmentConfig, augment
from .checkpoint import load
from .image import open_image
from .infer import _image_scale
from .loop import IGNORE, lr_at, optimiser_step, pick_device
from .resample import map_shape, resample_array, resample_tile

#: fine-tuning adapts to the real images: flips, 90° turns and mild colour jitter only
FINETUNE_AUGMENT = AugmentConfig(p_geometric=0.0, hed_sigma=0.02, hed_bias=0.002, hue=0.01, saturation=(0.9, 1.1),
                                 gamma=(0.9, 1.1), brightness=0.03, contrast=(0.9, 1.1), p_blur=0.1,
                                 p_jpeg=0.0, noise_sigma=(0.0, 0.01))


def _label_raster(label, model, src_shape, factor: float, radius_px: float) -> np.ndarray:
    """Labels at the model's resolution; IGNORE where unlabelled."""
    h, w = map_shape(src_shape, factor)
    if isinstance(label, tuple) and len(label) == 2:
        xy, names = label
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        names = list(names)
        if len(names) != len(xy):
            raise InputError(f"point labels: {len(xy)} coordinates but {len(names)} region names.")
        index = {n: i for i, n in enumerate(model.names)}
        bad = sorted({str(n) for n in names} - set(index))
        if bad:
            raise InputError(f"unknown region names {bad[:5]} in point labels; the model knows {model.names}.")
        out = np.full((h, w), IGNORE, dtype=np.uint8)
        r = max(0.5, radius_px * factor)
        R = int(np.ceil(r))
        dy, dx = np.mgrid[-R:R + 1, -R:R + 1]
        disk = dy ** 2 + dx ** 2 <= r ** 2
        for (x, y), name in zip(xy * factor, names, strict=True):
            rr, cc = int(np.floor(y)) + dy[disk], int(np.floor(x)) + dx[disk]
            ok = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
            out[rr[ok], cc[ok]] = index[str(name)]
        return out
    mask = np.asarray(label)
    if mask.shape != tuple(src_shape):
        raise InputError(f"label mask has shape {mask.shape} but its image is {tuple(src_shape)}; "
                         "give one label per image pixel (255 = unlabelled) or (xy, names) points.")
    valid = (mask == IGNORE) | ((mask >= 0) & (mask < model.n_labels))
    if not valid.all():
        raise InputError(f"label mask values must be 0..{model.n_labels - 1} (0 = outside) or 255 (unlabelled).")
    return resample_array(mask.astype(np.uint8), factor, order=0)


def _window(image: np.ndarray, label: np.ndarray, rng: np.random.Generator, side: int,
            background: int) -> tuple[np.ndarray, np.ndarray]:
    """A ``side`` window centred on a random labelled pixel (padded with glass / unlabelled)."""
    rows, cols = np.nonzero(label != IGNORE)
    k = int(rng.integers(len(rows)))
    r0, c0 = rows[k] - side // 2, cols[k] - side // 2
    pad = side
    img = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), constant_values=background)
    lab = np.pad(label, ((pad, pad), (pad, pad)), constant_values=IGNORE)
    return img[r0 + pad:r0 + pad + side, c0 + pad:c0 + pad + side], lab[r0 + pad:r0 + pad + side, c0 + pad:c0 + pad + side]


def finetune(model, images, labels, *, pixel_size_um=None, steps: int = 100, lr: float = 5e-4,
             batch_size: int = 4, crop: int = 128, spot_radius_px: float | None = None,
             spot_diameter_um: float = 55.0, augment_images: bool | AugmentConfig = False,
             adapt_norm: bool = True, seed: int = 0, device: str = "auto", progress: bool = False) -> torch.nn.Module:
    """Adapt a pretrained SegModel to a few labelled real images.

    Parameters
    ----------
    model
        SegModel, shipped model name or checkpoint path (not modified; a copy is tuned).
    images
        One image or a list (arrays, PIL images or paths; as for :func:`segment`).
    labels
        One per image: an ``(H, W)`` integer mask in image pixels (0 = outside,
        ``k`` = ``model.classes[k - 1]``, 255 = unlabelled), or points
        ``(xy, names)`` with ``xy`` an ``(n, 2)`` array of image-pixel coordinates
        (x = column, y = row, as Visium ``obsm['spatial']`` scaled to the image) and
        ``names`` region names (``"outside"`` allowed), labelled as disks.
    pixel_size_um
        Micrometres per pixel of the images (one value or one per image); ``"model"``
        if they already have the model's pixel size.
    steps, lr, batch_size, crop
        Optimisation steps, AdamW learning rate (cosine), crops per step, crop side.
    spot_radius_px, spot_diameter_um
        Disk radius for point labels in image pixels; default half a Visium spot
        (``spot_diameter_um / 2 / pixel_size_um``).
    augment_images
        ``False`` (default: plain crops centred on labelled pixels; on our toy shift test
        augmentation made fine-tuning worse), ``True`` (flips, 90° turns and mild colour
        jitter, :data:`FINETUNE_AUGMENT`) or an AugmentConfig.
    adapt_norm
        First re-estimate the BatchNorm statistics on the given images (AdaBN: Li et al.
        2016, "Revisiting batch normalization for practical domain adaptation"), so the
        network sees the real images' colour and texture statistics, then fine-tune with
        them frozen. Needs no labels.
    seed, device, progress
        Randomness, torch device (``"auto"``: CUDA when present), progress bar.

    Returns
    -------
    The fine-tuned SegModel (CPU, eval mode); ``metrics["finetune"]`` records the run.

    Examples
    --------
    >>> import topdown as td
    >>> tuned = td.seg.finetune("mouse_brain_coronal", [img], [(spot_xy, spot_regions)],
    ...                         pixel_size_um=17.6)  # doctest: +SKIP
    """
    from .._progress import progress as bar

    base = load(model)
    tuned = copy.deepcopy(base)
    device = pick_device(device)
    if not isinstance(images, (list, tuple)):
        images, labels = [images], [labels]
    if len(images) != len(labels) or not images:
        raise InputError(f"give one label set per image: {len(images)} images, {len(labels)} labels.")
    pxs = pixel_size_um if isinstance(pixel_size_um, (list, tuple)) else [pixel_size_um] * len(images)
    if len(pxs) != len(images):
        raise InputError(f"{len(pxs)} pixel sizes for {len(images)} images.")
    data = []
    for img, lab, px in zip(images, labels, pxs, strict=True):
        src = open_image(img, background=tuned.background_value)
        scale = _image_scale(img, src, tuned, px, None, None)
        factor = scale.per_pixel("map")  # map pixels per image pixel
        radius = spot_radius_px if spot_radius_px is not None else (  # in image pixels
            scale.convert(spot_diameter_um / 2, "um", "image") if scale.um else 3.0)
        raster = _label_raster(lab, tuned, src.shape, factor, radius)
        if not (raster != IGNORE).any():
            raise InputError("a label set marks no pixel; give at least one labelled pixel or point per image.")
        h, w = raster.shape
        data.append((resample_tile(src, 0, h, 0, w, factor), raster))
    cfg = None if augment_images is False else (
        augment_images if isinstance(augment_images, AugmentConfig) else FINETUNE_AUGMENT)
    if augment_images is True and base.orientation == "upright":
        cfg = replace(cfg, any_orientation=False)  # an upright model stays upright
    rng = np.random.default_rng([int(seed), 4242])
    torch.manual_seed(seed)
    tuned.to(device)
    opt = torch.optim.AdamW(tuned.parameters(), lr=lr, weight_decay=1e-4)
    if adapt_norm:
        adapt_batchnorm(tuned, [image for image, _ in data], rng, crop, device)
    tuned.train()
    for m in tuned.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eval()
    losses = []
    pb = bar(total=steps, desc="finetune", disable=None if progress else True)
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, lr)
        xs, ys = [], []
        for _ in range(batch_size):
            image, raster = data[int(rng.integers(len(data)))]
            wi, wl = _window(image, raster, rng, int(crop * 1.5), tuned.background_value)
            if cfg is None:
                o = (wl.shape[0] - crop) // 2
                x, y = wi[o:o + crop, o:o + crop].astype(np.float32) / 255.0, wl[o:o + crop, o:o + crop]
            else:
                x, y = augment(wi, wl, rng, size=crop, config=cfg, modality=tuned.modality, ignore_index=IGNORE)
            xs.append(x)
            ys.append(np.asarray(y, dtype=np.int64))
        x = torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).contiguous().to(device)
        y = torch.from_numpy(np.stack(ys)).to(device)
        if not bool((y != IGNORE).any()):
            continue
        loss = torch.nn.functional.cross_entropy(tuned(x), y, ignore_index=IGNORE)
        optimiser_step(opt, loss, losses, pb, window=10)
    pb.close()
    tuned.cpu().eval()
    tuned.weights_sha256 = None
    tuned.name = f"{base.name or 'model'}+finetuned"
    tuned.metrics = {**base.metrics, "finetune": {
        "n_images": len(images), "steps": steps, "lr": lr, "seed": seed, "crop": crop,
        "n_labelled_pixels": int(sum((r != IGNORE).sum() for _, r in data)), "adapt_norm": bool(adapt_norm),
        "loss_first": losses[0] if losses else None, "loss_last": float(np.mean(losses[-10:])) if losses else None,
        "base_weights_sha256": base.weights_sha256}}
    return tuned
