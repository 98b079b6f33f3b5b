"""Plots of region-level DE results: volcano per region, top-gene heatmap, DE counts per region."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from ..errors import InputError
from ._figure import finish

UP, DOWN, NS = "#c0392b", "#2e6fbd", "#b0b0b0"


def _table(res) -> pd.DataFrame:
    if isinstance(res, pd.DataFrame):
        df = res
    elif hasattr(res, "uns"):
        from ..get import region_de_df

        df = region_de_df(res)
    else:
        raise InputError("pass the DataFrame returned by td.tl.region_de, or an AnnData holding uns['region_de'].")
    need = {"region", "gene", "log2fc", "padj"}
    if not need.issubset(df.columns):
        raise InputError(f"the results table lacks columns {sorted(need - set(df.columns))}; pass td.tl.region_de output.")
    return df


def _suffix(df: pd.DataFrame) -> str:
    exploratory = bool(df.attrs.get("exploratory", False)) or (
        "exploratory" in df.columns and df["exploratory"].astype(bool).any())
    return " (exploratory, per-spot)" if exploratory else ""


def _volcano(ax, d: pd.DataFrame, padj: float, lfc: float, n_labels: int, title: str) -> None:
    p = d["padj"].to_numpy(float)
    pv = d["pvalue"].to_numpy(float) if "pvalue" in d.columns else p
    y = -np.log10(np.clip(np.where(np.isnan(pv), 1.0, pv), 1e-300, 1))
    x = d["log2fc"].to_numpy(float)
    sig = (p < padj) & (np.abs(x) >= lfc)
    colors = np.where(sig & (x > 0), UP, np.where(sig & (x < 0), DOWN, NS))
    ax.scatter(x, y, c=colors, s=6, linewidths=0, rasterized=len(d) > 5000)
    for v in (-lfc, lfc):
        if lfc > 0:
            ax.axvline(v, color="#888", lw=0.6, ls="--")
    top = np.argsort(np.where(sig, pv, np.inf))[: n_labels]
    for i in top:
        if sig[i]:
            ax.annotate(str(d["gene"].iloc[i]), (x[i], y[i]), fontsize=7, xytext=(2, 2),
                        textcoords="offset points")
    ax.set_xlabel("log2 fold change")
    ax.set_ylabel("-log10 p-value")
    cut = f", |log2FC|>={lfc:g}" if lfc > 0 else ""
    ax.set_title(f"{title}: {int(sig.sum())} DE (padj<{padj:g}{cut})", fontsize=9)


def region_de(res, region: str | None = None, *, padj: float = 0.05, lfc: float = 1.0,
              n_labels: int = 5, ncols: int = 3, ax=None, show: bool | None = None,
              save: str | os.PathLike | None = None):
    """Volcano plot of region DE results, for one region or one panel per region.

    Parameters
    ----------
    res
        Output of :func:`topdown.tl.region_de` (or an AnnData with ``uns['region_de']``).
    region
        Region to plot; ``None`` draws one panel per region (then ``ax`` must be None).
    padj, lfc
        Thresholds for colouring a gene as DE (up red, down blue).
    n_labels
        Label this many most significant DE genes per panel.
    ax, show, save
        Matplotlib axes to draw in; show the figure; save it to this path (atomic write).

    Returns
    -------
    ``None`` when the figure is shown (``show=True``, or interactive matplotlib; scanpy's
    convention), else the axes (one Axes, or a list of Axes for several regions).

    Examples
    --------
    >>> res = td.tl.region_de(adata, reference="healthy")  # doctest: +SKIP
    >>> td.pl.region_de(res, region="hippocampus")  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    df = _table(res)
    regions = list(dict.fromkeys(df["region"].astype(str))) if region is None else [str(region)]
    missing = [r for r in regions if r not in set(df["region"].astype(str))]
    if missing:
        raise InputError(f"region {missing[0]!r} not in the results (have: {', '.join(df['region'].astype(str).unique())}).")
    if ax is not None and len(regions) > 1:
        raise InputError("ax= draws one region; pass region= as well, or leave ax=None for a panel per region.")
    if ax is None:
        n = len(regions)
        nc = min(ncols, n)
        nr = int(np.ceil(n / nc))
        fig, axs = plt.subplots(nr, nc, figsize=(3.6 * nc, 3.2 * nr), squeeze=False)
        axes = list(axs.ravel())
        for extra in axes[n:]:
            extra.set_visible(False)
        axes = axes[:n]
    else:
        fig, axes = ax.figure, [ax]
    for a, reg in zip(axes, regions, strict=True):
        d = df[df["region"].astype(str) == reg]
        _volcano(a, d, padj, lfc, n_labels, f"{reg}{_suffix(df)}")
    fig.tight_layout()
    return finish(fig, axes[0] if len(axes) == 1 else axes, show, save)


def _top_genes(df: pd.DataFrame, n_top: int, padj: float) -> list[str]:
    genes: list[str] = []
    for _, d in df.groupby(df["region"].astype(str), sort=False):
        d = d[d["padj"] < padj].sort_values("padj")
        genes.extend(g for g in d["gene"].astype(str).head(n_top) if g not in genes)
    return genes


def _condition_means(adata, genes: list[str], params: dict) -> pd.DataFrame:
    """Mean log2 CPM of pseudobulk samples per (region, condition) for ``genes``."""
    from ..tl import pseudobulk

    ck, sk, rk = params["condition_key"], params["sample_key"], params["region_key"]
    layer = params.get("layer")
    pb = pseudobulk(adata, sk, rk, layer=None if layer in (None, "") else layer, min_cells=1, min_counts=1,
                    obs_keys=[ck])
    X = pb.X.toarray().astype(float)
    cpm = np.log2(1 + 1e6 * X / np.maximum(X.sum(axis=1, keepdims=True), 1))
    frame = pd.DataFrame(cpm, columns=pb.var_names.astype(str))[genes]
    cols = pb.obs[rk].astype(str).to_numpy() + " | " + pb.obs[ck].astype(str).to_numpy()
    means = frame.groupby(cols, sort=False).mean().T
    ref = str(params.get("reference", ""))
    order = sorted(means.columns, key=lambda c: (c.split(" | ")[0], c.split(" | ")[1] != ref, c))
    return means[order]


def region_de_heatmap(res, adata=None, *, n_top: int = 5, padj: float = 0.05, ax=None,
                      show: bool | None = None, save: str | os.PathLike | None = None):
    """Heatmap of the top DE genes of each region.

    Without ``adata``: log2 fold change of each top gene (rows) in each region (columns).
    With ``adata`` (the data the test ran on): z-scored mean log2 CPM of the pseudobulk
    samples per region x condition, so the conditions can be compared side by side.

    Parameters
    ----------
    res
        Output of :func:`topdown.tl.region_de` (or an AnnData with ``uns['region_de']``).
    adata
        Optional AnnData holding the counts (same keys as the test).
    n_top, padj
        Genes per region, ranked by padj among those with padj below this.
    ax, show, save
        As in :func:`region_de`.

    Returns
    -------
    ``None`` when the figure is shown (scanpy's convention), else the Axes.

    Examples
    --------
    >>> td.pl.region_de_heatmap(res, adata, n_top=5)  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    df = _table(res)
    genes = _top_genes(df, n_top, padj)
    if not genes:
        raise InputError(f"no gene has padj < {padj} in any region; nothing to show (raise padj=).")
    if adata is not None:
        params = df.attrs.get("params") or {}
        if not params and hasattr(res, "uns"):
            params = dict(res.uns["region_de"]["params"])
        if not params:
            raise InputError("the results carry no parameters (df.attrs['params']); pass the table from td.tl.region_de.")
        mat = _condition_means(adata, genes, params)
        mat = mat.sub(mat.mean(axis=1), axis=0).div(mat.std(axis=1).replace(0, 1), axis=0)
        label, cmap = "z-score of mean log2 CPM", "viridis"
    else:
        mat = df[df["gene"].astype(str).isin(genes)].pivot_table(
            index="gene", columns="region", values="log2fc", aggfunc="first").reindex(genes)
        label, cmap = "log2 fold change", "RdBu_r"
    if ax is None:
        _, ax = plt.subplots(figsize=(1.0 + 0.6 * mat.shape[1], 1.0 + 0.22 * mat.shape[0]))
    values = mat.to_numpy(float)
    lim = np.nanmax(np.abs(values)) if np.isfinite(values).any() else 1.0
    kw = {"vmin": -lim, "vmax": lim} if cmap == "RdBu_r" else {}
    im = ax.imshow(np.ma.masked_invalid(values), aspect="auto", cmap=cmap, interpolation="nearest", **kw)
    ax.set_yticks(range(mat.shape[0]), [str(g) for g in mat.index], fontsize=7)
    ax.set_xticks(range(mat.shape[1]), [str(c) for c in mat.columns], rotation=60, ha="right", fontsize=7)
    ax.figure.colorbar(im, ax=ax, label=label, shrink=0.6)
    ax.set_title(f"top {n_top} genes per region{_suffix(df)}", fontsize=9)
    return finish(ax.figure, ax, show, save)


def region_de_counts(res, *, padj: float = 0.05, lfc: float = 0.0, ax=None, show: bool | None = None,
                     save: str | os.PathLike | None = None):
    """Bar chart of the number of DE genes per region, split into up and down.

    Parameters
    ----------
    res
        Output of :func:`topdown.tl.region_de` (or an AnnData with ``uns['region_de']``).
    padj, lfc
        A gene counts as DE with ``padj < padj`` and ``|log2fc| >= lfc``.
    ax, show, save
        As in :func:`region_de`.

    Returns
    -------
    ``None`` when the figure is shown (scanpy's convention), else the Axes.

    Examples
    --------
    >>> td.pl.region_de_counts(res)  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    df = _table(res)
    sig = (df["padj"].to_numpy(float) < padj) & (np.abs(df["log2fc"].to_numpy(float)) >= lfc)
    regions = list(dict.fromkeys(df["region"].astype(str)))
    reg = df["region"].astype(str).to_numpy()
    up = np.array([(sig & (reg == r) & (df["log2fc"].to_numpy() > 0)).sum() for r in regions])
    down = np.array([(sig & (reg == r) & (df["log2fc"].to_numpy() < 0)).sum() for r in regions])
    if ax is None:
        _, ax = plt.subplots(figsize=(1.5 + 0.7 * len(regions), 3.2))
    pos = np.arange(len(regions))
    ax.bar(pos, up, color=UP, label="up")
    ax.bar(pos, down, bottom=up, color=DOWN, label="down")
    ax.set_xticks(pos, regions, rotation=45, ha="right")
    ax.set_ylabel(f"DE genes (padj < {padj:g})")
    ax.set_title(f"DE genes per region{_suffix(df)}", fontsize=9)
    ax.legend(frameon=False, fontsize=8)
    return finish(ax.figure, ax, show, save)
