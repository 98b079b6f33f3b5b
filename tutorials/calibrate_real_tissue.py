"""Calibrate a preset's appearance to unlabelled real sections, then compare patches.

Run from the repository root (needs Blender's ``bpy``, about a minute on 2 cores)::

    python tutorials/calibrate_real_tissue.py [mob|dlpfc] [WORK_DIR]

It measures the real images of ``../shared/data/real_dev/<set>`` (no labels used), writes
the calibrated spec, renders a few 128 px frames from the preset and from the calibrated
spec at the real pixel size, and saves ``docs/real_tissue/calibrate_<set>.png``: real
patches (top), preset (middle), calibrated (bottom).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

import topdown as td  # noqa: E402

SETS = {"mob": ("olfactory_bulb", "image.jpg"), "dlpfc": ("cortex_laminar", "image.png")}
ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "real_dev"
N, SIZE = 4, 128


def real_patches(paths: list[Path], n: int, size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``n`` crops of ``size`` px, mostly tissue, from the real images."""
    out = []
    while len(out) < n:
        img = np.asarray(Image.open(paths[len(out) % len(paths)]).convert("RGB"))
        h, w = img.shape[:2]
        for _ in range(200):
            y, x = rng.integers(0, h - size), rng.integers(0, w - size)
            crop = img[y:y + size, x:x + size]
            if (crop.mean(axis=2) < 0.85 * np.percentile(img, 99)).mean() > 0.6:
                out.append(crop)
                break
    return out


def main(which: str = "mob", work: Path = Path("tutorial_work")) -> Path:
    preset, name = SETS[which]
    paths = sorted((DATA / which).glob(f"*/{name}"))
    px = [json.loads((p.parent / "meta.json").read_text())["pixel_size_um"] for p in paths]
    spec, report = td.sim.calibrate(preset, paths, pixel_size_um=px, return_report=True)
    print(report)
    spec.to_yaml(work / f"{preset}_calibrated.yaml")
    rows = {"real": real_patches(paths, N, SIZE, np.random.default_rng(0))}
    for label, s in (("preset", td.sim.load_preset(preset)), ("calibrated", spec)):
        ds = td.sim.simulate(s, n=N, out=work / f"{which}_{label}", size=SIZE,
                             pixel_size_um=float(np.mean(px)), seed=3)
        rows[label] = [ds[i][0] for i in range(N)]
    fig, axes = plt.subplots(3, N, figsize=(2 * N, 6.3))
    for r, (label, imgs) in enumerate(rows.items()):
        for c, img in enumerate(imgs):
            axes[r, c].imshow(img)
            axes[r, c].set_xticks([]), axes[r, c].set_yticks([])
        axes[r, 0].set_ylabel(label)
    fig.suptitle(f"{which}: real vs {preset} simulated at {np.mean(px):.2f} µm/px, before/after calibration")
    fig.tight_layout()
    out = ROOT / "docs" / "real_tissue" / f"calibrate_{which}.png"
    fig.savefig(out, dpi=80)
    return out


if __name__ == "__main__":
    print(main(sys.argv[1] if len(sys.argv) > 1 else "mob",
               Path(sys.argv[2]) if len(sys.argv) > 2 else Path("/tmp/calib_work")))
