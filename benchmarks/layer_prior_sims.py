"""What the layer prior costs on simulations: pooled mIoU through ``segment``, prior off vs on.

Fresh frames of a layered preset at its own imaging (seed 5, as
``benchmarks/sim_default_imaging.py`` renders them; rendered here when missing), each
segmented by the preset's shipped model with ``layer_prior=None`` and ``"auto"``. Simulated
frames include hemisections and crops, where the prior's whole-section assumption does not
hold, so this is the price side of the real-tissue gain (``benchmarks/real_regions.py``).
Run by hand:

    python benchmarks/layer_prior_sims.py cortex_laminar olfactory_bulb --n 30
    python benchmarks/layer_prior_sims.py --kind sim   # the simulation-only models (weights/sim/)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sim_default_imaging import shipped_model  # noqa: E402  (the benchmark beside this one)

REPO = Path(__file__).resolve().parents[1]
SEED = 5


def _frames(name: str, n: int, out: Path) -> Path:
    import topdown as td

    folder = out / f"{name}_seed{SEED}"
    if not (folder / "dataset.json").is_file():
        td.sim.simulate(td.sim.load_preset(name), n=n, out=folder, seed=SEED)
    return folder


def score(name: str, n: int, out: Path, kind: str = "regions") -> dict[str, float]:
    """Pooled mIoU of ``name``'s shipped model on ``n`` frames, prior off and on."""
    from PIL import Image

    import topdown as td
    from topdown.seg.metrics import confusion, scores

    folder = _frames(name, n, out)
    model = shipped_model(name, kind)
    k = len(model.classes) + 1
    cms = {"off": np.zeros((k, k)), "auto": np.zeros((k, k))}
    for line in (folder / "manifest.jsonl").read_text().splitlines()[:n]:
        rec = json.loads(line)
        image = np.asarray(Image.open(folder / rec["image"]).convert("RGB"))
        mask = np.asarray(Image.open(folder / rec["mask"]))
        for mode, cm in cms.items():
            rmap = td.seg.segment(image, model, pixel_size_um=rec["pixel_size_um"], device="cpu", progress=False,
                                  layer_prior=None if mode == "off" else "auto")
            cm += confusion(mask, rmap.image_labels(mask.shape), k)
    return {mode: round(float(scores(cm, ["outside", *model.classes])["miou"]), 4) for mode, cm in cms.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("presets", nargs="*", default=["cortex_laminar", "olfactory_bulb"])
    ap.add_argument("--n", type=int, default=30, help="frames per preset (default 30)")
    ap.add_argument("--kind", choices=("regions", "sim"), default="regions",
                    help="the shipped model (default) or, where one ships, the simulation-only model")
    ap.add_argument("--out", type=Path, default=REPO / "out" / "sim_default_imaging")
    args = ap.parse_args(argv)
    for name in args.presets:
        res = score(name, args.n, args.out, args.kind)
        print(f"{name}: pooled mIoU, layer prior off {res['off']:.3f}, on {res['auto']:.3f} ({args.n} frames)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
