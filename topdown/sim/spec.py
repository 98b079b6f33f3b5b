"""Tissue specifications: what a simulated tissue is made of, as validated dataclasses.

A :class:`TissueSpec` describes regions (geometry in micrometres, nesting, precedence),
the nucleus populations of each region, the background of each region, the imaging
set-up, the artefact ranges, the per-frame anatomical variation and an optional
pathology. It round-trips through YAML (:meth:`TissueSpec.to_yaml`,
:meth:`TissueSpec.from_yaml`); every field is validated and a bad one raises
:class:`~topdown.errors.SpecError` naming the field and the allowed values.

Geometry is given in an *anatomical frame*: micrometres, origin at the centre of the
section, ``x`` to the right, ``y`` downwards (ventral / deep), as in the image.
See :mod:`topdown.sim.geometry` for the shape primitives.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from .._modalities import MODALITIES
from ..errors import DataFileError, SpecError

TEXTURES = ("neuropil", "fibres", "fascicles", "adipose", "loose", "none")
FIBRE_ORIENTATIONS = ("none", "fixed", "random", "tangential", "radial")
ORIENTATIONS = ("random", "fixed", "fibres", "radial", "tangential")
PATTERNS = ("uniform", "clustered", "rows", "rings")
_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


# --------------------------------------------------------------------------- field kinds
def _f(kind: str, default: Any = dataclasses.MISSING, **meta: Any) -> Any:
    """A dataclass field carrying its validation rule in ``metadata``."""
    kw: dict[str, Any] = {"metadata": {"kind": kind, **meta}}
    if isinstance(default, list | dict):
        kw["default_factory"] = (lambda v=default: type(v)(v))
    elif default is not dataclasses.MISSING:
        kw["default"] = default
    return field(**kw)


def _num(value: Any, where: str, lo: float | None, hi: float | None, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SpecError(f"{where}: expected a number, got {value!r}")
    if not math.isfinite(value):
        raise SpecError(f"{where}: {value!r} is not a finite number; allowed {_bounds(lo, hi)}")
    if lo is not None and value < lo or hi is not None and value > hi:
        raise SpecError(f"{where}: {value!r} is out of range; allowed {_bounds(lo, hi)}")
    if integer:
        if int(value) != value:
            raise SpecError(f"{where}: expected an integer, got {value!r}")
        return int(value)
    return float(value)


def _bounds(lo: float | None, hi: float | None) -> str:
    return f"[{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}]"


def _range(value: Any, where: str, lo: float | None, hi: float | None) -> tuple[float, float]:
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = [value, value]
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise SpecError(f"{where}: expected a number or a range [low, high], got {value!r}")
    a = _num(value[0], where, lo, hi)
    b = _num(value[1], where, lo, hi)
    if a > b:
        raise SpecError(f"{where}: range [{a}, {b}] has low > high; give [low, high]")
    return (a, b)


def _convert(f: dataclasses.Field, value: Any, where: str) -> Any:
    m = f.metadata
    kind = m["kind"]
    if value is None and m.get("optional"):
        return None
    if kind == "float":
        return _num(value, where, m.get("lo"), m.get("hi"))
    if kind == "int":
        return _num(value, where, m.get("lo"), m.get("hi"), integer=True)
    if kind == "range":
        return _range(value, where, m.get("lo"), m.get("hi"))
    if kind == "bool":
        if not isinstance(value, bool):
            raise SpecError(f"{where}: expected true or false, got {value!r}")
        return value
    if kind in ("str", "name", "color"):
        if not isinstance(value, str):
            raise SpecError(f"{where}: expected a string, got {value!r}")
        if kind == "name" and not _NAME.match(value):
            raise SpecError(f"{where}: {value!r} is not a valid name; use letters, digits and '_' (snake_case)")
        if kind == "color" and not _HEX.match(value):
            raise SpecError(f"{where}: {value!r} is not a colour; give a hex string like '#a1b2c3'")
        return value
    if kind == "enum":
        if value not in m["choices"]:
            raise SpecError(f"{where}: {value!r} is not allowed; allowed values: {', '.join(m['choices'])}")
        return value
    if kind == "strlist":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise SpecError(f"{where}: expected a list of strings, got {value!r}")
        return list(value)
    if kind == "dataclass":
        return _from_dict(m["cls"], value, where)
    if kind == "list":
        if not isinstance(value, list):
            raise SpecError(f"{where}: expected a list, got {type(value).__name__}")
        return [_from_dict(m["cls"], v, f"{where}[{i}]") for i, v in enumerate(value)]
    if kind == "ranges":  # name -> range
        if not isinstance(value, dict):
            raise SpecError(f"{where}: expected a mapping name -> [low, high], got {value!r}")
        return {str(k): _range(v, f"{where}.{k}", None, None) for k, v in value.items()}
    if kind == "mapping":
        if not isinstance(value, dict):
            raise SpecError(f"{where}: expected a mapping, got {type(value).__name__}")
        return dict(value)
    raise AssertionError(kind)  # pragma: no cover


def _from_dict(cls: type, data: Any, where: str) -> Any:
    if isinstance(data, cls):
        return data
    if not isinstance(data, dict):
        raise SpecError(f"{where}: expected a mapping of {cls.__name__} fields, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [k for k in data if k not in fields]
    if unknown:
        raise SpecError(f"{where}: unknown key {unknown[0]!r}; allowed keys: {', '.join(fields)}")
    kwargs = {}
    for name, f in fields.items():
        sub = f"{where}.{name}" if where else name
        if name in data:
            kwargs[name] = _convert(f, data[name], sub)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise SpecError(f"{sub}: required field is missing")
    obj = cls(**kwargs)
    check = getattr(obj, "_check", None)
    if check is not None:
        check(where)
    return obj


def _to_plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: _to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, list | tuple):
        return [_to_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): _to_plain(v) for k, v in obj.items()}
    return obj


class _Spec:
    """Mixin: ``from_dict`` / ``to_dict`` for the spec dataclasses."""

    @classmethod
    def from_dict(cls, data: dict, where: str = ""):
        """Build from a plain mapping, validating every field (raises SpecError)."""
        return _from_dict(cls, data, where or cls.__name__)

    def to_dict(self) -> dict:
        """Plain, YAML/JSON-serialisable mapping (tuples become lists)."""
        return _to_plain(self)


# --------------------------------------------------------------------------- parts
@dataclass
class StainSpec(_Spec):
    """Nucleus appearance of one population (relative to a typical nucleus = 1)."""

    hematoxylin: float = _f("float", 0.85, lo=0.0, hi=2.0)
    dapi: float = _f("float", 1.0, lo=0.0, hi=2.0)
    chromatin: float = _f("float", 0.5, lo=0.0, hi=1.0)  # 0 smooth .. 1 coarse / clumped
    sd: float = _f("float", 0.1, lo=0.0, hi=1.0)  # per-nucleus relative spread


@dataclass
class PatternSpec(_Spec):
    """Spatial pattern of a population inside its region.

    ``uniform`` (Poisson), ``clustered`` (Thomas process: ``cluster_size`` nuclei within
    ``cluster_radius_um``), ``rows`` (along the medial ``line`` of a thin band, or just
    inside its ``boundary`` as an epithelial lining, ``jitter_um`` across it), ``rings`` (round objects such as glomeruli, ``object_diameter_um`` and
    ``object_fraction`` of the region area, nuclei on their rims ``ring_width_um`` wide).
    """

    type: str = _f("enum", "uniform", choices=PATTERNS)
    cluster_radius_um: float = _f("float", 15.0, lo=0.0)
    cluster_size: tuple[float, float] = _f("range", (3.0, 8.0), lo=1.0)
    jitter_um: float = _f("float", 3.0, lo=0.0)
    line: str = _f("enum", "medial", choices=("medial", "boundary"))
    object_diameter_um: tuple[float, float] = _f("range", (60.0, 120.0), lo=1.0)
    object_fraction: float = _f("float", 0.4, lo=0.0, hi=0.9)
    ring_width_um: float = _f("float", 8.0, lo=0.0)


#: nuclei per mm² of section: 3 µm nuclei packed edge to edge give ~140,000
MAX_DENSITY = 200_000.0


@dataclass
class PopulationSpec(_Spec):
    """A nucleus population of one region.

    ``density`` is areal (nuclei per mm² of section), a range sampled once per frame.
    ``diameter_um`` / ``diameter_sd_um``: lognormal nucleus diameter (geometric mean of
    the two axes). ``elongation``: major/minor axis ratio range. ``orientation``: long
    axis ``random``, ``fixed`` (``angle_deg`` ± ``angle_sd_deg``), along the region's
    ``fibres``, ``radial`` or ``tangential`` to the region boundary. ``within``: a named
    shape (or region) restricting the population to part of its region (e.g. the CA
    pyramidal cell layer inside the hippocampus).
    """

    name: str = _f("name")
    density: tuple[float, float] = _f("range", lo=0.0, hi=MAX_DENSITY)
    diameter_um: float = _f("float", 8.0, lo=0.5, hi=200.0)
    diameter_sd_um: float = _f("float", 1.0, lo=0.0, hi=100.0)
    elongation: tuple[float, float] = _f("range", (1.0, 1.3), lo=1.0, hi=20.0)
    orientation: str = _f("enum", "random", choices=ORIENTATIONS)
    angle_deg: float = _f("float", 0.0, lo=-360.0, hi=360.0)
    angle_sd_deg: float = _f("float", 15.0, lo=0.0, hi=180.0)
    within: str | None = _f("name", None, optional=True)
    pattern: PatternSpec = _f("dataclass", cls=PatternSpec, default=None)
    stain: StainSpec = _f("dataclass", cls=StainSpec, default=None)

    def __post_init__(self) -> None:
        if self.pattern is None:
            self.pattern = PatternSpec()
        if self.stain is None:
            self.stain = StainSpec()


@dataclass
class BackgroundSpec(_Spec):
    """Appearance of a region between nuclei (goes to ``Section.region_style``).

    ``texture``: ``neuropil`` (grey matter), ``fibres`` (myelinated tracts, along
    ``fibre_orientation``), ``fascicles`` (grey matter crossed by pale myelinated bundles cut
    across, e.g. the striatum's pencil fibres; the bundles hold no nuclei), ``adipose``,
    ``loose`` (connective tissue) or ``none``. ``tissue: false`` marks a labelled hole
    (ventricle, central canal): no stain.
    """

    eosin: tuple[float, float] = _f("range", (0.4, 0.6), lo=0.0, hi=1.0)
    texture: str = _f("enum", "neuropil", choices=TEXTURES)
    fibre_orientation: str = _f("enum", "none", choices=FIBRE_ORIENTATIONS)
    fibre_angle_deg: float = _f("float", 0.0, lo=-360.0, hi=360.0)
    autofluorescence: float = _f("float", 0.05, lo=0.0, hi=1.0)
    tissue: bool = _f("bool", True)


@dataclass
class RegionSpec(_Spec):
    """One labelled region: geometry, nesting, background, nucleus populations.

    ``geometry`` is a shape description (see :mod:`topdown.sim.geometry`). ``parent``
    clips the region to another region or named shape. Where regions overlap, the one
    with the higher precedence wins: ``priority`` if given, else nesting depth (children
    over parents), then order in the list (later wins).
    """

    name: str = _f("name")
    geometry: dict = _f("mapping")
    color: str = _f("color", "#808080")
    parent: str | None = _f("name", None, optional=True)
    priority: int | None = _f("int", None, optional=True)
    background: BackgroundSpec = _f("dataclass", cls=BackgroundSpec, default=None)
    populations: list[PopulationSpec] = _f("list", [], cls=PopulationSpec)
    description: str = _f("str", "")

    def __post_init__(self) -> None:
        if self.background is None:
            self.background = BackgroundSpec()

    def _check(self, where: str) -> None:
        names = [p.name for p in self.populations]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise SpecError(f"{where}.populations: duplicate population name {sorted(dup)[0]!r}; names must be unique")


@dataclass
class ImagingSpec(_Spec):
    """Imaging set-up: modality, nominal (training) pixel size, frame size, section thickness."""

    modality: str = _f("enum", "he", choices=MODALITIES)
    pixel_size_um: float = _f("float", 20.0, lo=0.05, hi=1000.0)
    size: int = _f("int", 256, lo=16, hi=16384)
    thickness_um: float = _f("float", 10.0, lo=0.5, hi=100.0)


@dataclass
class ArtefactSpec(_Spec):
    """Artefact ranges ``(low, high)`` sampled per frame. Tears/folds are geometric (layout)."""

    noise: tuple[float, float] = _f("range", (0.0, 0.08), lo=0.0, hi=0.95)
    blur_px: tuple[float, float] = _f("range", (0.0, 1.0), lo=0.0, hi=50.0)
    vignetting: tuple[float, float] = _f("range", (0.0, 0.2), lo=0.0, hi=1.0)
    illumination: tuple[float, float] = _f("range", (0.0, 0.2), lo=0.0, hi=1.0)
    stain_shift: tuple[float, float] = _f("range", (0.0, 0.15), lo=0.0, hi=1.0)
    debris: tuple[float, float] = _f("range", (0.0, 4.0), lo=0.0, hi=1000.0)
    bubbles: tuple[float, float] = _f("range", (0.0, 1.0), lo=0.0, hi=100.0)
    tears: tuple[float, float] = _f("range", (0.0, 1.0), lo=0.0, hi=20.0)
    folds: tuple[float, float] = _f("range", (0.0, 1.0), lo=0.0, hi=10.0)
    jpeg_quality: tuple[float, float] = _f("range", (60.0, 100.0), lo=1.0, hi=100.0)
    fiducial_frame: tuple[float, float] = _f("range", (0.0, 0.0), lo=0.0, hi=1.0)


@dataclass
class VariationSpec(_Spec):
    """Per-frame anatomical and framing variation.

    ``scale`` (isotropic factor), ``rotation_deg``, ``asymmetry`` (left/right scale
    difference), ``warp_um`` / ``warp_wavelength_um`` (smooth elastic warp), ``flip``
    (probability of a left-right mirror), ``whole`` (probability the field of view is
    centred on the section rather than a random crop centre), ``edge_cut`` (probability
    of a straight capture-area edge cutting the section), ``hemisection`` (probability of
    keeping one half), ``pixel_size_jitter`` (relative, e.g. 0.2 = ±20 %), ``variables``
    (named ranges sampled per frame, used by geometry ``{lerp: [a, b], var: name}``),
    ``focus`` (regions or shapes inside which crop centres are drawn; default the tissue).
    """

    scale: tuple[float, float] = _f("range", (0.9, 1.1), lo=0.05, hi=20.0)
    rotation_deg: tuple[float, float] = _f("range", (-10.0, 10.0), lo=-360.0, hi=360.0)
    asymmetry: tuple[float, float] = _f("range", (0.0, 0.05), lo=0.0, hi=0.5)
    warp_um: tuple[float, float] = _f("range", (0.0, 100.0), lo=0.0)
    warp_wavelength_um: tuple[float, float] = _f("range", (1500.0, 4000.0), lo=1.0)
    flip: float = _f("float", 0.5, lo=0.0, hi=1.0)
    whole: float = _f("float", 0.5, lo=0.0, hi=1.0)
    edge_cut: float = _f("float", 0.15, lo=0.0, hi=1.0)
    hemisection: float = _f("float", 0.0, lo=0.0, hi=1.0)
    pixel_size_jitter: float = _f("float", 0.2, lo=0.0, hi=0.9)
    variables: dict = _f("ranges", {})
    focus: list[str] = _f("strlist", [])


@dataclass
class CellLossSpec(_Spec):
    """Lose ``fraction`` of the nuclei of ``region`` (optionally only some populations)."""

    region: str = _f("name")
    fraction: tuple[float, float] = _f("range", (0.5, 0.5), lo=0.0, hi=1.0)
    populations: list[str] = _f("strlist", [])


@dataclass
class LesionSpec(_Spec):
    """A round lesion centred in ``region``: fewer nuclei, altered eosin."""

    region: str = _f("name")
    radius_um: tuple[float, float] = _f("range", (300.0, 600.0), lo=1.0)
    density_factor: float = _f("float", 0.3, lo=0.0, hi=10.0)
    eosin_factor: float = _f("float", 1.3, lo=0.0, hi=10.0)


@dataclass
class PathologySpec(_Spec):
    """Changes applied by ``layout(..., condition="pathological")``."""

    cell_loss: CellLossSpec | None = _f("dataclass", None, cls=CellLossSpec, optional=True)
    lesion: LesionSpec | None = _f("dataclass", None, cls=LesionSpec, optional=True)
    description: str = _f("str", "")


@dataclass
class LayersSpec(_Spec):
    """The laminar order of a layered tissue: a prior that inference can enforce.

    Layers run from the outer surface (``order[0]``) to the deepest layer (``order[-1]``),
    and each touches only its neighbours in ``order``. Segmentation reads the deepest layer
    (with ``core``) and, unless ``surface`` is ``"outside"``, the outermost layer off the
    network and assigns the layers between them by laminar depth, in proportion to
    ``thickness_um`` (see :func:`topdown.seg.apply_layer_prior`).

    Attributes
    ----------
    order
        Region names from the outer surface inwards; the last one is the core anchor.
    core
        Further regions that lie inside the deepest layer (e.g. the bulb's migratory
        stream); they count as core and keep the network's call.
    surface
        What bounds the outermost layer: ``"outside"`` (the tissue edge; then ``order[0]``
        is assigned by depth too) or ``order[0]`` itself (a surface layer the network finds,
        e.g. cortical layer 1 along the pia, so that cut edges are not taken for a surface).
    thickness_um
        Mean thickness in micrometres of every layer assigned by depth: those between the
        anchors (and ``order[0]`` when ``surface`` is ``"outside"``).
    min_core_depth
        Core the network finds nearer the surface than this share of the summed
        ``thickness_um`` contradicts the order and is refused (0-1, default 0.5). How far a
        tissue's layers may thin below their mean: a whole-section tissue whose size varies
        (the bulb) keeps 0.5; the cortex, whose white matter lies under all six layers, is stricter.
    surface_margin_um
        With a surface layer (``surface: order[0]``): how far, in micrometres, that layer
        continues inside the network's call of it, assigned by depth like the others
        (default 0: it ends where the network's call ends).
    """

    order: list[str] = _f("strlist")
    core: list[str] = _f("strlist", [])
    surface: str = _f("name", "outside")
    thickness_um: dict = _f("mapping", {})
    min_core_depth: float = _f("float", 0.5, lo=0.0, hi=1.0)
    surface_margin_um: float = _f("float", 0.0, lo=0.0, hi=1e5)

    @property
    def depth_layers(self) -> list[str]:
        """The layers assigned by laminar depth, outermost first."""
        return self.order[:-1] if self.surface == "outside" else self.order[1:-1]

    def _check(self, where: str) -> None:
        if len(self.order) < 2 or len(set(self.order)) != len(self.order):
            raise SpecError(f"{where}.order: give at least two distinct region names, outer surface first")
        if self.surface not in ("outside", self.order[0]):
            raise SpecError(f"{where}.surface: {self.surface!r} is not allowed; give 'outside' (the tissue edge) "
                            f"or the outermost layer {self.order[0]!r}")
        wanted = self.depth_layers
        if sorted(self.thickness_um) != sorted(wanted):
            raise SpecError(f"{where}.thickness_um: give the mean thickness of exactly {', '.join(wanted)} "
                            f"(the layers assigned by depth); got {', '.join(map(str, self.thickness_um)) or 'none'}")
        for name, value in self.thickness_um.items():
            self.thickness_um[name] = _num(value, f"{where}.thickness_um.{name}", 1e-3, 1e6)
        if self.surface_margin_um and self.surface == "outside":
            raise SpecError(f"{where}.surface_margin_um: needs a surface layer (surface: {self.order[0]!r}); "
                            f"with surface: outside every outer layer is assigned by depth already")


# --------------------------------------------------------------------------- tissue spec
@dataclass
class TissueSpec(_Spec):
    """A simulated tissue: regions, populations, imaging, artefacts, variation, sources.

    Attributes
    ----------
    name, description
        Identifier and free text.
    sources
        Published sources of proportions, layer thicknesses, densities and nucleus sizes.
    shapes
        Named helper shapes (not labelled), e.g. the brain outline, usable as ``parent``
        or ``{ref: name}`` in region geometry.
    regions
        Labelled regions, in label order (label ``k`` = ``regions[k - 1]``).

    Examples
    --------
    >>> import topdown as td
    >>> spec = td.sim.load_preset("spinal_cord")
    >>> spec.classes[:2]
    ['white_matter', 'dorsal_horn']
    >>> td.sim.TissueSpec.from_dict(spec.to_dict()) == spec
    True
    """

    name: str = _f("name")
    regions: list[RegionSpec] = _f("list", cls=RegionSpec)
    description: str = _f("str", "")
    sources: list[str] = _f("strlist", [])
    shapes: dict = _f("mapping", {})
    imaging: ImagingSpec = _f("dataclass", cls=ImagingSpec, default=None)
    artefacts: ArtefactSpec = _f("dataclass", cls=ArtefactSpec, default=None)
    variation: VariationSpec = _f("dataclass", cls=VariationSpec, default=None)
    pathology: PathologySpec | None = _f("dataclass", None, cls=PathologySpec, optional=True)
    layers: LayersSpec | None = _f("dataclass", None, cls=LayersSpec, optional=True)

    def __post_init__(self) -> None:
        for name, cls in (("imaging", ImagingSpec), ("artefacts", ArtefactSpec),
                          ("variation", VariationSpec)):
            if getattr(self, name) is None:
                setattr(self, name, cls())

    # -- derived ------------------------------------------------------------------------
    @property
    def classes(self) -> list[str]:
        """Region names in label order (label ``k`` = ``classes[k - 1]``; 0 = outside)."""
        return [r.name for r in self.regions]

    @property
    def colors(self) -> dict[str, str]:
        """Region name -> hex colour."""
        return {r.name: r.color for r in self.regions}

    def region(self, name: str) -> RegionSpec:
        """The :class:`RegionSpec` called ``name`` (SpecError listing the names if absent)."""
        for r in self.regions:
            if r.name == name:
                return r
        raise SpecError(f"unknown region {name!r}; regions: {', '.join(self.classes)}")

    # -- validation across fields ---------------------------------------------------------
    def _check(self, where: str) -> None:
        from .geometry import validate_geometry

        if not self.regions:
            raise SpecError("regions: at least one region is required")
        names = self.classes
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise SpecError(f"regions: duplicate region name {sorted(dup)[0]!r}; names must be unique")
        if len(names) > 254:
            raise SpecError("regions: at most 254 regions fit in a uint8 mask")
        clash = set(self.shapes) & set(names)
        if clash:
            raise SpecError(f"shapes: {sorted(clash)[0]!r} is also a region name; rename the shape")
        for s in self.shapes:
            if not isinstance(s, str) or not _NAME.match(s):
                raise SpecError(f"shapes: {s!r} is not a valid name; use letters, digits and '_'")
        known = list(names) + list(self.shapes)
        variables = list(self.variation.variables)
        graph: dict[str, set[str]] = {}
        for name, geom in self.shapes.items():
            graph[name] = validate_geometry(geom, f"shapes.{name}", known, variables)
        for i, r in enumerate(self.regions):
            deps = validate_geometry(r.geometry, f"regions[{i}].geometry ({r.name})", known, variables)
            if r.parent is not None:
                if r.parent not in known:
                    raise SpecError(f"regions[{i}].parent ({r.name}): unknown {r.parent!r}; "
                                    f"allowed: {', '.join(known)}")
                if r.parent == r.name:
                    raise SpecError(f"regions[{i}].parent ({r.name}): a region cannot be its own parent")
                deps = deps | {r.parent}
            graph[r.name] = deps
            for j, p in enumerate(r.populations):
                if p.within is not None and p.within not in known:
                    raise SpecError(f"regions[{i}].populations[{j}].within ({p.name}): unknown "
                                    f"{p.within!r}; allowed: {', '.join(known)}")
        _check_acyclic(graph)
        stains: dict[str, StainSpec] = {}
        for i, r in enumerate(self.regions):
            for j, p in enumerate(r.populations):
                if stains.setdefault(p.name, p.stain) != p.stain:
                    raise SpecError(f"regions[{i}].populations[{j}].stain ({p.name}): differs from another "
                                    f"population named {p.name!r}; give it the same stain or another name")
        for j, name in enumerate(self.variation.focus):
            if name not in known:
                raise SpecError(f"variation.focus[{j}]: unknown {name!r}; allowed: {', '.join(known)}")
        if self.layers is not None:
            for name in [*self.layers.order, *self.layers.core]:
                if name not in names:
                    raise SpecError(f"layers: unknown region {name!r}; allowed: {', '.join(names)}")
        if self.pathology is not None:
            for key in ("cell_loss", "lesion"):
                part = getattr(self.pathology, key)
                if part is not None and part.region not in names:
                    raise SpecError(f"pathology.{key}.region: unknown {part.region!r}; "
                                    f"allowed: {', '.join(names)}")

    def validate(self) -> TissueSpec:
        """Re-run all checks (after editing fields in Python); returns ``self``."""
        return TissueSpec.from_dict(self.to_dict())

    # -- YAML -------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Plain, YAML/JSON-serialisable mapping; ``layers`` only when the spec declares it."""
        data = _to_plain(self)
        if data.get("layers") is None:
            data.pop("layers", None)
        return data

    def to_yaml(self, path: str | os.PathLike | None = None) -> str:
        """Canonical YAML text; also written atomically to ``path`` when given.

        Examples
        --------
        >>> import topdown as td
        >>> text = td.sim.load_preset("sciatic_nerve").to_yaml()
        >>> td.sim.TissueSpec.from_yaml_text(text).name
        'sciatic_nerve'
        """
        text = yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None,
                              allow_unicode=True, width=100)
        if path is not None:
            from .._files import atomic_write_text, output_file

            atomic_write_text(output_file(path), text)
        return text

    @classmethod
    def from_yaml_text(cls, text: str, source: str = "<string>") -> TissueSpec:
        """Parse and validate YAML text (SpecError / DataFileError on problems)."""
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise SpecError(f"{source}: malformed YAML{at} ({getattr(exc, 'problem', exc)}); "
                            f"fix the syntax (indentation, colons, brackets)") from None
        if not isinstance(data, dict):
            raise SpecError(f"{source}: a tissue spec must be a YAML mapping with keys "
                            f"{', '.join(f.name for f in dataclasses.fields(cls))}")
        return cls.from_dict(data)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> TissueSpec:
        """Read and validate a spec YAML file.

        Examples
        --------
        >>> import topdown as td
        >>> spec = td.sim.TissueSpec.from_yaml("my_tissue.yaml")  # doctest: +SKIP
        """
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except FileNotFoundError:
            raise DataFileError(f"spec file '{path}' does not exist; check the path") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise DataFileError(f"cannot read spec file '{path}' ({exc}); give a UTF-8 YAML file") from None
        return cls.from_yaml_text(text, source=str(path))

    @classmethod
    def from_dict(cls, data: dict, where: str = "") -> TissueSpec:
        """Build and validate from a plain mapping (e.g. parsed YAML)."""
        return _from_dict(cls, data, where)

    def hash(self) -> str:
        """sha256 hex digest of the canonical YAML (identifies the spec in models/datasets).

        ``layers`` is left out: it is a prior for inference and changes no simulated image.
        """
        data = self.to_dict()
        data.pop("layers", None)
        text = yaml.safe_dump(data, sort_keys=False, default_flow_style=None, allow_unicode=True, width=100)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _check_acyclic(graph: dict[str, set[str]]) -> None:
    state: dict[str, int] = {}

    def visit(n: str, stack: list[str]) -> None:
        if state.get(n) == 2:
            return
        if state.get(n) == 1:
            cyc = " -> ".join(stack[stack.index(n):] + [n])
            raise SpecError(f"geometry: circular reference {cyc}; a shape cannot depend on itself")
        state[n] = 1
        for d in sorted(graph.get(n, ())):
            visit(d, stack + [n])
        state[n] = 2

    for n in graph:
        visit(n, [])
