"""Does adapting to some real sections help on sections the adaptation never saw?

The shipped ``olfactory_bulb`` and ``cortex_laminar`` models are their simulation-only models
(``td.seg.load(preset, kind="sim")``) adapted without labels to the images of the real_dev
sections (``benchmarks/adapt_shipped.sh``), so scoring them on those same sections says
little about a user's new ones. This benchmark measures that by leaving sections out: for
each set and fold (consecutive groups of ``--leave-out`` sections, in name order), the
simulation-only model is adapted (``td.seg.adapt``, pseudo-labels, seed 0) on the other
sections' images only, and the fold's sections are scored (labels for scoring only) four
ways, through ``benchmarks/real_regions.py``:

- ``sim_plain``: the simulation-only model, plain ``segment`` (layer prior and, for upright
  models, the orientation ensemble; no adaptation);
- ``sim_adapted``: the simulation-only model adapted to the scored sections themselves
  (the zero-label recipe a user runs on their own sections);
- ``preadapted_plain``: the model adapted to the other sections, plain ``segment``: what a
  user who runs the shipped model on new sections of the same kind gets;
- ``preadapted_adapted``: that model adapted again to the scored sections.

Run by hand (about 10 minutes on 2 cores):

    python benchmarks/adapt_transfer.py                 # both sets, two sections left out per fold
    python benchmarks/adapt_transfer.py --sets mob
    python benchmarks/adapt_transfer.py --leave-out 1     # adapt on three sections, score the fourth

It prints one line per fold and condition and the mean per set and condition, and writes
``adapt_transfer_leave<N>.json`` under ``--out``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real_regions  # noqa: E402  (the benchmark beside this one)

SETS = ("dlpfc", "mob")
CONDITIONS = ("sim_plain", "sim_adapted", "preadapted_plain", "preadapted_adapted")


def _score(data: Path, set_name: str, sections: list[str], out: Path, model: str, adapt: bool) -> dict[str, float]:
    """ARI per section of ``real_regions.py`` run quietly with one model and recipe."""
    args = ["--data", str(data), "--sets", set_name, "--sections", *sections, "--out", str(out), "--model", model,
            "--adapt", "pseudo_label" if adapt else "off"]
    with contextlib.redirect_stdout(io.StringIO()):
        if real_regions.main(args) != 0:
            raise SystemExit(f"real_regions.py failed for {set_name} {sections}")
    return {r["section"]: r["ari"] for r in json.loads((out / "real_regions.json").read_text())}


def folds(names: list[str], leave_out: int) -> list[tuple[str, ...]]:
    """The sections each fold adapts on: all but one consecutive group of ``leave_out``."""
    if not 1 <= leave_out < len(names):
        raise SystemExit(f"--leave-out must lie in [1, {len(names) - 1}] for {len(names)} sections")
    groups = [names[i:i + leave_out] for i in range(0, len(names), leave_out)]
    return [tuple(n for n in names if n not in group) for group in groups]


def run_fold(data: Path, set_name: str, sections: list, preset: str, train: tuple[str, ...],
             out: Path) -> dict[str, dict[str, float]]:
    """The four conditions' ARI per scored section for one fold (``sections``: the set's, loaded)."""
    import topdown as td
    from topdown.seg.checkpoint import resolve

    scored = [s.name for s in sections if s.name not in train]
    fit = [s for s in sections if s.name in train]
    sim_model = str(resolve(preset, kind="sim"))
    adapted = td.seg.adapt(sim_model, [s.image for s in fit], pixel_size_um=[s.pixel_size_um for s in fit],
                           method="pseudo_label", seed=0, device="cpu", progress=False)
    preadapted = out / f"{set_name}_{'_'.join(train)}.safetensors"
    td.seg.save(adapted, preadapted)
    models = {"sim": sim_model, "preadapted": str(preadapted)}
    result = {}
    for condition in CONDITIONS:
        base, recipe = condition.split("_")
        result[condition] = _score(data, set_name, scored, out / f"{set_name}_{'_'.join(train)}_{condition}",
                                   models[base], adapt=recipe == "adapted")
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=real_regions.default_data_dir(), help="the real_dev folder")
    ap.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS)
    ap.add_argument("--leave-out", type=int, default=2, help="sections scored per fold (default 2)")
    ap.add_argument("--out", type=Path, default=real_regions.REPO / "out" / "adapt_transfer")
    args = ap.parse_args(argv)
    if not (args.data / "label_map.json").is_file():
        print(f"no label_map.json under '{args.data}'; pass --data or set TOPDOWN_REAL_DEV.", file=sys.stderr)
        return 2
    label_map = json.loads((args.data / "label_map.json").read_text())
    args.out.mkdir(parents=True, exist_ok=True)
    records = []
    for set_name in args.sets:
        sections = real_regions.load_sections(args.data, set_name)
        for train in folds(sorted(s.name for s in sections), args.leave_out):
            fold = run_fold(args.data, set_name, sections, label_map[set_name]["preset"], train, args.out)
            for condition, aris in fold.items():
                records.append({"set": set_name, "adapted_on": list(train), "condition": condition, "ari": aris})
                print(f"{set_name} adapted on {'+'.join(train)} | {condition:18s} | "
                      + " ".join(f"{k} {v:.3f}" for k, v in aris.items()), flush=True)
        for condition in CONDITIONS:
            aris = [v for r in records if r["set"] == set_name and r["condition"] == condition for v in r["ari"].values()]
            print(f"{set_name} mean over the left-out sections | {condition:18s} | {np.mean(aris):.3f}")
    (args.out / f"adapt_transfer_leave{args.leave_out}.json").write_text(json.dumps(records, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
