"""Benchmark the nucleus model: simulated held-out frames, the real MERFISH DAPI crop, speed.

Run by hand (not a test)::

    python benchmarks/nuclei.py                        # shipped nuclei_dapi, all parts
    python benchmarks/nuclei.py --model m.pt --skip-speed --json out.json

* simulated held-out frames: the model's ``train_config['val_frames']`` of its training
  dataset (never trained on), or ``--sim DIR`` (all frames): precision / recall / F1 at IoU
  0.5 and mean per-object IoU (each true nucleus's best IoU, 0 when missed), pooled over frames.
* real: ``merfish_mouse_brain_mini`` z0 DAPI (0.109 µm/px) against Vizgen's 498 cell
  polygons: a cell is found when exactly one detected centroid lies in it (precision =
  found / detections, recall = found / cells). The polygons are used for scoring only.
  The same for the crop's second focal plane, z1 (its own image and polygons: ``real_z1``),
  a second field that a change tuned to z0 would not follow.
  Beside the model: Otsu + distance-transform watershed (skimage, below) and squidpy's
  ``sq.im.segment(method="watershed")`` with its defaults (when importable).
* ``--ceiling``: each design's exact class target of the simulated frames (one-hot, as a perfect
  network would give it) through its instance step (``distance``: the watershed, ``steps``:
  following the steps): what the design can reach at best.
* speed: ``td.seg.nuclei`` on a 4096 x 4096 image (mirrored tiles of the real z0 plane resampled
  to the pixel size it is read at, so its nuclei have their real size) at 0.4 µm/px (the model's
  own pixel size: 16.8 M network pixels) and at 0.109 µm/px (MERFISH: resampled to 1.1 k x 1.1 k),
  each in a fresh process with 2 torch threads; wall time and peak RSS above the warmed-up
  process. A 2048 x 2048 run at 0.4 µm/px beside the 4096² one tells the memory that grows with
  the image (per pixel, from the difference) from the network's tiles.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CROP = Path(os.environ.get("TOPDOWN_SHARED_DATA", "/work/shared/data")) / "merfish_mouse_brain_mini"


def otsu_watershed(grey: np.ndarray, pixel_size_um: float) -> np.ndarray:
    """Classical baseline: Gaussian smoothing, Otsu threshold, distance-transform peaks as
    watershed seeds (min. distance ~ 4 µm), small objects (< 10 µm²) removed."""
    from scipy import ndimage
    from skimage.feature import peak_local_max
    from skimage.filters import gaussian, threshold_otsu
    from skimage.segmentation import watershed

    sm = gaussian(grey.astype(np.float32), sigma=max(1.0, 0.5 / pixel_size_um))
    fg = sm > threshold_otsu(sm)
    fg = ndimage.binary_opening(fg, iterations=2)
    dist = ndimage.distance_transform_edt(fg)
    comp, _ = ndimage.label(fg)
    peaks = peak_local_max(dist, min_distance=max(2, int(4.0 / pixel_size_um / 2)), labels=comp, exclude_border=False)
    seeds = np.zeros(fg.shape, np.int32)
    seeds[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    lab = watershed(-dist, seeds, mask=fg)
    area = np.bincount(lab.ravel())
    lab[(area < 10.0 / pixel_size_um ** 2)[lab] & (lab > 0)] = 0
    return lab


def centroids_of(lab: np.ndarray) -> np.ndarray:
    """``(n, 2)`` x, y centroids of the objects of an instance image."""
    from scipy import ndimage

    ids = np.unique(lab)
    ids = ids[ids > 0]
    cen = np.asarray(ndimage.center_of_mass(lab > 0, lab, ids)).reshape(-1, 2)
    return cen[:, ::-1]


def real_crop(plane: str = "z0") -> tuple[np.ndarray, float, list]:
    """The DAPI image of focal plane ``plane`` (z0 or z1), its µm/px and that plane's cell polygons in image pixels."""
    import pandas as pd
    import shapely

    img, sx, sy, ext = _crop_image(plane)
    df = pd.read_csv(CROP / "cell_boundaries" / f"{plane}_polygons.gz")
    polys = []
    for _, g in df.groupby("poly_ID", sort=False):
        xy = np.c_[(g["x"].to_numpy() - ext["xmin"]) * sx, (ext["ymax"] - g["y"].to_numpy()) * sy]
        if len(xy) >= 3:
            polys.append(shapely.make_valid(shapely.Polygon(xy)))
    return img, _um_per_px(sx, sy), polys


def crop_grey(plane: str = "z0") -> tuple[np.ndarray, float]:
    """The plane's DAPI image as one grey channel and its µm/px."""
    img, sx, sy, _ = _crop_image(plane)
    return (img if img.ndim == 2 else img.max(axis=2)), _um_per_px(sx, sy)


def _um_per_px(sx: float, sy: float) -> float:
    """µm per pixel from pixels per µm in x and y."""
    return float(0.5 * (1 / sx + 1 / sy))


def _crop_image(plane: str) -> tuple[np.ndarray, float, float, dict]:
    """The plane's DAPI image, its pixels per µm in x and y, and its extent in µm."""
    from PIL import Image

    img = np.asarray(Image.open(CROP / "images" / f"mini_dataset_dapi_{plane}.jpg"))
    ext = json.loads((CROP / "image_extent.json").read_text())
    h, w = img.shape[:2]
    return img, w / (ext["xmax"] - ext["xmin"]), h / (ext["ymax"] - ext["ymin"]), ext


def squidpy_watershed(img: np.ndarray) -> np.ndarray | None:
    """``sq.im.segment(method="watershed")`` with its defaults, or ``None`` when squidpy is missing."""
    try:
        import squidpy as sq
    except Exception:
        return None
    ic = sq.im.ImageContainer(img[..., None] if img.ndim == 2 else img, layer="image")
    sq.im.segment(ic, layer="image", method="watershed")
    return np.asarray(ic["segmented_watershed"]).squeeze()


def bench_real(model, out_png: Path | None, precision: str = "auto", plane: str = "z0") -> dict:
    import topdown as td

    img, px, polys = real_crop(plane)
    grey = img if img.ndim == 2 else img.max(axis=2)
    rows = {}
    t = time.time()
    res = td.seg.nuclei(img, model, pixel_size_um=px, device="cpu", precision=precision)
    rows["topdown nuclei"] = {**td.seg.centroid_scores(res.table[["x", "y"]].to_numpy(), polys),
                              "seconds": time.time() - t}
    t = time.time()
    rows["Otsu + distance watershed"] = {**td.seg.centroid_scores(centroids_of(otsu_watershed(grey, px)), polys),
                                         "seconds": time.time() - t}
    t = time.time()
    sq_lab = squidpy_watershed(grey)
    if sq_lab is not None:
        rows["squidpy watershed (defaults)"] = {**td.seg.centroid_scores(centroids_of(sq_lab), polys),
                                                "seconds": time.time() - t}
    if out_png is not None:
        overlay(img, res, polys, out_png)
    return {"pixel_size_um": px, "n_cells": len(polys), "methods": rows}


def overlay(img: np.ndarray, res, polys, path: Path) -> None:
    """The real crop with Vizgen's cell polygons (cyan) and the nuclei found (yellow outlines)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import topdown as td

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(16, 8))
    for ax, (r0, c0, s) in zip(axes, [(0, 0, img.shape[0]), (1500, 1500, 900)], strict=True):
        sub = img[r0:r0 + s, c0:c0 + s]
        td.pl.nuclei(sub, res.labels[r0:r0 + s, c0:c0 + s], ax=ax, show=False, title="")
        for p in polys:
            x, y = p.exterior.xy if hasattr(p, "exterior") else ([], [])
            ax.plot(np.asarray(x) - c0, np.asarray(y) - r0, color="#27d3ff", lw=0.5 if s > 2000 else 1.0)
        ax.set_xlim(0, sub.shape[1])
        ax.set_ylim(sub.shape[0], 0)
    axes[0].set_title(f"MERFISH DAPI z0: {len(res)} nuclei (yellow), {len(polys)} Vizgen cells (cyan)")
    axes[1].set_title("zoom (rows/cols 1500-2400)")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def _pool(rows: list[dict]) -> dict:
    tp, fp, fn = (sum(r[k] for r in rows) for k in ("tp", "fp", "fn"))
    p, r = tp / max(1, tp + fp), tp / max(1, tp + fn)
    return {"precision": p, "recall": r, "f1": 2 * p * r / max(p + r, 1e-12),
            "mean_iou": float(np.nanmean([x["mean_iou"] for x in rows])), "n_true": tp + fn}


def _sim_frames(model, sim: str | None, limit: int):
    """The simulated dataset and the frame indices to score: the model's held-out frames, or all of ``sim``."""
    import topdown as td

    m = td.seg.load(model, kind="nuclei")
    data = Path(sim or m.train_config["data"])
    if not sim and not data.is_absolute():  # the recipe's frames, beside the repository (benchmarks/train_nuclei.sh)
        data = REPO / data
    if not (data / "dataset.json").exists():
        raise SystemExit(f"no simulated frames at '{data}': run `bash benchmarks/train_nuclei.sh` (it simulates "
                         "them), or pass --sim DIR")
    ds = td.sim.SimDataset(data)
    return ds, (list(range(len(ds))) if sim else list(m.train_config["val_frames"]))[:limit]


def bench_sim(model, sim: str | None, limit: int, min_um2: float = 10.0, precision: str = "auto") -> dict:
    """Pooled scores on simulated frames, over all true nuclei and over those of at least
    ``min_um2`` (leaving out slivers cut by the frame edge or hidden under other nuclei)."""
    import topdown as td
    from topdown.seg.nucleus_target import nuclear_signal

    m = td.seg.load(model, kind="nuclei")
    ds, idx = _sim_frames(m, sim, limit)
    rows: dict[str, list] = {}
    for i in idx:
        img, _, ids, rec = ds[i]
        px = rec["pixel_size_um"]
        preds = {"topdown nuclei": td.seg.nuclei(img, m, pixel_size_um=px, device="cpu", precision=precision).labels,
                 "Otsu + distance watershed": otsu_watershed(nuclear_signal(img, ds.modality), px)}
        for k, lab in preds.items():
            rows.setdefault(f"{k} | all nuclei", []).append(td.seg.match_instances(ids, lab))
            rows.setdefault(f"{k} | nuclei >= {min_um2:g} um2", []).append(
                td.seg.match_instances(ids, lab, ignore_smaller=int(min_um2 / px ** 2)))
    return {"frames": len(idx), "dataset": str(ds.path), "methods": {k: _pool(v) for k, v in rows.items()}}


def bench_ceiling(model, sim: str | None, limit: int) -> dict:
    """Scores of each design's exact targets of the simulated frames, through its instance step."""
    import topdown as td
    from topdown.seg.nuclei_infer import INSTANCE_STEPS
    from topdown.seg.nucleus_designs import DESIGNS

    ds, idx = _sim_frames(model, sim, limit)
    rows: dict[str, list] = {}
    for i in idx:
        ids = ds[i][2]
        for name, (classes, target) in DESIGNS.items():
            probs = np.eye(len(classes) + 1, dtype=np.float32)[target(ids)].transpose(2, 0, 1)
            rows.setdefault(name, []).append(td.seg.match_instances(ids, INSTANCE_STEPS[name](probs, min_area=1)))
    return {"frames": len(idx), "designs": {k: _pool(v) for k, v in rows.items()}}


def speed_image(pixel_size: float, size: int) -> np.ndarray:
    """A ``size``² DAPI image at ``pixel_size`` µm/px: the real z0 plane resampled to that pixel size, mirrored.

    Its nuclei have their real size at the pixel size they are read at (an image of the crop
    read as 0.4 µm/px without resampling shows nuclei 3.7x too large, which the model cuts
    into fragments), so the timing includes a realistic number of nuclei.
    """
    from skimage.transform import rescale

    grey, stored_px = crop_grey("z0")
    if abs(stored_px / pixel_size - 1) > 1e-3:
        grey = rescale(grey, stored_px / pixel_size, order=1, anti_aliasing=True, preserve_range=True)
    grey = np.clip(grey, 0, 255).astype(np.uint8)
    reps = [int(np.ceil(size / n)) for n in grey.shape]
    tiles = [[grey[:: 1 - 2 * (i % 2), :: 1 - 2 * (j % 2)] for j in range(reps[1])] for i in range(reps[0])]
    return np.block(tiles)[:size, :size].copy()  # mirrored tiles: no seam between neighbours


def _speed_child(model: str, pixel_size: float, precision: str = "auto", size: int = 4096) -> None:
    import torch

    import topdown as td

    torch.set_num_threads(2)
    big = speed_image(pixel_size, size)
    td.seg.nuclei(big[:256, :256], model, pixel_size_um=pixel_size, device="cpu", precision=precision)  # warm-up
    base = _vm("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark (VmHWM) to the current RSS
    t = time.time()
    res = td.seg.nuclei(big, model, pixel_size_um=pixel_size, device="cpu", precision=precision)
    dt = time.time() - t
    print(json.dumps({"pixel_size_um": pixel_size, "precision": precision, "image": list(big.shape), "seconds": dt,
                      "peak_rss_mb": _vm("VmHWM"), "rss_before_mb": base,
                      "peak_above_before_mb": _vm("VmHWM") - base, "n_nuclei": len(res),
                      "load_average_1min": os.getloadavg()[0]}))


def _vm(key: str) -> float:
    """A ``/proc/self/status`` memory field in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bench_speed(model: str, precision: str = "auto") -> list[dict]:
    out = []
    for px, size in ((0.4, 4096), (0.109, 4096), (0.4, 2048)):  # 2048²: memory per pixel from the difference
        cmd = [sys.executable, __file__, "--speed-child", str(px), "--speed-size", str(size), "--model", model,
               "--precision", precision]
        res = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
        line = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
        out.append(json.loads(line[-1]) if line else {"pixel_size_um": px, "error": res.stderr[-500:]})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="nuclei_dapi")
    ap.add_argument("--sim", default=None, help="simulated dataset to score (default: the model's held-out frames)")
    ap.add_argument("--limit", type=int, default=60, help="at most this many simulated frames")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-sim", action="store_true")
    ap.add_argument("--skip-real", action="store_true", help="e.g. for an H&E model (the real crop is DAPI)")
    ap.add_argument("--ceiling", action="store_true", help="also score each design's exact targets (see above)")
    ap.add_argument("--overlay", default=str(REPO / "docs" / "nuclei" / "merfish_overlay.png"))
    ap.add_argument("--json", default=None, help="write the results here")
    ap.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"),
                    help="network precision of td.seg.nuclei (auto: bf16 where the CPU has it natively)")
    ap.add_argument("--speed-child", type=float, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--speed-size", type=int, default=4096, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.speed_child is not None:
        _speed_child(args.model, args.speed_child, args.precision, args.speed_size)
        return
    import torch

    torch.set_num_threads(int(os.environ.get("TOPDOWN_BENCH_THREADS", "1")))
    result = {"model": args.model, "precision": args.precision}
    if not args.skip_sim:
        result["simulated"] = bench_sim(args.model, args.sim, args.limit, precision=args.precision)
        print(json.dumps(result["simulated"], indent=1), flush=True)
    if args.ceiling:
        result["ceiling"] = bench_ceiling(args.model, args.sim, args.limit)
        print(json.dumps(result["ceiling"], indent=1), flush=True)
    if not args.skip_real:
        result["real"] = bench_real(args.model, Path(args.overlay) if args.overlay else None, args.precision)
        print(json.dumps(result["real"], indent=1), flush=True)
        result["real_z1"] = bench_real(args.model, None, args.precision, plane="z1")
        print(json.dumps(result["real_z1"], indent=1), flush=True)
    if not args.skip_speed:
        result["speed"] = bench_speed(args.model, args.precision)
        print(json.dumps(result["speed"], indent=1), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
