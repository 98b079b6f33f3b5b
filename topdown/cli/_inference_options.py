"""Options shared by the sub-commands that run a model (``segment``, ``annotate``, ``adapt``, ``nuclei``,
``train``)."""

from __future__ import annotations

import argparse


def add_device_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--device`` (``auto``: cuda when available, else cpu)."""
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                        help="torch device (default auto: cuda when available, else cpu)")


def add_precision_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--precision`` (``auto``: bfloat16 autocast where the hardware computes it natively)."""
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"),
                        help="bfloat16 autocast: 2-3x faster on CPUs with AVX512-BF16/AMX and on recent GPUs "
                             "(default auto: bf16 where the hardware has it natively, else fp32)")


def add_inference_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--adapt-norm``, ``--tta``, ``--layer-prior``, ``--spot-diameter`` and ``--orientation``
    (see :func:`topdown.seg.segment`)."""
    parser.add_argument("--adapt-norm", action=argparse.BooleanOptionalAction, default=False, dest="adapt_norm",
                        help="test-time adaptation: re-estimate the model's BatchNorm statistics on this image "
                             "first (AdaBN, no labels); try it when the image's colours are far from the "
                             "simulations' (default: off)")
    parser.add_argument("--tta", action=argparse.BooleanOptionalAction, default=True,
                        help="average each tile with its mirror image, as the model was trained to see it "
                             "(default: on; --no-tta runs the network once per tile, about 1.5x faster)")
    parser.add_argument("--layer-prior", choices=("auto", "off"), default="auto", dest="layer_prior",
                        help="layered tissue (olfactory bulb, cortex): keep the network's core and surface layers "
                             "and assign those between by laminar depth from the preset's layer thicknesses "
                             "(default: auto, where the model's preset declares a layer order; off: the raw map)")
    parser.add_argument("--spot-diameter", type=float, default=None, dest="spot_diameter", metavar="UM",
                        help="with the layer prior: draw the map for spots this wide (µm; 100 for Spatial "
                             "Transcriptomics, 55 for Visium), widening layers too thin to cover half a spot "
                             "(the bulb's mitral cell layer) so the spots that reach them take them (default: "
                             "the anatomical map)")
    parser.add_argument("--orientation", choices=("as-is", "auto", "ensemble"), default="auto",
                        help="for a model trained upright, segment the image's four quarter turns (4x the time) "
                             "and keep the one the network is most confident of (default: auto), combine all "
                             "four (ensemble: sections at an unknown angle, e.g. real cortex), or take the image "
                             "as it is (as-is)")


def orientation_arg(args: argparse.Namespace) -> str | None:
    """``--orientation`` as :func:`topdown.seg.segment` takes it."""
    return None if args.orientation == "as-is" else args.orientation


def layer_prior_arg(args: argparse.Namespace) -> str | None:
    """``--layer-prior`` as :func:`topdown.seg.segment` takes it."""
    return None if args.layer_prior == "off" else "auto"
