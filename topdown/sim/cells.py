"""Nucleus sampling inside a region: positions (spatial patterns), sizes, shapes, angles.

All functions are vectorised (numpy + ``shapely.contains_xy``); coordinates are
micrometres in image space (``y`` down). Angles follow :data:`topdown.sim.section.CELL_COLUMNS`:
counter-clockwise on screen from ``+x``, i.e. a direction ``(dx, dy)`` has angle
``atan2(-dy, dx)``.
"""

from __future__ import annotations

import math

import numpy as np
import shapely
from scipy.spatial import cKDTree
from shapely.geometry.base import BaseGeometry

from .geometry import pack_circles
from .spec import PatternSpec, PopulationSpec

_MM2 = 1e6  # µm² per mm²
#: bundles of a ``fascicles`` background: myelinated fibre bundles 40-120 µm across, cut
#: across, covering a fifth of the region (the pencil fibres of the caudate-putamen,
#: Paxinos & Franklin 2019)
FASCICLES = PatternSpec(type="rings", object_diameter_um=(40.0, 120.0), object_fraction=0.2)


def uniform_points(geom: BaseGeometry, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` points uniformly distributed inside ``geom`` (rejection sampling in its bbox)."""
    out = np.empty((0, 2))
    if n <= 0 or geom.is_empty or geom.area <= 0:
        return out
    x0, y0, x1, y1 = geom.bounds
    frac = geom.area / max((x1 - x0) * (y1 - y0), 1e-12)
    parts = []
    need = n
    for _ in range(50):
        m = int(need / frac * 1.15) + 16
        xs = rng.uniform(x0, x1, m)
        ys = rng.uniform(y0, y1, m)
        ok = shapely.contains_xy(geom, xs, ys)
        pts = np.column_stack([xs[ok], ys[ok]])[:need]
        parts.append(pts)
        need -= len(pts)
        if need <= 0:
            break
    return np.vstack(parts) if parts else out


def _inside(geom: BaseGeometry, pts: np.ndarray) -> np.ndarray:
    if len(pts) == 0:
        return pts
    return pts[shapely.contains_xy(geom, pts[:, 0], pts[:, 1])]


def _clustered(geom, n, pat: PatternSpec, rng):
    mean_size = max(float(np.mean(pat.cluster_size)), 1.0)
    parents = uniform_points(geom, rng.poisson(n / mean_size), rng)
    if len(parents) == 0:
        return parents
    sizes = rng.integers(int(pat.cluster_size[0]), int(pat.cluster_size[1]) + 1, len(parents))
    centres = np.repeat(parents, sizes, axis=0)
    pts = centres + rng.normal(0.0, pat.cluster_radius_um / 2.0, centres.shape)
    return _inside(geom, pts)


def medial_line(geom: BaseGeometry) -> BaseGeometry:
    """An approximate medial line of a thin band (boundary of an inward offset)."""
    width = 2.0 * geom.area / max(geom.length, 1e-9)
    inner = geom.buffer(-0.45 * width)
    line = inner.boundary if not inner.is_empty and inner.length > 0 else geom.boundary
    return line


def _rows(geom, n, pat: PatternSpec, rng):
    if pat.line == "boundary":  # a lining: just inside the edge (e.g. ependyma of a ventricle)
        inner = geom.buffer(-pat.jitter_um)
        line = (inner if not inner.is_empty else geom).boundary
    else:
        line = medial_line(geom)
    if n <= 0 or line.length <= 0:
        return np.empty((0, 2))
    d = rng.uniform(0, line.length, n)
    p = shapely.get_coordinates(shapely.line_interpolate_point(line, d))
    theta = rng.uniform(0, 2 * np.pi, n)
    r = rng.normal(0.0, pat.jitter_um, n)
    pts = p + np.column_stack([r * np.cos(theta), r * np.sin(theta)])
    return _inside(geom, pts)


def ring_objects(geom: BaseGeometry, pat: PatternSpec, rng: np.random.Generator) -> np.ndarray:
    """Round objects (e.g. glomeruli) packed in ``geom``: array of ``(x, y, r)`` rows."""
    d0, d1 = pat.object_diameter_um
    mean_area = np.pi * ((d0 + d1) / 4.0) ** 2
    n = int(round(pat.object_fraction * geom.area / mean_area))
    discs = pack_circles(geom, min(n, 2000), (d0 / 2.0, d1 / 2.0), 0.15 * d0, rng, tries=40)
    if not discs:
        return np.empty((0, 3))
    c = np.array([[d.centroid.x, d.centroid.y, math.sqrt(d.area / np.pi)] for d in discs])
    return c


def fascicle_objects(geom: BaseGeometry, rng: np.random.Generator) -> np.ndarray:
    """Fibre bundles ``(x, y, r)`` crossing a region whose background is ``fascicles``."""
    return ring_objects(geom, FASCICLES, rng)


def _rings(geom, n, pat: PatternSpec, rng, objects: np.ndarray):
    if len(objects) == 0 or n <= 0:
        return np.empty((0, 2))
    w = objects[:, 2] / objects[:, 2].sum()
    k = rng.choice(len(objects), size=n, p=w)
    theta = rng.uniform(0, 2 * np.pi, n)
    r = objects[k, 2] + np.abs(rng.normal(0.0, pat.ring_width_um / 2.0, n))
    pts = objects[k, :2] + np.column_stack([r * np.cos(theta), r * np.sin(theta)])
    return _inside(geom, pts)


def sample_positions(geom: BaseGeometry, density_per_mm2: float, pat: PatternSpec,
                     rng: np.random.Generator, objects: np.ndarray | None = None) -> np.ndarray:
    """Nucleus centres ``(n, 2)`` of one population in ``geom`` following ``pat``."""
    if geom.is_empty or density_per_mm2 <= 0:
        return np.empty((0, 2))
    n = int(rng.poisson(density_per_mm2 * geom.area / _MM2))
    if pat.type == "uniform":
        return uniform_points(geom, n, rng)
    if pat.type == "clustered":
        return _clustered(geom, n, pat, rng)
    if pat.type == "rows":
        return _rows(geom, n, pat, rng)
    return _rings(geom, n, pat, rng, objects if objects is not None else np.empty((0, 3)))


def exclude_objects(pts: np.ndarray, objects: np.ndarray | None) -> np.ndarray:
    """Drop points inside any round object (neuropil islands hold no other nuclei)."""
    if objects is None or len(objects) == 0 or len(pts) == 0:
        return pts
    keep = np.ones(len(pts), bool)
    for i in range(0, len(objects), 256):
        o = objects[i:i + 256]
        d2 = (pts[:, None, 0] - o[:, 0]) ** 2 + (pts[:, None, 1] - o[:, 1]) ** 2
        keep &= ~np.any(d2 < o[:, 2] ** 2, axis=1)
    return pts[keep]


def sample_shapes(pop: PopulationSpec, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Major and minor axis diameters (µm): lognormal size, uniform elongation."""
    d, s = pop.diameter_um, pop.diameter_sd_um
    sigma2 = math.log1p((s / d) ** 2)
    size = rng.lognormal(math.log(d) - sigma2 / 2.0, math.sqrt(sigma2), n)
    e = rng.uniform(pop.elongation[0], pop.elongation[1], n)
    root = np.sqrt(e)
    return size * root, size / root


def boundary_angles(geom: BaseGeometry, pts: np.ndarray) -> np.ndarray:
    """Angle of the direction from each point to the nearest boundary point (radial).

    The boundary is densified (at most ~20 000 vertices) and searched with a k-d tree.
    """
    line = geom.boundary
    if len(pts) == 0 or line is None or line.is_empty:
        return np.zeros(len(pts))
    step = max(line.length / 20000.0, 2.0)
    verts = shapely.get_coordinates(shapely.segmentize(line, step))
    _, idx = cKDTree(verts).query(pts)
    d = verts[idx] - pts
    return np.arctan2(-d[:, 1], d[:, 0])


def sample_angles(pop: PopulationSpec, geom: BaseGeometry, pts: np.ndarray, rng: np.random.Generator,
                  *, fibre_angle: float, frame_angle: float, flipped: bool) -> np.ndarray:
    """Long-axis angles (rad) for the population's orientation rule.

    ``frame_angle`` / ``flipped``: the section's rotation and mirror, applied to ``fixed``
    angles given in the anatomical frame.
    """
    n = len(pts)
    sd = math.radians(pop.angle_sd_deg)
    if pop.orientation == "random":
        return rng.uniform(0, np.pi, n)
    if pop.orientation == "fixed":
        a = math.radians(pop.angle_deg)
        base = (np.pi - a if flipped else a) + frame_angle
    elif pop.orientation == "fibres":
        base = fibre_angle
    else:
        base = boundary_angles(geom, pts)
        if pop.orientation == "tangential":
            base = base + np.pi / 2
    return np.mod(base + rng.normal(0.0, sd, n), np.pi)
