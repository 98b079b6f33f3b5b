"""CUDA beside the CPU: the same results, and the time each takes (run by hand where a GPU is).

    python benchmarks/gpu.py                                  # every part, ../shared/data
    python benchmarks/gpu.py --parts segment nuclei --json out/gpu.json
    python benchmarks/gpu.py --parts train --sims-dapi sims/dapi --sims-regions sims/ob

Parts (each prints one JSON line; a part that fails prints its error and the others still run):

- ``segment``: the shipped ``olfactory_bulb`` and ``cortex_laminar`` models on one real_dev
  section each (mob 01, dlpfc 151507) on the CPU and on CUDA, as ``benchmarks/real_regions.py``
  runs them: seconds, the share of map pixels on which the two devices agree, and each device's
  ARI against the expert labels (scoring only).
- ``adapt``: ``td.seg.adapt`` of ``sim/olfactory_bulb`` to the four MOB images on CUDA (the
  shipped model's recipe, seed 0), then the four sections scored: mean ARI beside the shipped
  model's, which was adapted on the CPU.
- ``nuclei``: ``nuclei_dapi`` on the MERFISH crop on both devices (cells found, F1) and on a
  4096 x 4096 image at 0.4 µm/px on CUDA in bfloat16 and float32.
- ``train``: ``td.seg.train_nuclei`` and ``td.seg.train`` for a few steps on CUDA on small
  simulated sets (``--sims-dapi``, ``--sims-regions``: ``topdown simulate`` folders): seconds
  per step, and that the checkpoints load and run on the CPU.

Data: ``$TOPDOWN_SHARED_DATA`` (default ``../shared/data`` beside the repository) holding
``real_dev/`` and ``merfish_mouse_brain_mini/``.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nuclei as nuclei_bench  # noqa: E402  (the benchmarks beside this one)
import real_regions  # noqa: E402

PARTS = ("segment", "adapt", "nuclei", "train")
#: the device compared with the CPU (``--gpu cpu`` rehearses the script on a machine without one)
GPU = "cuda"
SEGMENT_CASES = (("mob", "01", "olfactory_bulb"), ("dlpfc", "151507", "cortex_laminar"))


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _timed(fn, *args, **kwargs):
    _sync()
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    _sync()
    return out, round(time.perf_counter() - t, 3)


@functools.cache
def _label_map(set_name: str) -> dict[str, str]:
    data = real_regions.default_data_dir()
    return json.loads((data / "label_map.json").read_text())[set_name]["labels"]


def part_segment() -> dict:
    """Shipped region models on one real section each, CPU against CUDA."""
    import topdown as td

    out = {}
    for set_name, name, preset in SEGMENT_CASES:
        section = next(s for s in real_regions.load_sections(real_regions.default_data_dir(), set_name)
                       if s.name == name)
        row, maps = {}, {}
        for device in (GPU, "cpu"):
            model = td.seg.load(preset, device=device)
            score = functools.partial(real_regions.score_section, section, model, _label_map(set_name),
                                      tta=True, device=device, orientation="ensemble")
            if device == GPU:
                score()  # warm-up: CUDA context and kernels
            (record, rmap, _), seconds = _timed(score)
            maps[device] = rmap.labels
            row[device] = {"seconds": seconds, "ari": round(record["ari"], 4)}
        row["map_agreement"] = round(float(np.mean(maps["cpu"] == maps[GPU])), 5)
        out[f"{set_name} {name}"] = row
    return out


def part_adapt() -> dict:
    """The shipped bulb model's adaptation, redone on CUDA, and its real-section score."""
    import topdown as td

    data = real_regions.default_data_dir()
    sections = real_regions.load_sections(data, "mob")
    tuned, seconds = _timed(td.seg.adapt, "sim/olfactory_bulb", [s.image for s in sections],
                            pixel_size_um=[s.pixel_size_um for s in sections], seed=0, device=GPU, progress=False)
    scores = {}
    for label, model in ((f"adapted on {GPU}", tuned), ("shipped (adapted on cpu)", td.seg.load("olfactory_bulb"))):
        aris = [real_regions.score_section(s, model, _label_map("mob"), tta=True, device=GPU)[0]["ari"]
                for s in sections]
        scores[label] = {"mean_ari": round(float(np.mean(aris)), 4), "ari": [round(a, 4) for a in aris]}
    return {"adapt_seconds": seconds, **scores}


def part_nuclei() -> dict:
    """nuclei_dapi on the real crop on both devices, and a 4k image on CUDA."""
    import topdown as td

    img, px, polys = nuclei_bench.real_crop()
    out = {}
    for device in (GPU, "cpu"):
        if device == GPU:
            td.seg.nuclei(img[:512, :512], "nuclei_dapi", pixel_size_um=px, device=device)  # warm-up
        res, seconds = _timed(td.seg.nuclei, img, "nuclei_dapi", pixel_size_um=px, device=device)
        scores = td.seg.centroid_scores(res.table[["x", "y"]].to_numpy(), polys)
        out[f"real crop, {device}"] = {"seconds": seconds, "n_nuclei": len(res),
                                       **{k: round(float(v), 4) for k, v in scores.items()}}
    grey = img if img.ndim == 2 else img.max(axis=2)
    big = np.tile(grey, (2, 2))[:4096, :4096]
    for precision in ("bf16", "fp32"):
        res, seconds = _timed(td.seg.nuclei, big, "nuclei_dapi", pixel_size_um=0.4, device=GPU, precision=precision)
        out[f"4096^2 at 0.4 um/px, {GPU} {precision}"] = {"seconds": seconds, "n_nuclei": len(res)}
    return out


def part_train(sims_dapi: Path | None, sims_regions: Path | None, steps: int) -> dict:
    """A few training steps of each kind on CUDA; the checkpoints must load and run on the CPU."""
    import topdown as td

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        if sims_dapi is not None:
            path = Path(tmp) / "nuclei.safetensors"
            model, seconds = _timed(td.seg.train_nuclei, sims_dapi, path, steps=steps, device=GPU,
                                    save_every=steps, log=lambda s: None)
            back = td.seg.load(path, kind="nuclei", device="cpu")
            frame = td.sim.SimDataset(sims_dapi)[0][0]
            found = td.seg.nuclei(frame, back, pixel_size_um="model", device="cpu")
            out["train_nuclei"] = {"steps": steps, "seconds": seconds, "seconds_per_step": round(seconds / steps, 4),
                                   "precision": model.train_config["precision"], "nuclei_in_frame_0": len(found)}
        if sims_regions is not None:
            path = Path(tmp) / "regions.safetensors"
            model, seconds = _timed(td.seg.train, sims_regions, path, epochs=2, device=GPU, progress=False)
            back = td.seg.load(path, device="cpu")
            frame = td.sim.SimDataset(sims_regions)[0][0]
            rmap = td.seg.segment(frame, back, pixel_size_um="model", device="cpu")
            out["train"] = {"epochs": 2, "seconds": seconds, "val_miou": model.metrics.get("val_miou"),
                            "regions_in_frame_0": int(len(np.unique(rmap.labels)))}
    return out


def main(argv: list[str] | None = None) -> int:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--parts", nargs="+", default=list(PARTS), choices=PARTS)
    ap.add_argument("--sims-dapi", type=Path, default=None, help="a DAPI `topdown simulate` folder (part train)")
    ap.add_argument("--sims-regions", type=Path, default=None, help="a region `topdown simulate` folder (part train)")
    ap.add_argument("--steps", type=int, default=300, help="train_nuclei steps (part train)")
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    ap.add_argument("--gpu", default="cuda", help=argparse.SUPPRESS)  # 'cpu': rehearse without a GPU
    args = ap.parse_args(argv)
    global GPU
    GPU = args.gpu
    if GPU == "cuda" and not torch.cuda.is_available():
        print("no CUDA GPU is visible to torch: this benchmark compares CUDA with the CPU; run it on a GPU machine.",
              file=sys.stderr)
        return 2
    results = {"gpu": torch.cuda.get_device_name(0) if GPU == "cuda" else GPU, "torch": torch.__version__}
    print(json.dumps(results), flush=True)
    runners = {"segment": part_segment, "adapt": part_adapt, "nuclei": part_nuclei,
               "train": lambda: part_train(args.sims_dapi, args.sims_regions, args.steps)}
    for part in args.parts:
        try:
            results[part], seconds = _timed(runners[part])
            results[part]["part_seconds"] = seconds
        except Exception as exc:  # one broken part must not hide the others' figures
            results[part] = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-2000:]}
        print(json.dumps({part: results[part]}), flush=True)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
