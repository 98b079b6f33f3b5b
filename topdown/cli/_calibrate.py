"""``topdown calibrate``: fit a spec's appearance ranges to unlabelled real images."""

from __future__ import annotations

import argparse

EPILOG = """\
Examples:
  topdown calibrate olfactory_bulb mob/01/image.jpg mob/02/image.jpg --pixel-size 2.75 --out ob_calibrated.yaml
  topdown calibrate my_tissue.yaml slide.png --pixel-size 0.5 --out my_tissue_calibrated.yaml

The images need no labels. Then: topdown simulate --spec ob_calibrated.yaml ...
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "calibrate", help="widen a spec's stain, glass, blur and noise ranges to cover your real images",
        description="Measure unlabelled real images (stain vectors, glass, blur, noise, nuclei where "
                    "resolvable) and write a copy of the spec whose appearance ranges cover them.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec", metavar="PRESET_OR_SPEC", help="built-in tissue name or tissue spec YAML file")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="real images (PNG, JPEG, TIFF)")
    p.add_argument("--pixel-size", type=float, default=None, metavar="UM", dest="pixel_size",
                   help="micrometres per pixel of the images (required)")
    p.add_argument("--out", required=True, metavar="FILE", help="calibrated spec YAML to write")
    p.add_argument("--margin", type=float, default=0.1, help="relative margin beyond the measured values (0.1)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from .._files import atomic_write_text, existing_path, output_file
    from ..errors import InputError
    from ..sim import calibrate

    if args.pixel_size is None:
        raise InputError("no pixel size given; pass --pixel-size UM (micrometres per pixel of the images).")
    if not str(args.out).lower().endswith((".yaml", ".yml")):
        raise InputError(f"--out '{args.out}' is not a YAML file name; give one ending in .yaml.")
    spec_is_file = str(args.spec).lower().endswith((".yaml", ".yml"))
    if spec_is_file:
        existing_path(args.spec, "tissue spec file")
    inputs = [*args.images, *([args.spec] if spec_is_file else [])]
    out = output_file(args.out, inputs=inputs, label="--out")
    spec, report = calibrate(args.spec, args.images, pixel_size_um=args.pixel_size, margin=args.margin,
                             return_report=True)
    atomic_write_text(out, spec.to_yaml())
    print(report)
    print(f"wrote {out}")
    return 0
