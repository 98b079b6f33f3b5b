"""Simulated counts for the spots/cells of simulated sections, with planted condition effects.

Model (per gene ``g`` and spot/cell ``i`` of region ``r``, cell type ``t``, sample ``s``)::

    log2 mu_ig = log2 p_g + R[r, g] + T[t, g] + S[s, g] + D[r, g] * [condition_i != reference]
    mu_ig      = depth * libsize_i * (n_cells_i / cells_per_spot) * softmax-normalised profile
    count_ig   ~ NegativeBinomial(mean mu_ig, dispersion phi_g)   (gamma-Poisson)

``p_g``: log-normal baseline abundances; ``R``: region-specific markers; ``T``: cell-type
markers (when a cell-type column is given); ``S ~ N(0, sample_sd)``: the biological
replicate effect of each sample (animal); ``D``: planted condition effects (log2 fold
changes drawn from ``lfc_range`` with random sign) for ``frac_de`` of genes in each of
``de_regions``; ``libsize ~ logNormal(0, library_size)``. ``cell_loss`` removes a fraction
of cells of a region in non-reference samples (a lesion): fewer cells there, and for spots
(``cells_per_spot`` given) proportionally lower counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import sparse

from ..errors import InputError

if TYPE_CHECKING:  # anndata is imported where an AnnData is made: `import topdown.sim` stays light
    import anndata as ad


def _effects(rng: np.random.Generator, n_levels: int, n_genes: int, frac: float, sd: float) -> np.ndarray:
    """log2 effects: for each level, ``frac`` of genes get N(0, sd), the rest 0."""
    eff = np.zeros((n_levels, n_genes))
    k = int(round(frac * n_genes))
    for i in range(n_levels):
        idx = rng.choice(n_genes, size=k, replace=False)
        eff[i, idx] = rng.normal(0.0, sd, size=k)
    return eff


def _column(obs: pd.DataFrame, key: str) -> pd.Categorical:
    if key not in obs.columns:
        raise InputError(f"obs has no column '{key}' (columns: {', '.join(map(str, obs.columns))}); "
                         f"pass the right key or add it.")
    values = obs[key]
    if isinstance(values.dtype, pd.CategoricalDtype):
        return pd.Categorical(values.astype(str), categories=[str(c) for c in values.cat.categories])
    return pd.Categorical(values.astype(str))


def expression(obs: pd.DataFrame, *, region_key: str = "region", sample_key: str = "sample",
               condition_key: str = "condition", reference: str = "healthy",
               cell_type_key: str | None = None, n_genes: int = 2000,
               de_regions: Sequence[str] | None = None, frac_de: float = 0.05,
               lfc_range: tuple[float, float] = (1.0, 2.0), sample_sd: float = 0.2,
               dispersion: float | np.ndarray = 0.1, library_size: float = 0.3,
               depth: float = 1000.0, frac_markers: float = 0.1, marker_sd: float = 1.0,
               cells_per_spot: float | None = None, cell_loss: Mapping[str, float] | None = None,
               lesion_key: str | None = None, lesion_cell_factor: float = 0.3,
               frac_lesion_genes: float = 0.02, lesion_lfc: float = 2.0,
               seed: int = 0) -> ad.AnnData:
    """Negative-binomial counts for the spots/cells in ``obs``, with known truth.

    Parameters
    ----------
    obs
        One row per spot/cell with region, sample and condition columns (e.g.
        ``Section.cells`` plus sample/condition, or :func:`expression_study`'s obs).
    region_key, sample_key, condition_key
        Columns of ``obs``.
    reference
        The healthy/control condition; other conditions carry the planted effects.
    cell_type_key
        Optional column with cell types: adds cell-type marker genes.
    n_genes
        Number of genes.
    de_regions
        Regions with planted condition effects (default: the first two regions).
    frac_de
        Fraction of genes truly DE in each of ``de_regions`` (chosen independently).
    lfc_range
        Range of the absolute planted log2 fold changes (sign random).
    sample_sd
        SD of the per-sample, per-gene log2 random effect (biological replicate variation).
    dispersion
        NB dispersion (float, or one value per gene); ``var = mu + dispersion * mu**2``.
    library_size
        SD of the log-normal per-spot library-size factor.
    depth
        Mean total counts per spot/cell (per ``cells_per_spot`` cells for spots).
    frac_markers, marker_sd
        Fraction of genes that are region (and cell-type) markers, and SD of their log2 effect.
    cells_per_spot
        If given, rows are spots holding ``Poisson(cells_per_spot)`` cells (at least 1);
        counts scale with the number of cells. ``None``: each row is one cell/spot unit.
    cell_loss
        ``{region: fraction}`` lost in non-reference conditions: cells are removed (rows
        dropped) or, for spots, the cell number is thinned (lower counts there).
    lesion_key
        Optional boolean ``obs`` column marking spots/cells inside a focal lesion (e.g. from
        the layout's ``params['lesion']`` disk): there only ``lesion_cell_factor`` of the
        cells survive (fewer counts for spots, dropped rows for cells) and a lesion program
        (``frac_lesion_genes`` of the genes, up by ``lesion_lfc`` log2) is switched on.
        Truth in ``var['lesion_gene']``. Without it, no extra random draws are made (the
        same seed gives the same counts as before).
    seed
        Random seed; same seed, same counts.

    Returns
    -------
    AnnData: ``X`` and ``layers['counts']`` integer counts (CSR, int32); ``obs`` copied (plus
    ``n_cells`` and ``size_factor`` truth); ``var`` with ``base_mean`` (expected count per
    unit), ``de_<region>`` (bool) and ``lfc_<region>`` (planted log2FC, 0 if not DE) for
    every region; ``uns['sim_expression']`` the parameters.

    Examples
    --------
    >>> import pandas as pd
    >>> import topdown as td
    >>> obs = pd.DataFrame({"region": ["a", "b"] * 50, "sample": ["s1"] * 50 + ["s2"] * 50,
    ...                     "condition": ["healthy"] * 50 + ["disease"] * 50})
    >>> sim = td.sim.expression(obs, n_genes=100, de_regions=["a"], seed=0)
    >>> sim.shape, int(sim.var["de_a"].sum())
    ((100, 100), 5)
    """
    lo, hi = _check_arguments(obs, n_genes, lfc_range, frac_de)
    rng = np.random.default_rng(seed)
    obs = obs.copy()
    regions = _column(obs, region_key)
    samples = _column(obs, sample_key)
    conds = _column(obs, condition_key)
    region_names = [str(r) for r in regions.categories]
    if de_regions is None:
        de_regions = region_names[:2]
    cell_loss = _check_regions(region_names, de_regions, cell_loss, region_key)
    diseased = np.asarray(conds.astype(str)) != str(reference)
    keep, n_cells, lesion = _anatomy_change(rng, obs, regions, diseased, cells_per_spot, cell_loss,
                                            lesion_key, lesion_cell_factor)
    obs, regions, samples, conds, n_cells, diseased, lesion = (
        obs.loc[keep], regions[keep], samples[keep], conds[keep], n_cells[keep], diseased[keep], lesion[keep])
    genes = _gene_effects(rng, obs, n_genes, region_names, len(samples.categories), cell_type_key=cell_type_key,
                          de_regions=de_regions, frac_de=frac_de, lfc=(lo, hi), sample_sd=sample_sd,
                          dispersion=dispersion, frac_markers=frac_markers, marker_sd=marker_sd,
                          lesion=(frac_lesion_genes, lesion_lfc) if lesion_key is not None else None)
    prof, inverse = _profiles(genes, regions, samples, diseased, lesion)
    size = rng.lognormal(-0.5 * library_size**2, library_size, len(obs)) if library_size > 0 else np.ones(len(obs))
    X = _nb_counts(rng, prof, inverse, depth * size * (n_cells / (cells_per_spot or 1.0)), genes.phi)
    phi = genes.phi
    obs["n_cells"] = n_cells.astype(np.int64)
    obs["size_factor"] = size
    obs.index = obs.index.astype(str)
    var = _var(genes, region_names, depth, lesion_key is not None)
    import anndata as ad

    out = ad.AnnData(X=X, obs=obs, var=var)
    out.layers["counts"] = X.copy()
    out.uns["sim_expression"] = {
        "region_key": region_key, "sample_key": sample_key, "condition_key": condition_key,
        "reference": str(reference), "cell_type_key": cell_type_key or "", "n_genes": int(n_genes),
        "de_regions": [str(r) for r in de_regions], "frac_de": float(frac_de), "lfc_range": [lo, hi],
        "sample_sd": float(sample_sd), "dispersion": phi.tolist() if phi.std() > 0 else float(phi[0]),
        "library_size": float(library_size), "depth": float(depth), "frac_markers": float(frac_markers),
        "marker_sd": float(marker_sd), "cells_per_spot": float(cells_per_spot or 0),
        "cell_loss": {"regions": list(cell_loss), "fractions": list(cell_loss.values())}, "seed": int(seed),
        "lesion": {"key": lesion_key or "", "cell_factor": float(lesion_cell_factor),
                   "frac_genes": float(frac_lesion_genes), "lfc": float(lesion_lfc)},
    }
    return out


def _check_arguments(obs, n_genes: int, lfc_range, frac_de: float) -> tuple[float, float]:
    """The planted |log2FC| range ``(low, high)``, after checking the simple arguments."""
    if not isinstance(obs, pd.DataFrame) or len(obs) == 0:
        raise InputError("obs must be a non-empty pandas DataFrame with region/sample/condition columns.")
    if n_genes < 1:
        raise InputError("n_genes must be >= 1.")
    lo, hi = (float(v) for v in lfc_range)
    if not 0 <= lo <= hi:
        raise InputError(f"lfc_range must be (low, high) with 0 <= low <= high, got {lfc_range}.")
    if not 0 <= frac_de <= 1:
        raise InputError(f"frac_de must be in [0, 1], got {frac_de}.")
    return lo, hi


def _check_regions(region_names: list[str], de_regions, cell_loss, region_key: str) -> dict[str, float]:
    """``cell_loss`` as ``{region: fraction}``, after checking it and ``de_regions``."""
    unknown = [r for r in de_regions if str(r) not in region_names]
    if unknown:
        raise InputError(f"de_regions {unknown} not in obs['{region_key}'] ({', '.join(region_names)}).")
    cell_loss = {str(k): float(v) for k, v in (cell_loss or {}).items()}
    for reg, frac in cell_loss.items():
        if reg not in region_names or not 0 <= frac < 1:
            raise InputError(f"cell_loss needs existing regions and fractions in [0, 1); got {reg}: {frac}.")
    return cell_loss


def _anatomy_change(rng, obs: pd.DataFrame, regions: pd.Categorical, diseased: np.ndarray,
                    cells_per_spot: float | None, cell_loss: dict[str, float], lesion_key: str | None,
                    lesion_cell_factor: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(rows kept, cells per row, in lesion)``: cells removed (rows) in a lesioned region,
    or thinned per spot."""
    n_cells = np.ones(len(obs)) if cells_per_spot is None else np.maximum(1, rng.poisson(cells_per_spot, len(obs)))
    keep = np.ones(len(obs), dtype=bool)
    for reg, frac in cell_loss.items():
        hit = diseased & (np.asarray(regions.astype(str)) == reg)
        if cells_per_spot is None:
            keep &= ~(hit & (rng.random(len(obs)) < frac))
        else:
            n_cells[hit] = np.maximum(1, rng.binomial(n_cells[hit].astype(np.int64), 1 - frac))
    lesion = np.zeros(len(obs), dtype=bool)
    if lesion_key is not None:
        if lesion_key not in obs.columns:
            raise InputError(f"lesion_key '{lesion_key}' is not a column of obs.")
        if not 0 < lesion_cell_factor <= 1:
            raise InputError(f"lesion_cell_factor must be in (0, 1], got {lesion_cell_factor}.")
        lesion = obs[lesion_key].to_numpy().astype(bool)
        if cells_per_spot is None:
            keep &= ~(lesion & (rng.random(len(obs)) >= lesion_cell_factor))
        else:
            n_cells[lesion] = np.maximum(1, rng.binomial(n_cells[lesion].astype(np.int64), lesion_cell_factor))
    return keep, n_cells, lesion


@dataclass
class _Genes:
    """Gene-level parameters of the model (see the module docstring)."""

    log2_p: np.ndarray  # (G,) baseline log2 abundance
    R: np.ndarray  # (regions, G) region markers
    T: np.ndarray  # (cell types, G) cell-type markers (one zero row without cell types)
    t_codes: np.ndarray  # (n,) cell type of each row
    S: np.ndarray  # (samples, G) sample random effects
    D: np.ndarray  # (regions, G) planted condition effects
    L: np.ndarray  # (G,) lesion program
    phi: np.ndarray  # (G,) NB dispersion


def _gene_effects(rng, obs: pd.DataFrame, n_genes: int, region_names: list[str], n_samples: int, *,
                  cell_type_key, de_regions, frac_de: float, lfc: tuple[float, float], sample_sd: float,
                  dispersion, frac_markers: float, marker_sd: float,
                  lesion: tuple[float, float] | None) -> _Genes:
    """Draw the gene-level parameters (``lesion``: fraction of lesion genes and their log2FC)."""
    log2_p = rng.normal(0.0, 1.5, n_genes) / np.log(2)
    R = _effects(rng, len(region_names), n_genes, frac_markers, marker_sd)
    if cell_type_key is not None:
        ctypes = _column(obs, cell_type_key)
        T = _effects(rng, len(ctypes.categories), n_genes, frac_markers, marker_sd)
        t_codes = ctypes.codes.astype(np.int64)
    else:
        T, t_codes = np.zeros((1, n_genes)), np.zeros(len(obs), dtype=np.int64)
    S = rng.normal(0.0, sample_sd, (n_samples, n_genes))
    D = np.zeros((len(region_names), n_genes))
    n_de = int(round(frac_de * n_genes))
    for reg in de_regions:
        idx = rng.choice(n_genes, size=n_de, replace=False)
        D[region_names.index(str(reg)), idx] = rng.uniform(*lfc, n_de) * rng.choice([-1.0, 1.0], n_de)
    L = np.zeros(n_genes)
    if lesion is not None:
        n_les = int(round(lesion[0] * n_genes))
        L[rng.choice(n_genes, size=n_les, replace=False)] = float(lesion[1])
    phi = np.broadcast_to(np.asarray(dispersion, dtype=float), (n_genes,)).copy()
    if (phi <= 0).any():
        raise InputError("dispersion must be > 0.")
    return _Genes(log2_p, R, T, t_codes, S, D, L, phi)


def _profiles(genes: _Genes, regions: pd.Categorical, samples: pd.Categorical, diseased: np.ndarray,
              lesion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One expected profile per (region, cell type, sample, diseased, lesion) combination, and
    the combination of each row."""
    r_codes = regions.codes.astype(np.int64)
    s_codes = samples.codes.astype(np.int64)
    combo = np.stack([r_codes, genes.t_codes, s_codes, diseased.astype(np.int64), lesion.astype(np.int64)],
                     axis=1)
    uniq, inverse = np.unique(combo, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    logp = (genes.log2_p[None, :] + genes.R[uniq[:, 0]] + genes.T[uniq[:, 1]] + genes.S[uniq[:, 2]]
            + genes.D[uniq[:, 0]] * uniq[:, 3:4] + genes.L[None, :] * uniq[:, 4:5])
    prof = np.exp2(logp - logp.max(axis=1, keepdims=True))
    prof /= prof.sum(axis=1, keepdims=True)
    return prof, inverse


def _nb_counts(rng, prof: np.ndarray, inverse: np.ndarray, scale: np.ndarray, phi: np.ndarray) -> sparse.csr_matrix:
    """Gamma-Poisson counts with mean ``prof[inverse] * scale``, in row chunks, straight into CSR."""
    n_genes = prof.shape[1]
    chunks = []
    step = max(1, 2_000_000 // n_genes)
    for start in range(0, len(inverse), step):
        sl = slice(start, start + step)
        mu = prof[inverse[sl]] * scale[sl, None]
        lam = rng.gamma(1.0 / phi[None, :], mu * phi[None, :])
        chunks.append(sparse.csr_matrix(rng.poisson(lam).astype(np.int32)))
    return sparse.vstack(chunks, format="csr") if chunks else sparse.csr_matrix((0, n_genes), dtype=np.int32)


def _var(genes: _Genes, region_names: list[str], depth: float, with_lesion: bool) -> pd.DataFrame:
    """Gene truth: expected count per unit, planted DE per region, lesion genes."""
    base = (depth * np.exp2(genes.log2_p) / np.exp2(genes.log2_p).sum())
    var = pd.DataFrame({"base_mean": base}, index=[f"gene{i:05d}" for i in range(len(base))])
    for j, reg in enumerate(region_names):
        var[f"de_{reg}"] = genes.D[j] != 0
        var[f"lfc_{reg}"] = genes.D[j]
    if with_lesion:
        var["lesion_gene"] = genes.L != 0
    return var


def expression_study(n_per_condition: int = 3, regions: Sequence[str] = (
        "cortex", "hippocampus", "thalamus", "striatum", "fiber_tracts"),
        conditions: Sequence[str] = ("healthy", "disease"), n_spots: int = 1000,
        region_weights: Sequence[float] | None = None, *, seed: int = 0, **kwargs) -> ad.AnnData:
    """A multi-sample study in one call: builds the obs, then :func:`expression`.

    Each sample (``<condition>_<k>``) gets ``n_spots`` spots whose regions are drawn with
    sample-specific proportions around ``region_weights``; ``obs['sex']`` alternates F/M
    within each condition (a covariate for ``design='~ sex + condition'``). The first of
    ``conditions`` is the reference. Extra keyword arguments go to :func:`expression`.

    Examples
    --------
    >>> import topdown as td
    >>> sim = td.sim.expression_study(n_per_condition=2, n_genes=50, n_spots=100, seed=1)
    >>> sorted(sim.obs["sample"].unique())[:2]
    ['disease_1', 'disease_2']
    """
    if n_per_condition < 1 or n_spots < 1 or len(conditions) < 2 or not regions:
        raise InputError("need n_per_condition >= 1, n_spots >= 1, >= 2 conditions and >= 1 region.")
    rng = np.random.default_rng([seed, 1])
    w = np.ones(len(regions)) if region_weights is None else np.asarray(region_weights, dtype=float)
    w = w / w.sum()
    frames = []
    for cond in conditions:
        for k in range(1, n_per_condition + 1):
            prop = rng.dirichlet(w * 50)
            reg = rng.choice(len(regions), size=n_spots, p=prop)
            frames.append(pd.DataFrame({
                "sample": f"{cond}_{k}", "condition": cond, "sex": "F" if k % 2 else "M",
                "region": np.asarray(regions)[reg]}))
    obs = pd.concat(frames, ignore_index=True)
    obs.index = [f"spot{i}" for i in range(len(obs))]
    obs["region"] = pd.Categorical(obs["region"], categories=list(regions))
    obs["condition"] = pd.Categorical(obs["condition"], categories=list(conditions))
    obs["sample"] = pd.Categorical(obs["sample"])
    kwargs.setdefault("reference", conditions[0])
    return expression(obs, seed=seed, **kwargs)
