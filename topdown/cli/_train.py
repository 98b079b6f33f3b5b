"""``topdown train``: train a region-segmentation U-Net on a simulated dataset."""

from __future__ import annotations

import argparse
import json

from ._inference_options import add_device_option, add_precision_option

EPILOG = """\
Examples:
  topdown simulate --preset spinal_cord --n 400 --size 128 --pixel-size 16 --out sims/sc
  topdown train --data sims/sc --out models/sc.pt --epochs 30
  topdown train --data sims/sc --out models/sc.pt --epochs 60 --resume   # continue / extend
  topdown train --data sims/sc --out models/sc2.pt --init models/sc.pt --epochs 10 --lr 3e-4   # warm start
  topdown train --data sims/sc --out models/sc3.pt --adapt-to real1.png real2.png --adapt-pixel-size 16
      (style mixing: training crops take on the look of the unlabelled real images)
  topdown simulate --preset mouse_brain_coronal --modality dapi --pixel-size 0.4 --size 256 --n 600 --out sims/dapi
  topdown train --task nuclei --data sims/dapi --out models/nuclei.pt --steps 3600
      (a nucleus instance model for `topdown nuclei --model models/nuclei.pt`; --resume continues it)

The checkpoint is a safetensors file (whatever the extension) with a .json metadata file
beside it (classes, colours, pixel size, spec hash, seed, validation metrics), plus
MODEL.pt.state.safetensors for --resume. Use it with: topdown segment IMAGE --model MODEL.pt
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "train", help="train a segmentation model on simulated frames",
        description="Train a compact U-Net on a SimDataset folder (from `topdown simulate`) with "
                    "augmentation aimed at the simulation-to-real gap; report validation mIoU.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, metavar="DIR", help="dataset folder from `topdown simulate`")
    p.add_argument("--out", required=True, metavar="MODEL.pt", help="checkpoint to write")
    p.add_argument("--task", choices=("regions", "nuclei"), default="regions",
                   help="regions: a region model (default); nuclei: a nucleus instance model trained on the "
                        "frames' exact nucleus masks, for `topdown nuclei`")
    p.add_argument("--design", choices=("steps", "distance"), default=None,
                   help="--task nuclei: distance: edge-distance bins + watershed (default, the shipped "
                        "nuclei_dapi); steps: the step to each nucleus's centre, followed to group pixels")
    p.add_argument("--epochs", type=int, default=20, metavar="E", help="passes over the frames (default 20)")
    p.add_argument("--steps", type=int, default=2000, metavar="N",
                   help="--task nuclei: optimisation steps of --batch-size random crops (default 2000)")
    p.add_argument("--batch-size", type=int, default=8, metavar="B", dest="batch_size", help="default 8")
    p.add_argument("--crop", type=int, default=None, metavar="PX",
                   help="training crop side (default: frame, max 256; --task nuclei 128)")
    p.add_argument("--lr", type=float, default=None,
                   help="AdamW learning rate (default 2e-3; --task nuclei 3e-3)")
    p.add_argument("--val-fraction", type=float, default=0.1, dest="val_fraction",
                   help="frames held out for validation (default 0.1)")
    p.add_argument("--widths", default=None, metavar="W,W,...",
                   help="U-Net channels per level (default 16,32,64,128,192; --task nuclei 8,16,32,64); "
                        "--init and --resume keep their checkpoint's")
    p.add_argument("--orientation", choices=("free", "upright"), default=None,
                   help="free: sections in any orientation (default); upright: dorsal up within +/-30 deg, "
                        "so position can tell regions apart (then segment upright images); "
                        "--resume keeps the run's own")
    p.add_argument("--no-class-balance", action="store_false", dest="class_balance",
                   help="plain cross-entropy (default: weighted by sqrt(median frequency / frequency))")
    p.add_argument("--no-augment", action="store_true", dest="no_augment", help="random crops only")
    add_device_option(p)
    add_precision_option(p)
    p.add_argument("--threads", type=int, default=None, metavar="T", help="torch CPU threads")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    p.add_argument("--name", default=None, help="model name (default: dataset name)")
    p.add_argument("--resume", action="store_true", help="continue from --out and its training state")
    p.add_argument("--init", default=None, metavar="MODEL",
                   help="warm start from these weights (checkpoint or shipped name) with a fresh schedule; "
                        "may be another modality (an H&E model to start a DAPI one)")
    p.add_argument("--adapt-to", nargs="+", default=None, metavar="IMAGE", dest="adapt_to",
                   help="unlabelled real images whose look training crops take on (Fourier domain adaptation)")
    p.add_argument("--adapt-pixel-size", type=float, default=None, metavar="UM", dest="adapt_pixel_size",
                   help="micrometres per pixel of the --adapt-to images")
    p.add_argument("--adapt-method", choices=("fda", "lab"), default="fda", dest="adapt_method",
                   help="fda: low-frequency Fourier amplitude swap (default); lab: CIELAB mean/std matching")
    p.add_argument("--adapt-p", type=float, default=0.5, metavar="P", dest="adapt_p",
                   help="probability that a training crop is restyled (default 0.5)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from .._files import existing_path
    from ..errors import InputError
    from ..seg import train

    existing_path(args.data, "dataset folder (--data)")
    widths = None
    if args.widths:
        try:
            widths = tuple(int(w) for w in args.widths.split(","))
        except ValueError as exc:
            raise InputError(f"--widths must be integers separated by commas, got {args.widths!r}") from exc
    kw = {} if widths is None else {"widths": widths}
    if args.task == "nuclei":
        return _run_nuclei(args, kw)
    if args.design:
        raise InputError("--design is for nucleus models; add --task nuclei or drop --design.")
    if args.adapt_to:
        kw.update(adapt_to=[existing_path(i, "image (--adapt-to)") for i in args.adapt_to],
                  adapt_pixel_size_um=args.adapt_pixel_size, adapt_method=args.adapt_method, adapt_p=args.adapt_p)
    model = train(args.data, out=args.out, epochs=args.epochs, batch_size=args.batch_size, crop=args.crop,
                  lr=2e-3 if args.lr is None else args.lr, val_fraction=args.val_fraction, augment=not args.no_augment,
                  orientation=None if args.no_augment else args.orientation, class_balance=args.class_balance,
                  device=args.device, precision=args.precision, seed=args.seed, resume=args.resume,
                  init=args.init, name=args.name, threads=args.threads, **kw)
    m = model.metrics
    summary = {"model": args.out, "classes": list(model.classes), "pixel_size_um": model.pixel_size_um,
               "epochs": m.get("epochs_done"), "final_loss": m.get("final_loss"),
               "val_miou": m.get("val_miou"), "val_pixel_accuracy": m.get("val_pixel_accuracy")}
    print(json.dumps(summary, indent=2))
    return 0


def _run_nuclei(args: argparse.Namespace, kw: dict) -> int:
    """``--task nuclei``: :func:`topdown.seg.train_nuclei` with the shared options."""
    import torch

    from ..errors import InputError
    from ..seg import train_nuclei

    region_only = [flag for flag, given in (("--adapt-to", args.adapt_to), ("--orientation", args.orientation),
                                            ("--no-augment", args.no_augment),
                                            ("--no-class-balance", not args.class_balance)) if given]
    if args.design:
        kw["design"] = args.design
    if region_only:
        raise InputError(f"{', '.join(region_only)}: for region models only; drop with --task nuclei.")
    if args.threads:
        torch.set_num_threads(args.threads)
    model = train_nuclei(args.data, args.out, steps=args.steps, batch_size=args.batch_size,
                         crop=args.crop or 128, lr=3e-3 if args.lr is None else args.lr, seed=args.seed,
                         val_fraction=args.val_fraction, name=args.name or "nuclei", init=args.init,
                         precision=args.precision, resume=args.resume, device=args.device,
                         log=lambda line: print(line, flush=True), **kw)
    print(json.dumps({"model": args.out, "task": "nuclei", "classes": list(model.classes),
                      "pixel_size_um": model.pixel_size_um, "modality": model.modality,
                      "steps": model.train_config["steps"]}, indent=2))
    return 0
