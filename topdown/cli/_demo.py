"""``topdown demo``: the whole pipeline on an embedded simulated study."""

from __future__ import annotations

import argparse

EPILOG = """\
Example:
  topdown demo --out demo_report           # about 5-10 minutes on 2 CPU cores
  topdown demo --quick --out demo_quick    # under 3 minutes

Simulates 3 healthy + 3 pathological mouse-brain sections with Blender, loads the shipped
Si-Do-La model, segments each image, assigns every spot to a region, runs region-level DE,
and writes a report (summary.md, overlays, volcano plots, DE table, annotated h5ad files).
"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("demo", help="run the whole pipeline on a simulated study",
                              description="Run simulate -> segment -> assign -> region DE on an "
                                          "embedded simulated study and write a report.",
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="demo_report", help="report folder (default: demo_report)")
    p.add_argument("--quick", action="store_true", help="smaller study, under 3 minutes")
    p.add_argument("--seed", type=int, default=0, help="seed of the simulated study")
    p.set_defaults(func=run)


def run(args) -> int:
    from .._demo import run_demo

    res = run_demo(args.out, quick=args.quick, seed=args.seed)
    print(f"report written to {res.out / 'summary.md'}")
    return 0
