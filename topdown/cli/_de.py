"""``topdown de``: region-level differential expression between conditions."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from .._files import atomic_path, existing_path, output_file

log = logging.getLogger(__name__)

EPILOG = """\
Pseudobulk per sample x region, then DESeq2's negative-binomial GLM per region (needs >= 2
samples per condition): --engine nbglm (default) fits all regions and genes in one batched
computation (seconds); --engine pydeseq2 runs PyDESeq2 region by region (same answers,
minutes). --contrast GROUP:REFERENCE (repeatable) tests named contrasts, e.g. between two
treatments; --pair-key DONOR blocks on the donor/animal (paired designs). --method wilcoxon
is an exploratory per-spot test for data without replicates; its output has exploratory=True.

Example:
  topdown de mouse1.h5ad mouse2.h5ad mouse3.h5ad mouse4.h5ad \\
      --condition-key condition --sample-key sample --reference healthy \\
      --design "~ sex + condition" --out de.csv
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "de", help="differential expression between conditions, region by region",
        description="Region-level differential expression (pseudobulk + DESeq2's NB GLM).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="ANNOTATED.h5ad",
                   help="region-annotated h5ad file(s): one concatenated file or one per sample")
    p.add_argument("--condition-key", required=True, help="obs column with the condition")
    p.add_argument("--sample-key", required=True, help="obs column with the biological sample "
                   "(files without it are labelled by file name)")
    p.add_argument("--reference", required=True, help="reference condition, e.g. healthy")
    p.add_argument("--out", required=True, help="output CSV (written atomically)")
    p.add_argument("--region-key", default="region", help="obs column with the region (default: region)")
    p.add_argument("--method", choices=["deseq2", "wilcoxon"], default="deseq2")
    p.add_argument("--engine", choices=["nbglm", "pydeseq2"], default="nbglm",
                   help="count model: nbglm (batched DESeq2, default) or pydeseq2 (region by region)")
    p.add_argument("--contrast", action="append", default=None, metavar="GROUP:REFERENCE",
                   help="a named contrast of two condition values, e.g. drugB:drugA (repeatable; "
                   "default: every other condition vs --reference)")
    p.add_argument("--pair-key", default=None, help="obs column of the donor/animal for paired designs")
    p.add_argument("--design", default=None, help='design formula, e.g. "~ sex + condition"')
    p.add_argument("--layer", default=None, help="layer with raw counts (default: counts if present, else X)")
    p.add_argument("--lfc-shrink", action="store_true", help="shrink log2 fold changes (apeGLM)")
    p.add_argument("--min-cells", type=int, default=10, help="min spots/cells per pseudobulk sample")
    p.add_argument("--min-counts", type=int, default=1000, help="min total counts per pseudobulk sample")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from ..tl import region_de

    paths = [existing_path(p, "annotated h5ad file") for p in args.inputs]
    target = Path(args.out).expanduser()
    out = output_file(target, inputs=tuple(paths), kind="csv", label="--out")
    res = region_de([str(p) for p in paths] if len(paths) > 1 else str(paths[0]),
                    condition_key=args.condition_key, sample_key=args.sample_key,
                    reference=args.reference, region_key=args.region_key, layer=args.layer,
                    design=args.design, method=args.method, lfc_shrink=args.lfc_shrink,
                    engine=args.engine, pair_key=args.pair_key,
                    contrasts=[tuple(c.split(":", 1)) for c in args.contrast] if args.contrast else None,
                    min_cells=args.min_cells, min_counts=args.min_counts)
    with atomic_path(out) as tmp:
        res.to_csv(tmp, index=False)
    n_sig = int((res["padj"] < 0.05).sum())
    kind = "exploratory " if args.method == "wilcoxon" else ""
    log.info("wrote %s: %d rows, %d %sDE gene-region pairs at padj < 0.05", out, len(res), n_sig, kind)
    return 0
