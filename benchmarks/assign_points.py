"""Benchmark ``td.tl.assign_points``: transcripts -> regions and region x gene counts.

Run by hand (not a test)::

    python benchmarks/assign_points.py            # 1M and 10M points
    python benchmarks/assign_points.py --quick    # 100k and 1M

Each measurement runs in a fresh forked process (``measure`` of ``benchmarks/assign.py``):
"s" is the wall time of the whole call, "MB" its peak RSS above the RSS once the input is
built. Regions: the 1024 x 1024 Voronoi label raster of ``benchmarks/assign.py`` (9
regions inside an elliptical tissue) at 8 full-res pixels per map pixel, stored as
``uns['regions']``. Points: uniform over the map and a 5 % margin around it (some off the
map), 500 genes, in a DataFrame whose gene column is categorical (as
``pd.read_csv(..., dtype={"gene": "category"})`` reads it) or strings (object).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from assign import MAP, SCALE, _start, make_labels, measure  # benchmarks/assign.py

N_GENES = 500


def _make(n: int, categorical: bool):
    import anndata as ad
    import pandas as pd

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


def points_body(n: int, categorical: bool):
    import topdown as td

    adata, pts = _make(n, categorical)
    td.tl.assign_points(adata, pts.iloc[:1000])  # imports outside the timing
    base = _start()
    t0 = time.perf_counter()
    region, counts = td.tl.assign_points(adata, pts)
    t = time.perf_counter() - t0
    assert counts.X.sum() == n and len(region) == n
    return t, base, float((region == "outside").mean())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    sizes = [100_000, 1_000_000] if args.quick else [1_000_000, 10_000_000]
    print(f"{'points':>12} {'gene column':>12} {'s':>8} {'Mpts/s':>8} {'MB':>8} {'outside':>8}")
    for n in sizes:
        for categorical in (True, False):
            t, peak, out = measure(points_body, n, categorical)
            print(f"{n:>12,} {'category' if categorical else 'str':>12} {t:8.3f} {n / t / 1e6:8.1f} "
                  f"{peak:8.0f} {out:8.1%}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
