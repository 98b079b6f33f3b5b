"""Training a SegModel on a SimDataset.

Each epoch draws one augmented crop per training frame (see :mod:`topdown.seg.augment`),
optimises cross-entropy + soft Dice with AdamW on a cosine learning-rate schedule, then
scores the held-out validation frames (mIoU). After every epoch the checkpoint and the
resumable training state are written atomically, so ``resume=True`` continues from the
last finished epoch and reproduces an uninterrupted run (every epoch's randomness is a
function of ``(seed, epoch)``). ``init=`` instead starts a new run from trained weights
(a warm start: fresh optimiser and schedule, e.g. a short low-learning-rate finish).
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import os
import time
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InputError
from .augment import AugmentConfig, orientation_config
from .checkpoint import check_output, files_of, load, load_state, save, save_state, state_path
from .data import dataset_pixel_size, open_dataset, read_frame, read_labels, split
from .loop import (
    autocast,
    balanced_class_weights,
    loss_fn,
    lr_at,
    make_batch,
    optimiser_step,
    pick_device,
    pick_precision,
)
from .metrics import scores
from .model import DEFAULT_WIDTHS, SegModel
from .scoring import confusion_on

log = logging.getLogger(__name__)


@dataclass
class TrainPlan:
    """Everything that decides a training run, saved with the model as ``train_config``.

    As nnU-Net's plans: written into the checkpoint's metadata, so a model says how it was
    trained (``TrainPlan.from_dict(model.train_config)``).

    Attributes
    ----------
    epochs, batch_size, crop, lr, weight_decay, val_fraction, dice_weight, seed, precision
        As the arguments of :func:`train` (``crop`` and ``precision`` resolved).
    augment
        The augmentation settings (:meth:`AugmentConfig.to_dict`), ``None`` without.
    n_train, n_val
        Training and validation frames.
    dataset, dataset_seed
        The dataset's folder and simulation seed.
    init
        Where a warm start began (source, weights hash, modality); ``None`` for a fresh run.
    class_weights
        Cross-entropy class weights (``outside`` first); ``None`` without class balance.
    adapt
        Style mixing towards real images (``adapt_to``): method, probability, FDA band,
        and the images' count, SHA-256 hashes and pixel sizes (never the images); ``None``
        without.
    """

    epochs: int
    batch_size: int
    crop: int
    lr: float
    weight_decay: float
    val_fraction: float
    dice_weight: float
    augment: dict | None
    seed: int
    n_train: int
    n_val: int
    precision: str
    dataset: str
    dataset_seed: int | None
    init: dict | None = None
    class_weights: list[float] | None = None
    adapt: dict | None = None

    @property
    def steps_per_epoch(self) -> int:
        return max(1, math.ceil(self.n_train / self.batch_size))

    def to_dict(self) -> dict:
        """The JSON-serialisable ``train_config`` (``init``, ``class_weights``, ``adapt`` only when set)."""
        d = dataclasses.asdict(self)
        return {k: v for k, v in d.items() if k not in ("init", "class_weights", "adapt") or v is not None}

    @classmethod
    def from_dict(cls, d: dict) -> TrainPlan:
        """The plan of a saved ``train_config`` (unknown keys ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


class _Frames:
    """Frames of a dataset, decoded once and kept (uint8) when they fit in ``cache_mb``."""

    def __init__(self, ds, px: float | None, cache_mb: float = 2048) -> None:
        self.ds, self.px = ds, px
        size = int(getattr(ds, "size", 0) or 256)
        self.cache = {} if len(ds) * size * size * 4 / 1e6 <= cache_mb else None

    def __getitem__(self, i: int):
        if self.cache is not None and i in self.cache:
            return self.cache[i]
        item = read_frame(self.ds, i, self.px)
        if self.cache is not None:
            self.cache[i] = item
        return item

    def labels(self, i: int) -> np.ndarray:
        """Frame ``i``'s label mask; without a cache only the mask is read, not the image."""
        return self[i][1] if self.cache is not None else read_labels(self.ds, i, self.px)


def train(ds, out: str | os.PathLike | None = None, *, epochs: int = 20, batch_size: int = 8,
          crop: int | None = None, lr: float = 2e-3, weight_decay: float = 1e-4,
          val_fraction: float = 0.1, widths: tuple[int, ...] = DEFAULT_WIDTHS, norm: str = "batch",
          augment: bool | AugmentConfig = True, orientation: str | None = None, dice_weight: float = 0.5,
          class_balance: bool = True, device: str = "auto", precision: str = "auto",
          seed: int = 0, resume: bool = False, init: str | os.PathLike | SegModel | None = None,
          name: str | None = None, threads: int | None = None, progress: bool = True,
          adapt_to=None, adapt_pixel_size_um=None, adapt_method: str = "fda", adapt_p: float = 0.5) -> SegModel:
    """Train a region-segmentation U-Net on simulated frames.

    Parameters
    ----------
    ds
        SimDataset or its folder (``topdown simulate --out``).
    out
        Checkpoint path (safetensors format whatever the extension, plus ``.json``
        metadata and ``.state.safetensors`` for resuming). ``None``: keep in memory only.
    epochs
        Passes over the training frames (one random augmented crop per frame per pass).
    batch_size, crop
        Crops per step and crop side in px (default: the frame size, at most 256).
    lr, weight_decay, dice_weight
        AdamW learning rate (cosine schedule) and decay; weight of the soft-Dice term.
    val_fraction
        Fraction of frames held out for validation (frame-level, fixed by ``seed``).
    widths, norm
        U-Net architecture (see :class:`~topdown.seg.SegModel`).
    augment
        ``True`` (default strengths), ``False`` (random crops only) or an
        :class:`~topdown.seg.augment.AugmentConfig`.
    class_balance
        Weight the cross-entropy by :func:`~topdown.seg.loop.balanced_class_weights` of
        the training frames' label counts, so thin regions (a central canal, a cell layer)
        are learnt, not drowned by the large ones.
    orientation
        ``"free"`` (any rotation or flip: the model takes sections in any orientation) or
        ``"upright"`` (dorsal up within +/-30°, left-right mirror only: the model may use
        where a region lies, but expects roughly upright images). Default: as ``augment``
        says (``"free"`` for ``True``).
    device
        ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
    precision
        ``"auto"`` (bfloat16 autocast where the device computes it natively, see
        :func:`~topdown.seg.loop.pick_precision`; else float32), ``"fp32"`` or ``"bf16"``.
        Weights, optimiser state and loss are float32 either way.
    seed
        Fixes initialisation, split, crops and augmentation.
    resume
        Continue from ``out`` and its training state.
    init
        Warm start: begin from these weights (SegModel, shipped model name or checkpoint
        path; its classes must be the dataset's) with a fresh optimiser and learning-rate
        schedule, e.g. a few low-``lr`` epochs on top of a trained model. The architecture
        is the checkpoint's (``widths`` and ``norm`` are ignored), and so is the orientation
        unless ``orientation`` is given (as with ``resume``); the pixel size, spec hash and
        modality become the dataset's. An H&E model is a good start for a DAPI model of the
        same tissue: its knowledge of where regions lie carries over and only the stain is
        new (see ``topdown/seg/weights/README.md``).
    name
        Model name (default: the dataset name).
    threads
        ``torch.set_num_threads`` for the run (default: leave as is).
    progress
        Show a progress bar with loss and validation mIoU.
    adapt_to
        Unlabelled real images (arrays or paths; one or a list) whose look the training
        crops take on (style mixing, :mod:`topdown.seg.style`): with probability
        ``adapt_p`` a crop is restyled like a random tissue crop of them, by Fourier domain
        adaptation (``adapt_method="fda"``: the crop's low-frequency amplitude spectrum
        becomes the real crop's, band ``beta`` in 0.01-0.05; Yang & Soatto 2020) or by
        CIELAB mean/std matching (``"lab"``, colour only). The images are resampled to the
        dataset's pixel size and must show tissue of the dataset's modality; the plan
        records their count and hashes (``train_config["adapt"]``).
    adapt_pixel_size_um
        µm per pixel of the ``adapt_to`` images (one value or one per image).
    adapt_method, adapt_p
        ``"fda"`` or ``"lab"``; probability that a training crop is restyled.

    Returns
    -------
    The trained SegModel (on CPU, eval mode), with ``metrics`` (validation IoU per class,
    mIoU, history per epoch).

    Examples
    --------
    >>> import topdown as td
    >>> model = td.seg.train("sims/brain", out="models/brain.pt", epochs=30)  # doctest: +SKIP
    >>> model = td.seg.train("sims/brain", epochs=30, adapt_to=["real.png"],
    ...                      adapt_pixel_size_um=16.2)  # doctest: +SKIP
    """
    ds = open_dataset(ds)
    if len(ds) == 0:
        raise InputError("the dataset has no completed frames; run `topdown simulate` first.")
    _check_numbers(epochs=epochs, lr=lr, weight_decay=weight_decay, val_fraction=val_fraction,
                   dice_weight=dice_weight, batch_size=batch_size, crop=crop, threads=threads)
    if out is not None:  # the dataset's files and the starting weights are inputs, never overwritten
        out = check_output(out, inputs=(getattr(ds, "path", None), *files_of(init)))
    if resume and out is None:
        raise InputError("resume=True needs out= (the checkpoint to continue).")
    if resume and init is not None:
        raise InputError("give resume=True (continue a run) or init= (start a new run from weights), not both.")
    device = pick_device(device)
    precision = pick_precision(precision, device)
    if threads:
        torch.set_num_threads(int(threads))
    px = dataset_pixel_size(ds)
    size = int(getattr(ds, "size", 0) or read_frame(ds, 0)[1].shape[0])
    cfg = None if augment is False else (augment if isinstance(augment, AugmentConfig) else AugmentConfig())
    if orientation is not None and cfg is not None:
        cfg = orientation_config(orientation, cfg)
    train_idx, val_idx = split(len(ds), val_fraction, seed)
    plan = TrainPlan(epochs=epochs, batch_size=batch_size, crop=int(crop or min(size, 256)), lr=lr,
                     weight_decay=weight_decay, val_fraction=val_fraction, dice_weight=dice_weight,
                     augment=None if cfg is None else cfg.to_dict(), seed=seed, n_train=len(train_idx),
                     n_val=len(val_idx), precision=precision, dataset=str(getattr(ds, "path", "")),
                     dataset_seed=getattr(ds, "seed", None))
    style = None
    if adapt_to is not None:
        style, plan.adapt = _style_mixer(adapt_to, adapt_pixel_size_um, adapt_method, adapt_p, px,
                                         getattr(ds, "modality", "he"), plan)
    torch.manual_seed(seed)
    resuming = resume and state_path(out).is_file()
    model = _start_model(ds, plan, px, out if resuming else None, init, name=name, widths=widths,
                         norm=norm, device=device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    start_epoch, history = 0, []
    if resuming:
        info = load_state(out, opt, model)
        start_epoch, history = int(info["epoch"]) + 1, list(info.get("history", []))
        log.info("resuming %s at epoch %d/%d", out, start_epoch + 1, epochs)
    if (resuming or init is not None) and orientation is None and cfg is not None and model.orientation == "upright":
        cfg = orientation_config("upright", cfg)  # a resumed or warm-started run keeps the model's orientation
        plan.augment = cfg.to_dict()
    model.to(memory_format=torch.channels_last)  # faster convolutions on CPU and GPU
    frames = _Frames(ds, px)
    class_weights = None
    if class_balance:
        plan.class_weights = _class_weights(frames, train_idx, len(model.classes))
        class_weights = torch.tensor(plan.class_weights, dtype=torch.float32, device=device)
    model.train_config = plan.to_dict()
    metrics: dict = dict(model.metrics)
    for epoch in range(start_epoch, epochs):
        rec, val = _epoch(model, opt, frames, train_idx, val_idx, epoch, plan, cfg, class_weights,
                          device=device, progress=progress, style=style)
        if val is not None:
            metrics.update(val_iou=val["iou"], val_dice=val["dice"], val_miou=val["miou"],
                           val_mdice=val["mdice"], val_pixel_accuracy=val["pixel_accuracy"])
        history.append(rec)
        metrics.update(history=history, epochs_done=epoch + 1, final_loss=rec["loss"])
        model.metrics = dict(metrics)
        if out is not None:
            model.cpu()
            save(model, out)
            save_state(out, opt, {"epoch": epoch, "history": history, "seed": seed, "epochs": epochs}, model)
            model.to(device)
    model.metrics = dict(metrics)
    model.cpu().eval().to(memory_format=torch.contiguous_format)
    if out is not None:
        model.source = str(out)
    return model


def _style_mixer(images, pixel_size_um, method: str, p: float, px: float | None, modality: str,
                 plan: TrainPlan, n_crops: int = 64):
    """The :class:`~topdown.seg.style.StyleMixer` of the real images and its record for the plan."""
    from .style import StyleMixer
    from .target import load_targets, tissue_crops

    targets = load_targets(images, pixel_size_um, px, modality, flag="adapt_pixel_size_um (--adapt-pixel-size)")
    crops = tissue_crops(targets, plan.crop, n_crops, np.random.default_rng([int(plan.seed), 2718]))
    mixer = StyleMixer(crops, method=method, p=float(p))
    pxs = pixel_size_um if isinstance(pixel_size_um, (list, tuple)) else [pixel_size_um]
    record = {**mixer.record(), "n_images": len(targets), "sha256": [t.sha256 for t in targets],
              "pixel_size_um": [None if v is None or isinstance(v, str) else float(v) for v in pxs]}
    return mixer, record


def _check_numbers(*, epochs, lr, weight_decay, val_fraction, dice_weight, batch_size, crop,
                   threads) -> None:
    """One-line :class:`InputError` for a training number that is not finite or out of range."""
    from .._limits import check_number

    if epochs < 1:
        raise InputError(f"epochs must be >= 1, got {epochs}")
    for value, what, lo, hi, lo_open in ((lr, "lr", 0.0, 10.0, True), (weight_decay, "weight_decay", 0.0, 10.0, False),
                                         (val_fraction, "val_fraction", 0.0, 0.9, False),
                                         (dice_weight, "dice_weight", 0.0, 100.0, False),
                                         (batch_size, "batch_size", 1, 100_000, False)):
        check_number(value, what, lo, hi, lo_open=lo_open)
    if crop is not None:
        check_number(crop, "crop", 8, 65_536)
    if threads is not None:
        check_number(threads, "threads", 1, 4096)


def _start_model(ds, plan: TrainPlan, px: float | None, resume_from, init, *, name, widths, norm,
                 device) -> SegModel:
    """The model a run starts from: the checkpoint ``resume_from`` continues, ``init``'s weights
    (a warm start, adopting the dataset's pixel size, spec and modality) or a fresh U-Net."""
    classes = list(ds.classes)
    modality = getattr(ds, "modality", "he")
    if resume_from is not None:
        model = load(resume_from, classes=classes)
        if model.spec_hash and getattr(ds, "spec_hash", None) and model.spec_hash != ds.spec_hash:
            raise InputError(f"'{resume_from}' was trained on another spec (hash {model.spec_hash[:12]} vs "
                             f"{ds.spec_hash[:12]}); resume with the same --data or drop --resume.")
        model.to(device)
        if "init" in model.train_config:
            plan.init = model.train_config["init"]  # a resumed warm start still says where it began
        return model
    if init is None:
        return SegModel(classes, colors=dict(getattr(ds, "colors", {}) or {}), pixel_size_um=px,
                        modality=modality, widths=tuple(widths), norm=norm,
                        spec_hash=getattr(ds, "spec_hash", None) or None,
                        name=name or getattr(ds, "name", None) or None, seed=plan.seed).to(device)
    model = copy.deepcopy(load(init, classes=classes)).to(device)  # the caller's model stays as it is
    plan.init = {"source": str(getattr(model, "source", None) or init),
                 "weights_sha256": model.weights_sha256, "modality": model.modality}
    if model.modality != modality:
        log.info("warm start across modalities: %s reads %s images, the dataset is %s; the network's "
                 "anatomy carries over, its first layers relearn the stain", model.name, model.modality,
                 modality)
        model.modality = modality
    model.pixel_size_um = px
    model.name = name or model.name
    model.seed = plan.seed
    model.spec_hash = getattr(ds, "spec_hash", None) or model.spec_hash
    model.metrics = {}
    return model


def _class_weights(frames: _Frames, train_idx: np.ndarray, n_classes: int) -> list[float]:
    """:func:`~topdown.seg.loop.balanced_class_weights` of the training frames' label counts."""
    counts = np.zeros(n_classes + 1)
    for i in train_idx:
        labels = frames.labels(int(i))
        counts += np.bincount(labels[labels <= n_classes].ravel(), minlength=n_classes + 1)
    return [round(float(w), 4) for w in balanced_class_weights(counts)]


def _epoch(model, opt, frames: _Frames, train_idx, val_idx, epoch: int, plan: TrainPlan, cfg,
           class_weights, *, device, progress: bool, style=None) -> tuple[dict, dict | None]:
    """One pass over the training frames, then validation: the epoch's record and scores."""
    from .._progress import progress as bar

    t0 = time.perf_counter()
    seed, lr, batch_size, steps = plan.seed, plan.lr, plan.batch_size, plan.steps_per_epoch
    modality = getattr(frames.ds, "modality", "he")  # of the images, whatever a resumed model says
    rng = np.random.default_rng([int(seed), int(epoch), 17])
    torch.manual_seed(int(seed) * 100_003 + epoch)
    order = rng.permutation(train_idx)
    model.train()
    losses = []
    pb = bar(total=steps, desc=f"epoch {epoch + 1}/{plan.epochs}", disable=None if progress else True)
    for s in range(steps):
        step = epoch * steps + s
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps * plan.epochs, lr)
        x, y = make_batch(frames, order[s * batch_size:(s + 1) * batch_size], rng, plan.crop, cfg, modality,
                          style)
        x, y = x.to(device, memory_format=torch.channels_last), y.to(device)
        with autocast(device, plan.precision):
            logits = model(x)
        optimiser_step(opt, loss_fn(logits.float(), y, plan.dice_weight, class_weights), losses, pb)
    model.eval()
    rec = {"epoch": epoch, "loss": float(np.mean(losses)), "seconds": round(time.perf_counter() - t0, 3)}
    val = None
    if len(val_idx):
        val = scores(confusion_on(model, frames_ds(frames), val_idx, device=device), model.names)
        rec.update(val_miou=val["miou"], val_pixel_accuracy=val["pixel_accuracy"])
        pb.set_postfix(loss=f"{rec['loss']:.3f}", mIoU=f"{val['miou']:.3f}")
    pb.close()
    return rec, val


class _CachedDataset:
    """Adapter so validation reads frames through the training cache."""

    def __init__(self, frames: _Frames) -> None:
        self.frames = frames
        self.pixel_size_um = frames.px

    def __getitem__(self, i: int):
        image, mask = self.frames[int(i)]
        return image, mask, {}

    def __len__(self) -> int:
        return len(self.frames.ds)


def frames_ds(frames: _Frames) -> _CachedDataset:
    return _CachedDataset(frames)
