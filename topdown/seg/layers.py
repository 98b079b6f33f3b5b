"""A layer prior: enforce a preset's laminar order on a segmentation, and report where it disagrees.

A network trained on simulations transfers its strongest, most texture-independent calls
to real sections (the dark granule-cell core of the olfactory bulb; the white matter
under the cortex) better than the thin layers between them, which it reads off texture.
For layered tissue the preset declares the order of the layers and their mean
thicknesses (:class:`~topdown.sim.spec.LayersSpec`). :func:`apply_layer_prior` keeps the
network's anchors, measures a *laminar depth* for every other tissue pixel,

    depth = d(surface) / (d(surface) + d(core))      (0 at the surface, 1 at the core),

and reads the layer off the preset's relative thicknesses. The surface is the tissue
edge (``surface: outside``), or the outermost layer as the network finds it (cortical
layer 1 along the pia, so that cut edges are not taken for a surface; it may continue
``surface_margin_um`` past the network's call, as a band assigned by depth). With the
network's probabilities, a pixel near a boundary between two layers takes the one the
network prefers (boundaries ``softness`` wide in depth). Where two core
anchors lie at least one laminar thickness apart (the two olfactory bulbs of a coronal
section, which touch without glass between them), the line halfway between them is a
surface too.

Core anchors are cleaned with the prior: specks under ``min_area_um2`` go, and so does
core closer to the surface than a share of the summed thickness of the layers above it
(``min_core_depth``: half by default, three quarters for the cortex; the network calling
outer layers "core" there contradicts the order). Further core regions (``core``: the
bulb's rostral migratory stream) lie along the core's axis: where the network calls one in
the outer half of the core (:data:`CORE_EXTRA_MIN_DEPTH`, depth measured from the core's
edge relative to its deepest point), it becomes the core layer. The report says how
much of the tissue the prior relabelled, per region of the network's map: large values
flag sections where the image and the prior disagree.

Maps to be read at a spot's scale (``spot_diameter_um``: Visium, Spatial Transcriptomics)
draw a layer too thin to cover half of any spot (the bulb's 30 µm mitral cell layer under
100 µm ST spots) as the spots see it: widened by the spot's radius on each side, never into
the anchors, so that a spot whose disc reaches the layer takes it, as spot-level annotation
labels thin layers. Without it, such a layer is the majority of no spot, holds almost no spot
centre and drops out of spot-level analysis. The anatomical map is the default.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi

#: smallest core or surface anchor kept, in µm² (a 450 µm disk); smaller ones are specks
MIN_ANCHOR_AREA_UM2 = 2e5
#: core closer to the surface than this share of the summed layer thickness is refused
#: (the default of :attr:`LayerPrior.min_core_depth`)
MIN_CORE_DEPTH = 0.5
#: further core regions (``LayerPrior.core``) whose median depth inside the core, relative to
#: the deepest point of their core component, is under this share become the core layer: the
#: rostral migratory stream runs along the bulb's axis, not along its granule layer's edge
CORE_EXTRA_MIN_DEPTH = 0.5
#: width of a layer boundary in laminar depth when the network's probabilities are fused
#: with depth (the default of :attr:`LayerPrior.softness`)
SOFTNESS = 0.02


@dataclass(frozen=True)
class LayerPrior:
    """The laminar order of a tissue, as inference uses it.

    Build it from a spec with :meth:`from_spec` or for a model with :meth:`for_model`.

    Attributes
    ----------
    order
        Region names, outer surface first, the deepest (core) layer last.
    core
        Further regions inside the core that keep the network's call.
    surface
        ``"outside"`` or ``order[0]`` (see :class:`~topdown.sim.spec.LayersSpec`).
    thickness_um
        Mean thickness of each layer assigned by depth, outermost first.
    min_core_depth
        Core nearer the surface than this share of the summed thickness is refused.
    surface_margin_um
        How far the surface layer (``surface`` other than ``"outside"``) continues inside
        the network's call of it, assigned by depth like the others.
    softness
        Width, in laminar depth, of the boundaries between layers assigned by depth when
        the network's probabilities are given: near a boundary the network's call decides,
        far from it the depth does (``0``: depth alone).
    spot_diameter_um
        Draw the map at the scale of spots this wide (``0``, the default: the anatomical map).
        Each layer assigned by depth that is too thin to cover half of any spot
        (:attr:`spot_scale_layers`) is widened by the spot's radius on each side over its
        neighbours assigned by depth, never over the anchors (core, surface layer, glass): a
        spot whose disc reaches the layer takes it. Use it to assign spots, not to measure areas.

    Examples
    --------
    >>> import topdown as td
    >>> prior = td.seg.LayerPrior.from_spec(td.sim.load_preset("olfactory_bulb"))
    >>> prior.depth_layers[0], prior.total_um
    ('olfactory_nerve_layer', 395.0)
    """

    order: tuple[str, ...]
    core: tuple[str, ...] = ()
    surface: str = "outside"
    thickness_um: dict[str, float] = field(default_factory=dict)
    min_core_depth: float = MIN_CORE_DEPTH
    surface_margin_um: float = 0.0
    softness: float = SOFTNESS
    spot_diameter_um: float = 0.0

    def __post_init__(self) -> None:
        from ..errors import InputError

        if not 0.0 <= float(self.min_core_depth) <= 1.0:
            raise InputError(f"min_core_depth must lie in [0, 1] (a share of the summed layer thickness), "
                             f"got {self.min_core_depth!r}")
        if float(self.surface_margin_um) < 0 or (self.surface_margin_um and self.surface == "outside"):
            raise InputError(f"surface_margin_um must be >= 0 and needs a surface layer (surface='{self.order[0]}'), "
                             f"got {self.surface_margin_um!r} with surface={self.surface!r}")
        if not 0.0 <= float(self.softness) <= 0.5:
            raise InputError(f"softness must lie in [0, 0.5] (a width in laminar depth; 0: depth alone), "
                             f"got {self.softness!r}")
        if not np.isfinite(float(self.spot_diameter_um)) or float(self.spot_diameter_um) < 0:
            raise InputError(f"spot_diameter_um must be a finite number of µm >= 0 (0: the anatomical map), "
                             f"got {self.spot_diameter_um!r}")

    @classmethod
    def from_spec(cls, spec) -> LayerPrior | None:
        """The prior a :class:`~topdown.sim.TissueSpec` declares (``None`` without ``layers``)."""
        layers = getattr(spec, "layers", None)
        if layers is None:
            return None
        return cls(order=tuple(layers.order), core=tuple(layers.core), surface=layers.surface,
                   thickness_um={k: float(layers.thickness_um[k]) for k in layers.depth_layers},
                   min_core_depth=float(layers.min_core_depth), surface_margin_um=float(layers.surface_margin_um))

    @classmethod
    def for_model(cls, model) -> LayerPrior | None:
        """The prior of the preset a model was trained on, if its classes match it; else ``None``."""
        from ..errors import SpecError
        from ..sim import load_preset

        name = str(getattr(model, "name", "") or "").split("+")[0]  # 'olfactory_bulb+pseudo_label': adapted
        name = name.removesuffix(f"_{getattr(model, 'modality', '')}")
        try:
            spec = load_preset(name)
        except (SpecError, ValueError, KeyError, FileNotFoundError):
            return None
        if tuple(spec.classes) != tuple(model.classes):
            return None
        return cls.from_spec(spec)

    @classmethod
    def resolve(cls, layer_prior, model) -> LayerPrior | None:
        """A ``layer_prior`` argument as the prior to apply to ``model`` (``None``: none).

        ``"auto"``: the prior of the model's preset (:meth:`for_model`); a
        :class:`LayerPrior`: itself, checked against the model's classes; ``None`` or
        ``False``: no prior. Anything else raises :class:`~topdown.errors.InputError`.
        """
        from ..errors import InputError

        if layer_prior is None or layer_prior is False:
            return None
        if isinstance(layer_prior, cls):
            layer_prior.check_classes(model.classes)
            return layer_prior
        if isinstance(layer_prior, str):
            if layer_prior != "auto":
                raise InputError(f"layer_prior={layer_prior!r} is not allowed; give 'auto', None or a td.seg.LayerPrior")
            return cls.for_model(model)
        raise InputError(f"layer_prior must be 'auto', None or a td.seg.LayerPrior, got {type(layer_prior).__name__}")

    @property
    def depth_layers(self) -> list[str]:
        """The layers assigned by depth, outermost first."""
        return list(self.thickness_um)

    @property
    def depth_bands(self) -> dict[str, float]:
        """Thickness in µm of each band assigned by depth, outermost first: the surface
        layer's margin (when set), then :attr:`thickness_um`."""
        margin = {self.surface: float(self.surface_margin_um)} if self.surface_margin_um > 0 else {}
        return {**margin, **self.thickness_um}

    @property
    def spot_scale_layers(self) -> list[str]:
        """The layers assigned by depth that cannot cover half of a spot of :attr:`spot_diameter_um`
        (:func:`band_share_of_disc` through the spot's centre under 0.5), outermost first.

        >>> import topdown as td
        >>> prior = td.seg.LayerPrior.from_spec(td.sim.load_preset("olfactory_bulb"))
        >>> import dataclasses; dataclasses.replace(prior, spot_diameter_um=100.0).spot_scale_layers
        ['mitral_cell_layer']
        """
        if self.spot_diameter_um <= 0:
            return []
        radius = float(self.spot_diameter_um) / 2
        return [n for n, t in self.thickness_um.items() if band_share_of_disc(t, radius) < 0.5]

    @property
    def total_um(self) -> float:
        """Summed thickness of the layers assigned by depth."""
        return float(sum(self.thickness_um.values()))

    def check_classes(self, classes) -> None:
        """Raise :class:`~topdown.errors.InputError` when a prior region is not among ``classes``."""
        from ..errors import InputError

        missing = [n for n in (*self.order, *self.core) if n not in classes]
        if missing:
            raise InputError(f"the layer prior names {', '.join(missing)}, which the model does not have "
                             f"(classes: {', '.join(classes)}); pass a prior for this model or layer_prior=None.")


def band_share_of_disc(width: float, radius: float) -> float:
    """The share of a disc of ``radius`` covered by a straight band of ``width`` through its centre.

    The most of a spot a layer of that thickness can cover: under 0.5 (``width`` < 0.81
    ``radius``), the layer is the majority of no spot.

    >>> round(band_share_of_disc(30.0, 50.0), 3), round(band_share_of_disc(80.0, 50.0), 3)
    (0.376, 0.896)
    """
    x = min(float(width) / (2 * float(radius)), 1.0)
    return float(2 / np.pi * (np.arcsin(x) + x * np.sqrt(1 - x * x)))


def _large_components(mask: np.ndarray, min_px: float) -> np.ndarray:
    """``mask`` without its connected components under ``min_px`` pixels."""
    comp, n = ndi.label(mask)
    if n == 0:
        return mask
    sizes = np.asarray(ndi.sum(mask, comp, range(1, n + 1)))
    return np.concatenate([[False], sizes >= min_px])[comp]


def _clean(mask: np.ndarray, min_px: float) -> np.ndarray:
    """Open, drop components under ``min_px`` pixels, fill holes."""
    return ndi.binary_fill_holes(_large_components(ndi.binary_opening(mask, iterations=1), min_px))


def _glass(labels: np.ndarray, min_px: float) -> np.ndarray:
    """Glass that can bound a section: ``outside`` without specks, slivers and pockets under
    ``min_px`` pixels (a network's pale-tissue misses are not the tissue surface)."""
    return _large_components(ndi.binary_opening(labels == 0, iterations=2), min_px)


def _core(labels: np.ndarray, tissue: np.ndarray, core_ids: list[int], d_surface_um: np.ndarray,
          min_depth_um: float, min_px: float) -> np.ndarray:
    """Core anchor: the network's core classes, cleaned and kept ``min_depth_um`` from the surface."""
    core = _clean(np.isin(labels, core_ids) & tissue, min_px)
    comp, n = ndi.label(core)
    if n:
        deep = np.asarray(ndi.median(d_surface_um, comp, range(1, n + 1))) >= min_depth_um
        core = np.concatenate([[False], deep])[comp]
    return _clean(core & (d_surface_um >= min_depth_um), min_px)


def _off_axis_extras(labels: np.ndarray, core: np.ndarray, extra_ids: list[int]) -> np.ndarray:
    """Pixels of further core regions whose components lie in the outer part of the core
    (median relative core depth under :data:`CORE_EXTRA_MIN_DEPTH`)."""
    extras = np.isin(labels, extra_ids) & core
    if not extras.any():
        return extras
    d_inside = ndi.distance_transform_edt(core)
    comp, n = ndi.label(core)
    deepest = np.concatenate([[1.0], np.asarray(ndi.maximum(d_inside, comp, range(1, n + 1)))])
    relative = d_inside / np.maximum(deepest[comp], 1.0)
    blobs, m = ndi.label(extras)
    shallow = np.asarray(ndi.median(relative, blobs, range(1, m + 1))) < CORE_EXTRA_MIN_DEPTH
    return np.concatenate([[False], shallow])[blobs]


def _away_from_core(surface: np.ndarray, core_calls: np.ndarray, min_depth_um: float, pixel_size_um: float,
                    min_px: float) -> np.ndarray:
    """``surface`` without its components whose median distance to the network's (cleaned)
    core calls is under ``min_depth_um``: a surface layer beside the core contradicts the order."""
    core = _clean(core_calls, min_px)
    if not core.any():
        return surface
    d_core_um = ndi.distance_transform_edt(~core) * pixel_size_um
    comp, n = ndi.label(surface)
    far = np.asarray(ndi.median(d_core_um, comp, range(1, n + 1))) >= min_depth_um
    return np.concatenate([[False], far])[comp]


def _midlines(core: np.ndarray, d_core_um: np.ndarray, nearest: np.ndarray, total_um: float) -> np.ndarray:
    """Pixels halfway between two core components at least ``total_um`` apart."""
    comp, _ = ndi.label(core)
    owner = comp[nearest[0], nearest[1]]
    ridge = np.zeros_like(core)
    ridge[:, 1:] |= owner[:, 1:] != owner[:, :-1]
    ridge[1:, :] |= owner[1:, :] != owner[:-1, :]
    return ridge & (d_core_um >= 0.5 * total_um)


def laminar_depth(tissue: np.ndarray, core: np.ndarray, surface: np.ndarray, pixel_size_um: float,
                  total_um: float) -> np.ndarray:
    """Laminar depth in [0, 1] of every pixel: 0 on the surface, 1 on the core.

    ``surface`` marks surface pixels (glass, or the outer anchor) and ``core`` the core
    anchor; the midline between two core components at least ``total_um`` apart counts as
    surface. Pixels off the tissue are 0.
    """
    d_core, nearest = ndi.distance_transform_edt(~core, return_indices=True)
    d_core_um = d_core * pixel_size_um
    surface = surface | _midlines(core, d_core_um, nearest, total_um)
    d_surface = ndi.distance_transform_edt(~surface)
    depth = d_surface / np.maximum(d_surface + d_core, 1e-6)
    depth[core] = 1.0
    depth[~tissue] = 0.0
    return depth


def _skipped(reason: str) -> dict:
    return {"applied": False, "reason": reason}


def apply_layer_prior(labels: np.ndarray, classes, prior: LayerPrior,
                      pixel_size_um: float, probabilities: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """Enforce ``prior`` on a label map; returns the new labels and a report.

    Parameters
    ----------
    labels
        ``(H, W)`` label map (0 outside, ``k`` = ``classes[k - 1]``), e.g. ``RegionMap.labels``.
    classes
        Region names of the labels.
    prior
        The laminar order (:class:`LayerPrior`).
    pixel_size_um
        Micrometres per pixel of ``labels``.
    probabilities
        The network's ``(len(classes) + 1, H, W)`` region probabilities (outside first), as
        ``RegionMap.probabilities``. With them, a pixel's layer is the one most probable
        under both its depth (a band between the layer's relative thicknesses, with sides
        ``prior.softness`` wide) and the network; without them, depth alone decides.

    Returns
    -------
    labels
        A new label map: outside and the anchors as the network called them, every other
        tissue pixel the layer its laminar depth falls in.
    report
        ``applied`` (False with a ``reason`` when no core anchor was found: the labels are
        returned unchanged), ``changed_fraction`` (tissue pixels relabelled),
        ``changed_by_region`` (per region of the network's map, the share of its pixels
        relabelled: where the image contradicts the prior), ``core_fraction``,
        ``unseen_fraction`` (tissue nearer the image edge than any surface: a crop whose surface
        may lie beyond the image; the network's call is kept there), ``surface_refused_near_core``
        (True when no core lay deep enough under the surface layer's calls, and the calls
        nearer the core than ``min_core_depth`` were dropped instead).

    Examples
    --------
    >>> import numpy as np, topdown as td
    >>> prior = td.seg.LayerPrior(order=("outer", "inner"), thickness_um={"outer": 100.0})
    >>> labels = np.zeros((160, 160), np.uint8); labels[20:140, 20:140] = 1; labels[55:105, 55:105] = 2
    >>> new, report = td.seg.apply_layer_prior(labels, ["outer", "inner"], prior, pixel_size_um=10.0)
    >>> report["applied"], int(new[80, 80]), int(new[25, 80])
    (True, 2, 1)
    """
    classes = list(classes)
    prior.check_classes(classes)
    ids = {name: classes.index(name) + 1 for name in classes}
    min_px = MIN_ANCHOR_AREA_UM2 / pixel_size_um ** 2
    tissue = ~_glass(labels, min_px)
    if not tissue.any():
        return labels, _skipped("no tissue")
    if prior.surface == "outside":
        surface = ~tissue
        if not surface.any():
            return labels, _skipped("no glass in view: the section's surface lies outside the image")
    else:  # the outer layer as the network finds it; glass along cut edges is no surface
        surface = _clean((labels == ids[prior.surface]) & tissue, min_px)
        if not surface.any():
            return labels, _skipped(f"no {prior.surface} found to mark the surface")
    d_surface_um = ndi.distance_transform_edt(~surface) * pixel_size_um
    core_ids = [ids[n] for n in (prior.order[-1], *prior.core)]
    min_depth_um = prior.min_core_depth * prior.total_um
    core = _core(labels, tissue, core_ids, d_surface_um, min_depth_um, min_px)
    refused_surface = False
    if not core.any() and prior.surface != "outside":
        # all the core lies near the surface layer: then it is the surface layer's calls beside
        # the core (layer 1 along the cut edges by the white matter) that contradict the order
        kept = _away_from_core(surface, np.isin(labels, core_ids) & tissue, min_depth_um, pixel_size_um, min_px)
        if kept.any() and not np.array_equal(kept, surface):
            surface, refused_surface = kept, True
            d_surface_um = ndi.distance_transform_edt(~surface) * pixel_size_um
            core = _core(labels, tissue, core_ids, d_surface_um, min_depth_um, min_px)
    if not core.any():
        return labels, _skipped(f"no {prior.order[-1]} found deep enough to anchor the layers")
    bands = prior.depth_bands
    bands_um = sum(bands.values())
    depth = laminar_depth(tissue, core, surface, pixel_size_um, bands_um)
    edges = np.cumsum(list(bands.values())) / bands_um
    layer_ids = np.array([ids[n] for n in bands], dtype=labels.dtype)
    if probabilities is not None and prior.softness > 0:
        new = layer_ids[_depth_and_network(depth, probabilities, layer_ids, edges, prior.softness)]
    else:
        new = layer_ids[np.searchsorted(edges[:-1], depth, side="right")]
    unseen = np.zeros_like(tissue)
    if prior.surface == "outside":  # glass bounds the layers: a crop may hide it
        unseen = tissue & (_distance_to_cut_frame(tissue) * pixel_size_um < d_surface_um)
    keep = ~tissue | (labels == 0) | surface & tissue | core & np.isin(labels, core_ids) | unseen & ~core
    new[keep] = labels[keep]
    new[core & ~np.isin(labels, core_ids)] = ids[prior.order[-1]]
    new[_off_axis_extras(new, core, [ids[n] for n in prior.core])] = ids[prior.order[-1]]
    widened = prior.spot_scale_layers
    if widened:
        by_depth = tissue & ~keep & ~core  # the pixels whose layer depth decided
        _widen_to_spots(new, [ids[n] for n in widened], by_depth, prior.spot_diameter_um / 2 / pixel_size_um)
    report = _report(labels, new, classes, tissue, core)
    if prior.spot_diameter_um > 0:
        report["spot_scale"] = {"spot_diameter_um": float(prior.spot_diameter_um), "widened": widened}
    report["surface_refused_near_core"] = refused_surface
    report["unseen_fraction"] = round(float(np.count_nonzero(unseen) / max(np.count_nonzero(tissue), 1)), 4)
    return new, report


def _widen_to_spots(labels: np.ndarray, layer_ids: list[int], allowed: np.ndarray, radius_px: float) -> None:
    """Widen each of ``layer_ids`` (in place) by ``radius_px`` over the ``allowed`` pixels."""
    for k in layer_ids:
        band = labels == k
        if band.any():
            labels[allowed & (ndi.distance_transform_edt(~band) <= radius_px)] = k


def _depth_and_network(depth: np.ndarray, probabilities: np.ndarray, layer_ids: np.ndarray, edges: np.ndarray,
                       softness: float, rows: int = 512) -> np.ndarray:
    """Index into ``layer_ids`` of the layer each pixel takes: the argmax over layers of
    log P(layer | depth) + log p(layer | network), P(layer | depth) a band between the
    layer's edges (``edges``: cumulative relative thickness) with logistic sides ``softness``
    wide. Row blocks of ``rows`` bound the memory."""
    lo = np.concatenate([[-np.inf], edges[:-1]])[:, None, None]
    hi = np.concatenate([edges[:-1], [np.inf]])[:, None, None]
    out = np.zeros(depth.shape, dtype=np.intp)
    for r0 in range(0, depth.shape[0], rows):
        t = depth[None, r0:r0 + rows].astype(np.float32)
        with np.errstate(invalid="ignore"):  # inf - inf never happens: lo < hi
            band = -np.logaddexp(0.0, (lo - t) / softness) - np.logaddexp(0.0, (t - hi) / softness)
        net = np.log(probabilities[layer_ids, r0:r0 + rows].astype(np.float32) + 1e-4)
        out[r0:r0 + rows] = np.argmax(band + net, axis=0)
    return out


def _distance_to_cut_frame(tissue: np.ndarray) -> np.ndarray:
    """Pixels to the nearest image-edge pixel that is tissue (``inf`` if the section lies whole
    in the image): where that is nearer than the surface, the surface may lie beyond the image
    (a crop), so laminar depth is unknown and the network's call stays."""
    cut = np.zeros_like(tissue)
    for edge in ((0, slice(None)), (-1, slice(None)), (slice(None), 0), (slice(None), -1)):
        cut[edge] = tissue[edge]
    if not cut.any():
        return np.full(tissue.shape, np.inf)
    return ndi.distance_transform_edt(~cut)


def _report(old: np.ndarray, new: np.ndarray, classes: list[str], tissue: np.ndarray, core: np.ndarray) -> dict:
    inside = tissue & (old > 0)
    changed = (old != new) & inside
    by_region = {}
    for k, name in enumerate(classes, start=1):
        n = int(np.count_nonzero(old == k))
        if n:
            by_region[name] = round(float(np.count_nonzero(changed & (old == k)) / n), 4)
    n_inside = max(int(np.count_nonzero(inside)), 1)
    return {"applied": True, "changed_fraction": round(float(np.count_nonzero(changed) / n_inside), 4),
            "changed_by_region": by_region,
            "core_fraction": round(float(np.count_nonzero(core & inside) / n_inside), 4)}
