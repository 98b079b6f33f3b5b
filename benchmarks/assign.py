"""Benchmark region assignment against geopandas.sjoin on the same input.

Run by hand (not a test)::

    python benchmarks/assign.py                 # full: 1e5, 1e6, 4e6 cells + 5e5 HD disks
    python benchmarks/assign.py --quick         # small sizes, seconds

Every measurement runs in a fresh forked process; "MB" is its peak RSS during the timed
call above its RSS once the input is built (VmHWM reset through /proc/self/clear_refs). Regions: a 1024 x 1024 label raster
(9 Voronoi regions inside an elliptical tissue, i.e. jagged raster-derived polygons like a
model's output) at 8 full-res pixels per map pixel. The same polygons
(``StoredRegions.to_geodataframe``) are given to geopandas.

* cells: ``td.tl.assign_regions(adata, mode="centroid")`` (the full public call on an
  AnnData) vs ``geopandas.sjoin(points, regions, predicate="within")`` (points built from
  the same array). Labels are compared.
* Visium-HD-sized disks (2 µm diameter at 0.274 µm/px): ``assign_regions(mode="disk")``
  (exact closed-form disk/pixel areas) vs geopandas: ``buffer`` (quad_segs=8) +
  ``sjoin(predicate="intersects")`` + ``intersection().area`` per candidate pair.
  The maximum fraction difference between the two is printed (the geopandas side is the
  approximate one: a 32-gon).
* cell polygons (16-gons, ~7.5 map pixels across): ``assign_regions(mode="polygon")``
  (cells inside one label's pixels short-cut; the rest clipped exactly by their pixel
  squares) vs the same geopandas sjoin + intersection on the region polygons; both exact,
  so the difference is float noise.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import sys
import time

import numpy as np

SCALE = 8.0  # full-res px per map px
MAP = 1024
HD_UM_PER_PX = 0.2737  # typical Visium HD full-res pixel size
HD_BIN_UM = 2.0
CELL_R = 30.0  # full-res px: ~16 um cells at 0.27 um/px, 7.5 map px across


def make_labels(seed: int = 0) -> np.ndarray:
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(seed)
    seeds = rng.uniform(0, MAP, (9, 2))
    yy, xx = np.mgrid[0:MAP, 0:MAP]
    _, nearest = cKDTree(seeds).query(np.c_[xx.ravel(), yy.ravel()])
    lab = (nearest + 1).reshape(MAP, MAP).astype(np.uint8)
    tissue = ((xx - MAP / 2) / (0.45 * MAP)) ** 2 + ((yy - MAP / 2) / (0.4 * MAP)) ** 2 < 1
    lab[~tissue] = 0
    return lab


def make_adata(n: int, spot_diameter: float | None, seed: int = 1):
    import anndata as ad
    import pandas as pd

    import topdown as td
    from topdown.seg.regionmap import RegionMap

    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, MAP * SCALE, (n, 2))
    a = ad.AnnData(obs=pd.DataFrame(index=pd.RangeIndex(n).astype(str)))
    a.obsm["spatial"] = xy
    tech = "visium_hd" if spot_diameter else "cells"
    sf = {"tissue_hires_scalef": 1.0 / SCALE, "microns_per_pixel": HD_UM_PER_PX,
          "spot_diameter_fullres": spot_diameter or 10.0}
    a.uns["spatial"] = {"bench": {"images": {"hires": np.zeros((MAP, MAP, 3), np.uint8)},
                                  "scalefactors": sf, "metadata": {"technology": tech}}}
    rmap = RegionMap(make_labels(), tuple(f"r{i}" for i in range(1, 10)), image_shape=(MAP, MAP))
    td.tl.segment_regions(a, rmap)
    return a


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _hwm_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _start() -> float:
    """Reset the peak-RSS counter (Linux >= 4.0) once the input is built; return RSS now."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    return _rss_mb()


def _child(fn, args, q):
    t, base, out = fn(*args)
    q.put((t, max(0.0, _hwm_mb() - base), out))


def measure(fn, *args):
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(fn, args, q))
    p.start()
    import queue

    while True:
        try:
            res = q.get(timeout=1.0)
            break
        except queue.Empty:
            if not p.is_alive():
                raise RuntimeError(f"{fn.__name__}({args}) failed (exit code {p.exitcode})") from None
    p.join()
    return res


# ---- the measured bodies (each builds its input untimed, then times the call) ------------
def topdown_cells(n):
    import topdown as td

    a = make_adata(n, None)
    base = _start()
    t0 = time.perf_counter()
    td.tl.assign_regions(a, mode="centroid")  # alignment check included
    t = time.perf_counter() - t0
    return t, base, a.obs["region"].cat.codes.to_numpy()[:200_000].copy()


def _region_gdf():
    from topdown.get import load_store

    a = make_adata(10, None)
    return load_store(a, "regions")["bench"].to_geodataframe()[["region", "label", "geometry"]]


def geopandas_cells(n):
    import geopandas as gpd

    regions = _region_gdf()
    xy = np.random.default_rng(1).uniform(0, MAP * SCALE, (n, 2))
    base = _start()
    t0 = time.perf_counter()
    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]))
    j = gpd.sjoin(pts, regions, how="left", predicate="within")
    t = time.perf_counter() - t0
    lab = np.zeros(n, np.int64)
    ok = j["label"].notna().to_numpy()
    lab[j.index.to_numpy()[ok]] = j["label"].to_numpy()[ok].astype(np.int64)
    return t, base, lab[:200_000]


def topdown_disks(n):
    d = HD_BIN_UM / HD_UM_PER_PX
    return _timed_assign(make_adata(n, d), "disk")


def _cells(xy):
    import shapely

    return shapely.buffer(shapely.points(xy), CELL_R, quad_segs=4)  # 16-gon cells


def topdown_polygons(n):
    from topdown.io._generic import boundaries_to_uns

    a = make_adata(n, None)
    a.uns["cell_boundaries"] = boundaries_to_uns(_cells(a.obsm["spatial"]), a.obs_names, np.eye(3))
    return _timed_assign(a, "polygon")


def _timed_assign(a, mode):
    """Seconds of ``td.tl.assign_regions(a, mode=mode)``, the memory baseline, the first 20k fractions."""
    import topdown as td

    base = _start()
    t0 = time.perf_counter()
    td.tl.assign_regions(a, mode=mode)
    t = time.perf_counter() - t0
    return t, base, a.obsm["region_fractions"].to_numpy()[:20_000].copy()


def geopandas_polygons(n):
    return geopandas_disks(n, polygons=True)


def geopandas_disks(n, polygons=False):
    import geopandas as gpd

    regions = _region_gdf()
    xy = np.random.default_rng(1).uniform(0, MAP * SCALE, (n, 2))
    r = HD_BIN_UM / HD_UM_PER_PX / 2
    shapes = _cells(xy) if polygons else None
    base = _start()
    t0 = time.perf_counter()
    disks = gpd.GeoDataFrame(geometry=shapes if polygons else
                             gpd.points_from_xy(xy[:, 0], xy[:, 1]).buffer(r, resolution=8))
    j = gpd.sjoin(disks, regions, how="inner", predicate="intersects")
    other = gpd.GeoSeries(regions.geometry.values[j["index_right"].to_numpy()], index=j.index)
    inter = j.geometry.intersection(other, align=False)
    area = inter.area.to_numpy() / disks.geometry.area.to_numpy()[j.index.to_numpy()]
    frac = np.zeros((n, 10))
    np.add.at(frac, (j.index.to_numpy(), j["label"].to_numpy().astype(int)), area)
    t = time.perf_counter() - t0
    frac[:, 0] = 1 - frac[:, 1:].sum(1)
    return t, base, frac[:20_000]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes")
    ap.add_argument("--no-geopandas-above", type=float, default=4e6,
                    help="skip geopandas for sizes above this (it is slow and memory-hungry)")
    args = ap.parse_args(argv)
    os.environ.setdefault("TOPDOWN_NO_PROGRESS", "1")
    cells = [10_000, 100_000] if args.quick else [100_000, 1_000_000, 4_000_000]
    disks = [50_000] if args.quick else [500_000]
    polys = [10_000] if args.quick else [100_000]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs visible, "
          f"affinity {len(os.sched_getaffinity(0))} cores")
    print(f"{'task':<28}{'n':>10}{'topdown s':>11}{'MB':>8}{'sjoin s':>10}{'MB':>8}{'speed-up':>10}  check")
    for n in cells:
        t1, m1, lab1 = measure(topdown_cells, n)
        if n <= args.no_geopandas_above:
            t2, m2, lab2 = measure(geopandas_cells, n)
            cats = np.r_[np.arange(9), 9]  # codes: r1..r9 = 0..8, outside = 9 ; labels 1..9, 0
            agree = float((cats[lab2 - 1] == lab1).mean()) if len(lab2) else float("nan")
            print(f"{'cells (centroid)':<28}{n:>10}{t1:>11.3f}{m1:>8.0f}{t2:>10.3f}{m2:>8.0f}"
                  f"{t2 / t1:>9.1f}x  labels agree {agree:.5f}")
        else:
            print(f"{'cells (centroid)':<28}{n:>10}{t1:>11.3f}{m1:>8.0f}{'-':>10}{'-':>8}{'-':>10}")
    for n in disks:
        t1, m1, f1 = measure(topdown_disks, n)
        t2, m2, f2 = measure(geopandas_disks, n)
        f1o = np.c_[f1[:, -1], f1[:, :-1]]  # topdown columns r1..r9, outside -> outside first
        err = float(np.abs(f1o - f2).max())
        print(f"{'HD disks (2 um, exact)':<28}{n:>10}{t1:>11.3f}{m1:>8.0f}{t2:>10.3f}{m2:>8.0f}"
              f"{t2 / t1:>9.1f}x  max |frac diff| vs 32-gon {err:.2e}")
    for n in polys:
        t1, m1, f1 = measure(topdown_polygons, n)
        t2, m2, f2 = measure(geopandas_polygons, n)
        f1o = np.c_[f1[:, -1], f1[:, :-1]]
        err = float(np.abs(f1o - f2).max())
        print(f"{'cell polygons (exact)':<28}{n:>10}{t1:>11.3f}{m1:>8.0f}{t2:>10.3f}{m2:>8.0f}"
              f"{t2 / t1:>9.1f}x  max |frac diff| {err:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
