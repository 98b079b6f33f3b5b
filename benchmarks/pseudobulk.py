"""Pseudobulk speed: topdown.tl.pseudobulk vs scanpy.get.aggregate on 10^6 cells x 500 genes.

Run by hand (prints figures; no assertions):

    OMP_NUM_THREADS=2 python benchmarks/pseudobulk.py [--cells 1000000] [--genes 500] [--density 0.1]

decoupler is not installed in this environment, so it is not compared.
"""

from __future__ import annotations

import argparse
import os
import time

import anndata as ad
import numpy as np
import pandas as pd
from scipy import sparse


def synthetic(n_cells: int, n_genes: int, density: float, n_samples: int, n_regions: int,
              seed: int = 0) -> ad.AnnData:
    """CSR integer counts with ~density non-zeros per row, random sample/region labels."""
    rng = np.random.default_rng(seed)
    per_row = rng.binomial(n_genes, density, size=n_cells)
    indptr = np.concatenate([[0], np.cumsum(per_row)])
    indices = rng.integers(0, n_genes, size=int(indptr[-1]), dtype=np.int32)
    data = rng.geometric(0.5, size=indices.size).astype(np.float32)
    X = sparse.csr_matrix((data, indices, indptr), shape=(n_cells, n_genes))
    X.sum_duplicates()
    obs = pd.DataFrame({
        "sample": pd.Categorical(rng.integers(0, n_samples, n_cells).astype(str)),
        "region": pd.Categorical(rng.integers(0, n_regions, n_cells).astype(str)),
    }, index=pd.RangeIndex(n_cells).astype(str))
    return ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=[f"g{i}" for i in range(n_genes)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, default=1_000_000)
    parser.add_argument("--genes", type=int, default=500)
    parser.add_argument("--density", type=float, default=0.1)
    parser.add_argument("--samples", type=int, default=6)
    parser.add_argument("--regions", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import scanpy as sc

    import topdown as td

    adata = synthetic(args.cells, args.genes, args.density, args.samples, args.regions)
    print(f"{adata.n_obs:,} cells x {adata.n_vars} genes, nnz={adata.X.nnz:,}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, cores visible={os.cpu_count()}")

    def timed(fn) -> tuple[float, object]:
        best, out = float("inf"), None
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            out = fn()
            best = min(best, time.perf_counter() - t0)
        return best, out

    t_td, pb = timed(lambda: td.tl.pseudobulk(adata, "sample", "region", min_cells=0, min_counts=0))
    print(f"topdown.tl.pseudobulk (with integer-count check): {t_td:.2f} s (best of {args.repeats})")
    codes = (adata.obs["sample"].cat.codes.to_numpy().astype(np.int64) * args.regions
             + adata.obs["region"].cat.codes.to_numpy())
    from topdown.tl._pseudobulk import aggregate_counts

    t_core, _ = timed(lambda: aggregate_counts(adata.X, codes, args.samples * args.regions))
    print(f"  of which the sparse indicator product: {t_core:.2f} s")
    t_sc, agg = timed(lambda: sc.get.aggregate(adata, by=["sample", "region"], func="sum"))
    print(f"scanpy.get.aggregate(func='sum'): {t_sc:.2f} s (best of {args.repeats})")
    key = agg.obs["sample"].astype(str) + "|" + agg.obs["region"].astype(str)
    ref = pd.DataFrame(np.asarray(agg.layers["sum"]), index=key.to_numpy())
    mine = pd.DataFrame(pb.X.toarray(), index=pb.obs_names)
    same = np.allclose(ref.loc[mine.index].to_numpy(), mine.to_numpy())
    print(f"identical sums: {same}; speed-up {t_sc / t_td:.1f}x; decoupler: not installed, not compared")


if __name__ == "__main__":
    main()
