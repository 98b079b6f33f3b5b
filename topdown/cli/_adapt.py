"""``topdown adapt``: adapt a trained model to unlabelled real images (no labels needed)."""

from __future__ import annotations

import argparse
import json

from ._inference_options import add_device_option

EPILOG = """\
Examples:
  topdown adapt cortex_laminar 151507/image.png 151508/image.png --pixel-size 16.2 --out adapted.safetensors
  topdown adapt models/ob.pt mob/*/image.jpg --pixel-size 2.75 --method adabn --out models/ob_adabn.safetensors
  topdown adapt models/ob.pt a.jpg b.jpg --pixel-size 2.75 2.5 --name my_bulb --out my_bulb.safetensors

pseudo_label (default) re-estimates the BatchNorm statistics on the images, then
fine-tunes a copy on its own most confident labels, class by class (about a minute on a
CPU core); adabn only re-estimates the statistics (seconds).
The adapted weights are written as a checkpoint (safetensors + .json metadata recording
the method and the images' hashes); use it with: topdown segment IMAGE --model adapted.safetensors
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "adapt", help="adapt a model to unlabelled real images",
        description="Unsupervised domain adaptation of a trained model (shipped name or checkpoint) "
                    "to real images: BatchNorm statistics (adabn) or confident pseudo-label self-training.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL", help="shipped model name or checkpoint")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="unlabelled images (PNG, JPEG, TIFF)")
    p.add_argument("--pixel-size", type=float, nargs="+", default=None, metavar="UM", dest="pixel_size",
                   help="micrometres per image pixel: one value for every IMAGE, or one per IMAGE")
    p.add_argument("--out", required=True, metavar="adapted.safetensors", help="checkpoint to write")
    p.add_argument("--method", choices=("adabn", "pseudo_label"), default="pseudo_label", help="default pseudo_label")
    p.add_argument("--steps", type=int, default=200, metavar="N", help="pseudo_label steps (default 200)")
    p.add_argument("--lr", type=float, default=1e-4, help="pseudo_label learning rate (default 1e-4)")
    p.add_argument("--keep", type=float, default=0.5, metavar="F",
                   help="pseudo_label: most confident fraction of each class's pixels kept (default 0.5)")
    p.add_argument("--adapt-norm", action=argparse.BooleanOptionalAction, default=True, dest="adapt_norm",
                   help="pseudo_label: first re-estimate the BatchNorm statistics on the images, as adabn "
                        "(default: on)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    p.add_argument("--name", default=None, metavar="NAME",
                   help="model name written in the checkpoint (default: the base model's name + '+METHOD')")
    add_device_option(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from .._files import existing_path
    from ..seg import adapt, save
    from ..seg.checkpoint import check_output, files_of

    images = [existing_path(i, "image") for i in args.images]
    out = check_output(args.out, inputs=(*images, *files_of(args.model)))
    pixel_size = args.pixel_size[0] if args.pixel_size and len(args.pixel_size) == 1 else args.pixel_size
    model = adapt(args.model, images, pixel_size_um=pixel_size, method=args.method, steps=args.steps, lr=args.lr,
                  keep=args.keep, adapt_norm=args.adapt_norm, seed=args.seed, device=args.device, progress=True)
    if args.name:
        model.name = args.name
    save(model, out)
    print(json.dumps({"out": str(out), "method": args.method, "n_images": len(images),
                      "model": model.name, "weights_sha256": model.weights_sha256}, indent=2))
    return 0
