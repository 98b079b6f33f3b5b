"""Vectorised overlap kernels: disks and cells against region rasters or polygons.

Two engines, both free of Python loops over spots or cells:

* **raster** (regions given as a label raster, e.g. a :class:`~topdown.seg.RegionMap`):
  centroids are an O(n) index look-up; disk area fractions are computed *exactly* with
  the closed-form area of a disk intersected with each axis-aligned map pixel (the
  region polygons of a label raster are unions of those pixels, so the result equals the
  polygon intersection to float precision).
* **vector** (regions given as arbitrary polygons): shapely 2 ``STRtree`` candidate
  pairs + vectorised ``intersection``/``area``. Disks are ``quad_segs``-gons whose area
  is used as the normaliser, so the relative error of a fraction is below ~1e-4 for the
  default ``quad_segs=64``.
"""

from __future__ import annotations

import numpy as np

#: at most this many (spot, pixel) pairs are materialised at once (bounds peak memory)
_CHUNK_PAIRS = 1_000_000


def _half_int(t: np.ndarray, r) -> np.ndarray:
    """Antiderivative of sqrt(r^2 - t^2) from 0 to t (odd in t), for |t| <= r, r > 0."""
    r2 = r * r
    ratio = np.array(t / r, dtype=np.float64)
    np.minimum(ratio, 1.0, out=ratio)
    np.maximum(ratio, -1.0, out=ratio)
    root = np.array(r2 - t * t, dtype=np.float64)
    np.maximum(root, 0.0, out=root)
    np.sqrt(root, out=root)
    root *= t
    np.arcsin(ratio, out=ratio)
    ratio *= r2
    root += ratio
    root *= 0.5
    return root


def _lower_left_area(a: np.ndarray, b: np.ndarray, r) -> np.ndarray:
    """Area of the disk of radius r > 0 at the origin intersected with {X <= a, Y <= b}.

    Integrates the vertical chord length over x: for |x| < c = sqrt(r^2 - b^2) the chord
    is cut at b (length b + h(x)); for |x| >= c (only when b >= 0) it is whole (2 h(x)).
    """
    a = np.minimum(np.maximum(a, -r), r)
    b = np.minimum(np.maximum(b, -r), r)
    c = np.sqrt(np.maximum(r * r - b * b, 0.0))
    h_c = _half_int(c, r)
    mid_hi = np.minimum(np.maximum(a, -c), c)
    mid = b * (mid_hi + c) + _half_int(mid_hi, r) + h_c
    quarter = 0.25 * np.pi * r * r  # = -H(-r)
    left = 2.0 * (_half_int(np.minimum(a, -c), r) + quarter)
    right = 2.0 * (_half_int(np.maximum(a, c), r) - h_c)
    return np.where(b >= 0, mid + left + right, mid)


def disk_rect_area(x0, x1, y0, y1, r) -> np.ndarray:
    """Exact area of the disk of radius ``r`` at the origin inside ``[x0, x1] x [y0, y1]``.

    Examples
    --------
    >>> float(disk_rect_area(-2, 2, -2, 2, 1.0))  # whole unit disk
    3.141592653589793
    """
    x0, x1, y0, y1, r = (np.asarray(v, dtype=np.float64) for v in (x0, x1, y0, y1, r))
    out = (_lower_left_area(x1, y1, r) - _lower_left_area(x0, y1, r)
           - _lower_left_area(x1, y0, r) + _lower_left_area(x0, y0, r))
    return np.maximum(out, 0.0)


def raster_lookup(labels: np.ndarray, xy: np.ndarray, scale: float = 1.0
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Labels at ``xy * scale`` in map pixels (x = column, y = row); also the flat pixel index.

    Pixel ``(r, c)`` covers ``[c, c+1) x [r, r+1)``. Off-map points get label 0 and index -1.
    """
    h, w = labels.shape
    x = xy[:, 0] * scale
    y = xy[:, 1] * scale
    ok = (x >= 0) & (x < w) & (y >= 0) & (y < h)
    idt = np.int32 if h * w < 2**31 else np.int64
    flat = y.astype(idt)  # truncation == floor for the kept (non-negative) values
    flat *= w
    flat += x.astype(idt)
    flat[~ok] = -1
    out = labels.reshape(-1)[np.maximum(flat, 0)]
    out[~ok] = 0
    return out, flat


def raster_disk_fractions(labels: np.ndarray, xy_map: np.ndarray, radius_map: float,
                          n_labels: int, weights: np.ndarray | None = None
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Exact area fraction of each disk in each label of a raster.

    Parameters
    ----------
    labels
        ``(h, w)`` integer raster (0 = outside); pixel ``(r, c)`` is ``[c, c+1] x [r, r+1]``.
    xy_map
        ``(n, 2)`` disk centres in map pixels (x = column, y = row).
    radius_map
        Disk radius in map pixels.
    n_labels
        Number of labels including 0.
    weights
        Optional ``(h, w)`` per-pixel values (e.g. max model probability); the
        area-weighted sum of them per (disk, label) is returned as the second output.

    Returns
    -------
    fractions
        ``(n, n_labels)`` area fractions; off-map area counts as label 0; rows sum to 1.
    weighted
        ``(n, n_labels)`` area-weighted sums of ``weights`` divided by the disk area
        (equal to ``fractions`` when ``weights`` is None).
    """
    xy_map = np.asarray(xy_map, dtype=np.float64)
    n = len(xy_map)
    h, w = labels.shape
    r = float(radius_map)
    if r <= 0:
        raise ValueError("radius_map must be positive")
    k = int(np.ceil(2 * r)) + 1
    disk_area = np.pi * r * r
    flat_labels = labels.reshape(-1).astype(np.int64)
    flat_w = None if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    frac = np.zeros((n, n_labels))
    wsum = np.zeros((n, n_labels))
    off = np.arange(k)
    step = max(1, _CHUNK_PAIRS // (k * k))
    for s in range(0, n, step):
        xy = xy_map[s:s + step]
        m = len(xy)
        c0 = np.floor(xy[:, 0] - r).astype(np.int64)
        r0 = np.floor(xy[:, 1] - r).astype(np.int64)
        # F on the (k+1) x (k+1) grid of pixel corners around each disk, then each pixel's
        # area by inclusion-exclusion: (k+1)^2 evaluations instead of 4 k^2
        edge = np.arange(k + 1)
        ex = (c0[:, None] + edge[None, :]) - xy[:, 0, None]  # m, k+1  (x of column edges)
        ey = (r0[:, None] + edge[None, :]) - xy[:, 1, None]  # m, k+1  (y of row edges)
        f = _lower_left_area(ex[:, None, :], ey[:, :, None], r)  # m, k+1 (y), k+1 (x)
        area = f[:, 1:, 1:] - f[:, :-1, 1:] - f[:, 1:, :-1] + f[:, :-1, :-1]  # m, k, k
        np.maximum(area, 0.0, out=area)
        cols = np.broadcast_to(c0[:, None, None] + off[None, None, :], (m, k, k))
        rows = np.broadcast_to(r0[:, None, None] + off[None, :, None], (m, k, k))
        inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
        idx = np.where(inside, rows * w + cols, 0)
        lab = np.where(inside, flat_labels[idx], 0)
        spot = np.repeat(np.arange(m), k * k)
        key = spot * n_labels + lab.reshape(-1)
        a = area.reshape(-1)
        frac[s:s + m] = np.bincount(key, weights=a, minlength=m * n_labels).reshape(m, n_labels)
        if flat_w is not None:
            wv = np.where(inside, flat_w[idx], 1.0).reshape(-1)  # off the map: surely outside
            wsum[s:s + m] = np.bincount(key, weights=a * wv,
                                        minlength=m * n_labels).reshape(m, n_labels)
    # the k x k pixels cover the whole disk, so the row sums equal pi r^2 up to rounding;
    # dividing by them makes rows sum to 1 exactly (off-map pixels already count as label 0)
    total = frac.sum(axis=1, keepdims=True)
    total[total <= 0] = disk_area
    frac /= total
    wsum = frac.copy() if flat_w is None else wsum / total
    return frac, wsum


def raster_polygon_fractions(labels: np.ndarray, polys_map, n_labels: int,
                             max_window: int = 16) -> np.ndarray | None:
    """Exact area fraction of each polygon (map-pixel coordinates) in each label of a raster.

    A polygon whose bounding box covers pixels of a single label gets that label with
    fraction 1 at once; the others are intersected with their few map-pixel squares
    (simple boxes, so cheap), and the areas summed per label. Returns None when polygons
    span more than ``max_window`` pixels (use :func:`vector_fractions` then).
    """
    import shapely

    polys = np.asarray(polys_map, dtype=object)
    n = len(polys)
    h, w = labels.shape
    out = np.zeros((n, n_labels))
    if n == 0:
        return out
    b = shapely.bounds(polys)
    c0 = np.floor(b[:, 0]).astype(np.int64)
    r0 = np.floor(b[:, 1]).astype(np.int64)
    c1 = np.maximum(np.ceil(b[:, 2]).astype(np.int64) - 1, c0)
    r1 = np.maximum(np.ceil(b[:, 3]).astype(np.int64) - 1, r0)
    k = int(max((c1 - c0).max(), (r1 - r0).max())) + 1
    if k > max_window:
        return None
    off = np.arange(k)
    step = max(1, _CHUNK_PAIRS // (k * k))  # bounds peak memory
    flat_labels = labels.reshape(-1)
    for s0 in range(0, n, step):
        sl = slice(s0, s0 + step)
        out[sl] = _polygon_chunk(polys[sl], c0[sl], r0[sl], c1[sl], r1[sl], off, flat_labels,
                                 h, w, n_labels)
    return out


def _polygon_chunk(polys, c0, r0, c1, r1, off, flat_labels, h, w, n_labels) -> np.ndarray:
    import shapely

    m = len(polys)
    out = np.zeros((m, n_labels))
    cols = c0[:, None, None] + off[None, None, :]
    rows = r0[:, None, None] + off[None, :, None]
    valid = (cols <= c1[:, None, None]) & (rows <= r1[:, None, None])
    on_map = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    lab = np.where(on_map, flat_labels[np.where(on_map, rows * w + cols, 0)], 0).astype(np.int64)
    first = lab[:, 0, 0]
    uniform = np.all((lab == first[:, None, None]) | ~valid, axis=(1, 2))
    out[np.flatnonzero(uniform), first[uniform]] = 1.0
    mixed = np.flatnonzero(~uniform)
    if len(mixed) == 0:
        return out
    vm = valid[mixed]
    shape = vm.shape
    ci = np.broadcast_to(cols[mixed], shape)[vm]
    ri = np.broadcast_to(rows[mixed], shape)[vm]
    local = np.broadcast_to(np.arange(len(mixed))[:, None, None], shape)[vm]
    # move each (polygon, pixel) pair so the pixel is the unit square, then clip by it
    # (clip_by_rect is several times faster than a general intersection)
    pieces = polys[mixed][local]  # a new object array; shapely geometries are immutable
    xy, which = shapely.get_coordinates(pieces, return_index=True)
    xy -= np.c_[ci, ri][which]
    pieces = shapely.set_coordinates(pieces, xy)
    areas = shapely.area(shapely.clip_by_rect(pieces, 0.0, 0.0, 1.0, 1.0))
    acc = np.bincount(local * n_labels + lab[mixed][vm], weights=areas,
                      minlength=len(mixed) * n_labels).reshape(len(mixed), n_labels)
    tot = acc.sum(axis=1)
    empty = tot <= 0
    acc[empty, first[mixed][empty]] = 1.0  # degenerate (zero-area) polygon: its corner pixel
    tot[empty] = 1.0
    out[mixed] = acc / tot[:, None]
    return out


def vector_fractions(shapes, region_geoms, region_codes: np.ndarray, n_labels: int,
                     normaliser: np.ndarray | None = None) -> np.ndarray:
    """Area fraction of each shape (disk or cell polygon) in each region polygon.

    ``region_codes[j]`` is the label (1..n_labels-1) of ``region_geoms[j]``; area not
    covered by any region goes to label 0. Rows sum to 1.
    """
    import shapely

    shapes = np.asarray(shapes, dtype=object)
    region_geoms = np.asarray(region_geoms, dtype=object)
    n = len(shapes)
    total = shapely.area(shapes) if normaliser is None else np.asarray(normaliser, float)
    out = np.zeros((n, n_labels))
    if n and len(region_geoms):
        tree = shapely.STRtree(region_geoms)
        si, ri = tree.query(shapes, predicate="intersects")
        if len(si):
            areas = shapely.area(shapely.intersection(shapes[si], region_geoms[ri]))
            key = si * n_labels + np.asarray(region_codes)[ri]
            out = np.bincount(key, weights=areas, minlength=n * n_labels).reshape(n, n_labels)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(total[:, None] > 0, out / np.where(total > 0, total, 1.0)[:, None], 0.0)
    out[:, 0] = np.clip(1.0 - out[:, 1:].sum(axis=1), 0.0, None)
    return out


def vector_points(xy: np.ndarray, region_geoms, region_codes: np.ndarray) -> np.ndarray:
    """Label of the region polygon containing each point (0 = none)."""
    import shapely

    pts = shapely.points(np.asarray(xy, dtype=np.float64))
    out = np.zeros(len(pts), dtype=np.int64)
    if len(region_geoms):
        tree = shapely.STRtree(np.asarray(region_geoms, dtype=object))
        pi, ri = tree.query(pts, predicate="intersects")
        out[pi] = np.asarray(region_codes)[ri]
    return out
