"""Per-frame tissue-slab texture (stroma, neuropil, fibres, fat) computed in numpy.

Pure numpy/scipy (no bpy): the renderer uploads the result into a Blender image that the
slab's shader reads, so the texture is still rendered through Cycles (and blurred by its
depth of field), together with the nuclei.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

#: Ruifrok & Johnston optical-density vectors (RGB) of haematoxylin and eosin
HEMATOXYLIN_OD = np.array([0.650, 0.704, 0.286], dtype=np.float32)
EOSIN_OD = np.array([0.072, 0.990, 0.105], dtype=np.float32)
#: optical density of a stain at density 1 through the section
SLAB_OD = 1.1
NUCLEUS_OD = 1.6


#: background haematoxylin by texture when the style gives none: grey-matter neuropil is
#: basophilic (Nissl substance, glial processes) and looks lilac; myelinated fibre tracts and
#: fat take almost none and look pink / white.
HEMATOXYLIN_BACKGROUND = {"neuropil": 0.22, "fibres": 0.015, "fascicles": 0.22, "adipose": 0.0,
                          "fat": 0.0, "loose": 0.03, "none": 0.02}
#: a ``fascicles`` bundle against its grey matter: eosin density, haematoxylin (as fibre
#: tracts) and autofluorescence (myelin glows more)
BUNDLE_EOSIN = 0.6
BUNDLE_HEMATOXYLIN = 0.015
BUNDLE_GLOW = 1.6


def _unit(a: np.ndarray) -> np.ndarray:
    a = a - a.mean()
    s = a.std()
    return a / s if s > 0 else a


def _noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    return _unit(ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma,
                                         mode="wrap"))


def _fibres(rng, shape, angle: float, period_px: float, warp: np.ndarray) -> np.ndarray:
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    # image y points down: an angle counter-clockwise from +x on screen
    across = -xx * np.sin(angle) - yy * np.cos(angle)
    return np.sin(2 * np.pi * across / period_px + 2.5 * warp + rng.uniform(0, 2 * np.pi))


def _cells(rng, shape, cell_px: float) -> np.ndarray:
    """Cell-like polygons (adipocytes): 1 on thin walls between Voronoi cells, 0 inside."""
    from scipy.spatial import cKDTree

    h, w = shape
    n = max(4, int(h * w / max(cell_px, 2.0) ** 2))
    pts = rng.uniform(0, 1, (n, 2)) * (h, w)
    yy, xx = np.mgrid[0:h, 0:w]
    d, _ = cKDTree(pts).query(np.c_[yy.ravel(), xx.ravel()], k=2)
    gap = (d[:, 1] - d[:, 0]).reshape(h, w)
    return np.exp(-(gap / max(0.6, cell_px * 0.06)) ** 2).astype(np.float32)


def bundle_weight(section, name: str, shape: tuple[int, int]) -> np.ndarray:
    """0..1 cover of region ``name``'s fibre bundles per pixel (soft 1 px edge).

    The bundles are the ``(x, y, r)`` discs in µm that the layout drew for a ``fascicles``
    background (``section.params["objects"][name]``); none gives zeros.
    """
    weight = np.zeros(shape, np.float32)
    px = float(section.pixel_size_um)
    for x, y, r in (section.params.get("objects") or {}).get(name, []):
        cx, cy, rp = x / px, y / px, r / px
        r0, r1 = max(0, int(cy - rp - 1)), min(shape[0], int(cy + rp + 2))
        c0, c1 = max(0, int(cx - rp - 1)), min(shape[1], int(cx + rp + 2))
        if r0 >= r1 or c0 >= c1:
            continue
        yy, xx = np.mgrid[r0:r1, c0:c1]
        d = np.hypot(xx + 0.5 - cx, yy + 0.5 - cy)
        np.maximum(weight[r0:r1, c0:c1], np.clip(rp - d + 0.5, 0.0, 1.0), out=weight[r0:r1, c0:c1])
    return weight


def style_of(section, name: str) -> dict[str, Any]:
    return dict(section.region_style.get(name, {}) or {})


def lesion_weight(section, labels: np.ndarray) -> np.ndarray | None:
    """0..1 weight of a pathological lesion per pixel (soft edge), or ``None`` without one.

    The lesion is a disk inside its region (``region_style[region]["lesion"]``, written by
    the layout for ``condition="pathological"``).
    """
    for k, name in enumerate(section.classes, start=1):
        info = style_of(section, name).get("lesion")
        if not info:
            continue
        px = float(section.pixel_size_um)
        h, w = labels.shape
        cx, cy = (float(v) / px for v in info["centre_um"])
        r = float(info["radius_um"]) / px
        yy, xx = np.mgrid[0:h, 0:w]
        d = np.hypot(xx + 0.5 - cx, yy + 0.5 - cy)
        edge = max(1.0, 0.15 * r)
        weight = np.clip((r - d) / edge, 0.0, 1.0).astype(np.float32)
        weight[labels != k] = 0.0
        return weight
    return None


def _apply_lesion(section, labels: np.ndarray, density: np.ndarray, glow: np.ndarray) -> None:
    """Scale the stroma stain (and autofluorescence) inside a lesion by its ``eosin_factor``."""
    weight = lesion_weight(section, labels)
    if weight is None:
        return
    factor = next(float(st["lesion"].get("eosin_factor", 1.0)) for st in section.region_style.values()
                  if st and st.get("lesion"))
    scale = 1.0 + (factor - 1.0) * weight
    density *= scale
    glow *= scale


def slab_texture(section, labels: np.ndarray, modality: str, rng: np.random.Generator,
                 fold_mask: np.ndarray | None = None) -> np.ndarray:
    """Linear RGBA float32 image (rows top to bottom) of the tissue slab.

    H&E: the slab's transmission ``exp(-OD)`` (1 = glass). DAPI: its autofluorescence
    emission (0 = dark). ``labels`` is the region label raster (0 = no tissue).
    """
    h, w = labels.shape
    px = float(section.pixel_size_um)
    fine = _noise(rng, (h, w), max(0.6, 1.2 / px))
    coarse = _noise(rng, (h, w), max(2.0, 25.0 / px))
    warp = _noise(rng, (h, w), max(2.0, 12.0 / px))
    density = np.zeros((h, w), np.float32)
    hema = np.zeros((h, w), np.float32)
    glow = np.zeros((h, w), np.float32)
    for k, name in enumerate(section.classes, start=1):
        sel = labels == k
        if not sel.any():
            continue
        st = style_of(section, name)
        if st.get("tissue", True) is False:  # a cavity (ventricle, canal): bare glass
            continue
        eosin = float(st.get("eosin", 0.5))
        kind = str(st.get("texture", "neuropil"))
        if kind == "fibres":
            tex = 0.45 * _fibres(rng, (h, w), float(st.get("fibre_angle_rad", 0.0)),
                                 max(2.0, float(st.get("fibre_period_um", 6.0)) / px), warp) + 0.25 * fine
        elif kind in ("fat", "adipose", "cells"):
            walls = _cells(rng, (h, w), float(st.get("cell_size_um", 60.0)) / px)
            tex = 2.2 * walls - 0.85 + 0.1 * fine
        elif kind in ("none", "smooth"):
            tex = 0.1 * fine
        elif kind == "loose":  # loose connective tissue: pale, wispy, uneven
            tex = 0.5 * fine + 0.3 * np.abs(warp) - 0.2
        else:  # neuropil: fine, isotropic, slightly grainy
            tex = 0.35 * fine
        tex = tex + 0.15 * coarse
        density[sel] = np.clip(eosin * (1.0 + tex[sel]), 0.0, 3.0)
        h0 = st.get("hematoxylin", HEMATOXYLIN_BACKGROUND.get(kind, 0.04))
        hema[sel] = float(h0) * (1.0 + 0.3 * fine[sel])
        glow[sel] = float(st.get("autofluorescence", 0.05)) * np.clip(1.0 + 0.6 * tex[sel], 0, 3)
        if kind == "fascicles":  # pale bundles, cut across, in the grey matter
            b = bundle_weight(section, name, (h, w))[sel]
            density[sel] *= 1.0 + (BUNDLE_EOSIN - 1.0) * b
            hema[sel] = hema[sel] * (1.0 - b) + BUNDLE_HEMATOXYLIN * b
            glow[sel] *= 1.0 + (BUNDLE_GLOW - 1.0) * b
    _apply_lesion(section, labels, density, glow)
    if fold_mask is not None and fold_mask.any():
        density[fold_mask] *= 2.0
        hema[fold_mask] *= 2.0
        glow[fold_mask] *= 2.0
    out = np.ones((h, w, 4), np.float32)
    if modality == "dapi":
        out[..., :3] = glow[..., None]
    else:
        od = SLAB_OD * (density[..., None] * EOSIN_OD + hema[..., None] * HEMATOXYLIN_OD)
        out[..., :3] = np.exp(-od)
    return out


def nucleus_attributes(section, modality: str) -> dict[str, np.ndarray]:
    """Per-nucleus shader attributes from the cell table and ``section.cell_style``."""
    cells = section.cells
    n = len(cells)
    types = cells["cell_type"].astype(str).to_numpy()
    stain = cells["stain"].to_numpy(dtype=np.float32) if n else np.zeros(0, np.float32)
    hema = np.full(n, 0.85, np.float32)
    dapi = np.ones(n, np.float32)
    chrom = np.full(n, 0.4, np.float32)
    for t in np.unique(types):
        st = section.cell_style.get(t, {}) or {}
        sel = types == t
        hema[sel] = float(st.get("hematoxylin", 0.85))
        dapi[sel] = float(st.get("dapi", 1.0))
        chrom[sel] = float(st.get("chromatin", 0.4))
    # thin section: an ellipsoid's absorption scales with its depth ~ minor axis
    depth = np.clip(cells["minor_um"].to_numpy(dtype=np.float32) / 6.0, 0.5, 1.6) if n else stain
    od = NUCLEUS_OD * (hema * stain * depth)[:, None] * HEMATOXYLIN_OD + 0.08 * EOSIN_OD
    tint = np.ones((n, 4), np.float32)
    tint[:, :3] = np.exp(-od / 2.0)  # two surfaces per closed nucleus
    return {"tint": tint, "glow": (0.55 * dapi * stain).astype(np.float32), "chromatin": chrom}
