"""PyDESeq2 on one region's pseudobulk samples: NB GLM, Wald test, BH padj, optional apeGLM shrink."""

from __future__ import annotations

import contextlib
import io
import re
import warnings

import numpy as np
import pandas as pd

from ..errors import InputError


def design_factors(design: str) -> list[str]:
    """Variable names used in a formula such as ``'~ condition + sex'``."""
    rhs = design.split("~", 1)[-1]
    names = re.findall(r"[A-Za-z_][A-Za-z0-9_.]*", rhs)
    skip = {"C", "Treatment", "contr", "treatment", "sum", "I", "np", "log", "center", "scale"}
    return list(dict.fromkeys(n for n in names if n not in skip))


def check_design(meta: pd.DataFrame, design: str, condition_key: str) -> None:
    """Refuse a design that is not full rank (a covariate confounded with the condition)."""
    from formulaic import model_matrix

    try:
        mm = np.asarray(model_matrix(design, meta), dtype=float)
    except Exception as exc:  # noqa: BLE001 - formula errors are user errors
        raise InputError(f"cannot build the design '{design}' ({exc}); use obs column names, "
                         f"e.g. '~ {condition_key} + sex'.") from exc
    rank = np.linalg.matrix_rank(mm)
    if rank < mm.shape[1]:
        raise InputError(f"design '{design}' is not full rank on these samples (a covariate is "
                         f"confounded with '{condition_key}' or constant); drop that covariate or add samples.")
    if mm.shape[0] - rank < 1:
        raise InputError(f"design '{design}' leaves no residual degrees of freedom ({mm.shape[0]} "
                         "pseudobulk samples); add samples or drop covariates.")


def run_deseq2(counts: pd.DataFrame, meta: pd.DataFrame, *, design: str, condition_key: str,
               reference: str, group: str, lfc_shrink: bool = False, alpha: float = 0.05,
               n_cpus: int = 1) -> pd.DataFrame:
    """Fit DESeq2 (PyDESeq2) for one region and test ``group`` vs ``reference``.

    ``counts``: pseudobulk samples x genes (integers); ``meta``: the design columns, with
    ``meta[condition_key]`` categorical, reference first. Returns columns ``gene, log2fc,
    lfc_se, stat, pvalue, padj, base_mean`` (padj: Benjamini-Hochberg within the region,
    NaN for genes removed by Cook's outlier or independent filtering, as in DESeq2).
    """
    from pydeseq2.dds import DeseqDataSet
    from pydeseq2.ds import DeseqStats

    sink = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        warnings.simplefilter("ignore")
        dds = DeseqDataSet(counts=counts, metadata=meta, design=design, n_cpus=n_cpus, quiet=True)
        dds.deseq2()
        stats = DeseqStats(dds, contrast=[condition_key, group, reference], alpha=alpha,
                           n_cpus=n_cpus, quiet=True)
        stats.summary()
        if lfc_shrink:
            coeffs = [c for c in stats.LFC.columns
                      if c.startswith(f"{condition_key}[") and c.endswith(f"{group}]")]
            if len(coeffs) != 1:
                raise InputError(f"cannot find the coefficient for '{group}' among {list(stats.LFC.columns)} "
                                 "to shrink; use lfc_shrink=False.")
            stats.lfc_shrink(coeff=coeffs[0])
    res = stats.results_df
    return pd.DataFrame({
        "gene": res.index.astype(str),
        "log2fc": res["log2FoldChange"].to_numpy(float),
        "lfc_se": res["lfcSE"].to_numpy(float),
        "stat": res["stat"].to_numpy(float),
        "pvalue": res["pvalue"].to_numpy(float),
        "padj": res["padj"].to_numpy(float),
        "base_mean": res["baseMean"].to_numpy(float),
    })
