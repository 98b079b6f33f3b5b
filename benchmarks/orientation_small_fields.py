"""Does the orientation search of an upright model help on small fields? Simulated DAPI crops.

Run by hand (not a test)::

    python benchmarks/orientation_small_fields.py            # ~2 min on 2 CPU cores

Six whole mouse_brain_coronal DAPI sections (640 px at 16 µm/px, seed 11, no bubbles, tears or
folds) are rendered upright; square crops of 32, 64 and 128 px (0.5, 1 and 2 mm, at least 95 %
tissue, six per section) are segmented by ``mouse_brain_coronal_dapi`` as they are
(``orientation=None``) and with the quarter-turn search (``orientation="auto"``, the default).
Prints the mean share of tissue pixels given their true region, and the number of crops.
Tutorial 05 quotes the 32 px line (the MERFISH crop is 31 x 28 map pixels).
"""

from __future__ import annotations

import argparse
import tempfile
import warnings

import numpy as np

import topdown as td


def sections(out: str, n: int = 6, seed: int = 11):
    """Whole upright DAPI sections without artefacts that hide tissue."""
    spec = td.sim.load_preset("mouse_brain_coronal")
    v = spec.variation
    v.whole, v.hemisection, v.edge_cut, v.pixel_size_jitter = 1.0, 0.0, 0.0, 0.0
    spec.artefacts.bubbles = spec.artefacts.tears = spec.artefacts.folds = (0.0, 0.0)
    return td.sim.simulate(spec, n=n, out=out, size=640, pixel_size_um=16.0, modality="dapi", seed=seed)


def tissue_crops(truth: np.ndarray, side: int, n: int, rng: np.random.Generator):
    """Up to ``n`` crop origins of ``side`` px whose pixels are at least 95 % tissue."""
    for _ in range(n):
        for _try in range(50):
            r, c = rng.integers(0, np.array(truth.shape) - side + 1)
            if (truth[r:r + side, c:c + side] > 0).mean() > 0.95:
                yield int(r), int(c)
                break


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sides", default="32,64,128", help="crop sides in map pixels (16 µm)")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    model = td.seg.load("mouse_brain_coronal_dapi")
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        ds = sections(tmp)
        for side in (int(s) for s in args.sides.split(",")):
            acc: dict[str, list[float]] = {"as is": [], "search": []}
            for i in range(len(ds)):
                image, truth, _, rec = ds[i]
                for r, c in tissue_crops(truth, side, 6, rng):
                    t = truth[r:r + side, c:c + side]
                    for name, orientation in (("as is", None), ("search", "auto")):
                        m = td.seg.segment(image[r:r + side, c:c + side], model,
                                           pixel_size_um=rec["pixel_size_um"], orientation=orientation)
                        acc[name].append(float((m.image_labels(t.shape) == t)[t > 0].mean()))
            print(f"{side} px ({side * 16 / 1000:g} mm): " + ", ".join(
                f"{k} {np.mean(a):.3f}" for k, a in acc.items()) + f" ({len(acc['as is'])} crops)", flush=True)


if __name__ == "__main__":
    main()
