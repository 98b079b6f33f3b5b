"""Visium-like spot grids on simulated sections, with exact ground-truth region fractions.

The truth comes from the Section's polygons (not from a raster), so it is exact: each
spot is a disk, and its fraction in region ``r`` is ``area(disk ∩ r) / area(disk)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .section import Section

#: Visium spot geometry (10x Genomics): 55 µm spots, 100 µm centre-to-centre.
VISIUM_SPOT_DIAMETER_UM = 55.0
VISIUM_SPOT_SPACING_UM = 100.0


def visium_grid(shape: tuple[int, int], pixel_size_um: float, *,
                spacing_um: float = VISIUM_SPOT_SPACING_UM,
                diameter_um: float = VISIUM_SPOT_DIAMETER_UM) -> np.ndarray:
    """Centres of a hexagonal Visium-style spot grid covering an image.

    Parameters
    ----------
    shape
        ``(height, width)`` of the image in pixels.
    pixel_size_um
        Micrometres per pixel.
    spacing_um, diameter_um
        Centre-to-centre distance and spot diameter; spots lie fully inside the image.

    Returns
    -------
    ``(n, 2)`` float array of ``(x, y)`` pixel coordinates (x = column, y = row).

    Examples
    --------
    >>> xy = visium_grid((256, 256), 20.0)
    >>> xy.shape[1]
    2
    """
    h, w = shape
    r = diameter_um / 2 / pixel_size_um
    dx = spacing_um / pixel_size_um
    dy = dx * np.sqrt(3) / 2
    ys = np.arange(r, h - r + 1e-9, dy)
    pts = []
    for i, y in enumerate(ys):
        x0 = r + (dx / 2 if i % 2 else 0.0)
        xs = np.arange(x0, w - r + 1e-9, dx)
        pts.append(np.column_stack([xs, np.full_like(xs, y)]))
    return np.concatenate(pts) if pts else np.zeros((0, 2))


def spot_region_fractions(section: Section, xy_px: np.ndarray, diameter_um: float = VISIUM_SPOT_DIAMETER_UM,
                          quad_segs: int = 32) -> pd.DataFrame:
    """Exact area fraction of each spot disk in each region of ``section`` (and ``outside``).

    Returns a DataFrame with one column per class plus ``outside``; rows sum to 1.
    """
    import shapely

    px = section.pixel_size_um
    centres = shapely.points(np.asarray(xy_px, dtype=float) * px)
    disks = shapely.buffer(centres, diameter_um / 2, quad_segs=quad_segs)
    disk_area = shapely.area(disks)
    out = {}
    for name in section.classes:
        geom = section.regions.get(name)
        if geom is None or geom.is_empty:
            out[name] = np.zeros(len(disks))
            continue
        shapely.prepare(geom)
        out[name] = shapely.area(shapely.intersection(disks, geom)) / disk_area
    frac = pd.DataFrame(out)
    frac["outside"] = np.clip(1.0 - frac.sum(axis=1), 0.0, 1.0)
    return frac


def spot_truth(fractions: pd.DataFrame, min_tissue: float = 0.5) -> pd.Series:
    """True region of each spot: the region covering most of its tissue part, or ``outside``
    when less than ``min_tissue`` of the disk is tissue."""
    tissue = fractions.drop(columns="outside")
    label = tissue.idxmax(axis=1).astype(object)
    label[fractions["outside"] > 1 - min_tissue] = "outside"
    return label
