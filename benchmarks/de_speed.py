"""Region DE engines side by side: the batched ``nbglm`` engine vs PyDESeq2 on the same pseudobulk.

Run by hand; prints a table (seconds, speed-up, agreement) and writes JSON to --out:

    python benchmarks/de_speed.py                     # the three sizes of issue 27
    python benchmarks/de_speed.py --demo out/demo/annotated   # the demo's own data as first size
    python benchmarks/de_speed.py --pydeseq2-regions 0        # PyDESeq2 on every region of every size

Sizes (regions x genes x samples): the demo's (its annotated h5ad files when --demo is
given, else a simulated study of the demo's shape: 3 vs 3 samples, 2,000 genes, 8 regions),
4 x 600 x 6 and 12 x 20,000 x 24. Both engines get the same region jobs (pseudobulk counts
after the expression filter, the design matrix, the contrast), so only the count model is
timed. PyDESeq2 on the largest size takes hours on 2 cores; by default it runs on
``--pydeseq2-genes`` genes of ``--pydeseq2-regions`` region there and its time is scaled
linearly to all gene tests (marked ``~``; its cost is per gene), and agreement is computed on
that subset (both engines).
Wall and CPU seconds are both printed: on a shared machine the CPU time is the stable figure
(PyDESeq2 runs in-process with n_cpus=1). Agreement: Pearson r of log2FC over genes tested by both, Jaccard index of the padj < 0.05
calls, and the calls' FDR and power against the planted truth.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("TOPDOWN_NO_PROGRESS", "1")


def simulated_jobs(n_regions: int, n_genes: int, n_samples: int, seed: int = 0):
    """Pseudobulk NB counts per region with 5 % planted DE genes (|log2FC| in [1, 2])."""
    from topdown.tl._de_deseq import check_design
    from topdown.tl._de_engines import RegionJob

    rng = np.random.default_rng(seed)
    half = n_samples // 2
    cond = np.array(["healthy"] * half + ["disease"] * (n_samples - half))
    meta = pd.DataFrame({"condition": pd.Categorical(cond, categories=["healthy", "disease"])},
                        index=[f"s{i}" for i in range(n_samples)])
    design = check_design(meta, "~ condition", "condition")
    jobs, truth = [], {}
    base = np.exp(rng.normal(3.5, 1.8, n_genes))
    for r in range(n_regions):
        lfc = np.zeros(n_genes)
        de = rng.random(n_genes) < 0.05
        lfc[de] = rng.choice([-1, 1], de.sum()) * rng.uniform(1, 2, de.sum())
        sf = rng.uniform(0.6, 1.6, n_samples) * rng.uniform(2, 20)
        mu = sf[:, None] * base[None] * np.exp2(np.outer(cond == "disease", lfc))
        disp = 0.02 + 0.5 / base
        y = rng.negative_binomial(1 / disp, 1 / (1 + mu * disp))
        keep = (y >= 10).sum(0) >= half
        genes = np.array([f"g{i}" for i in range(n_genes)])[keep]
        jobs.append(RegionJob(f"region{r}", pd.DataFrame(y[:, keep], index=meta.index, columns=genes),
                              meta, design, [("disease", "healthy")]))
        truth[f"region{r}"] = set(genes[de[keep]])
    return jobs, truth


def demo_jobs(folder: Path):
    """Region jobs exactly as region_de builds them from the demo's annotated h5ad files."""
    import anndata as ad

    from topdown.tl import _region_de as rd

    captured = {}

    def capture(jobs, opts):
        captured["jobs"], captured["opts"] = jobs, opts
        return {}, {}

    rd.ENGINES["capture"] = capture
    files = sorted(folder.glob("*.h5ad"))
    data = ad.concat([ad.read_h5ad(f) for f in files], merge="same")
    try:
        rd.region_de(data, condition_key="condition", sample_key="sample", reference="healthy",
                     engine="capture", key_added=None)
    except Exception:  # noqa: BLE001 - no tables come back from the capturing engine
        pass
    finally:
        del rd.ENGINES["capture"]
    truth = {}
    for de_col in [c for c in data.var.columns if c.startswith("de_")]:
        truth[de_col[3:]] = set(data.var_names[data.var[de_col].astype(bool)])
    return captured["jobs"], truth


#: CPU seconds of this process in the last run of each engine (wall time suffers on a shared machine).
CPU_SECONDS: dict[str, float] = {}


def subset(jobs, n_regions: int, n_genes: int):
    """The first regions and genes of ``jobs`` (the same list when both are 0)."""
    if not n_regions and not n_genes:
        return jobs
    out = []
    for job in jobs[: n_regions or None]:
        counts = job.counts.iloc[:, : n_genes or None]
        out.append(type(job)(job.region, counts, job.meta, job.design, job.contrasts))
    return out


def run_engine(name: str, jobs, n_cpus: int = 1):
    from topdown.tl._de_engines import ENGINES, EngineOptions

    opts = EngineOptions("~ condition", "condition", n_cpus=n_cpus)
    t0, c0 = time.perf_counter(), time.process_time()
    tables, notes = ENGINES[name](jobs, opts)
    CPU_SECONDS[name] = time.process_time() - c0
    return time.perf_counter() - t0, tables


def agreement(a: dict, b: dict, truth: dict) -> dict:
    """Pearson of log2FC, Jaccard of padj < 0.05 calls; FDR and power (over planted genes both
    engines tested) of engine ``a`` where the truth is known."""
    common = [r for r in a if r in b]
    x = pd.concat([a[r].assign(region=r) for r in common]).set_index(["region", "gene"])
    y = pd.concat([b[r].assign(region=r) for r in common]).set_index(["region", "gene"])
    both = x.join(y, lsuffix="_a", rsuffix="_b", how="inner")
    fin = np.isfinite(both["log2fc_a"]) & np.isfinite(both["log2fc_b"])
    r = float(np.corrcoef(both.loc[fin, "log2fc_a"], both.loc[fin, "log2fc_b"])[0, 1])
    ca, cb = set(both.index[both["padj_a"] < 0.05]), set(both.index[both["padj_b"] < 0.05])
    out = {"pearson_log2fc": r, "jaccard_calls": len(ca & cb) / max(1, len(ca | cb)),
           "calls_nbglm": len(ca), "calls_pydeseq2": len(cb)}
    planted = {key for key in both.index if key[1] in truth.get(key[0], ())}  # planted and tested
    if planted:
        tp = len(ca & planted)
        out.update(fdr_nbglm=(len(ca) - tp) / max(1, len(ca)), power_nbglm=tp / len(planted))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo", default=None, help="folder of the demo's annotated h5ad files")
    parser.add_argument("--pydeseq2-regions", type=int, default=1,
                        help="largest size: PyDESeq2 on this many regions, time scaled (0: all)")
    parser.add_argument("--pydeseq2-genes", type=int, default=2000,
                        help="largest size: ... and on this many genes of them (0: all)")
    parser.add_argument("--n-cpus", type=int, default=1, help="PyDESeq2 processes")
    parser.add_argument("--out", default="out/de_speed")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    np.seterr(all="ignore")
    import pydeseq2.dds  # noqa: F401

    import topdown.tl._nbglm  # noqa: F401 - import cost not timed

    sizes = []
    if args.demo:
        jobs, truth = demo_jobs(Path(args.demo))
        sizes.append(("demo (annotated h5ad)", jobs, truth, (0, 0)))
    else:
        sizes.append(("demo shape 8 x 2,000 x 6", *simulated_jobs(8, 2000, 6, args.seed), (0, 0)))
    sizes.append(("4 x 600 x 6", *simulated_jobs(4, 600, 6, args.seed + 1), (0, 0)))
    sizes.append(("12 x 20,000 x 24", *simulated_jobs(12, 20000, 24, args.seed + 2),
                  (args.pydeseq2_regions, args.pydeseq2_genes)))
    rows = []
    print(f"nproc {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}; PyDESeq2 n_cpus={args.n_cpus}")
    for label, jobs, truth, (n_reg, n_genes) in sizes:
        t_nb, nb = run_engine("nbglm", jobs)
        cpu_nb = CPU_SECONDS["nbglm"]
        sub = subset(jobs, n_reg, n_genes)
        t_py, py = run_engine("pydeseq2", sub, args.n_cpus)
        cpu_py = CPU_SECONDS["pydeseq2"]
        n_tests = sum(j.counts.shape[1] for j in jobs)
        scale = n_tests / sum(j.counts.shape[1] for j in sub)
        agree = agreement(nb if sub is jobs else run_engine("nbglm", sub)[1], py, truth)
        rows.append({"size": label, "regions": len(jobs), "gene_tests": n_tests,
                     "samples": jobs[0].counts.shape[0], "nbglm_s": t_nb, "pydeseq2_s": t_py * scale,
                     "nbglm_cpu_s": cpu_nb, "pydeseq2_cpu_s": cpu_py * scale,
                     "pydeseq2_scaled": scale != 1, "speedup": t_py * scale / t_nb, **agree})
        print(f"{label}: nbglm {t_nb:.2f} s ({cpu_nb:.2f} s CPU), PyDESeq2 {'~' if scale != 1 else ''}"
              f"{t_py * scale:.1f} s ({cpu_py * scale:.1f} s CPU) "
              f"(x{t_py * scale / t_nb:.0f}); log2FC r={agree['pearson_log2fc']:.4f}, "
              f"Jaccard={agree['jaccard_calls']:.3f}", flush=True)
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "de_speed.json").write_text(json.dumps(rows, indent=1, default=str))


if __name__ == "__main__":
    main()
