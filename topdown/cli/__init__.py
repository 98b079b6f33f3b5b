"""The ``topdown`` command line: one module per sub-command, each with ``add_parser`` and ``run``."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import sys
import warnings
from collections.abc import Iterator

from .._version import __version__
from ..errors import TopdownError

#: sub-command -> module (relative to this package) defining ``add_parser(subparsers)`` and ``run(args)``
COMMANDS = {
    "simulate": "._simulate",
    "train": "._train",
    "segment": "._segment",
    "nuclei": "._nuclei",
    "adapt": "._adapt",
    "annotate": "._annotate",
    "de": "._de",
    "demo": "._demo",
    "calibrate": "._calibrate",
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


@contextlib.contextmanager
def one_line_warnings(command: str) -> Iterator[None]:
    """Print user warnings as ``topdown COMMAND: warning: message`` (one line, no source line).

    Python's default format names the file and line that warned and repeats that line of
    code: noise for someone at a shell. Other categories (``FutureWarning``,
    ``DeprecationWarning``) keep the default format, for the developers they are meant for.
    """
    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if not issubclass(category, UserWarning):
            return default(message, category, filename, lineno, file, line)
        kind = "" if category is UserWarning else f" ({category.__name__})"
        text = " ".join(str(message).split())
        print(f"topdown {command}: warning{kind}: {text}", file=file or sys.stderr)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = default


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``topdown`` command; returns the exit code."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        with one_line_warnings(args.command):
            code = args.func(args)
    except TopdownError as exc:
        print(f"topdown {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"topdown {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)
