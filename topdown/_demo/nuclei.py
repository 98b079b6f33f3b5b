"""The demo's cell counts: nuclei in counting frames over each segmented region.

The sections are rendered whole at the region model's coarse pixel size, where nuclei are
not resolved. As a stereologist would, the demo lays a systematic grid of counting frames
with a random offset over each region the model segmented (top-down: the frames follow the
predicted regions, not the truth), renders the frames of the same simulated tissue at the
nucleus model's fine pixel size (:meth:`topdown.sim.Section.window`; the frames of a region
side by side on glass, one Blender call), finds their nuclei with the shipped H&E nucleus
model and counts those whose centre lies in the frame and the region (the counting rule).
Per sample and region: nuclei, the counted area, and the true nuclei of that same area (the
simulation's cells), so that the density test (:func:`topdown.tl.nuclei_density_test`) can
be read against the truth.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .._progress import progress
from ..errors import InputError
from ..sim.section import Section
from .study import StudyConfig, StudySample

#: the nucleus model's pixel size (µm) at which counting frames are rendered
FRAME_PIXEL_SIZE_UM = 0.4
#: glass between the tiles of the rendered mosaic (px): wider than a nucleus
GAP_PX = 32
#: tissue drawn around each counting frame and not counted (px): keeps the tile's cut edges out
GUARD_PX = 24


def frame_centres(mask: np.ndarray, pixel_size_um: float, n_frames: int, rng: np.random.Generator,
                  frame_um: float = 0.0) -> np.ndarray:
    """Centres (µm, ``x, y``) of a systematic random grid over ``mask`` with about ``n_frames`` points.

    The grid spacing is ``sqrt(area / n_frames)``, at least ``frame_um`` (frames never
    overlap), and its offset uniform at random (systematic uniform random sampling); every
    grid point inside the region is kept. A region that no grid point hits gets one frame at
    a random pixel of it.
    """
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return np.empty((0, 2))
    spacing = max(np.sqrt(rows.size / max(n_frames, 1)), frame_um / pixel_size_um)  # in pixels
    off = rng.uniform(0, spacing, 2)
    gy = np.arange(off[0], mask.shape[0], spacing)
    gx = np.arange(off[1], mask.shape[1], spacing)
    yy, xx = np.meshgrid(gy, gx, indexing="ij")
    inside = mask[yy.astype(int).ravel(), xx.astype(int).ravel()]
    pts = np.column_stack([xx.ravel()[inside], yy.ravel()[inside]])
    if len(pts) == 0:
        k = rng.integers(rows.size)
        pts = np.array([[cols[k] + 0.5, rows[k] + 0.5]])
    return pts * pixel_size_um


def _region_in_frame(pred: np.ndarray, label: int, x0: float, y0: float, side_px: int, coarse_um: float,
                     fine_um: float) -> np.ndarray:
    """Which fine pixels of a frame lie in the predicted region (the coarse map, looked up)."""
    centres = (np.arange(side_px) + 0.5) * fine_um
    r = np.clip(((y0 + centres) / coarse_um).astype(int), 0, pred.shape[0] - 1)
    c = np.clip(((x0 + centres) / coarse_um).astype(int), 0, pred.shape[1] - 1)
    return pred[r][:, c] == label


def mosaic(section: Section, corners_um: np.ndarray, side_um: float, gap_um: float, pixel_size_um: float,
           guard_um: float = 0.0) -> tuple[Section, np.ndarray]:
    """The counting frames of ``section`` (top-left ``corners_um``) side by side on glass, as one
    section to render in one Blender call; returns it and each counting frame's top-left in it (µm).

    Each frame is cut with a guard zone of ``guard_um`` tissue around it: the cut edges of a
    tile (which render darker, like any tissue edge) lie outside the counting frame, and so
    do the nuclei centred in the guard, drawn but not counted (the counting rule: a nucleus
    belongs to the frame its centre lies in). Glass ``gap_um`` wide separates the tiles.
    """
    import shapely
    from shapely.ops import unary_union

    n = len(corners_um)
    cols = int(np.ceil(np.sqrt(n)))
    tile = side_um + 2 * guard_um
    pitch = tile + gap_um
    origins = np.array([[gap_um + (j % cols) * pitch, gap_um + (j // cols) * pitch] for j in range(n)])
    pieces: dict[str, list] = {k: [] for k in section.classes}
    cells, folds = [], []
    for (x0, y0), (ox, oy) in zip(corners_um, origins, strict=True):
        frame = section.window(x0 - guard_um, y0 - guard_um, tile, tile)
        for k, g in frame.regions.items():
            if not g.is_empty:
                pieces[k].append(shapely.affinity.translate(g, ox, oy))
        c = frame.cells
        c = c[c["x_um"].between(0, tile, inclusive="left") & c["y_um"].between(0, tile, inclusive="left")].copy()
        c["x_um"] += ox
        c["y_um"] += oy
        cells.append(c)
        folds += [shapely.affinity.translate(f, ox, oy) for f in frame.folds if not f.is_empty]
    rows = int(np.ceil(n / cols))
    styles = {k: {key: v for key, v in (st or {}).items() if key != "lesion"}  # one lesion centre per section
              for k, st in section.region_style.items()}
    params = {**section.params, "objects": {},
              "mosaic": {"frames": n, "side_um": side_um, "gap_um": gap_um, "guard_um": guard_um}}
    out = Section(classes=list(section.classes), regions={k: unary_union(v) if v else shapely.Polygon()
                                                          for k, v in pieces.items()},
                  cells=pd.concat(cells, ignore_index=True), width_um=gap_um + cols * pitch,
                  height_um=gap_um + rows * pitch, pixel_size_um=pixel_size_um, thickness_um=section.thickness_um,
                  folds=folds, region_style=styles, cell_style=dict(section.cell_style), params=params)
    return out, origins + guard_um


def count_region(sample: StudySample, pred: np.ndarray, label: int, centres_um: np.ndarray, config: StudyConfig,
                 model, seed: int) -> dict:
    """Render the counting frames of one region, find their nuclei, count them (and the true ones) in the region."""
    from ..seg.nuclei_infer import nuclei
    from ..sim.render import render_section

    px = FRAME_PIXEL_SIZE_UM
    side_px = int(config.nuclei_frame_px)
    side_um, gap_um, guard_um = side_px * px, GAP_PX * px, GUARD_PX * px
    corners = np.asarray(centres_um, float) - side_um / 2
    scene, offsets = mosaic(sample.section, corners, side_um, gap_um, px, guard_um=guard_um)
    image = render_section(scene, "he", seed=seed, samples=config.samples)
    inside = np.zeros(scene.shape, bool)
    found = np.zeros(scene.shape, np.int32)  # nucleus instances of the whole mosaic, for the report
    n_found, n_labels, pad = 0, 0, GUARD_PX + GAP_PX // 2
    for (x0, y0), (ox, oy) in zip(corners, offsets, strict=True):
        r0, c0 = int(round(oy / px)), int(round(ox / px))
        frame_in = _region_in_frame(pred, label, x0, y0, side_px, sample.section.pixel_size_um, px)
        inside[r0:r0 + side_px, c0:c0 + side_px] = frame_in
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a frame of sparse tissue may hold no nucleus
                res = nuclei(image[r0 - pad:r0 + side_px + pad, c0 - pad:c0 + side_px + pad], model,
                             pixel_size_um=px, device="cpu")  # each frame with half the gap around it
        except InputError:  # a frame without any nucleus is "blank" to the nucleus model: none found
            continue
        r = np.round(res.table["y"].to_numpy()).astype(int) - pad
        c = np.round(res.table["x"].to_numpy()).astype(int) - pad
        ok = (r >= 0) & (r < side_px) & (c >= 0) & (c < side_px)
        n_found += int(frame_in[r[ok], c[ok]].sum())
        lab = res.labels[pad:pad + side_px, pad:pad + side_px]
        found[r0:r0 + side_px, c0:c0 + side_px] = np.where(lab > 0, lab + n_labels, 0)
        n_labels += int(res.labels.max())
    cells = scene.cells  # folded-over flaps (layer 1) included: their nuclei are in the image too
    h, w = inside.shape
    cr = np.clip((cells["y_um"].to_numpy() / px).astype(int), 0, h - 1)
    cc = np.clip((cells["x_um"].to_numpy() / px).astype(int), 0, w - 1)
    return {"n_frames": len(corners), "n_nuclei": n_found, "n_true": int(inside[cr, cc].sum()),
            "area_mm2": float(inside.sum()) * px ** 2 / 1e6, "image": image, "found": found, "inside": inside}


def count_nuclei(samples: list[StudySample], classes: list[str], config: StudyConfig,
                 model="nuclei_he") -> tuple[pd.DataFrame, dict]:
    """Nuclei per sample x region in counting frames over the segmented regions.

    Returns the table (``sample, condition, region, n_frames, n_nuclei, n_true, area_mm2``)
    and, for the report, one example frame per condition of the first region
    (``{condition: {"image", "found", "inside", "sample"}}``).
    """
    from ..seg.checkpoint import load

    model = load(model, kind="nuclei")
    rows, examples = [], {}
    jobs = [(s, region) for s in samples for region in config.nuclei_regions if region in classes]
    for s, region in progress(jobs, desc="count nuclei (Blender frames)"):
        label = classes.index(region) + 1
        pred = s.record["pred_labels"]
        base = int(s.record.get("seed", 0))
        rng = np.random.default_rng([base, label, 0xC0])
        centres = frame_centres(pred == label, s.section.pixel_size_um, config.nuclei_frames, rng,
                                frame_um=config.nuclei_frame_px * FRAME_PIXEL_SIZE_UM)
        if len(centres) == 0:
            continue
        res = count_region(s, pred, label, centres, config, model, seed=base * 100 + label)
        if res["area_mm2"] > 0:
            rows.append({"sample": s.name, "condition": s.condition, "region": region,
                         **{k: res[k] for k in ("n_frames", "n_nuclei", "n_true", "area_mm2")}})
        if region == config.nuclei_regions[0] and s.condition not in examples:
            examples[s.condition] = {**res, "sample": s.name}
    return pd.DataFrame(rows, columns=["sample", "condition", "region", "n_frames", "n_nuclei", "n_true",
                                       "area_mm2"]), examples
