"""Simulated mIoU of the shipped models at their presets' own imaging (a secondary figure).

The shipped models were trained at the pixel size in ``benchmarks/train_shipped.sh``, which
is not always the preset's own (the sciatic nerve model learnt at 2 µm/px; its preset
images at 6). A user simulating with a preset's defaults gets frames at the preset's pixel
size and frame size; this script renders fresh frames exactly so (seed 5, never used for
training or the held-out tests) and scores each shipped model on them with
:func:`topdown.seg.evaluate` (which resamples frames to the model's pixel size). Run by hand:

    python benchmarks/sim_default_imaging.py                    # every shipped H&E model, 40 frames
    python benchmarks/sim_default_imaging.py --n 100 --presets sciatic_nerve

Prints one row per model and writes ``sim_default_imaging.json`` under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SEED = 5


def shipped_model(name: str, kind: str = "regions"):
    """Preset ``name``'s shipped model of ``kind`` (``"sim"``: the simulation-only one, where it
    ships apart from a real-adapted model; otherwise the shipped one)."""
    import topdown as td

    return td.seg.load(name, kind=kind if name in td.seg.available_models(kind) else "regions")


def score_preset(name: str, n: int, out: Path, workers: int, kind: str = "regions") -> dict:
    """Render ``n`` frames of preset ``name`` at its own imaging and score its shipped model."""
    import topdown as td

    spec = td.sim.load_preset(name)
    model = shipped_model(name, kind)
    folder = out / f"{name}_seed{SEED}"
    t0 = time.perf_counter()
    if not (folder / "dataset.json").is_file():
        td.sim.simulate(spec, n=n, out=folder, seed=SEED, workers=workers)
    render_s = time.perf_counter() - t0
    res = td.seg.evaluate(model, folder)
    return {"preset": name, "frames": n, "preset_pixel_size_um": spec.imaging.pixel_size_um,
            "preset_frame_px": spec.imaging.size, "model_pixel_size_um": model.pixel_size_um,
            "miou": round(float(res["miou"]), 4), "pixel_accuracy": round(float(res["pixel_accuracy"]), 4),
            "render_seconds": round(render_s, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--presets", nargs="+", default=None, help="presets (default: every shipped H&E model's)")
    ap.add_argument("--n", type=int, default=40, help="frames per preset (default 40)")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--kind", choices=("regions", "sim"), default="regions",
                    help="the shipped models (default) or, where one ships, the simulation-only model")
    ap.add_argument("--out", type=Path, default=REPO / "out" / "sim_default_imaging")
    args = ap.parse_args(argv)

    import topdown as td

    names = args.presets or [m for m in td.seg.available_models() if not m.endswith("_dapi")]
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in names:
        row = score_preset(name, args.n, args.out, args.workers, args.kind)
        rows.append(row)
        print(f"{name}: mIoU {row['miou']:.3f} (pixel accuracy {row['pixel_accuracy']:.3f}) on {row['frames']} frames "
              f"at the preset's {row['preset_pixel_size_um']} µm/px x {row['preset_frame_px']} px "
              f"(model {row['model_pixel_size_um']} µm/px)", flush=True)
    (args.out / "sim_default_imaging.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
