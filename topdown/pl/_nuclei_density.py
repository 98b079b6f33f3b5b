"""Nuclei per mm² of each sample, region by region and condition by condition."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from ..errors import InputError
from ._figure import finish


def _conditions(table: pd.DataFrame, condition_key: str, results: pd.DataFrame | None,
                reference: str | None) -> list[str]:
    """The conditions in plotting order: the reference first, then the others sorted."""
    levels = sorted(table[condition_key].astype(str).unique())
    if reference is None and results is not None and len(results) and "reference" in results.columns:
        reference = str(results["reference"].iloc[0])
    if reference is not None and reference not in levels:
        raise InputError(f"reference '{reference}' is not a value of '{condition_key}' ({levels}).")
    return levels if reference is None else [reference, *[lv for lv in levels if lv != reference]]


def _test_line(results: pd.DataFrame | None, region: str) -> str:
    """``ratio 0.68, padj 0.020`` per compared group of ``region`` (empty when it was not tested)."""
    if results is None or not len(results):
        return ""
    rows = results[results["region"].astype(str) == region]
    several = rows["group"].nunique() > 1 if "group" in rows.columns else False
    return "\n".join((f"{r['group']}: " if several else "") + f"ratio {r['density_ratio']:.2f}, padj {r['padj']:.3f}"
                     for _, r in rows.iterrows())


def nuclei_density(table: pd.DataFrame, results: pd.DataFrame | None = None, *, condition_key: str = "condition",
                   sample_key: str = "sample", region_key: str = "region", count_key: str = "n_nuclei",
                   area_key: str = "area_mm2", truth_key: str | None = None, regions=None,
                   reference: str | None = None, show: bool | None = None,
                   save: str | os.PathLike | None = None, dpi: int = 150):
    """Plot nuclei per mm² of every sample, one panel per region, conditions side by side.

    Each dot is one sample (its nuclei over its tissue area in the region); a short bar marks each
    condition's pooled density (all its nuclei over all its area: what the count model compares).
    With the results of :func:`topdown.tl.nuclei_density_test` each panel's title gives the density
    ratio and adjusted p-value.

    Parameters
    ----------
    table
        One row per sample x region, as given to :func:`topdown.tl.nuclei_density_test`
        (e.g. ``uns['nuclei']['per_region']`` of each sample with its sample and condition added).
    results
        The test's output (optional): titles, and the reference condition plotted first.
    condition_key, sample_key, region_key, count_key, area_key
        Column names of ``table``.
    truth_key
        A column of known counts (e.g. a simulation's true nuclei), drawn as crosses beside the
        found ones.
    regions
        Regions to plot, in order (default: those tested in ``results``, else all).
    reference
        Condition plotted first (default: ``results``' reference, else sorted order).
    show, save, dpi
        Show the figure (default: when matplotlib is interactive, as in a notebook); write it
        (PNG, PDF, SVG); resolution.

    Returns
    -------
    The array of axes, or ``None`` when the figure is shown.

    Examples
    --------
    >>> import topdown as td
    >>> res = td.tl.nuclei_density_test(table, reference="healthy")  # doctest: +SKIP
    >>> td.pl.nuclei_density(table, res, save="density.png")  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    need = [condition_key, sample_key, region_key, count_key, area_key, *([truth_key] if truth_key else [])]
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise InputError(f"the table lacks column(s) {missing}; it needs {need} (one row per sample x region, "
                         "as given to td.tl.nuclei_density_test).")
    area = table[area_key].to_numpy(float)
    if not (np.isfinite(area) & (area > 0)).all():
        raise InputError(f"'{area_key}' must be positive areas (a region absent from a sample has no row).")
    present = list(dict.fromkeys(table[region_key].astype(str)))
    if regions is None:
        tested = [] if results is None or not len(results) else list(dict.fromkeys(results["region"].astype(str)))
        regions = [r for r in tested if r in present] or present
    regions = [str(r) for r in ([regions] if isinstance(regions, str) else regions)]
    unknown = [r for r in regions if r not in present]
    if unknown or not regions:
        raise InputError(f"region(s) {unknown or regions} are not in the table's '{region_key}' column ({present}).")
    levels = _conditions(table, condition_key, results, reference)
    fig, axes = plt.subplots(1, len(regions), figsize=(3.4 * len(regions), 3.6), squeeze=False,
                             layout="constrained")
    for ax, region in zip(axes[0], regions, strict=True):
        part = table[table[region_key].astype(str) == region]
        for x, level in enumerate(levels):
            grp = part[part[condition_key].astype(str) == level].sort_values(sample_key)
            if not len(grp):
                continue
            spread = np.linspace(-0.12, 0.12, len(grp)) if len(grp) > 1 else np.zeros(1)
            ax.scatter(x + spread, grp[count_key] / grp[area_key], color="C0", zorder=3,
                       label="found" if truth_key and x == 0 else None)
            pooled = grp[count_key].sum() / grp[area_key].sum()
            ax.hlines(pooled, x - 0.22, x + 0.22, color="0.2", lw=1.5, zorder=2)
            if truth_key:
                ax.scatter(x + spread, grp[truth_key] / grp[area_key], color="C3", marker="x", zorder=3,
                           label="true" if x == 0 else None)
        ax.set_xticks(range(len(levels)), levels)
        ax.set_xlim(-0.5, len(levels) - 0.5)
        ax.set_ylim(0, ax.get_ylim()[1] * 1.06)  # room above the highest dot
        line = _test_line(results, region)
        ax.set_title(f"{region}\n{line}" if line else region)
        ax.set_ylabel("nuclei per mm²")
    if truth_key:
        axes[0][0].legend(frameon=False)
    return finish(fig, axes[0], show, save, dpi=dpi)
