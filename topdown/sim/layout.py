"""Layout: a TissueSpec + a seed -> a :class:`~topdown.sim.section.Section` (no Blender).

Steps (each draws from its own random stream, so they do not shift each other):

1. sample the spec variables and build every region / named shape in the anatomical
   frame (µm, origin at the section centre), clipped to its parent;
2. optional hemisection; smooth anatomical variation applied to every shape alike
   (left/right asymmetry, elastic warp, mirror, rotation, scale);
3. regions made disjoint by precedence; field of view chosen (whole section or a crop
   centred inside the tissue), optional straight capture-area edge;
4. nuclei sampled per population (density, pattern, size, elongation, orientation);
   optional pathology (cell loss, lesion);
5. geometric artefacts: tears (cut out, cells removed) and folds (a flap reflected over
   a line: doubled area in ``Section.folds``, its nuclei on ``layer=1``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import shapely
from shapely import affinity
from shapely.geometry import LineString, Polygon, box
from shapely.geometry.base import BaseGeometry

from .._modalities import MODALITIES
from ..errors import InputError, SpecError
from . import cells as _cells
from .geometry import GeometryContext, build_geometry
from .section import CELL_COLUMNS, Section
from .spec import RegionSpec, TissueSpec

CONDITIONS = ("healthy", "pathological")
_EMPTY = Polygon()


def layout(spec: TissueSpec, seed: int, *, size: int | None = None,
           pixel_size_um: float | None = None, modality: str | None = None,
           condition: str | None = None, pixel_size_jitter: float | None = None) -> Section:
    """Lay out one simulated section: region polygons and a nucleus table.

    Parameters
    ----------
    spec
        The tissue (e.g. ``td.sim.load_preset("mouse_brain_coronal")``).
    seed
        Non-negative integer; the same seed gives the identical Section.
    size
        Frame side in pixels (square); default ``spec.imaging.size``.
    pixel_size_um
        Nominal µm per pixel; default ``spec.imaging.pixel_size_um``. The frame's actual
        pixel size is jittered around it by ``spec.variation.pixel_size_jitter``
        (override with ``pixel_size_jitter``; ``0`` keeps it exact).
    modality
        ``"he"`` or ``"dapi"`` (recorded in ``params``); default ``spec.imaging.modality``.
    condition
        ``None`` / ``"healthy"``, or ``"pathological"`` to apply ``spec.pathology``.

    Returns
    -------
    Section
        Regions in µm with origin at the top-left of the field of view (``y`` down),
        cells (``CELL_COLUMNS``), region/cell styles and every sampled parameter in
        ``params``.

    Examples
    --------
    >>> import topdown as td
    >>> spec = td.sim.load_preset("olfactory_bulb")
    >>> sec = td.sim.layout(spec, seed=3, size=128)
    >>> sec.shape
    (128, 128)
    >>> mask = td.sim.region_mask(sec)
    """
    size, nominal, modality, condition = _check_arguments(spec, seed, size, pixel_size_um, modality, condition)
    ss = np.random.SeedSequence([int(seed), 0x5EC7])
    g_rng, v_rng, f_rng, c_rng, a_rng, p_rng = (np.random.default_rng(s) for s in ss.spawn(6))
    var = spec.variation
    params: dict[str, Any] = {"seed": int(seed), "spec": spec.name, "modality": modality,
                              "condition": condition, "size": size, "nominal_pixel_size_um": nominal}

    # -- 1. shapes in the anatomical frame ------------------------------------------------
    variables = {k: float(g_rng.uniform(lo, hi)) for k, (lo, hi) in var.variables.items()}
    params["variables"] = variables
    shapes = _build_all(spec, g_rng, variables)

    # -- 2. hemisection + smooth variation ---------------------------------------------
    shapes, params["hemisection"] = _hemisection(shapes, var.hemisection, v_rng)
    transform, tparams = _sample_transform(var, shapes, v_rng)
    params.update(tparams)
    # the warp keeps shapes apart in theory, but two nearly touching edges of a shape can
    # cross after it in floating point, which GEOS set operations refuse ("side location
    # conflict"); _clean repairs such a shape and passes valid polygons through unchanged
    shapes = {k: _clean(shapely.transform(shapely.segmentize(g, tparams["segment_um"]), transform))
              if not g.is_empty else g for k, g in shapes.items()}
    regions = _disjoint(spec, shapes)

    # -- 3. field of view ------------------------------------------------------------------
    jitter = var.pixel_size_jitter if pixel_size_jitter is None else float(pixel_size_jitter)
    px = nominal * float(f_rng.uniform(1.0 - jitter, 1.0 + jitter)) if jitter > 0 else nominal
    side_um = size * px
    regions, shapes, fov = _field_of_view(spec, regions, shapes, side_um, f_rng)
    params.update(pixel_size_um=px, **fov)

    # -- 4. styles, nuclei, pathology ----------------------------------------------------
    frame = (params["flip"], params["rotation_deg"])
    region_style = {r.name: _style(r, regions[r.name], c_rng, frame) for r in spec.regions}
    lesion = None
    if condition == "pathological" and spec.pathology.lesion is not None:
        lesion = params["lesion"] = _lesion(spec, regions, region_style, p_rng)
    cell_table, cell_style, objects, params["densities_per_mm2"] = _sample_cells(
        spec, regions, shapes, region_style, c_rng, frame)
    if condition == "pathological":
        cell_table, loss = _pathology_cells(spec, cell_table, lesion, p_rng)
        if loss is not None:
            params["cell_loss"] = loss
    params["objects"] = {k: np.round(v, 2).tolist() for k, v in objects.items()}
    for k, v in objects.items():  # e.g. adipocyte size for the renderer's cell-wall texture
        if len(v):
            region_style[k]["cell_size_um"] = float(2.0 * v[:, 2].mean())

    # -- 5. geometric artefacts ------------------------------------------------------------
    regions, cell_table, params["tears"] = _tears(spec, regions, cell_table, px, a_rng)
    regions, cell_table, folds, params["folds"] = _folds(spec, regions, cell_table, a_rng)
    view = box(0, 0, side_um, side_um)
    regions = {k: _clean(shapely.intersection(g, view)) for k, g in regions.items()}
    folds = [f for f in (_clean(shapely.intersection(f, view)) for f in folds) if not f.is_empty]

    cells_df = pd.DataFrame(cell_table, columns=list(CELL_COLUMNS))
    cells_df["cell_type"] = cells_df["cell_type"].astype(str)
    cells_df["region"] = cells_df["region"].astype(str)
    cells_df["layer"] = cells_df["layer"].astype(np.uint8)
    params["n_cells"] = int(len(cells_df))
    params["classes_present"] = [k for k in spec.classes if not regions[k].is_empty]
    return Section(classes=list(spec.classes), regions=regions, cells=cells_df.reset_index(drop=True),
                   width_um=side_um, height_um=side_um, pixel_size_um=px,
                   thickness_um=spec.imaging.thickness_um, folds=folds,
                   region_style=region_style, cell_style=cell_style, params=params)


def _check_arguments(spec, seed, size, pixel_size_um, modality, condition) -> tuple[int, float, str, str]:
    """``(size, nominal pixel size, modality, condition)`` with the spec's defaults, checked."""
    if not isinstance(spec, TissueSpec):
        raise InputError(f"spec must be a TissueSpec, got {type(spec).__name__}; "
                         "use td.sim.load_preset(name) or TissueSpec.from_yaml(path)")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}")
    size = int(spec.imaging.size if size is None else size)
    if size < 8:
        raise InputError(f"size must be >= 8 px, got {size}")
    nominal = float(spec.imaging.pixel_size_um if pixel_size_um is None else pixel_size_um)
    if not nominal > 0:
        raise InputError(f"pixel_size_um must be > 0, got {pixel_size_um!r}")
    modality = spec.imaging.modality if modality is None else modality
    if modality not in MODALITIES:
        raise InputError(f"modality {modality!r} is not allowed; allowed values: {', '.join(MODALITIES)}")
    condition = condition or "healthy"
    if condition not in CONDITIONS:
        raise InputError(f"condition {condition!r} is not allowed; allowed values: {', '.join(CONDITIONS)}")
    if condition == "pathological" and spec.pathology is None:
        raise SpecError(f"pathology: spec {spec.name!r} has no pathology block; add one or use condition=None")
    return size, nominal, modality, condition


def _hemisection(shapes: dict[str, BaseGeometry], probability: float, rng
                 ) -> tuple[dict[str, BaseGeometry], dict[str, Any] | None]:
    """Shapes cut to one half (with the given probability), and the cut's record (or None)."""
    if not rng.random() < probability:
        return shapes, None
    x0, _, x1, _ = shapely.union_all(list(shapes.values())).bounds
    cut = float(rng.normal(0.0, 0.02 * (x1 - x0)))
    side = int(rng.choice([-1, 1]))
    big = 1e7
    half = box(-big, -big, cut, big) if side < 0 else box(cut, -big, big, big)
    shapes = {k: shapely.intersection(g, half) for k, g in shapes.items()}
    return shapes, {"cut_x_um": cut, "keep": "left" if side < 0 else "right"}


def _field_of_view(spec: TissueSpec, regions: dict[str, BaseGeometry], shapes: dict[str, BaseGeometry],
                   side_um: float, rng) -> tuple[dict, dict, dict[str, Any]]:
    """Regions and shapes moved into a ``side_um`` square view (whole section or a crop
    centred inside the tissue, optional straight capture-area edge), and its record."""
    var = spec.variation
    tissue = shapely.union_all(list(regions.values()))
    if tissue.is_empty:
        raise SpecError(f"regions: the geometry of spec {spec.name!r} is empty for every region; "
                        "check radii, depths and parent clipping")
    whole = bool(rng.random() < var.whole)
    if whole:
        x0, y0, x1, y1 = tissue.bounds
        centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2]) + rng.normal(0, 0.03 * side_um, 2)
    else:
        focus = tissue
        if var.focus:
            focus = _clean(shapely.intersection(shapely.union_all([regions.get(n, shapes.get(n))
                                                                   for n in var.focus]), tissue))
        centre = _cells.uniform_points(focus if not focus.is_empty else tissue, 1, rng)[0]
    shift = (side_um / 2 - centre[0], side_um / 2 - centre[1])
    record: dict[str, Any] = {"fov_um": side_um, "fov": "whole" if whole else "crop",
                              "fov_centre_um": [float(centre[0]), float(centre[1])]}
    margin = 20.0
    view = box(-margin, -margin, side_um + margin, side_um + margin)
    regions = {k: _clean(shapely.intersection(affinity.translate(g, *shift), view)) for k, g in regions.items()}
    shapes = {k: affinity.translate(g, *shift) for k, g in shapes.items()}
    if rng.random() < var.edge_cut:
        regions, record["edge_cut"] = _edge_cut(regions, side_um, rng)
    else:
        record["edge_cut"] = None
    return regions, shapes, record


# --------------------------------------------------------------------------- geometry
def _clean(g: BaseGeometry) -> BaseGeometry:
    """Polygonal part only (drop lines/points from intersections), valid."""
    if g.is_empty:
        return _EMPTY
    if not g.is_valid:
        g = shapely.make_valid(g)
    if g.geom_type in ("Polygon", "MultiPolygon"):
        return g
    polys = [p for p in getattr(g, "geoms", [g]) if p.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(polys) if polys else _EMPTY


def _build_all(spec: TissueSpec, rng: np.random.Generator, variables: dict[str, float]) -> dict[str, BaseGeometry]:
    """Every named shape and region (clipped to its parent), anatomical frame."""
    by_name: dict[str, Any] = dict(spec.shapes)
    parents = {r.name: r.parent for r in spec.regions}
    by_name.update({r.name: r.geometry for r in spec.regions})
    cache: dict[str, BaseGeometry] = {}
    ctx = GeometryContext(lambda n: resolve(n), rng, variables, spec.variation.variables)

    def resolve(name: str) -> BaseGeometry:
        if name not in cache:
            try:
                g = _clean(build_geometry(by_name[name], ctx))
            except SpecError:
                raise
            except Exception as exc:  # shapely/GEOS failures on odd parameters
                raise SpecError(f"geometry of {name!r} cannot be built ({exc}); check its parameters") from None
            parent = parents.get(name)
            if parent is not None:
                g = _clean(shapely.intersection(g, resolve(parent)))
            cache[name] = g
        return cache[name]

    for name in by_name:
        resolve(name)
    return cache


def _precedence(spec: TissueSpec) -> list[RegionSpec]:
    """Regions from highest to lowest precedence."""
    parents = {r.name: r.parent for r in spec.regions}

    def depth(name: str) -> int:
        d, p = 0, parents.get(name)
        while p is not None:
            d, p = d + 1, parents.get(p)
        return d

    keyed = [((r.priority if r.priority is not None else depth(r.name)), i, r)
             for i, r in enumerate(spec.regions)]
    return [r for *_, r in sorted(keyed, key=lambda t: (t[0], t[1]), reverse=True)]


def _disjoint(spec: TissueSpec, shapes: dict[str, BaseGeometry]) -> dict[str, BaseGeometry]:
    taken: BaseGeometry = _EMPTY
    out: dict[str, BaseGeometry] = {}
    for r in _precedence(spec):
        g = shapes[r.name]
        out[r.name] = _clean(shapely.difference(g, taken)) if not taken.is_empty else g
        taken = shapely.union(taken, g)
    return {r.name: out[r.name] for r in spec.regions}


def _sample_transform(var, shapes, rng):
    allg = shapely.union_all([g for g in shapes.values() if not g.is_empty])
    x0, y0, x1, y1 = allg.bounds if not allg.is_empty else (-1, -1, 1, 1)
    half_w = max((x1 - x0) / 2, 1.0)
    scale = float(rng.uniform(*var.scale))
    rot = float(rng.uniform(*var.rotation_deg))
    asym = float(rng.uniform(*var.asymmetry)) * float(rng.choice([-1, 1]))
    amp = float(rng.uniform(*var.warp_um))
    lam = float(rng.uniform(*var.warp_wavelength_um))
    amp = min(amp, lam / (4 * math.pi * 3))  # keep the warp a bijection (|grad| < 1/2)
    k = 2 * math.pi / lam
    dirs = rng.uniform(0, 2 * np.pi, (2, 3))
    phases = rng.uniform(0, 2 * np.pi, (2, 3))
    flip = bool(rng.random() < var.flip)
    c, s = math.cos(math.radians(rot)), math.sin(math.radians(rot))

    def transform(p: np.ndarray) -> np.ndarray:
        x, y = p[:, 0].copy(), p[:, 1].copy()
        x = x * (1.0 + asym * np.tanh(x / half_w))
        dx = sum(amp * np.sin(k * (np.cos(dirs[0, j]) * x + np.sin(dirs[0, j]) * y) + phases[0, j]) for j in range(3))
        dy = sum(amp * np.sin(k * (np.cos(dirs[1, j]) * x + np.sin(dirs[1, j]) * y) + phases[1, j]) for j in range(3))
        x, y = x + dx, y + dy
        if flip:
            x = -x
        # counter-clockwise on screen with y down
        xr = scale * (c * x + s * y)
        yr = scale * (-s * x + c * y)
        return np.column_stack([xr, yr])

    tparams = {"scale": scale, "rotation_deg": rot, "asymmetry": asym, "warp_um": amp,
               "warp_wavelength_um": lam, "flip": flip,
               "segment_um": max(min(lam / 16, (x1 - x0) / 40), 5.0)}
    return transform, tparams


def _edge_cut(regions, side_um, rng):
    phi = float(rng.uniform(0, 2 * np.pi))
    dist = float(rng.uniform(0.1, 0.45)) * side_um
    n = np.array([math.cos(phi), math.sin(phi)])
    c = np.array([side_um / 2, side_um / 2])
    p = c + dist * n  # a point on the edge line; the half beyond it is lost
    t = np.array([-n[1], n[0]])
    big = 10 * side_um
    keep = Polygon([p + big * t, p - big * t, p - big * t - big * n, p + big * t - big * n])
    return ({k: _clean(shapely.intersection(g, keep)) for k, g in regions.items()},
            {"normal_angle_rad": phi, "distance_um": dist})


def _fibre_angle(r: RegionSpec, geom: BaseGeometry, rng, frame: tuple[bool, float]) -> float:
    """Fibre direction of a region; ``frame``: (mirrored, rotation in degrees) of the section."""
    flip, rotation_deg = frame
    mode = r.background.fibre_orientation
    if mode in ("none", "random"):
        return float(rng.uniform(0, np.pi))
    if mode == "fixed":
        a = math.radians(r.background.fibre_angle_deg)
        a = math.pi - a if flip else a
        return float(np.mod(a + math.radians(rotation_deg), np.pi))
    if geom.is_empty:
        return 0.0
    rect = geom.minimum_rotated_rectangle
    xy = np.asarray(rect.exterior.coords) if rect.geom_type == "Polygon" else np.zeros((3, 2))
    e1, e2 = xy[1] - xy[0], xy[2] - xy[1]
    long = e1 if np.hypot(*e1) >= np.hypot(*e2) else e2
    a = math.atan2(-long[1], long[0])
    return float(np.mod(a + (math.pi / 2 if mode == "radial" else 0.0), np.pi))


def _style(r: RegionSpec, geom, rng, frame: tuple[bool, float]) -> dict[str, Any]:
    b = r.background
    return {"eosin": float(rng.uniform(*b.eosin)), "texture": b.texture,
            "fibre_orientation": b.fibre_orientation,
            "fibre_angle_rad": _fibre_angle(r, geom, rng, frame),
            "autofluorescence": b.autofluorescence, "tissue": b.tissue}


# --------------------------------------------------------------------------- cells
def _sample_cells(spec, regions, shapes, region_style, rng, frame: tuple[bool, float]):
    """``(cell table, cell styles, objects per region, densities per mm² per population)``."""
    rows: list[dict[str, np.ndarray]] = []
    cell_style: dict[str, dict[str, Any]] = {}
    objects: dict[str, np.ndarray] = {}
    densities: dict[str, float] = {}
    for r in spec.regions:
        geom = regions[r.name]
        ring_pops = [p for p in r.populations if p.pattern.type == "rings"]
        if ring_pops and not geom.is_empty:
            objects[r.name] = _cells.ring_objects(geom, ring_pops[0].pattern, rng)
        elif r.background.texture == "fascicles" and not geom.is_empty:
            objects[r.name] = _cells.fascicle_objects(geom, rng)  # bundles hold no nuclei
        for pop in r.populations:
            key = f"{r.name}/{pop.name}"
            density = float(rng.uniform(*pop.density))
            densities[key] = density
            cell_style[pop.name] = {"hematoxylin": pop.stain.hematoxylin, "dapi": pop.stain.dapi,
                                    "chromatin": pop.stain.chromatin}
            area = geom if pop.within is None else _clean(shapely.intersection(geom, shapes[pop.within]))
            if area.is_empty:
                continue
            pts = _cells.sample_positions(area, density, pop.pattern, rng, objects.get(r.name))
            if pop.pattern.type != "rings":
                pts = _cells.exclude_objects(pts, objects.get(r.name))
            n = len(pts)
            if n == 0:
                continue
            major, minor = _cells.sample_shapes(pop, n, rng)
            angle = _cells.sample_angles(pop, area, pts, rng,
                                         fibre_angle=region_style[r.name]["fibre_angle_rad"],
                                         frame_angle=math.radians(frame[1]), flipped=frame[0])
            rows.append({"x_um": pts[:, 0], "y_um": pts[:, 1],
                         "z_um": rng.uniform(0, spec.imaging.thickness_um, n),
                         "major_um": major, "minor_um": minor, "angle_rad": angle,
                         "cell_type": np.full(n, pop.name, dtype=object),
                         "region": np.full(n, r.name, dtype=object),
                         "stain": np.clip(rng.normal(1.0, pop.stain.sd, n), 0.05, None),
                         "layer": np.zeros(n, np.uint8)})
    if rows:
        table = {c: np.concatenate([r[c] for r in rows]) for c in CELL_COLUMNS}
    else:
        table = {c: np.empty(0, dtype=object if c in ("cell_type", "region") else float) for c in CELL_COLUMNS}
    return table, cell_style, objects, densities


def _lesion(spec, regions, region_style, rng) -> dict[str, Any] | None:
    """The lesion's record (also set on its region's style), None if its region is absent."""
    les = spec.pathology.lesion
    geom = regions[les.region]
    if geom.is_empty:
        return None
    c = _cells.uniform_points(geom, 1, rng)[0]
    radius = float(rng.uniform(*les.radius_um))
    info = {"region": les.region, "centre_um": [float(c[0]), float(c[1])], "radius_um": radius,
            "density_factor": les.density_factor, "eosin_factor": les.eosin_factor}
    region_style[les.region]["lesion"] = info
    return info


def _pathology_cells(spec, table, lesion, rng) -> tuple[dict, dict[str, Any] | None]:
    """The cell table after cell loss and the lesion, and the cell loss record (or None)."""
    n = len(table["x_um"])
    record = None
    keep = np.ones(n, bool)
    loss = spec.pathology.cell_loss
    if loss is not None:
        frac = float(rng.uniform(*loss.fraction))
        sel = table["region"] == loss.region
        if loss.populations:
            sel &= np.isin(table["cell_type"], loss.populations)
        keep &= ~(sel & (rng.random(n) < frac))
        record = {"region": loss.region, "fraction": frac, "populations": list(loss.populations)}
    if lesion is not None:
        d = np.hypot(table["x_um"] - lesion["centre_um"][0], table["y_um"] - lesion["centre_um"][1])
        inside = d < lesion["radius_um"]
        keep &= ~(inside & (rng.random(n) >= min(lesion["density_factor"], 1.0)))
    return {c: v[keep] for c, v in table.items()}, record


# --------------------------------------------------------------------------- artefacts
def _count(rng, lo_hi) -> int:
    """An integer count whose mean is the middle of the range ``(lo, hi)``."""
    u = float(rng.uniform(*lo_hi))
    return int(math.floor(u)) + int(rng.random() < u - math.floor(u))


def _tear_polygon(tissue: BaseGeometry, px: float, rng) -> BaseGeometry:
    start = _cells.uniform_points(tissue, 1, rng)[0]
    x0, y0, x1, y1 = tissue.bounds
    length = float(rng.uniform(0.2, 0.6)) * max(x1 - x0, y1 - y0)
    phi = rng.uniform(0, 2 * np.pi)
    t = np.linspace(-0.5, 0.5, 14)[:, None] * length
    d, nrm = np.array([math.cos(phi), math.sin(phi)]), np.array([-math.sin(phi), math.cos(phi)])
    wobble = np.cumsum(rng.normal(0, 0.03 * length, 14))[:, None]
    pts = start + t * d + (wobble - wobble.mean()) * nrm
    widths = rng.uniform(1.0, 4.0, 13) * px * float(rng.uniform(0.6, 1.5))
    segs = [LineString(pts[i:i + 2]).buffer(w / 2, quad_segs=2) for i, w in enumerate(widths)]
    return shapely.union_all(segs)


def _tears(spec, regions, table, px, rng):
    """Regions and cell table with tears cut out, and the tears as WKT."""
    n = _count(rng, spec.artefacts.tears)
    tears = []
    tissue = shapely.union_all(list(regions.values()))
    for _ in range(n):
        if tissue.is_empty:
            break
        tear = _tear_polygon(tissue, px, rng)
        tears.append(tear)
        regions = {k: _clean(shapely.difference(g, tear)) for k, g in regions.items()}
        tissue = shapely.difference(tissue, tear)
        inside = shapely.contains_xy(tear, table["x_um"], table["y_um"]) if len(table["x_um"]) else np.zeros(0, bool)
        table = {c: v[~inside] for c, v in table.items()}
    return regions, table, [shapely.to_wkt(t, rounding_precision=1) for t in tears]


def _folds(spec, regions, table, rng):
    """Regions and cell table after folds, the doubled areas, and one record per fold."""
    n = _count(rng, spec.artefacts.folds)
    folds, info = [], []
    for _ in range(n):
        tissue = shapely.union_all(list(regions.values()))
        if tissue.is_empty:
            break
        phi = float(rng.uniform(0, 2 * np.pi))
        nrm = np.array([math.cos(phi), math.sin(phi)])
        xy = shapely.get_coordinates(tissue)
        proj = xy @ nrm
        hmax, hmin = proj.max(), proj.min()
        h0 = hmax - float(rng.uniform(0.05, 0.2)) * (hmax - hmin)
        tang = np.array([-nrm[1], nrm[0]])
        big = 10 * (hmax - hmin + 1.0)
        p = h0 * nrm
        half = Polygon([p + big * tang, p - big * tang, p - big * tang + big * nrm, p + big * tang + big * nrm])
        # reflection across the line {q : q . nrm = h0}
        a, b = nrm
        mat = [1 - 2 * a * a, -2 * a * b, -2 * a * b, 1 - 2 * b * b, 2 * h0 * a, 2 * h0 * b]
        flaps = {k: affinity.affine_transform(_clean(shapely.intersection(g, half)), mat) for k, g in regions.items()}
        flap_all = shapely.union_all([f for f in flaps.values() if not f.is_empty])
        rest = {k: _clean(shapely.difference(g, half)) for k, g in regions.items()}
        rest_tissue = shapely.union_all(list(rest.values()))
        doubled = _clean(shapely.intersection(flap_all, rest_tissue))
        regions = {k: _clean(shapely.union(shapely.difference(rest[k], flap_all), flaps[k])) for k in regions}
        if not doubled.is_empty:
            folds.append(doubled)
        x, y = table["x_um"], table["y_um"]
        moved = (x * a + y * b) > h0
        if moved.any():
            dist = x[moved] * a + y[moved] * b - h0
            table["x_um"] = x.copy()
            table["y_um"] = y.copy()
            table["x_um"][moved] = x[moved] - 2 * dist * a
            table["y_um"][moved] = y[moved] - 2 * dist * b
            line_angle = math.atan2(-tang[1], tang[0])
            table["angle_rad"] = table["angle_rad"].copy()
            table["angle_rad"][moved] = np.mod(2 * line_angle - table["angle_rad"][moved], np.pi)
            table["layer"] = table["layer"].copy()
            table["layer"][moved] = 1
            order = np.argsort(table["layer"], kind="stable")  # flap nuclei drawn last
            table = {c: v[order] for c, v in table.items()}
        info.append({"normal_angle_rad": phi, "offset_um": float(h0), "n_moved": int(moved.sum())})
    return regions, table, folds, info
