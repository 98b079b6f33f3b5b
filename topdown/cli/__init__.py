"""The ``topdown`` command line: one module per sub-command, each with ``add_parser`` and ``run``."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from .._version import __version__
from ..errors import TopdownError

#: sub-command -> module (relative to this package) defining ``add_parser(subparsers)`` and ``run(args)``
COMMANDS = {
    "simulate": "._simulate",
    "train": "._train",
    "segment": "._segment",
    "annotate": "._annotate",
    "de": "._de",
    "demo": "._demo",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="topdown",
        description="Top-down spatial omics: simulate tissue, segment regions, assign spots, compare regions.",
        epilog="Example: topdown demo --quick --out demo_report",
    )
    parser.add_argument("--version", action="version", version=f"topdown {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS.values():
        importlib.import_module(module, __name__).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``topdown`` command; returns the exit code."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        code = args.func(args)
    except TopdownError as exc:
        print(f"topdown {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"topdown {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)
