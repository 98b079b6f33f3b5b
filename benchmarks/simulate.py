"""Throughput of ``topdown.sim.simulate`` (Blender Cycles): frames/hour and peak memory.

Run by hand on a quiet machine (renders with Blender)::

    python benchmarks/simulate.py [--presets ...] [--sizes 256 512] [--n 40] [--workers 2]

Prints, per preset and size: frames, wall seconds (including worker start-up), frames/hour,
mean nuclei per frame, mean per-frame seconds split into layout+masks / Cycles render /
artefacts (inside the workers), and peak resident memory of the parent and of the largest
worker. Target: >= 8,000 frames/hour at 256 x 256 on 2 cores (0.45 s/frame).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("TOPDOWN_NO_PROGRESS", "1")
    import topdown as td

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", nargs="*", default=None)
    ap.add_argument("--sizes", nargs="*", type=int, default=[256, 512])
    ap.add_argument("--n", type=int, default=40,
                    help="frames per preset and size (the wall time includes worker start-up)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--modality", default="he")
    ap.add_argument("--samples", type=int, default=None)
    args = ap.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="topdown_bench_"))
    print(f"cpus={os.cpu_count()} workers={args.workers} modality={args.modality} n={args.n}")
    print(f"{'preset':22s} {'size':>5s} {'frames':>6s} {'wall_s':>7s} {'frames/h':>9s} {'s/frame':>8s} "
          f"{'nuclei':>8s} {'layout':>7s} {'render':>7s} {'artef':>6s}")
    try:
        for name in args.presets or td.sim.presets():
            for size in args.sizes:
                out = root / f"{name}_{size}"
                t0 = time.perf_counter()
                ds = td.sim.simulate(name, n=args.n, out=out, size=size, modality=args.modality,
                                     workers=args.workers, seed=1, samples=args.samples)
                wall = time.perf_counter() - t0
                sec = {k: np.mean([r["seconds"][k] for r in ds.records])
                       for k in ("layout_masks", "render", "artefacts")}
                nuc = np.mean([r["n_nuclei"] for r in ds.records])
                print(f"{name:22s} {size:5d} {len(ds):6d} {wall:7.1f} {len(ds) / wall * 3600:9.0f} "
                      f"{wall / len(ds):8.2f} {nuc:8.0f} {sec['layout_masks']:7.2f} {sec['render']:7.2f} "
                      f"{sec['artefacts']:6.2f}", flush=True)
                shutil.rmtree(out, ignore_errors=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    self_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak RSS: parent {self_mb:.0f} MiB, largest worker {child_mb:.0f} MiB")


if __name__ == "__main__":
    main()
