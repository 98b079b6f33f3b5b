"""Validation of region-level DE (pseudobulk + DESeq2 GLM, engine nbglm) on simulated and real data.

Run by hand; prints figures, writes plots and a JSON summary to --out:

    python benchmarks/de_validation.py            # full: 3 vs 3 samples, 5 regions, 2,000 genes
    python benchmarks/de_validation.py --quick    # about a minute: 200 genes, 3 regions

1. Planted effects: 5 % of genes truly DE (|log2FC| in [1, 2]) in two regions; per-region
   FDR at padj < 0.05 and power (over all planted genes, and over those that pass the
   expression filter and are therefore tested).
2. Null calibration: no planted effect, sample random effects on: genes called by the
   pseudobulk DESeq2 path vs a per-spot Wilcoxon test (scanpy rank_genes_groups) on the
   same data.
3. Real data: the Visium prostate normal-vs-cancer subset (one section per condition,
   regions from expression clustering): the replicate-aware path refuses; the exploratory
   path runs.
Pseudobulk speed is measured in benchmarks/pseudobulk.py.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("TOPDOWN_NO_PROGRESS", "1")

REGIONS = ["cortex", "hippocampus", "thalamus", "striatum", "fiber_tracts"]


def confusion(res: pd.DataFrame, var: pd.DataFrame, regions: list[str], alpha: float = 0.05) -> pd.DataFrame:
    """Per-region calls, FDR and power against the simulator's truth columns."""
    rows = []
    for reg in regions:
        r = res[res["region"] == reg].set_index("gene")
        truth = var[f"de_{reg}"].astype(bool)
        called = r.index[r["padj"].to_numpy(float) < alpha]
        tp = int(truth.loc[called].sum())
        n_true = int(truth.sum())
        tested_true = int(truth.reindex(r.index).fillna(False).astype(bool).sum())
        rows.append({"region": reg, "planted": n_true, "tested": len(r), "called": len(called),
                     "true_pos": tp, "false_pos": len(called) - tp,
                     "fdr": (len(called) - tp) / len(called) if len(called) else 0.0,
                     "power": tp / n_true if n_true else float("nan"),
                     "power_tested": tp / tested_true if tested_true else float("nan")})
    return pd.DataFrame(rows)


def planted(args, td, expression_study) -> tuple[dict, pd.DataFrame, object]:
    regions = REGIONS[: args.regions]
    sim = expression_study(n_per_condition=3, regions=regions, n_genes=args.genes, n_spots=args.spots,
                           de_regions=regions[:2], frac_de=0.05, lfc_range=(1.0, 2.0), sample_sd=0.2,
                           depth=args.depth, seed=args.seed)
    t0 = time.perf_counter()
    res = td.tl.region_de(sim, condition_key="condition", sample_key="sample", reference="healthy",
                          engine=args.engine)
    dt = time.perf_counter() - t0
    table = confusion(res, sim.var, regions)
    print(f"\n[1] planted effects: 3 vs 3 samples, {len(regions)} regions, {args.genes} genes, "
          f"{args.spots} spots/sample, depth {args.depth:g} counts/spot, 5% DE in {regions[:2]} "
          f"(DESeq2 GLM, engine {args.engine}, {dt:.1f} s)")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    de = table.iloc[:2]
    ok = bool((de["fdr"] <= 0.1).all() and (de["power"] >= 0.8).all())
    print(f"  targets FDR <= 0.1 and power >= 0.8 in the DE regions: {'MET' if ok else 'NOT MET'}; "
          f"false calls in null regions: {int(table.iloc[2:]['called'].sum())}")
    out = {"table": table.to_dict(orient="records"), "seconds": dt, "targets_met": ok}
    if args.compare:
        out["agreement"] = compare_engines(args, td, sim, res, regions)
    return out, res, sim


def compare_engines(args, td, sim, res: pd.DataFrame, regions: list[str]) -> dict:
    """The same planted data with the other engine: log2FC Pearson r and Jaccard of the calls."""
    other = "pydeseq2" if args.engine == "nbglm" else "nbglm"
    t0 = time.perf_counter()
    ref = td.tl.region_de(sim, reference="healthy", engine=other, key_added=None)
    dt = time.perf_counter() - t0
    both = res.merge(ref, on=["region", "group", "gene"], suffixes=("", "_other"))
    fin = np.isfinite(both["log2fc"]) & np.isfinite(both["log2fc_other"])
    r = float(np.corrcoef(both.loc[fin, "log2fc"], both.loc[fin, "log2fc_other"])[0, 1])
    a, b = set(both.index[both["padj"] < 0.05]), set(both.index[both["padj_other"] < 0.05])
    jac = len(a & b) / max(1, len(a | b))
    t_other = confusion(ref, sim.var, regions)
    print(f"  vs engine {other} on the same data ({dt:.1f} s): log2FC Pearson r = {r:.4f}, Jaccard of "
          f"padj < 0.05 calls = {jac:.3f} ({len(a)} vs {len(b)} calls); {other}: FDR "
          f"{t_other.iloc[:2]['fdr'].round(3).tolist()}, power {t_other.iloc[:2]['power'].round(3).tolist()}")
    return {"other": other, "seconds_other": dt, "pearson_log2fc": r, "jaccard_calls": jac,
            "calls": len(a), "calls_other": len(b)}


def null(args, td, expression_study) -> dict:
    from topdown.tl._region_de import ExploratoryWarning

    regions = REGIONS[: args.null_regions]
    sim = expression_study(n_per_condition=3, regions=regions, n_genes=args.genes, n_spots=args.spots,
                           frac_de=0.0, sample_sd=0.2, depth=args.depth, seed=args.seed + 1)
    t0 = time.perf_counter()
    res = td.tl.region_de(sim, reference="healthy", key_added=None, engine=args.engine)
    t_d = time.perf_counter() - t0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExploratoryWarning)
        t0 = time.perf_counter()
        wil = td.tl.region_de(sim, reference="healthy", method="wilcoxon", key_added=None)
        t_w = time.perf_counter() - t0
    rows = []
    for reg in regions:
        d = res[res["region"] == reg]
        w = wil[wil["region"] == reg]
        rows.append({"region": reg, "tested_deseq2": len(d), "called_deseq2": int((d["padj"] < 0.05).sum()),
                     "tested_wilcoxon": len(w), "called_wilcoxon": int((w["padj"] < 0.05).sum()),
                     "min_pvalue_deseq2": float(d["pvalue"].min())})
    table = pd.DataFrame(rows)
    print(f"\n[2] null calibration (no planted effect, sample SD 0.2 log2): pseudobulk DESeq2 ({t_d:.1f} s) "
          f"vs per-spot Wilcoxon, scanpy rank_genes_groups ({t_w:.1f} s), calls at padj < 0.05")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    p = res["pvalue"].dropna().to_numpy()
    print(f"  DESeq2 p-values under the null: fraction < 0.05 = {(p < 0.05).mean():.3f} (uniform: 0.05)")
    return {"table": table.to_dict(orient="records"), "deseq2_frac_p_below_0.05": float((p < 0.05).mean())}


def prostate(args, td) -> dict:
    from topdown.errors import InputError
    from topdown.io import read_giotto_visium
    from topdown.tl._expression_regions import expression_regions
    from topdown.tl._region_de import ExploratoryWarning

    path = Path(args.prostate)
    if not path.exists():
        print(f"\n[3] prostate data not found at {path}; skipped")
        return {"skipped": True}
    adata = read_giotto_visium(path)
    expression_regions(adata, n_regions=3, seed=0)
    counts = adata.obs.groupby(["region", "condition"], observed=True).size().unstack(fill_value=0)
    print("\n[3] Visium prostate normal (NP) vs cancer (CP), one section each; regions = k-means (k=3) on "
          "20 PCs of log-CP10k, PCs centred per section so clusters are compartments shared by both:")
    print(counts.to_string())
    try:
        td.tl.region_de(adata, reference="normal")
        refused = ""
    except InputError as exc:
        refused = str(exc)
        print(f"  deseq2 path refused (InputError): {refused}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ExploratoryWarning)
        res = td.tl.region_de(adata, reference="normal", method="wilcoxon")
    n_warn = sum(issubclass(w.category, ExploratoryWarning) for w in caught)
    calls = res.groupby("region")["padj"].apply(lambda p: int((p < 0.05).sum()))
    print(f"  exploratory Wilcoxon ran: exploratory column all True = {bool(res['exploratory'].all())}, "
          f"ExploratoryWarning raised = {n_warn > 0}; exploratory calls (padj < 0.05) per region: "
          f"{calls.to_dict()}")
    return {"refused": refused, "exploratory_calls": calls.to_dict(), "warned": n_warn > 0}, res


def figures(out: Path, res: pd.DataFrame, sim, td) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    td.pl.region_de(res, show=False, save=out / "volcano_planted.png")
    td.pl.region_de_counts(res, show=False, save=out / "de_counts_planted.png")
    td.pl.region_de_heatmap(res, sim, n_top=5, show=False, save=out / "heatmap_planted.png")
    files += ["volcano_planted.png", "de_counts_planted.png", "heatmap_planted.png"]
    plt.close("all")
    return [str(out / f) for f in files]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="200 genes, 3 regions (about a minute of CPU)")
    parser.add_argument("--out", default="out/de_validation")
    parser.add_argument("--depth", type=float, default=5000.0, help="mean counts per spot (Visium-like)")
    parser.add_argument("--spots", type=int, default=2000, help="spots per sample")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--engine", default="nbglm", choices=["nbglm", "pydeseq2"])
    parser.add_argument("--compare", action="store_true",
                        help="also run the other engine on the planted data and report agreement")
    parser.add_argument("--prostate", default=str(Path(__file__).resolve().parents[1].parent
                                                  / "shared" / "data" / "visium_prostate_normal_vs_cancer"))
    args = parser.parse_args()
    args.genes, args.regions, args.null_regions = (200, 3, 2) if args.quick else (2000, 5, 5)
    if args.quick:
        args.spots = min(args.spots, 1200)

    import topdown as td
    from topdown.sim.expression import expression_study

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    summary = {"args": vars(args)}
    summary["planted"], res, sim = planted(args, td, expression_study)
    summary["null"] = null(args, td, expression_study)
    pro = prostate(args, td)
    summary["prostate"] = pro[0] if isinstance(pro, tuple) else pro
    summary["figures"] = figures(out, res, sim, td)
    if isinstance(pro, tuple):
        import matplotlib.pyplot as plt

        td.pl.region_de_counts(pro[1], show=False, save=out / "de_counts_prostate_exploratory.png")
        plt.close("all")
        summary["figures"].append(str(out / "de_counts_prostate_exploratory.png"))
    summary["seconds"] = time.perf_counter() - t0
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    print(f"\nfigures: {', '.join(summary['figures'])}\ntotal {summary['seconds']:.1f} s; summary in {out / 'summary.json'}")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
