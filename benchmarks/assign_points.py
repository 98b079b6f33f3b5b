"""Benchmark ``td.tl.assign_points``: transcripts -> regions and region x gene counts.

Run by hand (not a test)::

    python benchmarks/assign_points.py            # 1M and 10M points
    python benchmarks/assign_points.py --quick    # 100k and 1M

Each size runs in a fresh forked process. Regions: a 1024 x 1024 label raster (9 Voronoi
regions inside an elliptical tissue) at 8 full-res pixels per map pixel, stored as
``uns['regions']``. Points: uniform over the map and a margin around it (some off the
map), 500 genes, given as a DataFrame with a categorical gene column (as
``pd.read_csv(..., dtype={"gene": "category"})`` reads it) and once with an object
(string) gene column. "s" is the wall time of the whole call, "MB" the peak RSS during
the call above the RSS once the input is built (VmHWM reset through /proc/self/clear_refs).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import time

import numpy as np

SCALE = 8.0
MAP = 1024
N_GENES = 500


def _rss_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _make(n: int, categorical: bool):
    import anndata as ad
    import pandas as pd
    from assign import make_labels  # benchmarks/assign.py: the same Voronoi label raster

    import topdown as td
    from topdown.seg.regionmap import RegionMap

    adata = ad.AnnData(np.ones((1, 1), np.float32))
    adata.obsm["spatial"] = np.zeros((1, 2))
    rmap = RegionMap(make_labels(), tuple(f"r{k}" for k in range(1, 10)), downsample=SCALE)
    adata.uns["regions"] = td.get.store_entry(None, "lib", td.get.StoredRegions.from_regionmap(rmap, 1.0))
    rng = np.random.default_rng(0)
    side = MAP * SCALE
    names = np.array([f"gene{g:03d}" for g in range(N_GENES)], dtype=object)
    codes = rng.integers(0, N_GENES, n)
    gene = pd.Categorical.from_codes(codes, categories=names) if categorical else names[codes]
    pts = pd.DataFrame({"x": rng.uniform(-0.05 * side, 1.05 * side, n),
                        "y": rng.uniform(-0.05 * side, 1.05 * side, n), "gene": gene})
    return adata, pts


def _run(n: int, categorical: bool, q) -> None:
    import topdown as td

    adata, pts = _make(n, categorical)
    td.tl.assign_points(adata, pts.iloc[:1000])  # warm up imports
    base = _rss_mb("VmRSS")
    _reset_peak()
    t0 = time.perf_counter()
    region, counts = td.tl.assign_points(adata, pts)
    dt = time.perf_counter() - t0
    peak = _rss_mb("VmHWM") - base
    assert counts.X.sum() == n and len(region) == n
    q.put((dt, peak, float((region == "outside").mean())))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    sizes = [100_000, 1_000_000] if args.quick else [1_000_000, 10_000_000]
    ctx = mp.get_context("fork")
    print(f"{'points':>12} {'gene column':>12} {'s':>8} {'Mpts/s':>8} {'MB':>8} {'outside':>8}")
    for n in sizes:
        for categorical in (True, False):
            q = ctx.Queue()
            p = ctx.Process(target=_run, args=(n, categorical, q))
            p.start()
            dt, peak, out = q.get()
            p.join()
            print(f"{n:>12,} {'category' if categorical else 'str':>12} {dt:8.3f} {n / dt / 1e6:8.1f} "
                  f"{peak:8.0f} {out:8.1%}", flush=True)
    print(f"(max RSS of this process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
