"""Train a nucleus instance model on simulated frames (their exact ``nuclei/`` instance masks).

The network is a :class:`~topdown.seg.SegModel` over the classes of one of two designs
(:data:`topdown.seg.nucleus_designs.DESIGNS`): ``"distance"``, normalised edge-distance bins
(:data:`topdown.seg.nucleus_target.NUCLEUS_CLASSES`, instances by seeded watershed), or
``"steps"``, the step towards each nucleus's centre (:data:`topdown.seg.nucleus_flow.STEP_CLASSES`,
instances by following the steps). It is trained with cross-entropy + Dice on random crops. DAPI frames are reduced to grey, stretched by
their own robust intensity range (as inference stretches a whole image), then jittered
in gain, gamma, offset, focus (Gaussian blur) and noise, so that dim, out-of-focus nuclei
of real sections look like training data.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..errors import InputError
from .nucleus_designs import DESIGNS, design_of
from .nucleus_flow import turn_steps
from .nucleus_target import intensity_range, normalise, nuclear_signal

if TYPE_CHECKING:
    from .model import SegModel


def load_frames(path, indices=None, design: str = "distance"
                ) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], float, str]:
    """Normalised grey images ``(N, H, W)`` uint8, class targets ``(N, H, W)`` uint8 of ``design``,
    instance images, nominal µm/px and modality of a simulated dataset folder."""
    from ..sim.dataset import SimDataset

    ds = SimDataset(path)
    idx = range(len(ds)) if indices is None else indices
    make_target = DESIGNS[design][1]
    imgs, targets, ids_all = [], [], []
    for i in idx:
        image, _, ids, _ = ds[int(i)]
        grey = nuclear_signal(image, ds.modality)
        imgs.append(normalise(grey, intensity_range(grey)))
        targets.append(make_target(ids))
        ids_all.append(ids)
    return np.stack(imgs), np.stack(targets), ids_all, float(ds.pixel_size_um), str(ds.modality)


def _smooth_field(shape: tuple[int, int], rng: np.random.Generator, lo: float) -> np.ndarray:
    """A smooth random field in ``[lo, 1]`` (uneven staining / illumination)."""
    from .resample import resample_array

    g = rng.random((4, 4)).astype(np.float32)
    f = resample_array(g, max(shape) / 4.0)[:shape[0], :shape[1]]
    return (lo + (1.0 - lo) * (f - f.min()) / max(float(f.max() - f.min()), 1e-6)).astype(np.float32)


def chromatin(x: np.ndarray, inside: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Texture nuclei like real ones: a dimmer nucleoplasm with bright heterochromatin foci
    (mouse chromocentres, 0.5-1.5 µm) scattered inside each nucleus (``inside``: nucleus pixels)."""
    from scipy import ndimage

    idx = np.flatnonzero(inside)
    if idx.size == 0:
        return x
    spots = np.zeros(x.shape, np.float32)
    spots.flat[rng.choice(idx, max(1, int(idx.size / rng.uniform(30.0, 120.0))))] = 1.0
    spots = ndimage.gaussian_filter(spots, float(rng.uniform(0.8, 2.2)))
    spots /= max(float(spots.max()), 1e-6)
    base = float(rng.uniform(0.35, 0.9))
    return np.where(inside, x * base + float(rng.uniform(0.3, 0.9)) * spots * x.max(), x).astype(np.float32)


def jitter(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Photometric augmentation of a float [0, 1] grey crop, towards real fluorescence sections.

    Uneven brightness (a smooth field down to 0.25: dim nuclei), focus (Gaussian blur),
    out-of-focus glow (a wide blur of the image added back: nuclei above and below the
    focal plane of a thick section), re-stretch, gamma, gain, offset and noise.
    """
    from scipy import ndimage

    if rng.random() < 0.5:
        x = x * _smooth_field(x.shape, rng, float(rng.uniform(0.25, 0.8)))
    if rng.random() < 0.6:
        x = ndimage.gaussian_filter(x, float(rng.uniform(0.3, 2.5)))
    if rng.random() < 0.5:
        x = x + float(rng.uniform(0.2, 1.5)) * ndimage.gaussian_filter(x, float(rng.uniform(4.0, 20.0)))
        x = x / max(float(np.percentile(x, 99.8)), 1e-3)
    x = np.clip(x, 0, 1) ** float(np.exp(rng.uniform(-0.5, 0.5)))
    x = x * float(rng.uniform(0.5, 1.3)) + float(rng.uniform(0.0, 0.12))
    x = x + rng.normal(0.0, float(rng.uniform(0.0, 0.05)), x.shape)
    return np.clip(x, 0.0, 1.0).astype(np.float32)


def batch(imgs: np.ndarray, targets: np.ndarray, rng: np.random.Generator, size: int,
          crop: int, design: str = "distance") -> tuple[torch.Tensor, torch.Tensor]:
    """A random augmented batch: crops (with 0.8-1.25x rescaling), flips, quarter turns, jitter.
    Step targets (``design="steps"``) are relabelled to point the same way after the turn."""
    from .resample import resample_array

    xs, ys = [], []
    n, H, W = imgs.shape
    for _ in range(size):
        i = int(rng.integers(n))
        s = float(np.exp(rng.uniform(np.log(0.8), np.log(1.25))))
        src = max(8, min(H, W, int(round(crop / s))))
        r, c = int(rng.integers(0, H - src + 1)), int(rng.integers(0, W - src + 1))
        x = resample_array(imgs[i, r:r + src, c:c + src], crop / src)[:crop, :crop]
        y = resample_array(targets[i, r:r + src, c:c + src], crop / src, order=0)[:crop, :crop]
        k, flip = int(rng.integers(4)), bool(rng.integers(2))
        x, y = np.rot90(x, k), np.rot90(y, k)
        if flip:
            x, y = x[:, ::-1], y[:, ::-1]
        if design == "steps":
            y = turn_steps(y, k, flip)
        x = x.astype(np.float32) / 255.0
        if rng.random() < 0.6:
            x = chromatin(x, y > 0, rng)
        xs.append(jitter(x, rng))
        ys.append(np.ascontiguousarray(y))
    x = torch.from_numpy(np.stack(xs))[:, None].expand(-1, 3, -1, -1).contiguous()
    return x, torch.from_numpy(np.stack(ys).astype(np.int64))


#: U-Net widths of a new nucleus model (the shipped ones: half the region model's, as accurate
#: on nuclei as 16,32,64,128 and twice as fast; docs/nuclei/README.md, session 26)
DEFAULT_NUCLEUS_WIDTHS = (8, 16, 32, 64)


def _run_widths(widths, start: SegModel | None, source) -> tuple[int, ...]:
    """The U-Net widths of a run: those of the checkpoint it continues or starts from
    (``start``, read from ``source``), else ``widths`` (default :data:`DEFAULT_NUCLEUS_WIDTHS`)."""
    if start is None:
        return tuple(int(w) for w in (widths or DEFAULT_NUCLEUS_WIDTHS))
    have = tuple(int(w) for w in start.net.widths)
    if widths is not None and tuple(int(w) for w in widths) != have:
        raise InputError(f"{source} has U-Net widths {','.join(map(str, have))}, not "
                         f"{','.join(map(str, widths))}: drop widths (CLI: --widths) to keep its own.")
    return have


def train_nuclei(data, out, *, steps: int = 2000, batch_size: int = 8, crop: int = 128,
                 widths: tuple[int, ...] | None = None, lr: float = 3e-3, seed: int = 0,
                 val_fraction: float = 0.1, save_every: int = 200, name: str = "nuclei_dapi",
                 init=None, precision: str = "auto", resume: bool = False, device: str = "auto",
                 design: str = "distance", log=print):
    """Train a nucleus model on a simulated dataset and save it to ``out``.

    Parameters
    ----------
    data
        A ``topdown simulate`` folder (its ``nuclei/`` instance masks are the labels).
    out
        Checkpoint path (safetensors + JSON sidecar), written every ``save_every`` steps.
    steps, batch_size, crop, widths, lr, seed
        Optimisation: AdamW steps, crops per step, crop side (px), U-Net widths (default
        :data:`DEFAULT_NUCLEUS_WIDTHS` for a new model; a run from ``init`` or a resumed one keeps its
        checkpoint's), peak learning rate (warm-up + cosine), random seed.
    val_fraction
        Frames held out (never trained on); their indices go into ``train_config``.
    save_every, name, log
        Checkpoint interval, model name, progress printer.
    init
        A nucleus checkpoint to start from (fine-tuning) instead of random weights.
    precision
        ``"auto"`` (bfloat16 autocast where the device computes it natively: recent GPUs,
        CPUs with AVX512-BF16 or AMX; else float32), ``"fp32"`` or ``"bf16"``
        (:func:`~topdown.seg.loop.pick_precision`).
    resume
        Continue the run whose checkpoint is ``out`` from its last save (weights, optimiser,
        random state and step: the result is the same as an uninterrupted run's); starts
        afresh when ``out`` has no training state yet.
    device
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"`` or ``"cuda"``. The crops are
        made and augmented on the CPU; the network trains on ``device``. The checkpoint is the
        same either way (a run resumes on either device).
    design
        ``"distance"`` (edge-distance bins + watershed: the shipped models) or ``"steps"`` (steps
        to each nucleus's centre, followed to group pixels: :mod:`topdown.seg.nucleus_flow`);
        see :data:`~topdown.seg.nucleus_designs.DESIGNS`.

    Returns
    -------
    SegModel
        The trained nucleus model (classes of ``design``).

    Examples
    --------
    >>> import topdown as td
    >>> model = td.seg.train_nuclei("sims/dapi", "nuclei.pt", steps=50)  # doctest: +SKIP
    """
    from ..sim.dataset import SimDataset
    from .checkpoint import check_output, load, load_state, save, save_state, state_path
    from .data import split
    from .loop import autocast, balanced_class_weights, loss_fn, lr_at, pick_device, pick_precision
    from .model import SegModel

    if steps < 1 or batch_size < 1:
        raise InputError("steps and batch_size must be positive")
    if design not in DESIGNS:
        raise InputError(f"design must be one of {', '.join(DESIGNS)}, got {design!r}")
    if resume and init is not None:
        raise InputError("give resume=True (continue a run) or init= (start a new run from weights), not both.")
    check_output(out)
    resuming = resume and state_path(out).is_file()
    device = pick_device(device)
    precision = pick_precision(precision, device)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    dataset = SimDataset(data)
    tr, va = split(len(dataset), val_fraction, seed)
    classes = DESIGNS[design][0]
    start_from = load(init, kind="nuclei") if init is not None else None
    before = load(out, kind="nuclei") if resuming else None
    checkpoint, source = (start_from, init) if start_from is not None else (before, out)
    widths = _run_widths(widths, checkpoint, source)
    imgs, targets, _, px, modality = load_frames(data, tr, design)
    counts = np.bincount(targets.ravel(), minlength=len(classes) + 1)
    weights = torch.tensor(balanced_class_weights(counts), dtype=torch.float32, device=device)
    cfg = {"task": "nuclei", "steps": steps, "batch_size": batch_size, "crop": crop, "lr": lr,
           "data": str(data), "val_frames": [int(i) for i in va], "augment": {"any_orientation": True},
           "precision": precision, "device": device, "design": design}
    model = SegModel(list(classes), pixel_size_um=px, modality=modality, widths=widths,
                     name=name, seed=seed, train_config=cfg, spec_hash=dataset.info.get("spec_hash"))
    if start_from is not None:
        if design_of(start_from.classes) != design:
            raise InputError(f"init {init} is a '{design_of(start_from.classes)}' nucleus model; "
                             f"train it further with design='{design_of(start_from.classes)}'.")
        model.load_state_dict(start_from.state_dict())
        model.train_config["init"] = str(init)
    model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    start = 0
    if before is not None:
        if design_of(before.classes) != design:
            raise InputError(f"{out} is a '{design_of(before.classes)}' nucleus model; resume it with "
                             f"design='{design_of(before.classes)}' (CLI: --design {design_of(before.classes)}).")
        if "init" in before.train_config:
            model.train_config["init"] = before.train_config["init"]  # a resumed warm start still says where it began
        info = load_state(out, opt, model)
        start = int(info["step"])
        rng.bit_generator.state = info["rng"]
        log(f"resuming {out} at step {start}/{steps}")
    model.train()
    losses, t0 = [], time.time()
    for step in range(start, steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, lr)
        x, y = batch(imgs, targets, rng, batch_size, crop, design)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with autocast(device, precision):
            logits = model(x)
        loss = loss_fn(logits.float(), y, 0.5, weights)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.detach())
        if (step + 1) % save_every == 0 or step + 1 == steps:
            log(f"step {step + 1}/{steps} loss {float(torch.stack(losses[-save_every:]).mean()):.4f} "
                f"{time.time() - t0:.0f}s")
            del losses[:-save_every]
            save(model, out)
            save_state(out, opt, {"epoch": (step + 1) // save_every, "step": step + 1, "steps": steps,
                                  "seed": seed, "rng": rng.bit_generator.state}, model)
            model.train()
    model.eval()
    return model.cpu()


def _main() -> None:  # pragma: no cover - used by the background training run
    import sys

    data, out, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
    torch.set_num_threads(int(sys.argv[7]) if len(sys.argv) > 7 else 1)
    init = sys.argv[4] if len(sys.argv) > 4 and sys.argv[4] != "-" else None
    name = sys.argv[5] if len(sys.argv) > 5 else "nuclei_dapi"
    lr = float(sys.argv[6]) if len(sys.argv) > 6 else 3e-3
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    train_nuclei(data, out, steps=steps, init=init, name=name, lr=lr, log=lambda s: print(s, flush=True))


if __name__ == "__main__":  # pragma: no cover
    _main()
