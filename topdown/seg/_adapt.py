"""Unsupervised adaptation of a trained model to a user's unlabelled real images.

Two methods, neither needing labels:

- ``"adabn"``: re-estimate the BatchNorm statistics on the images (Li et al. 2016; the
  primitive is :func:`topdown.seg.adabn.adapt_batchnorm`).
- ``"pseudo_label"``: self-training on confident pseudo-labels (class-balanced as in Zou
  et al. 2018, "Unsupervised domain adaptation for semantic segmentation via
  class-balanced self-training"): the model segments each image (with test-time flips);
  in each class the most confident ``keep`` fraction of its pixels becomes a label (so
  a thin layer keeps its own best pixels instead of being swamped by a global threshold);
  then a copy is fine-tuned on crops around those pixels, drawn class by class, with the
  model's own training augmentation and class-balanced cross-entropy (plus, optionally,
  entropy minimisation on every pixel). By default the BatchNorm statistics are first
  re-estimated on the images (as ``"adabn"``) and then stay frozen.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from ..errors import InputError
from .adabn import adapt_batchnorm
from .augment import AugmentConfig, augment
from .checkpoint import load
from .image import ImageSource
from .infer import predict, require_flag
from .layers import LayerPrior, apply_layer_prior
from .loop import IGNORE, balanced_class_weights, lr_at, optimiser_step, pick_device
from .nucleus_designs import refuse_nucleus_model
from .target import TargetImage, load_targets

#: the methods :func:`adapt` knows
ADAPT_METHODS = ("adabn", "pseudo_label")
#: AdaBN needs windows at least this many model pixels a side (as ``segment(adapt_norm=True)``)
MIN_SIDE = 64


def pseudo_labels(model, target: TargetImage, *, keep: float = 0.5, min_confidence: float = 0.0,
                  device: str = "cpu", layer_prior=None) -> np.ndarray:
    """Class-balanced confident pseudo-labels of ``target`` (``IGNORE`` where not kept).

    The model's labels (tiled, with test-time flips and the tissue mask), with
    ``layer_prior`` (a :class:`~topdown.seg.LayerPrior`) enforced when given; in each class
    the pixels whose probability of their label is in that class's top ``keep`` fraction
    and at least ``min_confidence`` are kept.

    Examples
    --------
    >>> import topdown as td
    >>> t = td.seg.target.load_target("section.png", 16.2, 16.2, "he")  # doctest: +SKIP
    >>> raster = pseudo_labels(td.seg.load("cortex_laminar"), t)  # doctest: +SKIP
    """
    labels, probs = predict(model, ImageSource(target.image), 1.0, device=device, tissue=target.tissue,
                            tissue_step=1.0, tta=True)
    if layer_prior is not None:
        labels, _ = apply_layer_prior(labels, model.classes, layer_prior, float(model.pixel_size_um),
                                      probabilities=probs)
    conf = np.take_along_axis(probs, labels[None].astype(np.int64), axis=0)[0].astype(np.float32)
    out = np.full(labels.shape, IGNORE, dtype=np.uint8)
    for c in np.unique(labels):
        sel = labels == c
        thr = max(float(np.quantile(conf[sel], 1.0 - keep)), min_confidence)
        out[sel & (conf >= thr)] = c
    return out


def _train_augment(model) -> AugmentConfig:
    """The model's own training augmentation (defaults when it has none recorded)."""
    saved = model.train_config.get("augment") or {}
    names = set(AugmentConfig.__dataclass_fields__)
    return AugmentConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in saved.items() if k in names})


def _sample(data, rng: np.random.Generator, side: int, cfg: AugmentConfig, model) -> tuple[np.ndarray, np.ndarray]:
    """An augmented ``side`` crop around a pseudo-labelled pixel of a class drawn uniformly."""
    image, raster, classes = data[int(rng.integers(len(data)))]
    c = classes[int(rng.integers(len(classes)))]
    rows, cols = np.nonzero(raster == c)
    k = int(rng.integers(len(rows)))
    big = int(side * 1.5)
    r0, c0 = rows[k] - big // 2 + big, cols[k] - big // 2 + big
    img = np.pad(image, ((big, big), (big, big), (0, 0)), constant_values=model.background_value)
    lab = np.pad(raster, ((big, big), (big, big)), constant_values=IGNORE)
    return augment(img[r0:r0 + big, c0:c0 + big], lab[r0:r0 + big, c0:c0 + big], rng, size=side, config=cfg,
                   modality=model.modality, ignore_index=IGNORE)


def _self_train(tuned, data, *, steps: int, lr: float, batch_size: int, crop: int, entropy_weight: float,
                rng: np.random.Generator, device: str, progress: bool) -> list[float]:
    """Fine-tune ``tuned`` on pseudo-labelled crops (BatchNorm frozen); the losses."""
    from .._progress import progress as bar

    counts = np.zeros(tuned.n_labels)
    for _, raster, _ in data:
        counts += np.bincount(raster[raster != IGNORE].ravel(), minlength=tuned.n_labels)[:tuned.n_labels]
    weights = torch.tensor(balanced_class_weights(counts), dtype=torch.float32, device=device)
    cfg = _train_augment(tuned)
    opt = torch.optim.AdamW(tuned.parameters(), lr=lr, weight_decay=1e-4)
    tuned.train()
    for m in tuned.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eval()
    losses: list[float] = []
    pb = bar(total=steps, desc="adapt (pseudo-labels)", disable=None if progress else True)
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, lr)
        xs, ys = zip(*(_sample(data, rng, crop, cfg, tuned) for _ in range(batch_size)), strict=True)
        x = torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).contiguous().to(device)
        y = torch.from_numpy(np.stack(ys)).to(device)
        logits = tuned(x)
        loss = torch.nn.functional.cross_entropy(logits, y, weight=weights, ignore_index=IGNORE)
        if entropy_weight > 0:
            p = torch.softmax(logits, dim=1)
            loss = loss + entropy_weight * -(p * torch.log(p + 1e-8)).sum(dim=1).mean()
        optimiser_step(opt, loss, losses, pb, window=10)
    pb.close()
    return losses


def adapt(model, images, pixel_size_um=None, *, method: str = "pseudo_label", steps: int = 200, lr: float = 1e-4,
          batch_size: int = 4, crop: int = 128, keep: float = 0.5, min_confidence: float = 0.0,
          entropy_weight: float = 0.0, adapt_norm: bool = True, layer_prior=None, seed: int = 0,
          device: str = "auto", progress: bool = True):
    """A copy of ``model`` adapted, without labels, to the look of the given real images.

    Parameters
    ----------
    model
        SegModel, shipped model name or checkpoint path (never modified). The shipped
        ``olfactory_bulb`` and ``cortex_laminar`` models are adapted already, to public real
        sections (ST bulb H&E, Visium low-res DLPFC H&E); for images unlike those, start from
        their simulation-only networks, ``td.seg.load(name, kind="sim")``.
    images
        One unlabelled image or a list (arrays, PIL images or paths), of the model's
        modality and tissue.
    pixel_size_um
        µm per pixel of the images (one value or one per image; ``"model"``: the model's).
        Read from a ``scalefactors_json.json`` beside a Visium ``tissue_*_image.png`` if omitted.
    method
        ``"pseudo_label"`` (default): class-balanced confident pseudo-label self-training
        (see the module notes); ``"adabn"``: BatchNorm statistics of the images only (fast,
        no optimisation). Mean adjusted Rand index over the real sections of
        ``real_dev`` (shipped models, adapting on all of a set's images, defaults, seed 0):
        MOB (``olfactory_bulb``, 4 sections) 0.266 unadapted, 0.382 ``adabn``, 0.455
        ``pseudo_label`` without ``adapt_norm``, 0.498 with; DLPFC (``cortex_laminar``,
        4 sections) 0.098, 0.054, 0.062, 0.104.
    steps, lr, batch_size, crop
        ``pseudo_label`` fine-tuning: optimisation steps, AdamW learning rate (cosine),
        crops per step, crop side (model pixels). The defaults take about a minute on a CPU
        core for a small model.
    keep, min_confidence
        ``pseudo_label``: fraction of each class's pixels kept (its most confident), and an
        absolute floor on their probability.
    entropy_weight
        ``pseudo_label``: weight of an entropy-minimisation term over all crop pixels (0: off).
    adapt_norm
        ``pseudo_label``: first re-estimate the BatchNorm statistics on the images (as
        ``"adabn"``), then pseudo-label and self-train with them (default: the better
        of the two on both real sets above).
    layer_prior
        ``pseudo_label``: enforce a laminar order on the pseudo-labels (see
        :func:`topdown.seg.segment`): ``"auto"`` the prior of the model's preset when it
        declares one, a :class:`~topdown.seg.LayerPrior`, or ``None`` (default). The network
        then learns the layers where the prior puts them, not where texture alone did.
        Off by default: segmenting applies the prior anyway, and prior-guided pseudo-labels
        scored no better on real_dev (mean ARI with the prior at segmentation: MOB 0.525 vs
        0.523 without; DLPFC 0.118 vs 0.175).
    seed, device, progress
        Randomness (the result is a function of it), torch device, progress bar.

    Returns
    -------
    The adapted SegModel (CPU, eval mode); ``metrics["adapt"]`` records the method, its
    settings and the images' count and hashes.

    Examples
    --------
    >>> import topdown as td
    >>> tuned = td.seg.adapt("cortex_laminar", ["151507/image.png", "151508/image.png"],
    ...                      pixel_size_um=16.2, method="pseudo_label")  # doctest: +SKIP
    >>> rmap = td.seg.segment("151507/image.png", tuned, pixel_size_um=16.2)  # doctest: +SKIP
    """
    if method not in ADAPT_METHODS:
        raise InputError(f"method must be one of {', '.join(ADAPT_METHODS)}, got {method!r}")
    require_flag("adapt_norm", adapt_norm)
    _check_settings(steps=steps, lr=lr, batch_size=batch_size, crop=crop, keep=keep, min_confidence=min_confidence,
                    entropy_weight=entropy_weight)
    base = load(model)
    refuse_nucleus_model(base, "td.seg.adapt", "Self-training on a nucleus model's own distance bins cuts nuclei "
                         "apart (real MERFISH crop: F1 0.625 -> 0.42-0.53, docs/nuclei/README.md); use it as shipped.")
    device = pick_device(device)
    targets = load_targets(images, pixel_size_um, base.pixel_size_um, base.modality, flag="pixel_size_um (--pixel-size)")
    tuned = copy.deepcopy(base).to(device)
    rng = np.random.default_rng([int(seed), 8080])
    torch.manual_seed(seed)
    record = {"method": method, "n_images": len(targets), "sha256": [t.sha256 for t in targets], "seed": seed,
              "base_weights_sha256": base.weights_sha256}
    if method == "adabn" or adapt_norm:
        side = min(min(t.image.shape[:2]) for t in targets)
        if side < MIN_SIDE:
            raise InputError(f"an image is only {side} px a side at the model's {base.pixel_size_um} µm/px, too "
                             f"small to estimate BatchNorm statistics (needs {MIN_SIDE}); give larger images.")
        adapt_batchnorm(tuned, [t.image for t in targets], rng, crop=min(crop, side), device=device, n_batches=32)
        record["adapt_norm"] = True
    if method == "pseudo_label":
        prior = LayerPrior.resolve(layer_prior, base)
        record["layer_prior"] = prior is not None
        record.update(_pseudo_label_run(tuned, targets, rng, steps=steps, lr=lr, batch_size=batch_size, crop=crop,
                                        keep=keep, min_confidence=min_confidence, entropy_weight=entropy_weight,
                                        device=device, progress=progress, layer_prior=prior))
    tuned.cpu().eval()
    tuned.weights_sha256 = None
    tuned.source = None
    tuned.name = f"{base.name or 'model'}+{method}"
    tuned.metrics = {**base.metrics, "adapt": record}
    return tuned


def _pseudo_label_run(tuned, targets, rng, *, steps, lr, batch_size, crop, keep, min_confidence, entropy_weight,
                      device, progress, layer_prior=None) -> dict:
    """Pseudo-label the targets with ``tuned`` as it is, then self-train it; the run's record."""
    data = []
    for t in targets:
        raster = pseudo_labels(tuned, t, keep=keep, min_confidence=min_confidence, device=device,
                               layer_prior=layer_prior)
        classes = [int(c) for c in np.unique(raster) if c != IGNORE]
        if classes:
            data.append((t.image, raster, classes))
    if not data:
        raise InputError("no pixel is confident enough to pseudo-label; lower min_confidence.")
    losses = _self_train(tuned, data, steps=steps, lr=lr, batch_size=batch_size, crop=crop,
                         entropy_weight=entropy_weight, rng=rng, device=device, progress=progress)
    kept = np.zeros(tuned.n_labels, dtype=np.int64)
    for _, raster, _ in data:
        kept += np.bincount(raster[raster != IGNORE].ravel(), minlength=tuned.n_labels)[:tuned.n_labels]
    return {"steps": steps, "lr": lr, "batch_size": batch_size, "crop": crop, "keep": keep,
            "min_confidence": min_confidence, "entropy_weight": entropy_weight,
            "pseudo_labelled_pixels": dict(zip(tuned.names, kept.tolist(), strict=True)),
            "loss_first": losses[0] if losses else None,
            "loss_last": float(np.mean(losses[-10:])) if losses else None}


def _check_settings(*, steps, lr, batch_size, crop, keep, min_confidence, entropy_weight) -> None:
    """One-line :class:`InputError` for a setting out of range."""
    from .._limits import check_number

    check_number(steps, "steps", 0, 1_000_000)
    check_number(lr, "lr", 0.0, 10.0, lo_open=True)
    check_number(batch_size, "batch_size", 1, 10_000)
    check_number(crop, "crop", 16, 4096)
    check_number(keep, "keep", 0.0, 1.0, lo_open=True)
    check_number(min_confidence, "min_confidence", 0.0, 1.0)
    check_number(entropy_weight, "entropy_weight", 0.0, 100.0)
