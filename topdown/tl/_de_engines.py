"""Count-model engines for region DE behind one interface (:data:`ENGINES`).

An engine takes every region's pseudobulk job at once and returns one table per region with
columns ``gene, group, reference, log2fc, lfc_se, stat, pvalue, padj, base_mean`` (one row
per gene and contrast), or a one-line note for a region it could not test.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._progress import progress
from ..errors import InputError
from . import _nbglm as nb

RESULT_COLUMNS = ("gene", "group", "reference", "log2fc", "lfc_se", "stat", "pvalue", "padj", "base_mean")


@dataclass
class RegionJob:
    """One region's pseudobulk: counts (samples x genes), design columns, contrasts to test.

    ``design`` is the model matrix (from :func:`topdown.tl._de_deseq.check_design`) and
    ``contrasts`` holds ``(group, reference)`` pairs of condition levels.
    """

    region: str
    counts: pd.DataFrame
    meta: pd.DataFrame
    design: pd.DataFrame
    contrasts: list[tuple[str, str]]


@dataclass
class EngineOptions:
    """Options shared by the engines."""

    formula: str
    condition_key: str
    lfc_shrink: bool = False
    alpha: float = 0.05
    n_cpus: int = 1


EngineResult = tuple[dict[str, pd.DataFrame], dict[str, str]]


def _coef(columns: pd.Index, condition_key: str, level: str) -> str | None:
    """Design column of a condition level (None for the base level)."""
    name = f"{condition_key}[T.{level}]"
    return name if name in columns else None


def contrast_vector(columns: pd.Index, condition_key: str, group: str, reference: str) -> np.ndarray:
    """Contrast ``group - reference`` on the design columns (treatment coding)."""
    vec = np.zeros(len(columns))
    for level, sign in ((group, 1.0), (reference, -1.0)):
        name = _coef(columns, condition_key, level)
        if name is not None:
            vec[columns.get_loc(name)] = sign
    return vec


def shrink_coefficient(columns: pd.Index, condition_key: str, group: str, reference: str) -> int:
    """Index of the coefficient whose LFC is shrunk; only contrasts against the base level."""
    name = _coef(columns, condition_key, group)
    if name is None or _coef(columns, condition_key, reference) is not None:
        raise InputError(f"lfc_shrink works for contrasts against the reference level only, not "
                         f"'{group}' vs '{reference}'; use lfc_shrink=False for this contrast.")
    return int(columns.get_loc(name))


def _frame(genes, group: str, reference: str, lfc, se, stat, pvalue, padj, base_mean) -> pd.DataFrame:
    ln2 = np.log(2)
    return pd.DataFrame({"gene": np.asarray(genes, dtype=str), "group": group, "reference": reference,
                         "log2fc": np.asarray(lfc, float) / ln2, "lfc_se": np.asarray(se, float) / ln2,
                         "stat": np.asarray(stat, float), "pvalue": np.asarray(pvalue, float),
                         "padj": np.asarray(padj, float), "base_mean": np.asarray(base_mean, float)})


def run_nbglm(jobs: list[RegionJob], opts: EngineOptions) -> EngineResult:
    """Batched DESeq2 (:mod:`topdown.tl._nbglm`): regions with the same design are fitted together."""
    groups: dict[tuple, list[int]] = {}
    for i, job in enumerate(jobs):
        X = job.design.to_numpy(float)
        groups.setdefault((X.shape, X.tobytes(), tuple(job.design.columns)), []).append(i)
    tables: dict[str, pd.DataFrame] = {}
    notes: dict[str, str] = {}
    for members in groups.values():
        batch = [jobs[i] for i in members]
        try:
            tables.update(_nbglm_batch(batch, opts))
        except InputError:
            raise
        except (np.linalg.LinAlgError, ValueError, FloatingPointError) as exc:
            notes.update(_failed(batch, exc))
    return tables, notes


def _failed(jobs: list[RegionJob], exc: Exception) -> dict[str, str]:
    """One-line notes for regions whose fit failed numerically (the other regions are kept)."""
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return {job.region: f"the count model failed on this region ({reason})" for job in jobs}


def _nbglm_batch(jobs: list[RegionJob], opts: EngineOptions) -> dict[str, pd.DataFrame]:
    X = jobs[0].design.to_numpy(float)
    columns = jobs[0].design.columns
    blocks, sfs, segs, nonzero = [], [], [], []
    for s, job in enumerate(jobs):
        y = job.counts.to_numpy(float)
        nz = y.any(0)
        nonzero.append(nz)
        sf = nb.size_factors(y)
        blocks.append(y[:, nz])
        sfs.append(np.repeat(sf[:, None], nz.sum(), axis=1))
        segs.append(np.full(nz.sum(), s))
    batch = nb.Batch(np.hstack(blocks), np.hstack(sfs), X, np.concatenate(segs))
    with np.errstate(all="ignore"):
        res, outlier = nb.fit(batch)
        tests = {}
        for pair in {c for job in jobs for c in job.contrasts}:
            lfc, se, stat, p = nb.wald(batch, res, contrast_vector(columns, opts.condition_key, *pair))
            if opts.lfc_shrink:
                lfc, se = nb.shrink(batch, res, se, shrink_coefficient(columns, opts.condition_key, *pair))
            tests[pair] = (lfc, se, stat, np.where(outlier, np.nan, p))
    out = {}
    for s, job in enumerate(jobs):
        sel, nz = batch.seg == s, nonzero[s]
        frames = []
        for pair in job.contrasts:
            cols = [np.full(nz.size, np.nan) for _ in range(4)]
            for full, part in zip(cols, tests[pair], strict=True):
                full[nz] = part[sel]
            base = np.zeros(nz.size)
            base[nz] = res.means[sel]
            padj = np.full(nz.size, np.nan)
            padj[nz] = nb.independent_filtering(res.means[sel], tests[pair][3][sel], opts.alpha)
            frames.append(_frame(job.counts.columns, *pair, *cols, padj, base))
        out[job.region] = pd.concat(frames, ignore_index=True)
    return out


def run_pydeseq2(jobs: list[RegionJob], opts: EngineOptions) -> EngineResult:
    """PyDESeq2, one ``DeseqDataSet`` per region and one ``DeseqStats`` per contrast."""
    tables, notes = {}, {}
    for job in progress(jobs, desc="region DE (PyDESeq2)"):
        try:
            tables[job.region] = _pydeseq2_region(job, opts)
        except InputError:
            raise
        except (np.linalg.LinAlgError, ValueError, FloatingPointError) as exc:
            notes.update(_failed([job], exc))
    return tables, notes


def _pydeseq2_region(job: RegionJob, opts: EngineOptions) -> pd.DataFrame:
    from pydeseq2.dds import DeseqDataSet
    from pydeseq2.ds import DeseqStats

    sink = io.StringIO()
    frames = []
    with warnings.catch_warnings(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        warnings.simplefilter("ignore")
        dds = DeseqDataSet(counts=job.counts, metadata=job.meta, design=opts.formula, n_cpus=opts.n_cpus,
                           quiet=True)
        dds.deseq2()
        for group, reference in job.contrasts:
            stats = DeseqStats(dds, contrast=[opts.condition_key, group, reference], alpha=opts.alpha,
                               n_cpus=opts.n_cpus, quiet=True)
            stats.summary()
            if opts.lfc_shrink:
                idx = shrink_coefficient(stats.LFC.columns, opts.condition_key, group, reference)
                stats.lfc_shrink(coeff=stats.LFC.columns[idx])
            r = stats.results_df
            ln2 = np.log(2)
            frames.append(_frame(r.index, group, reference, r["log2FoldChange"] * ln2, r["lfcSE"] * ln2,
                                 r["stat"], r["pvalue"], r["padj"], r["baseMean"]))
    return pd.concat(frames, ignore_index=True)


#: Engine name -> function(jobs, options) -> (tables by region, notes by region).
ENGINES: dict[str, Callable[[list[RegionJob], EngineOptions], EngineResult]] = {
    "nbglm": run_nbglm,
    "pydeseq2": run_pydeseq2,
}
