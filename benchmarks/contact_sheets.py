"""Contact sheets: 16 simulated frames per preset, each image beside its colour-coded region mask.

Run by hand (renders with Blender)::

    python benchmarks/contact_sheets.py --out docs/contact_sheets [--presets olfactory_bulb ...]
        [--n 16] [--size 256] [--modality he] [--workers 2]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def _rgb(hexcol: str) -> tuple[int, int, int]:
    h = hexcol.lstrip("#")
    return tuple(int(h[i:i + 2], 16) for i in (0, 2, 4))


def colour_mask(mask: np.ndarray, classes: list[str], colors: dict[str, str]) -> np.ndarray:
    """Region labels -> RGB (0 = outside tissue: black)."""
    lut = np.zeros((256, 3), np.uint8)
    for k, name in enumerate(classes, start=1):
        lut[k] = _rgb(colors.get(name, "#808080"))
    return lut[mask]


def contact_sheet(ds, *, cols: int = 4, tile: int = 192, gap: int = 6) -> Image.Image:
    """One PNG: up to 16 frames of ``ds`` as (image | mask) pairs, with a class legend."""
    n = min(len(ds), 16)
    rows = int(np.ceil(n / cols))
    legend_h = 18 * int(np.ceil(len(ds.classes) / 3)) + 30
    sheet_w = cols * (2 * tile + 3 * gap)
    sheet = Image.new("RGB", (sheet_w, rows * (tile + gap) + gap + legend_h), "white")
    draw = ImageDraw.Draw(sheet)
    for i in range(n):
        image, mask, _, meta = ds[i]
        r, c = divmod(i, cols)
        x0, y0 = c * (2 * tile + 3 * gap) + gap, r * (tile + gap) + gap
        sheet.paste(Image.fromarray(image).resize((tile, tile), Image.BILINEAR), (x0, y0))
        cm = colour_mask(mask, ds.classes, ds.colors)
        sheet.paste(Image.fromarray(cm).resize((tile, tile), Image.NEAREST), (x0 + tile + gap, y0))
    y = rows * (tile + gap) + gap + 4
    draw.text((gap, y), f"{ds.name}  ({ds.modality}, {ds.size} px, {ds.pixel_size_um:g} um/px; "
                        f"image | region mask)", fill="black")
    for k, name in enumerate(ds.classes):
        r, c = divmod(k, 3)
        x, yy = gap + c * (sheet_w // 3), y + 18 + 18 * r
        draw.rectangle([x, yy, x + 12, yy + 12], fill=_rgb(ds.colors.get(name, "#808080")), outline="black")
        draw.text((x + 18, yy), name, fill="black")
    return sheet


def main(argv: list[str] | None = None) -> None:
    import topdown as td

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="docs/contact_sheets")
    ap.add_argument("--presets", nargs="*", default=None)
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--modality", default="he")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", default=None, help="folder for the datasets (default: a temp folder)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    root = Path(args.keep or tempfile.mkdtemp(prefix="topdown_sheets_"))
    for name in args.presets or td.sim.presets():
        ds = td.sim.simulate(name, n=args.n, out=root / f"{name}_{args.modality}", size=args.size,
                             modality=args.modality, seed=args.seed, workers=args.workers)
        suffix = "" if args.modality == "he" else f"_{args.modality}"
        path = out / f"{name}{suffix}.png"
        contact_sheet(ds).save(path, optimize=True)
        print(f"{path}: {len(ds)} frames, mean {np.mean([r['n_nuclei'] for r in ds.records]):.0f} nuclei/frame")


if __name__ == "__main__":
    main()
