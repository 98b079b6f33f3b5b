"""Options shared by the sub-commands that run a segmentation model (``segment``, ``annotate``)."""

from __future__ import annotations

import argparse


def add_inference_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--adapt-norm/--no-adapt-norm`` and ``--tta/--no-tta`` (see :func:`topdown.seg.segment`)."""
    parser.add_argument("--adapt-norm", action=argparse.BooleanOptionalAction, default=False, dest="adapt_norm",
                        help="test-time adaptation: re-estimate the model's BatchNorm statistics on this image "
                             "first (AdaBN, no labels); try it when the image's colours are far from the "
                             "simulations' (default: off)")
    parser.add_argument("--tta", action=argparse.BooleanOptionalAction, default=True,
                        help="average each tile with its mirror image, as the model was trained to see it "
                             "(default: on; --no-tta runs the network once per tile, about 1.5x faster)")
