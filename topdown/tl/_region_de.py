"""Region-level differential expression: pseudobulk per sample x region, a count model per region."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .._progress import progress
from ..errors import InputError
from ..get import REGION_DE_COLUMNS
from ..get import region_de_df as results_table  # noqa: F401  (the former home of the reader)
from ._de_deseq import check_design, design_factors, run_deseq2
from ._de_input import AnnDataInput, categories, combine, count_matrix, require_obs
from ._de_wilcoxon import run_wilcoxon
from ._pseudobulk import pseudobulk

log = logging.getLogger(__name__)

COLUMNS = REGION_DE_COLUMNS  #: columns of the tidy result table, in order

METHODS = ("deseq2", "wilcoxon")


class ExploratoryWarning(UserWarning):
    """Per-spot tests treat spots as replicates: their p-values are not evidence."""


def _sample_conditions(obs: pd.DataFrame, sample_key: str, condition_key: str) -> pd.Series:
    per = obs.groupby(obs[sample_key].astype(str), observed=True)[condition_key].agg(
        lambda s: s.astype(str).unique().tolist())
    mixed = per[per.map(len) > 1]
    if len(mixed):
        raise InputError(f"sample(s) {list(mixed.index[:5])} appear in more than one '{condition_key}'; "
                         f"each biological sample ('{sample_key}') must belong to one condition. "
                         "Check the sample and condition keys.")
    return per.map(lambda v: v[0])


def _refuse_replicates(per_sample: pd.Series, levels: list[str], condition_key: str,
                       sample_key: str, min_samples: int) -> None:
    counts = {lv: sorted(per_sample.index[per_sample == lv].tolist()) for lv in levels}
    if all(len(v) >= min_samples for v in counts.values()):
        return
    found = "; ".join(f"{lv}: {len(v)} ({', '.join(v[:4])}{', ...' if len(v) > 4 else ''})"
                      for lv, v in counts.items())
    raise InputError(
        f"replicate-aware DE needs at least {min_samples} biological samples per condition "
        f"(obs['{sample_key}']), found {found} in obs['{condition_key}']. Spots or cells from one "
        "section are not independent replicates, so no valid p-value can be computed (Squair et al., "
        "Nat Commun 2021). Add sections from more animals/patients, or pass method='wilcoxon' for an "
        "exploratory per-spot comparison whose p-values are not evidence.")


def _filter_genes(counts: np.ndarray, min_gene_counts: int, min_group: int) -> np.ndarray:
    """filterByExpr-like: a gene needs >= min_gene_counts in at least the smaller group's size."""
    return (counts >= min_gene_counts).sum(axis=0) >= max(1, min_group)


def region_de(adata: AnnDataInput, condition_key: str = "condition", sample_key: str = "sample",
              reference: str = "healthy", region_key: str = "region", layer: str | None = None, *,
              design: str | None = None, method: str = "deseq2", groups: Sequence[str] | None = None,
              regions: Sequence[str] | None = None, exclude: Sequence[str] = ("outside",),
              min_cells: int = 10, min_counts: int = 1000, min_gene_counts: int = 10,
              min_samples: int = 2, min_spots: int = 10, lfc_shrink: bool = False,
              alpha: float = 0.05, n_cpus: int = 1, key_added: str | None = "region_de") -> pd.DataFrame:
    """Compare conditions region by region.

    ``method='deseq2'`` (default, replicate-aware): raw counts are summed per (sample,
    region) (:func:`topdown.tl.pseudobulk`), lowly expressed genes are filtered per region,
    and PyDESeq2 fits a negative-binomial GLM with ``design`` per region; Wald test of each
    non-reference condition against ``reference``; Benjamini-Hochberg ``padj`` within each
    region and contrast. ``method='wilcoxon'`` is an exploratory per-spot test (scanpy
    ``rank_genes_groups``) for data without biological replicates: its output is flagged
    ``exploratory`` and a warning is raised, because spots of one section are not replicates.

    Parameters
    ----------
    adata
        Region-annotated AnnData, an .h5ad path, or a list of them (e.g. one per sample).
    condition_key, sample_key, region_key
        ``obs`` columns with the condition, the biological sample and the region.
    reference
        The reference condition (e.g. ``'healthy'``); log2fc is group vs reference.
    layer
        Raw integer counts: ``None`` uses ``layers['counts']`` if present, else ``X``;
        ``'raw'`` uses ``adata.raw.X``.
    design
        Formula on sample-level ``obs`` columns, e.g. ``'~ sex + condition'``; default
        ``'~ <condition_key>'``. Covariates must be constant within each sample.
    method
        ``'deseq2'`` or ``'wilcoxon'`` (exploratory).
    groups
        Conditions to compare with ``reference`` (default: all others).
    regions
        Regions to test (default: all except ``exclude``).
    min_cells, min_counts
        Minimum spots/cells and total counts of a pseudobulk sample.
    min_gene_counts
        A gene is tested in a region if it has at least this many counts in at least as
        many pseudobulk samples as the smaller condition has.
    min_samples
        Minimum biological samples per condition (overall and per region); below this the
        DESeq2 path refuses (InputError) or skips the region.
    min_spots
        Wilcoxon mode: minimum spots per condition in a region.
    lfc_shrink
        Shrink log2 fold changes (apeGLM prior, PyDESeq2 ``lfc_shrink``); p-values unchanged.
    alpha
        Target FDR for DESeq2's independent filtering.
    n_cpus
        Processes for PyDESeq2 (1 by default).
    key_added
        ``adata.uns`` key for the results when a single AnnData object is passed
        (``None``: do not store).

    Returns
    -------
    Tidy DataFrame, one row per (region, group, gene), columns :data:`COLUMNS`;
    ``df.attrs`` holds ``method``, ``exploratory`` and the parameters. When ``adata`` is one
    AnnData object, ``adata.uns[key_added]`` gets ``{'params', 'results' (dict of
    columns), 'skipped_regions', 'skipped_reasons', 'pseudobulk_obs'}`` (h5ad-serialisable).

    Raises
    ------
    InputError
        Fewer than ``min_samples`` samples per condition (DESeq2), no raw integer counts,
        missing keys, a reference not present, a design that is not full rank.

    Examples
    --------
    >>> import topdown as td
    >>> sim = td.sim.expression_study(n_per_condition=3, n_genes=200, seed=0)  # doctest: +SKIP
    >>> res = td.tl.region_de(sim, condition_key="condition", sample_key="sample",
    ...                       reference="healthy")  # doctest: +SKIP
    >>> res.query("padj < 0.05").groupby("region").size()  # doctest: +SKIP
    """
    if method not in METHODS:
        raise InputError(f"method='{method}' is not known; use one of {', '.join(METHODS)}.")
    data, single = combine(adata, sample_key=sample_key)
    require_obs(data, condition_key, sample_key, region_key)
    cond = categories(data.obs[condition_key])
    levels = [str(c) for c in cond.categories]
    if str(reference) not in levels:
        raise InputError(f"reference '{reference}' is not a value of obs['{condition_key}'] "
                         f"(values: {', '.join(levels)}); pass reference= one of them.")
    reference = str(reference)
    groups = [str(g) for g in groups] if groups is not None else [lv for lv in levels if lv != reference]
    bad = [g for g in groups if g not in levels or g == reference]
    if bad or not groups:
        raise InputError(f"groups {bad or groups} must be values of obs['{condition_key}'] other than "
                         f"the reference '{reference}' (values: {', '.join(levels)}).")
    per_sample = _sample_conditions(data.obs, sample_key, condition_key)
    X, used_layer = count_matrix(data, layer)
    region_cat = categories(data.obs[region_key])
    excluded = set(map(str, exclude or ()))
    all_regions = [str(r) for r in region_cat.categories if str(r) not in excluded]
    if regions is not None:
        missing = [r for r in regions if str(r) not in all_regions]
        if missing:
            raise InputError(f"regions {missing} not found in obs['{region_key}'] (have: {', '.join(all_regions)}).")
        all_regions = [str(r) for r in regions]

    params = {"method": method, "condition_key": condition_key, "sample_key": sample_key,
              "region_key": region_key, "reference": reference, "groups": list(groups),
              "layer": used_layer, "min_cells": int(min_cells), "min_counts": int(min_counts),
              "min_gene_counts": int(min_gene_counts), "min_samples": int(min_samples),
              "lfc_shrink": bool(lfc_shrink), "alpha": float(alpha), "exploratory": method == "wilcoxon"}
    skipped: dict[str, str] = {}
    tables: list[pd.DataFrame] = []
    pb_obs = pd.DataFrame()

    if method == "deseq2":
        _refuse_replicates(per_sample, [reference, *groups], condition_key, sample_key, min_samples)
        design = design or f"~ {condition_key}"
        factors = design_factors(design)
        if condition_key not in factors:
            raise InputError(f"design '{design}' does not contain the condition '{condition_key}'; "
                             f"e.g. design='~ {condition_key} + sex'.")
        require_obs(data, *factors, what=f" (used in design '{design}')")
        params["design"] = design
        pb = pseudobulk(data, sample_key, region_key, layer=used_layer, min_cells=min_cells,
                        min_counts=min_counts, exclude=tuple(excluded), obs_keys=factors)
        pb_obs = pb.obs.copy()
        counts_all = pb.X.toarray()
        for region in progress(all_regions, desc="region DE"):
            in_region = (pb.obs[region_key].astype(str) == region).to_numpy()
            for group in groups:
                label = region if len(groups) == 1 else f"{region} ({group})"
                sel = in_region & pb.obs[condition_key].astype(str).isin([reference, group]).to_numpy()
                meta = pb.obs.loc[sel, factors].copy()
                n_ref = int((meta[condition_key].astype(str) == reference).sum())
                n_grp = int((meta[condition_key].astype(str) == group).sum())
                if min(n_ref, n_grp) < min_samples:
                    skipped[label] = (f"{n_ref} {reference} and {n_grp} {group} pseudobulk samples pass "
                                      f"min_cells={min_cells}/min_counts={min_counts}; need {min_samples} each")
                    continue
                counts = counts_all[sel]
                keep = _filter_genes(counts, min_gene_counts, min(n_ref, n_grp))
                if keep.sum() < 2:
                    skipped[label] = f"fewer than 2 genes pass min_gene_counts={min_gene_counts}"
                    continue
                for col in factors:
                    if col == condition_key:
                        meta[col] = pd.Categorical(meta[col].astype(str), categories=[reference, group])
                    elif not pd.api.types.is_numeric_dtype(meta[col]):
                        meta[col] = pd.Categorical(meta[col].astype(str))
                meta.index = meta.index.astype(str)
                check_design(meta, design, condition_key)
                cdf = pd.DataFrame(counts[:, keep].astype(np.int64), index=meta.index,
                                   columns=pb.var_names[keep].astype(str))
                res = run_deseq2(cdf, meta, design=design, condition_key=condition_key,
                                 reference=reference, group=group, lfc_shrink=lfc_shrink,
                                 alpha=alpha, n_cpus=n_cpus)
                is_ref = (meta[condition_key].astype(str) == reference).to_numpy()
                ncell = pb.obs.loc[sel, "n_cells"].to_numpy()
                tables.append(res.assign(region=region, group=group, reference=reference,
                                         n_samples_group=n_grp, n_samples_reference=n_ref,
                                         n_cells_group=int(ncell[~is_ref].sum()),
                                         n_cells_reference=int(ncell[is_ref].sum()),
                                         method="deseq2", exploratory=False))
    else:
        warnings.warn("method='wilcoxon' tests spots/cells as if they were independent replicates; "
                      "its p-values are exploratory, not evidence of a condition effect (use "
                      "method='deseq2' with >= 2 samples per condition).", ExploratoryWarning, stacklevel=2)
        region_str = np.asarray(region_cat.astype(str))
        cond_str = np.asarray(cond.astype(str))
        sample_str = data.obs[sample_key].astype(str).to_numpy()
        for region in progress(all_regions, desc="region DE (exploratory)"):
            for group in groups:
                label = region if len(groups) == 1 else f"{region} ({group})"
                sel = (region_str == region) & np.isin(cond_str, [reference, group])
                is_ref = cond_str[sel] == reference
                if min(is_ref.sum(), (~is_ref).sum()) < min_spots:
                    skipped[label] = f"fewer than min_spots={min_spots} spots per condition"
                    continue
                res = run_wilcoxon(X[np.flatnonzero(sel)], data.var_names, cond_str[sel],
                                   reference=reference, group=group)
                smp = sample_str[sel]
                tables.append(res.assign(region=region, group=group, reference=reference,
                                         n_samples_group=len(set(smp[~is_ref])),
                                         n_samples_reference=len(set(smp[is_ref])),
                                         n_cells_group=int((~is_ref).sum()),
                                         n_cells_reference=int(is_ref.sum()),
                                         method="wilcoxon", exploratory=True))
    if not tables:
        reasons = "; ".join(f"{k}: {v}" for k, v in skipped.items()) or "no regions to test"
        raise InputError(f"no region could be tested ({reasons}). Lower min_cells/min_counts or check "
                         f"obs['{region_key}'].")
    for label, reason in skipped.items():
        log.warning("region_de: skipped %s (%s)", label, reason)
    table = pd.concat(tables, ignore_index=True)[list(COLUMNS)]
    table = table.sort_values(["region", "group", "padj", "pvalue"], na_position="last", kind="stable",
                              ignore_index=True)
    table.attrs.update({"method": method, "exploratory": method == "wilcoxon", "params": params,
                        "skipped": dict(skipped)})
    if single and key_added:
        data.uns[key_added] = to_uns(table, params, skipped, pb_obs)
    return table


def to_uns(table: pd.DataFrame, params: dict, skipped: dict[str, str], pb_obs: pd.DataFrame) -> dict:
    """The h5ad-serialisable record stored in ``adata.uns``: columns as arrays, params, skips."""
    results = {}
    for col in table.columns:
        values = table[col].to_numpy()
        results[col] = values.astype(str) if values.dtype == object else values
    pbo = {str(c): (pb_obs[c].astype(str).to_numpy() if not pd.api.types.is_numeric_dtype(pb_obs[c])
                    else pb_obs[c].to_numpy()) for c in pb_obs.columns}
    return {"params": {k: (list(v) if isinstance(v, list | tuple) else v) for k, v in params.items()},
            "results": results, "skipped_regions": np.asarray(list(skipped), dtype=str),
            "skipped_reasons": np.asarray(list(skipped.values()), dtype=str), "pseudobulk_obs": pbo}
