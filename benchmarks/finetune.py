"""How many labelled 'real' examples does simulation pre-training save?

A "real-like" target domain is a held-out variant of a preset: the same anatomy rendered
with shifted artefacts (strong stain shift, more blur/noise/uneven illumination, stronger
JPEG) and another seed, simulated with Blender like everything else. For k = 1, 2, 4, 8
labelled target frames (full masks, or Visium-like labelled points), the same fine-tuning
loop (td.seg.finetune, same steps) starts either from the simulation-pretrained model or
from random weights ("scratch"); both are scored (mIoU) on the remaining target frames.

    python benchmarks/finetune.py --model /tmp/sc.pt --preset spinal_cord --px 16 --size 128
    python benchmarks/finetune.py --model spinal_cord --preset spinal_cord --shots 1 2 4 --steps 150

Prints one JSON line per (k, start, label kind) plus the zero-shot score of the pretrained
model on the target domain.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np


def shifted_spec(preset: str):
    import topdown as td

    spec = td.sim.load_preset(preset)
    d = spec.to_dict()  # same anatomy, classes and name; only the imaging conditions differ
    d.setdefault("artefacts", {})
    d["artefacts"].update({"stain_shift": [0.35, 0.6], "blur_px": [0.8, 2.0], "noise": [0.08, 0.2],
                           "illumination": [0.2, 0.45], "jpeg_quality": [40, 70]})
    return td.sim.TissueSpec.from_dict(d)


def points_from_mask(mask: np.ndarray, n: int, names: list[str], rng) -> tuple[np.ndarray, list[str]]:
    """n Visium-like spots on a hexagonal-ish grid over the frame, labelled from the truth."""
    h, w = mask.shape
    side = int(np.ceil(np.sqrt(n)))
    ys, xs = np.meshgrid((np.arange(side) + 0.5) * h / side, (np.arange(side) + 0.5) * w / side, indexing="ij")
    xs = xs + (np.arange(side)[:, None] % 2) * (w / side / 2)
    xy = np.c_[xs.ravel(), ys.ravel()]
    xy = xy[(xy[:, 0] < w) & (xy[:, 1] < h)][:n]
    lab = mask[xy[:, 1].astype(int), xy[:, 0].astype(int)]
    return xy, [names[k] for k in lab]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="pretrained model (name or checkpoint)")
    p.add_argument("--preset", required=True)
    p.add_argument("--px", type=float, required=True, help="pixel size of the target frames (µm)")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--n-target", type=int, default=32, dest="n_target")
    p.add_argument("--shots", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--points", type=int, default=100, help="labelled spots per frame for the point variant")
    p.add_argument("--labels", nargs="+", default=["masks", "points"], choices=["masks", "points"])
    p.add_argument("--batch-size", type=int, default=4, dest="batch_size")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="sims/finetune_target")
    args = p.parse_args()
    os.environ.setdefault("TOPDOWN_NO_PROGRESS", "1")
    import torch

    import topdown as td

    torch.set_num_threads(args.threads)
    pre = td.seg.load(args.model)
    ds = td.sim.simulate(shifted_spec(args.preset), n=args.n_target, out=args.out, size=args.size,
                         pixel_size_um=args.px, seed=12345)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(ds))
    n_eval = max(4, len(ds) - max(args.shots))
    test_idx, pool = order[:n_eval], order[n_eval:]
    zero = td.seg.evaluate(pre, ds, indices=test_idx)
    print(json.dumps({"zero_shot_miou": zero["miou"], "n_test": len(test_idx), "preset": args.preset}), flush=True)
    for k in args.shots:
        idx = pool[:k]
        frames = [ds[int(i)] for i in idx]
        images = [f[0] for f in frames]
        for kind in args.labels:
            labels = [f[1] for f in frames] if kind == "masks" else [
                points_from_mask(f[1], args.points, pre.names, rng) for f in frames]
            for start in ("pretrained", "scratch"):
                torch.manual_seed(0)
                base = pre if start == "pretrained" else td.seg.SegModel(
                    pre.classes, colors=pre.colors, pixel_size_um=pre.pixel_size_um, modality=pre.modality,
                    widths=tuple(pre.net.widths), name="scratch")
                lr = 1e-3 if start == "pretrained" else 3e-3
                t0 = time.perf_counter()
                tuned = td.seg.finetune(base, images, labels, pixel_size_um=args.px, steps=args.steps, lr=lr,
                                        batch_size=args.batch_size, crop=min(128, args.size), spot_radius_px=2.0, seed=0, device="cpu")
                res = td.seg.evaluate(tuned, ds, indices=test_idx)
                print(json.dumps({"shots": k, "labels": kind, "start": start, "miou": round(res["miou"], 4),
                                  "pixel_accuracy": round(res["pixel_accuracy"], 4),
                                  "seconds": round(time.perf_counter() - t0, 1)}), flush=True)
    Path(args.out).mkdir(parents=True, exist_ok=True)


if __name__ == "__main__":
    main()
