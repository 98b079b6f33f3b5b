"""``topdown simulate``: render a simulated, labelled dataset with Blender."""

from __future__ import annotations

import argparse

from .._modalities import MODALITIES

EPILOG = """\
Examples:
  topdown simulate --preset olfactory_bulb --n 4 --size 128 --seed 7 --out sims/ob
  topdown simulate --spec my_tissue.yaml --n 1000 --size 256 --modality dapi --workers 2 --out sims/mine
  topdown simulate --preset spinal_cord --n 5000 --out sims/sc --scheduler tcp://10.0.0.5:8786

Re-running the same command resumes an interrupted run; a larger --n appends frames.
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "simulate", help="render simulated tissue frames + exact region/nucleus masks (Blender)",
        description="Simulate tissue sections from a preset or a YAML spec: layout, Blender Cycles "
                    "render, image artefacts, exact masks, into a resumable dataset folder.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--preset", metavar="NAME", help="built-in tissue (see `topdown simulate --list`)")
    src.add_argument("--spec", metavar="FILE", help="tissue spec YAML file")
    src.add_argument("--list", action="store_true", help="list the built-in tissues and exit")
    p.add_argument("--n", type=int, default=None, metavar="N", help="number of frames (required)")
    p.add_argument("--out", metavar="DIR", help="output dataset folder (required)")
    p.add_argument("--size", type=int, default=None, metavar="PX", help="frame size in pixels (default: spec)")
    p.add_argument("--modality", choices=MODALITIES, default=None, help="he or dapi (default: spec)")
    p.add_argument("--pixel-size", type=float, default=None, metavar="UM", dest="pixel_size",
                   help="micrometres per pixel (default: spec)")
    p.add_argument("--workers", type=int, default=1, metavar="K", help="local worker processes (default 1)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="dask.distributed scheduler address, e.g. tcp://host:8786")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="base random seed (default 0)")
    p.add_argument("--samples", type=int, default=None, metavar="SPP", help="Cycles samples per pixel")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..sim.presets import load_preset, presets

    if args.list:
        print("\n".join(presets()))
        return 0
    if args.n is None or args.out is None:
        raise InputError("--n and --out are required, e.g. --n 100 --out sims/mine.")
    if args.preset is not None:
        spec = load_preset(args.preset)
    else:
        from .._files import existing_path
        from ..sim.spec import TissueSpec

        spec = TissueSpec.from_yaml(existing_path(args.spec, "tissue spec file"))
    from ..sim.simulate import simulate

    ds = simulate(spec, n=args.n, out=args.out, size=args.size, modality=args.modality,
                  pixel_size_um=args.pixel_size, seed=args.seed, workers=args.workers,
                  scheduler=args.scheduler, samples=args.samples)
    print(f"{len(ds)} frames in {ds.path} ({ds.name}, {ds.modality}, {ds.size} px, "
          f"{ds.pixel_size_um:g} µm/px)")
    return 0
