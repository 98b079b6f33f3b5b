"""Cell (nucleus) density per region compared between conditions, with samples as replicates.

Per region, a log-link count GLM of the nuclei of each sample with the log tissue area as
offset: ``log E[n] = log(area) + b0 + b_group``; ``exp(b_group)`` is the density ratio.
Over-dispersion between replicates is estimated from the Pearson residuals
(quasi-Poisson: ``Var = phi * mu``, ``phi >= 1``), so that the Wald test uses the spread of
the samples, not the Poisson noise of one section; the statistic is referred to a t
distribution with the residual degrees of freedom, and p-values are BH-adjusted over regions.
The replicate rules are those of :func:`topdown.tl.region_de`: each sample belongs to one
condition, and each compared condition needs at least ``min_samples`` samples.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import InputError
from ._region_de import _refuse_replicates, _sample_conditions

DENSITY_COLUMNS = ["region", "group", "reference", "log2_ratio", "density_ratio", "se", "stat", "pvalue",
                   "padj", "density_group", "density_reference", "n_samples_group", "n_samples_reference",
                   "dispersion"]


def _irls(y: np.ndarray, X: np.ndarray, offset: np.ndarray, iters: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Poisson log-link IRLS: coefficients and fitted means."""
    beta = np.zeros(X.shape[1])
    beta[0] = np.log(max(y.sum(), 0.5) / np.exp(offset).sum())
    for _ in range(iters):
        mu = np.exp(np.clip(offset + X @ beta, -30, 30))
        z = X @ beta + (y - mu) / mu
        W = mu
        new = np.linalg.solve(X.T @ (W[:, None] * X) + 1e-8 * np.eye(X.shape[1]), X.T @ (W * z))
        if np.max(np.abs(new - beta)) < 1e-9:
            beta = new
            break
        beta = new
    return beta, np.exp(np.clip(offset + X @ beta, -30, 30))


def _fit_region(y: np.ndarray, area: np.ndarray, group: np.ndarray) -> dict:
    """Quasi-Poisson fit of one region and one contrast (``group`` 1 vs 0)."""
    from scipy.stats import t as t_dist

    X = np.c_[np.ones(len(y)), group.astype(float)]
    beta, mu = _irls(y, X, np.log(area))
    df = max(len(y) - X.shape[1], 1)
    phi = max(1.0, float(((y - mu) ** 2 / mu).sum() / df))
    cov = phi * np.linalg.inv(X.T @ (mu[:, None] * X) + 1e-8 * np.eye(2))
    se = float(np.sqrt(cov[1, 1]))
    stat = float(beta[1] / se) if se > 0 else 0.0
    return {"log2_ratio": float(beta[1] / np.log(2)), "density_ratio": float(np.exp(beta[1])),
            "se": se / np.log(2), "stat": stat, "pvalue": float(2 * t_dist.sf(abs(stat), df)),
            "dispersion": phi}


def nuclei_density_test(table: pd.DataFrame, condition_key: str = "condition", sample_key: str = "sample",
                        reference: str | None = None, *, region_key: str = "region", count_key: str = "n_nuclei",
                        area_key: str = "area_mm2", min_samples: int = 2) -> pd.DataFrame:
    """Compare nuclei per mm² between conditions, region by region, with samples as replicates.

    Parameters
    ----------
    table
        One row per sample x region: ``sample_key``, ``condition_key``, ``region_key``,
        ``count_key`` (nuclei) and ``area_key`` (tissue area, any unit, e.g. mm²), such as
        ``uns['nuclei']['per_region']`` of each sample's AnnData (after
        :func:`topdown.tl.segment_nuclei`) with its sample and condition added.
    condition_key, sample_key, reference
        Columns naming each row's condition and biological sample; the reference condition
        (default: the first in sorted order). Every other condition is compared with it.
    region_key, count_key, area_key
        Column names.
    min_samples
        Samples each compared condition needs (at least 2: replicates estimate the spread).

    Returns
    -------
    DataFrame with :data:`DENSITY_COLUMNS`: ``density_ratio`` (group over reference, from
    the GLM), the mean densities, the quasi-Poisson dispersion, t-test p-values, BH ``padj``.

    Examples
    --------
    >>> t = pd.DataFrame({"sample": list("abcdef"), "condition": ["ctrl"] * 3 + ["lesion"] * 3,
    ...                   "region": "CA", "n_nuclei": [100, 110, 95, 50, 55, 45], "area_mm2": 1.0})
    >>> res = nuclei_density_test(t, reference="ctrl")
    >>> round(float(res["density_ratio"].iloc[0]), 2), bool(res["padj"].iloc[0] < 0.05)
    (0.49, True)
    """
    from scipy.stats import false_discovery_control

    need = [sample_key, condition_key, region_key, count_key, area_key]
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise InputError(f"the table lacks column(s) {missing}; it needs {need} (one row per sample x region).")
    if min_samples < 2:
        raise InputError("min_samples must be at least 2: the spread between replicates is what is tested.")
    t = table.copy()
    y_all, a_all = t[count_key].to_numpy(float), t[area_key].to_numpy(float)
    if (y_all < 0).any() or not np.isfinite(y_all).all() or (np.round(y_all) != y_all).any():
        raise InputError(f"'{count_key}' must hold non-negative whole counts.")
    if not (np.isfinite(a_all) & (a_all > 0)).all():
        raise InputError(f"'{area_key}' must be positive areas (a region absent from a sample has no row).")
    per_sample = _sample_conditions(t, sample_key, condition_key)
    levels = sorted(per_sample.unique().tolist())
    reference = levels[0] if reference is None else str(reference)
    if reference not in levels:
        raise InputError(f"reference '{reference}' is not a value of '{condition_key}' ({levels}).")
    _refuse_replicates(per_sample, levels, condition_key, sample_key, min_samples)
    rows = []
    for region, part in t.groupby(region_key, observed=True, sort=True):
        cond = part[condition_key].astype(str).to_numpy()
        for group in (lv for lv in levels if lv != reference):
            sel = np.isin(cond, [group, reference])
            y, a, g = part[count_key].to_numpy(float)[sel], part[area_key].to_numpy(float)[sel], cond[sel] == group
            if g.sum() < min_samples or (~g).sum() < min_samples:
                continue
            rows.append({"region": str(region), "group": group, "reference": reference, **_fit_region(y, a, g),
                         "density_group": float(y[g].sum() / a[g].sum()),
                         "density_reference": float(y[~g].sum() / a[~g].sum()),
                         "n_samples_group": int(g.sum()), "n_samples_reference": int((~g).sum())})
    res = pd.DataFrame(rows, columns=DENSITY_COLUMNS)
    if len(res):
        res["padj"] = false_discovery_control(res["pvalue"].to_numpy())
    return res
