"""Segmentation speed and memory: training seconds per epoch, inference seconds and peak RSS.

Run by hand (not a test):

    python benchmarks/segment.py                       # all parts, 2 threads
    python benchmarks/segment.py --data sims/sc        # time an epoch on a real SimDataset
    python benchmarks/segment.py --skip-infer --precision fp32 bf16   # training speed only
    python benchmarks/segment.py --sizes 1024 4096 --image-px 2 --model-px 8
    python benchmarks/segment.py --history spinal_cord mouse_brain_coronal   # time to reach mIoU
    python benchmarks/segment.py --skip-train --tta off on   # TTA cost

Inference runs one fresh subprocess per image size so each peak RSS (VmHWM) is its own.
Test images are synthetic H&E-like tiled TIFFs written tile by tile (never whole in memory):
a pink disk of textured "tissue" with purple dots on white glass. The model is the default
architecture (untrained weights: speed does not depend on them), working at ``--model-px``
µm/px, segmenting with and without mirror test-time augmentation (``--tta``: 2 network
passes per tile, the second one mirrored left-right for an ``upright`` model, turned by
half a turn for a ``free`` one); the image has ``--image-px`` µm/px, so the map has
(image_px / model_px)^2 as many pixels as the image.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def write_tiff(path: Path, size: int, tile: int = 512, seed: int = 0) -> None:
    import tifffile

    rng = np.random.default_rng(seed)
    noise = rng.integers(-25, 25, (tile, tile, 3)).astype(np.int16)
    dots = rng.random((tile, tile)) < 0.02

    def tiles():
        c = size / 2
        yy, xx = np.mgrid[0:tile, 0:tile]
        for r0 in range(0, size, tile):
            for c0 in range(0, size, tile):
                inside = (yy + r0 - c) ** 2 + (xx + c0 - c) ** 2 < (0.42 * size) ** 2
                t = np.where(inside[..., None], np.array([225, 150, 195], np.int16) + noise, 245)
                t[inside & dots] = (90, 50, 140)
                yield np.clip(t, 0, 255).astype(np.uint8)

    tifffile.imwrite(path, tiles(), shape=(size, size, 3), dtype=np.uint8, tile=(tile, tile),
                     compression="zlib", photometric="rgb")


def peak_rss_mb() -> float:
    """Peak resident memory of this process (VmHWM; unlike ru_maxrss it is reset by exec,
    so a child started from a big parent does not inherit the parent's peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def infer_child(args) -> None:
    import torch

    import topdown as td

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    augment = {"any_orientation": args.orientation == "free"}
    model = td.seg.SegModel(["a", "b", "c", "d"], pixel_size_um=args.model_px,
                            train_config={"augment": augment}).eval()
    path = Path(args.tmp) / f"img_{args.child}.tif"
    tta = args.tta == ["on"]
    t0 = time.perf_counter()
    rmap = td.seg.segment(path, model, pixel_size_um=args.image_px, probabilities=not args.no_probs, tta=tta)
    dt = time.perf_counter() - t0
    ru = resource.getrusage(resource.RUSAGE_SELF)
    peak, cpu = peak_rss_mb(), ru.ru_utime + ru.ru_stime
    print(json.dumps({"size": args.child, "seconds": round(dt, 2), "process_cpu_seconds": round(cpu, 1),
                      "peak_rss_mb": round(peak, 1),
                      "map_shape": list(rmap.labels.shape), "probabilities": not args.no_probs,
                      "tta": tta, "orientation": args.orientation}))


def epoch_seconds(args, precision: str = "auto") -> dict:
    import torch

    import topdown as td

    torch.set_num_threads(args.threads)
    data = args.data
    if data is None:  # a SimDataset-format folder of synthetic 128 px frames
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from test_seg_train import make_dataset

        data = Path(args.tmp) / "toy"
        make_dataset(data, n=64, size=128)
    ds = td.sim.SimDataset(data)
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    model = td.seg.train(ds, epochs=1, device="cpu", seed=0, progress=False, val_fraction=0.0,
                         precision=precision)
    dt = time.perf_counter() - t0
    ru = resource.getrusage(resource.RUSAGE_SELF)
    cpu = ru.ru_utime + ru.ru_stime - ru0.ru_utime - ru0.ru_stime
    return {"precision": model.train_config["precision"], "dataset": str(data), "frames": len(ds), "frame_px": ds.size, "params": model.n_params(),
            "seconds_per_epoch": round(dt, 2), "seconds_per_frame": round(dt / len(ds), 4),
            "process_cpu_seconds": round(cpu, 1)}


def time_to_target(name: str, targets=(0.5, 0.7, 0.85)) -> dict:
    """Training seconds (sum of recorded epoch times) until the validation mIoU first reached
    each target, from a checkpoint's recorded history (shipped name or checkpoint path)."""
    import topdown as td

    model = td.seg.load(name)
    history = model.metrics.get("history", [])
    cfg = model.train_config
    out = {"model": model.name, "n_train": cfg.get("n_train"), "crop": cfg.get("crop"),
           "epochs": len(history), "seconds_per_epoch": round(float(np.median([h["seconds"] for h in history])), 1),
           "best_val_miou": round(max(h.get("val_miou", 0.0) for h in history), 3)}
    elapsed = np.cumsum([h["seconds"] for h in history])
    for target in targets:
        hit = next((i for i, h in enumerate(history) if h.get("val_miou", 0.0) >= target), None)
        out[f"seconds_to_{target:g}"] = None if hit is None else round(float(elapsed[hit]))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[1024, 4096, 16384])
    p.add_argument("--image-px", type=float, default=2.0, dest="image_px")
    p.add_argument("--model-px", type=float, default=8.0, dest="model_px")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--data", default=None, help="SimDataset folder for the epoch timing")
    p.add_argument("--precision", nargs="+", default=["fp32", "auto"], choices=("auto", "fp32", "bf16"),
                   help="training precisions to time (default: fp32 and auto, i.e. bf16 where native)")
    p.add_argument("--no-probs", action="store_true", dest="no_probs")
    p.add_argument("--tta", nargs="+", default=["off", "on"], choices=("off", "on"),
                   help="inference without / with mirror test-time augmentation (default: both)")
    p.add_argument("--orientation", default="free", choices=("free", "upright"),
                   help="the timed model's orientation (which mirror image TTA adds; same cost)")
    p.add_argument("--skip-train", action="store_true", dest="skip_train")
    p.add_argument("--skip-infer", action="store_true", dest="skip_infer")
    p.add_argument("--history", nargs="+", default=None, metavar="MODEL",
                   help="only report training seconds to reach validation mIoU 0.5 / 0.7 / 0.85 "
                        "from these models' recorded histories (shipped names or checkpoints)")
    p.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--tmp", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    os.environ.setdefault("TOPDOWN_NO_PROGRESS", "1")
    if args.child is not None:
        infer_child(args)
        return
    if args.history:
        for name in args.history:
            print(json.dumps({"history": time_to_target(name)}), flush=True)
        return
    with tempfile.TemporaryDirectory() as tmp:
        args.tmp = tmp
        print(json.dumps({"threads": args.threads, "image_px": args.image_px, "model_px": args.model_px}))
        if not args.skip_train:
            for precision in args.precision:
                print(json.dumps({"train": epoch_seconds(args, precision)}), flush=True)
        for size in [] if args.skip_infer else args.sizes:
            write_tiff(Path(tmp) / f"img_{size}.tif", size)
            for tta in args.tta:
                cmd = [sys.executable, __file__, "--child", str(size), "--tmp", tmp, "--threads", str(args.threads),
                       "--image-px", str(args.image_px), "--model-px", str(args.model_px), "--tta", tta,
                       "--orientation", args.orientation]
                if args.no_probs:
                    cmd.append("--no-probs")
                out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
                print(json.dumps({"inference": json.loads(out)}), flush=True)
            (Path(tmp) / f"img_{size}.tif").unlink()


if __name__ == "__main__":
    main()
