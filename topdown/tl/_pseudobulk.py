"""Pseudobulk: sum raw counts per (sample, region) with one sparse product, O(nnz)."""

from __future__ import annotations

from collections.abc import Sequence

import anndata as ad
import numpy as np
import pandas as pd
from scipy import sparse

from ..errors import InputError
from ._de_input import AnnDataInput, categories, combine, count_matrix, require_obs


def aggregate_counts(X, codes: np.ndarray, n_groups: int) -> sparse.csr_matrix:
    """Sum the rows of ``X`` (cells x genes) per group code; codes < 0 are dropped.

    One sparse indicator matrix (groups x cells, built directly in CSC form without a
    sort) times the count matrix: time and memory O(nnz).

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import sparse
    >>> X = sparse.csr_matrix(np.array([[1, 0], [2, 3], [0, 4]]))
    >>> aggregate_counts(X, np.array([0, 1, 0]), 2).toarray()
    array([[1, 4],
           [2, 3]])
    """
    codes = np.asarray(codes, dtype=np.int64)
    n = codes.shape[0]
    keep = codes >= 0
    dtype = np.int64 if np.issubdtype(X.dtype, np.integer) else np.float64
    if keep.all():
        indicator = sparse.csc_matrix((np.ones(n, dtype=dtype), codes, np.arange(n + 1)), shape=(n_groups, n))
    else:
        indptr = np.concatenate([[0], np.cumsum(keep)])
        indicator = sparse.csc_matrix((np.ones(int(keep.sum()), dtype=dtype), codes[keep], indptr),
                                      shape=(n_groups, n))
    indicator = indicator.tocsr()
    if sparse.issparse(X):
        out = indicator @ sparse.csr_matrix(X)
    else:
        out = sparse.csr_matrix(indicator @ np.asarray(X))
    out = sparse.csr_matrix(out, dtype=dtype)
    out.sum_duplicates()
    return out


def _constant_columns(obs: pd.DataFrame, codes: np.ndarray, keys: Sequence[str] | None) -> list[str]:
    """obs columns constant within every group (sample-level covariates) to carry over."""
    mask = codes >= 0
    sub = obs.loc[mask]
    grp = codes[mask]
    candidates = list(keys) if keys is not None else [
        c for c in obs.columns if not pd.api.types.is_float_dtype(obs[c]) and obs[c].nunique() <= 1000]
    out = []
    for col in candidates:
        nun = pd.Series(pd.Categorical(sub[col].astype(str)).codes).groupby(grp).nunique()
        if (nun <= 1).all():
            out.append(col)
        elif keys is not None:
            raise InputError(f"obs['{col}'] varies within a (sample, region) group, so it cannot be a "
                             "sample-level covariate; use a column with one value per sample.")
    return out


def pseudobulk(adata: AnnDataInput, sample_key: str = "sample", groupby: str = "region", *,
               layer: str | None = None, min_cells: int = 10, min_counts: int = 1000,
               exclude: Sequence[str] = ("outside",), obs_keys: Sequence[str] | None = None,
               min_gene_counts: int = 0) -> ad.AnnData:
    """Sum raw counts per (sample, region): one pseudobulk sample per pair.

    Parameters
    ----------
    adata
        Annotated AnnData, an .h5ad path, or a list of them (e.g. one file per sample;
        files without ``obs[sample_key]`` are labelled by their file stem).
    sample_key
        ``obs`` column naming the biological sample (animal, patient).
    groupby
        ``obs`` column with the region (or any grouping such as cell type).
    layer
        Where the raw integer counts are: ``None`` uses ``layers['counts']`` if present,
        else ``X``; ``'raw'`` uses ``adata.raw.X``.
    min_cells, min_counts
        Pseudobulk samples from fewer spots/cells, or with fewer total counts, are
        dropped (listed in ``uns['pseudobulk']['dropped']``).
    exclude
        Group labels to ignore (``'outside'`` the tissue by default).
    obs_keys
        Sample-level ``obs`` columns to carry (each must be constant within a group);
        ``None`` carries every column that happens to be constant.
    min_gene_counts
        Drop genes whose total over all kept pseudobulk samples is below this.

    Returns
    -------
    AnnData with one row per kept (sample, region): ``X`` and ``layers['counts']`` hold the
    summed counts (CSR), ``obs`` has ``sample_key``, ``groupby``, ``n_cells``,
    ``total_counts`` and the carried covariates, ``uns['pseudobulk']`` the parameters.

    Examples
    --------
    >>> import topdown as td
    >>> sim = td.sim.expression_study(n_per_condition=2, n_genes=50, n_spots=200)  # doctest: +SKIP
    >>> pb = td.tl.pseudobulk(sim, sample_key="sample", groupby="region")  # doctest: +SKIP
    >>> pb.obs[["sample", "region", "n_cells"]].head()  # doctest: +SKIP
    """
    adata, _ = combine(adata, sample_key=sample_key)
    require_obs(adata, sample_key, groupby)
    X, used = count_matrix(adata, layer)
    samples = categories(adata.obs[sample_key])
    groups = categories(adata.obs[groupby])
    excluded = set(map(str, exclude or ()))
    g_codes = groups.codes.astype(np.int64).copy()
    g_codes[np.isin(np.asarray(groups.categories), list(excluded))[np.maximum(g_codes, 0)] & (g_codes >= 0)] = -1
    s_codes = samples.codes.astype(np.int64)
    n_g = len(groups.categories)
    full = np.where((s_codes >= 0) & (g_codes >= 0), s_codes * n_g + g_codes, -1)
    sizes_full = np.bincount(full[full >= 0], minlength=len(samples.categories) * n_g)
    present = np.flatnonzero(sizes_full)
    remap = np.full(sizes_full.shape[0], -1, dtype=np.int64)
    remap[present] = np.arange(present.size)
    codes = np.where(full >= 0, remap[np.maximum(full, 0)], -1)
    summed = aggregate_counts(X, codes, present.size)
    if summed.dtype != np.int64:  # validated integer-valued floats: store exact integers
        summed = sparse.csr_matrix((np.rint(summed.data).astype(np.int64), summed.indices, summed.indptr),
                                   shape=summed.shape)
    n_cells = sizes_full[present]
    totals = np.asarray(summed.sum(axis=1)).ravel()
    obs = pd.DataFrame({
        sample_key: np.asarray(samples.categories)[present // n_g],
        groupby: np.asarray(groups.categories)[present % n_g],
        "n_cells": n_cells.astype(np.int64),
        "total_counts": totals,
    })
    carried = [c for c in _constant_columns(adata.obs, codes, obs_keys) if c not in (sample_key, groupby)]
    if carried:
        first = pd.Series(np.arange(codes.size))[codes >= 0].groupby(codes[codes >= 0]).first().to_numpy()
        for col in carried:
            obs[col] = adata.obs[col].to_numpy()[first]
    obs.index = [f"{s}|{g}" for s, g in zip(obs[sample_key], obs[groupby], strict=True)]
    ok = (obs["n_cells"].to_numpy() >= min_cells) & (obs["total_counts"].to_numpy() >= min_counts)
    dropped = obs.index[~ok].tolist()
    summed = summed[np.flatnonzero(ok)]
    obs = obs.loc[ok].copy()
    for col in (sample_key, groupby):
        obs[col] = pd.Categorical(obs[col])
    var = adata.var[[]].copy()
    if min_gene_counts > 0:
        keep_g = np.asarray(summed.sum(axis=0)).ravel() >= min_gene_counts
        summed = summed[:, np.flatnonzero(keep_g)]
        var = var.loc[keep_g]
    pb = ad.AnnData(X=summed, obs=obs, var=var)
    pb.layers["counts"] = summed.copy()
    pb.uns["pseudobulk"] = {
        "sample_key": sample_key, "groupby": groupby, "layer": used, "min_cells": int(min_cells),
        "min_counts": int(min_counts), "exclude": sorted(excluded), "min_gene_counts": int(min_gene_counts),
        "dropped": dropped, "n_input_cells": int(adata.n_obs),
    }
    return pb
