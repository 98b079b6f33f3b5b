"""Exploratory per-spot Wilcoxon test (scanpy rank_genes_groups) for one region.

Spots from one section are not independent replicates: p-values from this test are
anti-conservative and must not be read as evidence of a condition effect.
"""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pandas as pd
from scipy import sparse


def run_wilcoxon(X, genes: pd.Index, condition: np.ndarray, *, reference: str, group: str,
                 target_sum: float = 1e4) -> pd.DataFrame:
    """Wilcoxon rank-sum test of ``group`` vs ``reference`` spots on log1p-normalised counts.

    Returns columns ``gene, log2fc, lfc_se, stat, pvalue, padj, base_mean`` (``base_mean``:
    mean raw count per spot; ``lfc_se`` is NaN, the test has none).
    """
    import scanpy as sc

    counts = sparse.csr_matrix(X, dtype=np.float64)
    a = ad.AnnData(X=counts.copy(), obs=pd.DataFrame({"cond": pd.Categorical(condition)}),
                   var=pd.DataFrame(index=genes.astype(str)))
    a.obs_names = a.obs_names.astype(str)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc.pp.normalize_total(a, target_sum=target_sum)
        sc.pp.log1p(a)
        sc.tl.rank_genes_groups(a, "cond", groups=[group], reference=reference, method="wilcoxon",
                                corr_method="benjamini-hochberg", tie_correct=True)
    res = sc.get.rank_genes_groups_df(a, group=group).set_index("names").reindex(genes.astype(str))
    base = np.asarray(counts.mean(axis=0)).ravel()
    return pd.DataFrame({
        "gene": genes.astype(str),
        "log2fc": res["logfoldchanges"].to_numpy(float),
        "lfc_se": np.nan,
        "stat": res["scores"].to_numpy(float),
        "pvalue": res["pvals"].to_numpy(float),
        "padj": res["pvals_adj"].to_numpy(float),
        "base_mean": base,
    })
