"""Region shape primitives of a tissue spec, in micrometres (anatomical frame).

A geometry is a mapping with a ``type`` and its parameters; any geometry may also carry
``union``, ``intersect`` and ``subtract`` (lists of geometries, applied in that order) and
``mirror: true`` (union with its left-right mirror image about ``x = 0``). Wherever a
geometry is expected a region or named shape may be referenced by name (a string or
``{type: ref, name: ...}``).

Types (``center`` defaults to ``[0, 0]``, angles in degrees counter-clockwise on screen):

``ellipse``       ``center``, ``radii: [rx, ry]``, ``angle_deg``
``superellipse``  ``center``, ``radii``, ``exponent`` (2 = ellipse, larger = boxier), ``angle_deg``
``polygon``       ``points: [[x, y], ...]``, ``smooth`` (Chaikin corner-cutting rounds); with
                  ``mirror: true`` and first and last points on ``x = 0`` the points are
                  one half of a symmetric outline
``band``          ``points`` (a polyline), ``width``, ``smooth``, ``cap: round|flat``
``shell``         ``of``, ``depth: [d0, d1]``: the layer between ``d0`` and ``d1`` inside
                  the outline of ``of`` (layers following a contour: cortex, bulb layers)
``buffer``        ``of``, ``distance`` (negative shrinks)
``box``           ``bounds: [xmin, ymin, xmax, ymax]``
``butterfly``     ``center``, ``width``, ``height``, ``dorsal`` / ``ventral`` (horn size
                  factors), ``part: all|dorsal|ventral`` (spinal grey matter)
``circles``       ``within``, ``count: [lo, hi]``, ``radius: [lo, hi]``, ``gap``: random
                  non-overlapping discs (nerve fascicles)
``ref``           ``name``

Every number may instead be ``{uniform: [lo, hi]}`` (sampled per frame) or
``{lerp: [a, b], var: NAME}`` (``a + (b - a) * t`` with ``t`` the spec variable ``NAME``
rescaled to 0..1 over its range): e.g. the butterfly of a spinal cord from cervical to
lumbar driven by one ``level`` variable.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import shapely
from shapely import affinity
from shapely.geometry import LineString, Polygon, box
from shapely.geometry.base import BaseGeometry

from ..errors import SpecError

_COMMON = ("type", "union", "intersect", "subtract", "mirror")
_KEYS: dict[str, tuple[str, ...]] = {
    "ellipse": ("center", "radii", "angle_deg"),
    "superellipse": ("center", "radii", "exponent", "angle_deg"),
    "polygon": ("points", "smooth"),
    "band": ("points", "width", "smooth", "cap"),
    "shell": ("of", "depth"),
    "buffer": ("of", "distance"),
    "box": ("bounds",),
    "butterfly": ("center", "width", "height", "dorsal", "ventral", "part"),
    "circles": ("within", "count", "radius", "gap"),
    "ref": ("name",),
}
_REQUIRED: dict[str, tuple[str, ...]] = {
    "ellipse": ("radii",), "superellipse": ("radii",), "polygon": ("points",),
    "band": ("points", "width"), "shell": ("of", "depth"), "buffer": ("of", "distance"),
    "box": ("bounds",), "butterfly": ("width", "height"), "circles": ("within", "count", "radius"),
    "ref": ("name",),
}
GEOMETRY_TYPES = tuple(_KEYS)
_N_ARC = 96  # vertices of a full ellipse


# --------------------------------------------------------------------------- validation
def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _check_num(v: Any, where: str, variables: list[str]) -> None:
    if _is_num(v):
        return
    if isinstance(v, dict):
        if set(v) == {"uniform"} and _is_pair(v["uniform"]):
            if v["uniform"][0] > v["uniform"][1]:
                raise SpecError(f"{where}: uniform range {v['uniform']} has low > high")
            return
        if set(v) == {"lerp", "var"} and _is_pair(v["lerp"]):
            if v["var"] not in variables:
                raise SpecError(f"{where}: unknown variable {v['var']!r}; define it in "
                                f"variation.variables (defined: {', '.join(variables) or 'none'})")
            return
    raise SpecError(f"{where}: expected a number, {{uniform: [lo, hi]}} or {{lerp: [a, b], var: NAME}}, "
                    f"got {v!r}")


def _is_pair(v: Any) -> bool:
    return isinstance(v, list | tuple) and len(v) == 2 and all(_is_num(x) for x in v)


def _check_vec(v: Any, n: int, where: str, variables: list[str]) -> None:
    if not isinstance(v, list | tuple) or len(v) != n:
        raise SpecError(f"{where}: expected a list of {n} numbers, got {v!r}")
    for i, x in enumerate(v):
        _check_num(x, f"{where}[{i}]", variables)


def validate_geometry(geom: Any, where: str, known: list[str], variables: list[str]) -> set[str]:
    """Check a geometry description; return the names of regions/shapes it refers to.

    Raises :class:`~topdown.errors.SpecError` naming the bad field and allowed values.
    """
    if isinstance(geom, str):
        if geom not in known:
            raise SpecError(f"{where}: unknown region or shape {geom!r}; allowed: {', '.join(known)}")
        return {geom}
    if not isinstance(geom, dict):
        raise SpecError(f"{where}: expected a geometry mapping with a 'type' "
                        f"({', '.join(GEOMETRY_TYPES)}) or a region name, got {geom!r}")
    kind = geom.get("type")
    if kind not in _KEYS:
        raise SpecError(f"{where}.type: {kind!r} is not a geometry type; allowed values: "
                        f"{', '.join(GEOMETRY_TYPES)}")
    allowed = _COMMON + _KEYS[kind]
    for k in geom:
        if k not in allowed:
            raise SpecError(f"{where}: unknown key {k!r} for type {kind}; allowed keys: {', '.join(allowed)}")
    for k in _REQUIRED[kind]:
        if k not in geom:
            raise SpecError(f"{where}.{k}: required for geometry type {kind}")
    deps: set[str] = set()
    for k, v in geom.items():
        w = f"{where}.{k}"
        if k in ("center",):
            _check_vec(v, 2, w, variables)
        elif k in ("radii", "depth", "count", "radius"):
            _check_vec(v, 2, w, variables)
        elif k == "bounds":
            _check_vec(v, 4, w, variables)
        elif k in ("angle_deg", "exponent", "width", "distance", "height", "dorsal", "ventral", "gap"):
            _check_num(v, w, variables)
        elif k == "smooth":
            if not (isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 8):
                raise SpecError(f"{w}: expected an integer 0..8, got {v!r}")
        elif k == "points":
            if not isinstance(v, list) or len(v) < (3 if kind == "polygon" else 2):
                raise SpecError(f"{w}: expected a list of at least {3 if kind == 'polygon' else 2} [x, y] points")
            for i, p in enumerate(v):
                _check_vec(p, 2, f"{w}[{i}]", variables)
        elif k == "cap" and v not in ("round", "flat"):
            raise SpecError(f"{w}: {v!r} is not allowed; allowed values: round, flat")
        elif k == "part" and v not in ("all", "dorsal", "ventral"):
            raise SpecError(f"{w}: {v!r} is not allowed; allowed values: all, dorsal, ventral")
        elif k == "mirror" and not isinstance(v, bool):
            raise SpecError(f"{w}: expected true or false, got {v!r}")
        elif k in ("of", "within"):
            deps |= validate_geometry(v, w, known, variables)
        elif k == "name":
            deps |= validate_geometry(v, w, known, variables)
        elif k in ("union", "intersect", "subtract"):
            if not isinstance(v, list):
                raise SpecError(f"{w}: expected a list of geometries")
            for i, g in enumerate(v):
                deps |= validate_geometry(g, f"{w}[{i}]", known, variables)
    return deps


# --------------------------------------------------------------------------- building
class GeometryContext:
    """What building a geometry needs: a name resolver, an rng and the sampled variables."""

    def __init__(self, resolve: Callable[[str], BaseGeometry], rng: np.random.Generator,
                 variables: dict[str, float], var_ranges: dict[str, tuple[float, float]]):
        self.resolve = resolve
        self.rng = rng
        self.variables = variables
        self.var_ranges = var_ranges

    def num(self, v: Any) -> float:
        if _is_num(v):
            return float(v)
        if "uniform" in v:
            lo, hi = v["uniform"]
            return float(self.rng.uniform(lo, hi))
        lo, hi = self.var_ranges[v["var"]]
        t = 0.5 if hi == lo else (self.variables[v["var"]] - lo) / (hi - lo)
        a, b = v["lerp"]
        return float(a + (b - a) * t)

    def vec(self, v: Any) -> list[float]:
        return [self.num(x) for x in v]


def build_geometry(geom: Any, ctx: GeometryContext) -> BaseGeometry:
    """Turn a (validated) geometry description into a shapely geometry (µm)."""
    if isinstance(geom, str):
        return ctx.resolve(geom)
    kind = geom["type"]
    g = _BUILDERS[kind](geom, ctx)
    for other in geom.get("union", []):
        g = shapely.union(g, build_geometry(other, ctx))
    for other in geom.get("intersect", []):
        g = shapely.intersection(g, build_geometry(other, ctx))
    for other in geom.get("subtract", []):
        g = shapely.difference(g, build_geometry(other, ctx))
    if geom.get("mirror") and not _axis_outline(geom):
        g = shapely.union(g, affinity.scale(g, -1.0, 1.0, origin=(0, 0)))
    return shapely.make_valid(g) if not g.is_valid else g


def _ellipse(center, radii, angle_deg: float, exponent: float = 2.0) -> Polygon:
    t = np.linspace(0, 2 * np.pi, _N_ARC, endpoint=False)
    c, s = np.cos(t), np.sin(t)
    e = 2.0 / exponent
    x = radii[0] * np.sign(c) * np.abs(c) ** e
    y = radii[1] * np.sign(s) * np.abs(s) ** e
    a = math.radians(angle_deg)
    # counter-clockwise on screen (y down): rotate by -a in y-down coordinates
    xr = x * math.cos(a) + y * math.sin(a)
    yr = -x * math.sin(a) + y * math.cos(a)
    return Polygon(np.column_stack([xr + center[0], yr + center[1]]))


def chaikin(points: np.ndarray, rounds: int, closed: bool) -> np.ndarray:
    """Chaikin corner cutting: ``rounds`` iterations (smooth curves from few vertices)."""
    p = np.asarray(points, dtype=float)
    for _ in range(rounds):
        q = np.roll(p, -1, axis=0) if closed else p[1:]
        a = p if closed else p[:-1]
        new = np.empty((2 * len(a), 2))
        new[0::2] = 0.75 * a + 0.25 * q
        new[1::2] = 0.25 * a + 0.75 * q
        p = new if closed else np.vstack([p[:1], new, p[-1:]])
    return p


def _b_ellipse(g, ctx):
    return _ellipse(ctx.vec(g.get("center", [0, 0])), ctx.vec(g["radii"]), ctx.num(g.get("angle_deg", 0)))


def _b_superellipse(g, ctx):
    return _ellipse(ctx.vec(g.get("center", [0, 0])), ctx.vec(g["radii"]),
                    ctx.num(g.get("angle_deg", 0)), max(ctx.num(g.get("exponent", 2.5)), 0.5))


def _axis_outline(g: dict) -> bool:
    """A mirrored polygon whose points run from the midline (x = 0) and back to it: one half."""
    pts = g.get("points") if g.get("type") == "polygon" else None
    return bool(g.get("mirror") and pts and _is_num(pts[0][0]) and _is_num(pts[-1][0])
                and pts[0][0] == 0 and pts[-1][0] == 0)


def _b_polygon(g, ctx):
    pts = np.array([ctx.vec(p) for p in g["points"]])
    if _axis_outline(g):  # complete the outline with its mirror image, then smooth it whole
        other = pts[::-1][1:-1] * np.array([-1.0, 1.0])
        pts = np.vstack([pts, other])
    pts = chaikin(pts, g.get("smooth", 0), closed=True)
    return shapely.make_valid(Polygon(pts))


def _b_band(g, ctx):
    pts = chaikin(np.array([ctx.vec(p) for p in g["points"]]), g.get("smooth", 0), closed=False)
    cap = g.get("cap", "round")
    return LineString(pts).buffer(ctx.num(g["width"]) / 2.0, quad_segs=8, cap_style=cap)


def _b_shell(g, ctx):
    base = build_geometry(g["of"], ctx)
    d0, d1 = sorted(ctx.vec(g["depth"]))
    outer = base.buffer(-d0, quad_segs=8) if d0 else base
    return shapely.difference(outer, base.buffer(-d1, quad_segs=8))


def _b_buffer(g, ctx):
    return build_geometry(g["of"], ctx).buffer(ctx.num(g["distance"]), quad_segs=8)


def _b_box(g, ctx):
    return box(*ctx.vec(g["bounds"]))


def _b_butterfly(g, ctx):
    cx, cy = ctx.vec(g.get("center", [0, 0]))
    w, h = ctx.num(g["width"]), ctx.num(g["height"])
    dors, vent = ctx.num(g.get("dorsal", 1.0)), ctx.num(g.get("ventral", 1.0))
    parts = [_ellipse((cx, cy + 0.01 * h), (0.16 * w, 0.07 * h), 0.0)]  # grey commissure
    for side in (-1, 1):
        # dorsal horn: slender, tilted outwards, reaching the dorsolateral surface
        parts.append(_ellipse((cx + side * 0.17 * w * dors, cy - 0.24 * h),
                              (0.08 * w * dors, 0.29 * h), side * -25.0))
        # ventral horn: broad, rounded, pointing ventrolaterally
        parts.append(_ellipse((cx + side * 0.21 * w * vent, cy + 0.2 * h),
                              (0.15 * w * vent, 0.2 * h), side * 30.0))
        # intermediate zone joining them
        parts.append(_ellipse((cx + side * 0.15 * w, cy + 0.02 * h), (0.12 * w, 0.13 * h), 0.0))
    shape = shapely.union_all(parts).buffer(0.03 * w).buffer(-0.03 * w)
    part = g.get("part", "all")
    big = 10 * max(w, h)
    if part == "dorsal":
        shape = shape.intersection(box(cx - big, cy - big, cx + big, cy))
    elif part == "ventral":
        shape = shape.intersection(box(cx - big, cy, cx + big, cy + big))
    return shape


def _b_circles(g, ctx):
    within = build_geometry(g["within"], ctx)
    lo, hi = ctx.vec(g["count"])
    n = int(ctx.rng.integers(int(round(lo)), int(round(hi)) + 1))
    rlo, rhi = ctx.vec(g["radius"])
    gap = ctx.num(g.get("gap", 0.0))
    return shapely.union_all(pack_circles(within, n, (rlo, rhi), gap, ctx.rng)) if n else Polygon()


def pack_circles(within: BaseGeometry, n: int, radius: tuple[float, float], gap: float,
                 rng: np.random.Generator, tries: int = 60) -> list[Polygon]:
    """Up to ``n`` random non-overlapping discs inside ``within`` (largest placed first)."""
    if within.is_empty or n <= 0:
        return []
    radii = np.sort(rng.uniform(radius[0], radius[1], n))[::-1]
    placed: list[tuple[float, float, float]] = []
    minx, miny, maxx, maxy = within.bounds
    for r in radii:
        inner = within.buffer(-r)
        if inner.is_empty:
            continue
        ix0, iy0, ix1, iy1 = inner.bounds
        xs = rng.uniform(ix0, ix1, tries)
        ys = rng.uniform(iy0, iy1, tries)
        ok = shapely.contains_xy(inner, xs, ys)
        if placed:
            p = np.asarray(placed)
            d = np.hypot(xs[:, None] - p[:, 0], ys[:, None] - p[:, 1])
            ok &= np.all(d >= r + p[:, 2] + gap, axis=1)
        idx = np.flatnonzero(ok)
        if len(idx):
            placed.append((xs[idx[0]], ys[idx[0]], r))
    return [shapely.Point(x, y).buffer(r, quad_segs=12) for x, y, r in placed]


def _b_ref(g, ctx):
    return build_geometry(g["name"], ctx)


_BUILDERS: dict[str, Callable[[dict, GeometryContext], BaseGeometry]] = {
    "ellipse": _b_ellipse, "superellipse": _b_superellipse, "polygon": _b_polygon,
    "band": _b_band, "shell": _b_shell, "buffer": _b_buffer, "box": _b_box,
    "butterfly": _b_butterfly, "circles": _b_circles, "ref": _b_ref,
}
