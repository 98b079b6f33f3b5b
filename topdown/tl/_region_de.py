"""Region-level differential expression: pseudobulk per sample x region, a count model per region."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd

from .._progress import progress
from ..errors import InputError
from ..get import REGION_DE_COLUMNS
from ..get import region_de_df as results_table  # noqa: F401  (the former home of the reader)
from ._de_deseq import check_design, design_factors
from ._de_engines import ENGINES, EngineOptions, RegionJob
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


def _contrast_pairs(levels: list[str], reference: str, groups: Sequence[str] | None,
                    contrasts: Sequence | None, condition_key: str) -> list[tuple[str, str]]:
    """``(group, reference)`` pairs to test: ``contrasts`` if given, else each group vs ``reference``."""
    if contrasts is None:
        chosen = [str(g) for g in groups] if groups is not None else [lv for lv in levels if lv != reference]
        bad = [g for g in chosen if g not in levels or g == reference]
        if bad or not chosen:
            raise InputError(f"groups {bad or chosen} must be values of obs['{condition_key}'] other than "
                             f"the reference '{reference}' (values: {', '.join(levels)}).")
        return [(g, reference) for g in chosen]
    pairs = []
    for c in contrasts:
        pair = tuple(str(x).strip() for x in (c.split(" vs ") if isinstance(c, str) else c))
        if len(pair) != 2 or pair[0] == pair[1] or not set(pair) <= set(levels):
            raise InputError(f"contrast {c!r} must name two different values of obs['{condition_key}'] "
                             f"(values: {', '.join(levels)}), e.g. ('{levels[-1]}', '{levels[0]}') or "
                             f"'{levels[-1]} vs {levels[0]}'.")
        pairs.append(pair)
    if not pairs:
        raise InputError("contrasts is empty; pass at least one (group, reference) pair or contrasts=None.")
    return list(dict.fromkeys(pairs))


def _used_levels(levels: list[str], reference: str, pairs: list[tuple[str, str]]) -> list[str]:
    """Condition levels named in ``pairs``, the reference first (the design's base level)."""
    order = list(dict.fromkeys([reference, *levels]))
    return [lv for lv in order if any(lv in pair for pair in pairs)]


def _label(region: str, pair: tuple[str, str], reference: str, n_pairs: int) -> str:
    if n_pairs == 1:
        return region
    return f"{region} ({pair[0]})" if pair[1] == reference else f"{region} ({pair[0]} vs {pair[1]})"


@dataclass
class _Setup:
    """What region_de resolved from its arguments, shared by the two methods."""

    data: ad.AnnData
    X: object
    layer: str
    regions: list[str]
    pairs: list[tuple[str, str]]
    reference: str
    excluded: tuple[str, ...]


def _replicate_de(st: _Setup, condition_key: str, sample_key: str, region_key: str, design: str,
                  engine: str, opts: dict, skipped: dict[str, str]) -> tuple[list[pd.DataFrame], pd.DataFrame]:
    """Pseudobulk, one job per region, then the count-model engine on all regions at once."""
    factors = design_factors(design)
    if condition_key not in factors:
        raise InputError(f"design '{design}' does not contain the condition '{condition_key}'; "
                         f"e.g. design='~ {condition_key} + sex'.")
    require_obs(st.data, *factors, what=f" (used in design '{design}')")
    pb = pseudobulk(st.data, sample_key, region_key, layer=st.layer, min_cells=opts["min_cells"],
                    min_counts=opts["min_counts"], exclude=st.excluded, obs_keys=factors)
    counts_all = pb.X.toarray()
    cond = pb.obs[condition_key].astype(str).to_numpy()
    region_of = pb.obs[region_key].astype(str).to_numpy()
    used = _used_levels([lv for pair in st.pairs for lv in pair], st.reference, st.pairs)
    jobs = []
    for region in st.regions:
        sizes = {lv: int(((region_of == region) & (cond == lv)).sum()) for lv in used}
        ok = []
        for pair in st.pairs:
            if min(sizes[pair[0]], sizes[pair[1]]) >= opts["min_samples"]:
                ok.append(pair)
                continue
            skipped[_label(region, pair, st.reference, len(st.pairs))] = (
                f"{sizes[pair[1]]} {pair[1]} and {sizes[pair[0]]} {pair[0]} pseudobulk samples pass "
                f"min_cells={opts['min_cells']}/min_counts={opts['min_counts']}; need {opts['min_samples']} each")
        levels = [lv for lv in used if any(lv in pair for pair in ok)]
        if not ok:
            continue
        sel = (region_of == region) & np.isin(cond, levels)
        keep = _filter_genes(counts_all[sel], opts["min_gene_counts"], min(sizes[lv] for lv in levels))
        if keep.sum() < 2:
            skipped[region] = f"fewer than 2 genes pass min_gene_counts={opts['min_gene_counts']}"
            continue
        meta = pb.obs.loc[sel, factors].copy()
        for col in factors:
            if col == condition_key:
                meta[col] = pd.Categorical(meta[col].astype(str), categories=levels)
            elif not pd.api.types.is_numeric_dtype(meta[col]):
                meta[col] = pd.Categorical(meta[col].astype(str))
        meta.index = meta.index.astype(str)
        try:
            mm = check_design(meta, design, condition_key)
        except InputError as exc:
            skipped[region] = str(exc)
            continue
        cdf = pd.DataFrame(counts_all[sel][:, keep].astype(np.int64), index=meta.index,
                           columns=pb.var_names[keep].astype(str))
        jobs.append(RegionJob(region, cdf, meta, mm, ok))
    options = EngineOptions(design, condition_key, opts["lfc_shrink"], opts["alpha"], opts["n_cpus"])
    results, notes = ENGINES[engine](jobs, options) if jobs else ({}, {})
    skipped.update(notes)
    tables = []
    for job in jobs:
        if job.region not in results:
            continue
        ncell = pb.obs.loc[job.meta.index, "n_cells"].to_numpy()
        jcond = job.meta[condition_key].astype(str).to_numpy()
        res = results[job.region]
        info = pd.DataFrame([{"group": g, "reference": r, "n_samples_group": int((jcond == g).sum()),
                              "n_samples_reference": int((jcond == r).sum()),
                              "n_cells_group": int(ncell[jcond == g].sum()),
                              "n_cells_reference": int(ncell[jcond == r].sum())} for g, r in job.contrasts])
        tables.append(res.merge(info, on=["group", "reference"], how="left")
                      .assign(region=job.region, method="deseq2", exploratory=False))
    return tables, pb.obs.copy()


def _exploratory_de(st: _Setup, condition_key: str, sample_key: str, region_key: str, min_spots: int,
                    skipped: dict[str, str]) -> list[pd.DataFrame]:
    """Per-spot Wilcoxon per region and contrast (exploratory: spots are not replicates)."""
    warnings.warn("method='wilcoxon' tests spots/cells as if they were independent replicates; "
                  "its p-values are exploratory, not evidence of a condition effect (use "
                  "method='deseq2' with >= 2 samples per condition).", ExploratoryWarning, stacklevel=3)
    region_str = np.asarray(categories(st.data.obs[region_key]).astype(str))
    cond_str = np.asarray(categories(st.data.obs[condition_key]).astype(str))
    sample_str = st.data.obs[sample_key].astype(str).to_numpy()
    tables = []
    for region in progress(st.regions, desc="region DE (exploratory)"):
        for group, ref in st.pairs:
            sel = (region_str == region) & np.isin(cond_str, [ref, group])
            is_ref = cond_str[sel] == ref
            if min(is_ref.sum(), (~is_ref).sum()) < min_spots:
                skipped[_label(region, (group, ref), st.reference, len(st.pairs))] = (
                    f"fewer than min_spots={min_spots} spots per condition")
                continue
            res = run_wilcoxon(st.X[np.flatnonzero(sel)], st.data.var_names, cond_str[sel],
                               reference=ref, group=group)
            smp = sample_str[sel]
            tables.append(res.assign(region=region, group=group, reference=ref,
                                     n_samples_group=len(set(smp[~is_ref])),
                                     n_samples_reference=len(set(smp[is_ref])),
                                     n_cells_group=int((~is_ref).sum()), n_cells_reference=int(is_ref.sum()),
                                     method="wilcoxon", exploratory=True))
    return tables


def region_de(adata: AnnDataInput, condition_key: str = "condition", sample_key: str = "sample",
              reference: str = "healthy", region_key: str = "region", layer: str | None = None, *,
              design: str | None = None, method: str = "deseq2", groups: Sequence[str] | None = None,
              regions: Sequence[str] | None = None, exclude: Sequence[str] = ("outside",),
              min_cells: int = 10, min_counts: int = 1000, min_gene_counts: int = 10,
              min_samples: int = 2, min_spots: int = 10, lfc_shrink: bool = False,
              alpha: float = 0.05, n_cpus: int = 1, key_added: str | None = "region_de",
              engine: str = "nbglm", contrasts: Sequence | None = None,
              pair_key: str | None = None) -> pd.DataFrame:
    """Compare conditions region by region.

    ``method='deseq2'`` (default, replicate-aware): raw counts are summed per (sample,
    region) (:func:`topdown.tl.pseudobulk`), lowly expressed genes are filtered per region,
    and a negative-binomial GLM with ``design`` is fitted per region on the samples of the
    compared conditions (DESeq2's algorithm: size factors, shrunk dispersions, Wald test,
    Cook's outlier handling, independent filtering, Benjamini-Hochberg ``padj`` within each
    region and contrast). ``engine='nbglm'`` (default) fits all regions and genes in one
    batched computation (:mod:`topdown.tl._nbglm`, seconds); ``engine='pydeseq2'`` runs
    PyDESeq2 region by region (same answers, minutes). ``method='wilcoxon'`` is an
    exploratory per-spot test (scanpy ``rank_genes_groups``) for data without biological
    replicates: its output is flagged ``exploratory`` and a warning is raised, because spots
    of one section are not replicates.

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
        ``'~ <condition_key>'`` (``'~ <pair_key> + <condition_key>'`` with ``pair_key``).
        Covariates must be constant within each sample.
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
        many pseudobulk samples as the smallest compared condition has.
    min_samples
        Minimum biological samples per condition (overall and per region); below this the
        DESeq2 path refuses (InputError) or skips the region (``df.attrs['skipped']``).
    min_spots
        Wilcoxon mode: minimum spots per condition in a region.
    lfc_shrink
        Shrink log2 fold changes (apeGLM prior, as PyDESeq2 ``lfc_shrink``); p-values
        unchanged. Contrasts against ``reference`` only.
    alpha
        Target FDR for DESeq2's independent filtering.
    n_cpus
        Processes for PyDESeq2 (``engine='pydeseq2'`` only).
    key_added
        ``adata.uns`` key for the results when a single AnnData object is passed
        (``None``: do not store).
    engine
        Count model for ``method='deseq2'``: ``'nbglm'`` (batched, default) or
        ``'pydeseq2'``; see :data:`topdown.tl._de_engines.ENGINES`.
    contrasts
        Named contrasts instead of ``groups``: ``(group, reference)`` pairs or strings
        ``'group vs reference'`` of ``condition_key`` values, e.g. ``[('drugB', 'drugA')]``
        for conditions with more than two levels. All conditions named in the contrasts are
        fitted in one model per region.
    pair_key
        ``obs`` column of the donor/animal for paired designs (each donor contributes
        samples to several conditions); added to the design as a blocking factor.

    Returns
    -------
    Tidy DataFrame, one row per (region, contrast, gene), columns :data:`COLUMNS`;
    ``df.attrs`` holds ``method``, ``exploratory``, the parameters and ``skipped`` (region
    or contrast -> one-line reason it was not tested). When ``adata`` is one AnnData
    object, ``adata.uns[key_added]`` gets ``{'params', 'results' (dict of columns),
    'skipped_regions', 'skipped_reasons', 'pseudobulk_obs'}`` (h5ad-serialisable).

    Raises
    ------
    InputError
        Fewer than ``min_samples`` samples per condition (DESeq2), no raw integer counts,
        missing keys, a reference or contrast level not present, an unknown engine, no
        region that could be tested (e.g. a design that is not full rank anywhere).

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
    if engine not in ENGINES:
        raise InputError(f"engine='{engine}' is not known; use one of {', '.join(ENGINES)}.")
    data, single = combine(adata, sample_key=sample_key)
    require_obs(data, condition_key, sample_key, region_key, *([pair_key] if pair_key else []))
    levels = [str(c) for c in categories(data.obs[condition_key]).categories]
    if str(reference) not in levels:
        raise InputError(f"reference '{reference}' is not a value of obs['{condition_key}'] "
                         f"(values: {', '.join(levels)}); pass reference= one of them.")
    reference = str(reference)
    pairs = _contrast_pairs(levels, reference, groups, contrasts, condition_key)
    per_sample = _sample_conditions(data.obs, sample_key, condition_key)
    X, used_layer = count_matrix(data, layer)
    excluded = tuple(map(str, exclude or ()))
    all_regions = [str(r) for r in categories(data.obs[region_key]).categories if str(r) not in excluded]
    if regions is not None:
        missing = [r for r in regions if str(r) not in all_regions]
        if missing:
            raise InputError(f"regions {missing} not found in obs['{region_key}'] (have: {', '.join(all_regions)}).")
        all_regions = [str(r) for r in regions]
    st = _Setup(data, X, used_layer, all_regions, pairs, reference, excluded)
    params = {"method": method, "condition_key": condition_key, "sample_key": sample_key,
              "region_key": region_key, "reference": reference,
              "groups": list(dict.fromkeys(g for g, _ in pairs)),
              "contrasts": [f"{g} vs {r}" for g, r in pairs], "layer": used_layer,
              "min_cells": int(min_cells), "min_counts": int(min_counts),
              "min_gene_counts": int(min_gene_counts), "min_samples": int(min_samples),
              "lfc_shrink": bool(lfc_shrink), "alpha": float(alpha), "exploratory": method == "wilcoxon"}
    skipped: dict[str, str] = {}
    pb_obs = pd.DataFrame()
    if method == "deseq2":
        used = _used_levels(levels, reference, pairs)
        _refuse_replicates(per_sample, used, condition_key, sample_key, min_samples)
        design = design or (f"~ {pair_key} + {condition_key}" if pair_key else f"~ {condition_key}")
        if pair_key and pair_key not in design_factors(design):
            design = f"{design} + {pair_key}"
        params.update(design=design, engine=engine, **({"pair_key": pair_key} if pair_key else {}))
        tables, pb_obs = _replicate_de(st, condition_key, sample_key, region_key, design, engine,
                                       params | {"n_cpus": n_cpus}, skipped)
    else:
        tables = _exploratory_de(st, condition_key, sample_key, region_key, min_spots, skipped)
    if not tables:
        reasons = "; ".join(f"{k}: {v}" for k, v in skipped.items()) or "no regions to test"
        raise InputError(f"no region could be tested ({reasons}). Lower min_cells/min_counts or check "
                         f"obs['{region_key}'].")
    for label, reason in skipped.items():
        log.warning("region_de: skipped %s (%s)", label, reason)
    table = pd.concat(tables, ignore_index=True)[list(COLUMNS)]
    table = table.sort_values(["region", "group", "reference", "padj", "pvalue"], na_position="last",
                              kind="stable", ignore_index=True)
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
