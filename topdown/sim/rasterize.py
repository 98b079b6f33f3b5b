"""Exact ground-truth masks rasterised from a :class:`~topdown.sim.section.Section`.

Both masks are pixel-aligned with the rendered image: pixel ``(row, col)`` covers
``[col*px, (col+1)*px) x [row*px, (row+1)*px)`` µm and takes the value of the geometry
containing its *centre* (``shapely.contains_xy`` at pixel centres, so the masks agree
exactly with the Section's polygons).
"""

from __future__ import annotations

import numpy as np
import shapely

from .section import Section

_CHUNK = 4_000_000  # candidate pixels per vectorised batch (bounds memory)


def _centres(lo: float, hi: float, px: float, n: int) -> tuple[int, int]:
    """Index range ``[a, b)`` of pixels whose centres may lie in ``[lo, hi]``."""
    a = max(int(np.floor(lo / px - 0.5)), 0)
    b = min(int(np.ceil(hi / px - 0.5)) + 1, n)
    return a, b


def region_mask(section: Section) -> np.ndarray:
    """Region label mask: ``uint8`` H x W, 0 = outside tissue, ``k`` = ``classes[k - 1]``.

    Labelled holes (ventricles, central canal) keep their label although they carry no
    stain; tears are 0; a fold shows the labels of the flap lying on top.

    Examples
    --------
    >>> import topdown as td
    >>> sec = td.sim.layout(td.sim.load_preset("spinal_cord"), seed=0, size=64)
    >>> td.sim.region_mask(sec).shape
    (64, 64)
    """
    h, w = section.shape
    px = section.pixel_size_um
    out = np.zeros((h, w), np.uint8)
    for name, geom in section.regions.items():
        if geom is None or geom.is_empty:
            continue
        x0, y0, x1, y1 = geom.bounds
        c0, c1 = _centres(x0, x1, px, w)
        r0, r1 = _centres(y0, y1, px, h)
        if c1 <= c0 or r1 <= r0:
            continue
        xs = (np.arange(c0, c1) + 0.5) * px
        ys = (np.arange(r0, r1) + 0.5) * px
        shapely.prepare(geom)
        inside = shapely.contains_xy(geom, xs[None, :], ys[:, None])
        out[r0:r1, c0:c1][inside] = section.label_of(name)
    return out


def nuclei_mask(section: Section, *, min_one_pixel: bool = True) -> np.ndarray:
    """Nucleus instance mask: ``uint32`` H x W, 0 = none, ``i + 1`` = ``section.cells.iloc[i]``.

    Each nucleus is the ellipse (``major_um`` x ``minor_um`` at ``angle_rad``) tested at
    pixel centres. Where nuclei overlap, the one on top wins: folded-flap nuclei
    (``layer`` 1) over the section, then smaller ``z_um`` (nearer the objective) over
    deeper ones. With ``min_one_pixel`` (default) a nucleus smaller than a pixel still
    owns the pixel holding its centre, so every nucleus inside the frame is visible at
    coarse pixel sizes (unless one on top covers it).

    Examples
    --------
    >>> import topdown as td
    >>> sec = td.sim.layout(td.sim.load_preset("sciatic_nerve"), seed=1, size=64)
    >>> ids = td.sim.nuclei_mask(sec)
    >>> int(ids.max()) <= sec.n_cells()
    True
    """
    h, w = section.shape
    px = section.pixel_size_um
    out = np.zeros((h, w), np.uint32)
    cells = section.cells
    n = len(cells)
    if n == 0:
        return out
    x = cells["x_um"].to_numpy(float)
    y = cells["y_um"].to_numpy(float)
    a = np.maximum(cells["major_um"].to_numpy(float), 1e-6) / 2
    b = np.maximum(cells["minor_um"].to_numpy(float), 1e-6) / 2
    th = cells["angle_rad"].to_numpy(float)
    order = np.lexsort((-cells["z_um"].to_numpy(float), cells["layer"].to_numpy(int)))
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(n)
    ci = np.floor(x / px).astype(np.int64)
    ri = np.floor(y / px).astype(np.int64)
    reach = np.ceil(np.maximum(a, b) / px).astype(np.int64) + 1
    pix_parts, rank_parts = [], []
    for r in np.unique(reach):
        idx_all = np.flatnonzero(reach == r)
        off = np.arange(-r, r + 1)
        dr, dc = (g.ravel() for g in np.meshgrid(off, off, indexing="ij"))
        per = max(_CHUNK // len(dr), 1)
        for s in range(0, len(idx_all), per):
            idx = idx_all[s:s + per]
            rr = ri[idx, None] + dr[None, :]
            cc = ci[idx, None] + dc[None, :]
            dx = (cc + 0.5) * px - x[idx, None]
            dy = (rr + 0.5) * px - y[idx, None]
            cos, sin = np.cos(th[idx])[:, None], np.sin(th[idx])[:, None]
            u = dx * cos - dy * sin  # along the long axis (angle counter-clockwise on screen)
            v = dx * sin + dy * cos
            inside = (u / a[idx, None]) ** 2 + (v / b[idx, None]) ** 2 <= 1.0
            if min_one_pixel:
                inside |= (dr == 0)[None, :] & (dc == 0)[None, :]
            inside &= (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
            k, j = np.nonzero(inside)
            pix_parts.append(rr[k, j] * w + cc[k, j])
            rank_parts.append(rank[idx[k]])
    pix = np.concatenate(pix_parts)
    rk = np.concatenate(rank_parts)
    if len(pix) == 0:
        return out
    srt = np.lexsort((rk, pix))
    pix, rk = pix[srt], rk[srt]
    last = np.r_[pix[1:] != pix[:-1], True]
    out.ravel()[pix[last]] = order[rk[last]].astype(np.uint32) + 1
    return out
