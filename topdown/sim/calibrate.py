"""Calibrate a tissue spec's appearance to a user's unlabelled images (sim-to-real).

Each image is measured (:func:`topdown.sim.measure.measure_image`) and the spec's
appearance ranges are widened, never narrowed, to cover what was measured, plus a margin:

=====================  ====================================================================
spec field             measured
=====================  ====================================================================
artefacts.noise        pixel noise sd in flat glass / sd of the simulator's uniform noise
artefacts.blur_px      Gaussian sigma of the sharpest edges (px)
artefacts.illumination glass darker than the simulator's white lamp (1 - darkest glass
                       channel) and the unevenness of the glass
artefacts.stain_shift  H&E: how far the Macenko stain vectors lie off the simulator's
                       (Ruifrok & Johnston) axes: the mean sine of their two angles
regions[*].background  H&E: each tissue region's eosin range, scaled by the measured eosin
.eosin                 density over the spec's mean eosin (relative contrast kept)
=====================  ====================================================================

Nuclear size and density are measured and reported where the pixel size resolves nuclei
(<= :data:`~topdown.sim.measure.NUCLEI_MAX_PIXEL_UM` µm/px); the populations are not changed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._files import existing_path
from .._image import read_image, to_uint8
from ..errors import InputError
from .measure import UNIFORM_SD, ImageMeasurement, measure_image
from .spec import TissueSpec

#: optical density of stain density 1 through the slab (``topdown.sim.blender.textures.SLAB_OD``,
#: not imported: that package loads Blender; tests check the two agree)
SLAB_OD = 1.1
#: the simulator's lamp is at least this bright (``simulate.OPTICS['backlight']`` low end)
LAMP_MIN = 0.95
#: stain_shift is not raised above this (a larger hue difference needs other stain vectors)
MAX_STAIN_SHIFT = 0.5


@dataclass
class CalibrationReport:
    """Measurements and spec changes of :func:`calibrate`; ``print(report)`` shows a table.

    Attributes
    ----------
    spec_name
        The spec calibrated.
    measurements
        One :class:`~topdown.sim.measure.ImageMeasurement` per image.
    changes
        ``{"field": (old, new)}`` for each spec field that changed.
    notes
        Remarks (limits of the simulator, nuclei).
    """

    spec_name: str
    measurements: list[ImageMeasurement]
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def rows(self) -> list[dict[str, Any]]:
        """One flat row per image (for a table or a DataFrame)."""
        out = []
        for m in self.measurements:
            nuc = m.nuclei
            out.append({
                "image": m.name, "um_px": round(m.pixel_size_um, 3), "tissue": round(m.tissue_fraction, 3),
                "glass_rgb": _fmt(m.glass_rgb), "glass_spread": _fmt(m.glass_spread),
                "H_vec": _fmt(m.hematoxylin), "E_vec": _fmt(m.eosin), "angle_H_E": _fmt(m.stain_angle_deg, 1),
                "hed_od": _fmt(m.hed_od), "blur_px": _fmt(m.blur_px), "noise_sd": _fmt(m.noise_sd),
                "nuclei": (f"{nuc['diameter_um']:.1f} um, {nuc['density_per_mm2']:.0f}/mm2" if nuc
                           else "not resolvable" if m.pixel_size_um > 1 else "none found"),
            })
        return out

    def __str__(self) -> str:
        rows = self.rows()
        lines = [f"calibration of {self.spec_name!r} on {len(rows)} image(s)"]
        for r in rows:
            lines.append("  " + "  ".join(f"{k}={v}" for k, v in r.items()))
        lines.append("spec changes:" if self.changes else "spec changes: none (its ranges already cover the images)")
        lines += [f"  {k}: {_fmt(a)} -> {_fmt(b)}" for k, (a, b) in self.changes.items()]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def _fmt(v: Any, nd: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, tuple | list):
        return "(" + ", ".join(f"{x:.{nd}f}" for x in v) + ")"
    return f"{v:.{nd}f}" if isinstance(v, float) else str(v)


def cover(old: tuple[float, float], values: Sequence[float], margin: float,
          bounds: tuple[float, float]) -> tuple[float, float]:
    """``old`` widened to hold every value with a relative ``margin``, within ``bounds``; never narrower.

    Examples
    --------
    >>> cover((0.0, 0.1), [0.05, 0.2], 0.1, (0.0, 1.0))
    (0.0, 0.22)
    """
    lo = min(old[0], min(values) * (1.0 - margin))
    hi = max(old[1], max(values) * (1.0 + margin))
    return (round(max(bounds[0], lo), 4), round(min(bounds[1], hi), 4))


def _load(images: Any, max_pixels: int | None) -> list[tuple[str, np.ndarray]]:
    if isinstance(images, str | os.PathLike | np.ndarray):
        images = [images]
    out = []
    for i, im in enumerate(images):
        if isinstance(im, str | os.PathLike):
            p = existing_path(im, "image")
            if p.is_dir():
                raise InputError(f"image '{p}' is a folder; give image files (PNG, JPEG, TIFF).")
            out.append((str(p), read_image(p, max_pixels)))
        else:
            out.append((f"image[{i}]", to_uint8(np.asarray(im), name=f"image[{i}]")))
    if not out:
        raise InputError("no images given; pass one or more image paths or arrays.")
    return out


def _pixel_sizes(pixel_size_um: Any, n: int) -> list[float]:
    if pixel_size_um is None:
        raise InputError("no pixel size given; pass pixel_size_um= (µm per pixel of the images; "
                         "--pixel-size UM on the command line).")
    sizes = list(pixel_size_um) if isinstance(pixel_size_um, Sequence) else [pixel_size_um] * n
    if len(sizes) != n:
        raise InputError(f"{len(sizes)} pixel sizes for {n} images; give one, or one per image.")
    for s in sizes:
        if isinstance(s, bool) or not isinstance(s, int | float) or not np.isfinite(s) or s <= 0:
            raise InputError(f"pixel size {s!r} is not a positive number of µm per pixel; e.g. 0.5 or 16.2.")
    return [float(s) for s in sizes]


def _set(spec: TissueSpec, report: CalibrationReport, path: str, new: tuple[float, float]) -> None:
    """Set the range at dotted ``path`` (``artefacts.noise``) and record a change."""
    *parents, leaf = path.split(".")
    obj = spec
    for part in parents:
        obj = obj.regions[int(part[8:-1])] if part.startswith("regions[") else getattr(obj, part)
    old = tuple(getattr(obj, leaf))
    if tuple(new) != old:
        setattr(obj, leaf, tuple(new))
        report.changes[path] = (old, tuple(new))


def _calibrate_artefacts(spec: TissueSpec, ms: list[ImageMeasurement], margin: float,
                         report: CalibrationReport) -> None:
    art = spec.artefacts
    _set(spec, report, "artefacts.noise", cover(art.noise, [m.noise_sd / UNIFORM_SD for m in ms], margin, (0, 0.95)))
    _set(spec, report, "artefacts.blur_px", cover(art.blur_px, [m.blur_px for m in ms], margin, (0, 50)))
    light = [max(LAMP_MIN - min(m.glass_rgb), m.glass_spread or 0.0, 0.0) for m in ms if m.glass_rgb]
    if light:
        _set(spec, report, "artefacts.illumination", cover(art.illumination, light, margin, (0, 1)))
        tint = max(float(np.ptp(m.glass_rgb)) for m in ms if m.glass_rgb)
        if tint > 0.03 or min(min(m.glass_rgb) for m in ms if m.glass_rgb) < 0.8:
            report.notes.append(
                "the glass is grey or tinted; the simulator's glass is its white lamp, so only "
                "artefacts.illumination (uneven light) darkens it: the level and tint are not simulated exactly")
    if spec.imaging.modality != "he":
        return
    off = [float(np.mean(np.sin(np.radians(m.stain_angle_deg)))) for m in ms if m.stain_angle_deg]
    if off:
        _set(spec, report, "artefacts.stain_shift",
             cover(art.stain_shift, off, margin, (0, max(MAX_STAIN_SHIFT, art.stain_shift[1]))))
        if max(off) > MAX_STAIN_SHIFT:
            report.notes.append(f"stain vectors lie up to {max(max(m.stain_angle_deg) for m in ms):.0f} deg from "
                                f"the simulator's; stain_shift is capped at {MAX_STAIN_SHIFT}")


def _calibrate_eosin(spec: TissueSpec, ms: list[ImageMeasurement], margin: float,
                     report: CalibrationReport) -> None:
    tissue = [(i, r) for i, r in enumerate(spec.regions) if r.background.tissue]
    dens = [m.hed_od[1] / SLAB_OD for m in ms if m.hed_od]
    if not tissue or not dens:
        return
    mean_mid = float(np.mean([sum(r.background.eosin) / 2 for _, r in tissue]))
    ratios = [max(d, 0.0) / max(mean_mid, 1e-3) for d in dens]
    for i, r in tissue:
        lo, hi = r.background.eosin
        new = cover((lo, hi), [lo * min(ratios), hi * max(ratios)], margin, (0, 1))
        _set(spec, report, f"regions[{i}].background.eosin", new)
    report.notes.append(f"eosin density {min(dens):.2f}-{max(dens):.2f} measured vs the spec's mean "
                        f"{mean_mid:.2f}: region eosin ranges scaled by {min(ratios):.2f}-{max(ratios):.2f}")


def _nuclei_note(spec: TissueSpec, ms: list[ImageMeasurement], report: CalibrationReport) -> None:
    found = [m.nuclei for m in ms if m.nuclei]
    if not found:
        if all(m.pixel_size_um > 1 for m in ms):
            report.notes.append("nuclei: not resolvable at these pixel sizes (need <= 1 µm/px); populations unchanged")
        return
    pops = [p.diameter_um for r in spec.regions for p in r.populations]
    d = float(np.median([n["diameter_um"] for n in found]))
    report.notes.append(f"nuclei: median diameter {d:.1f} µm (spec populations {min(pops, default=0):.1f}-"
                        f"{max(pops, default=0):.1f} µm); populations unchanged (check them by hand)")


def calibrate(spec: TissueSpec | str | os.PathLike, images: Any, *, pixel_size_um: float | Sequence[float] | None = None,
              modality: str | None = None, margin: float = 0.1, return_report: bool = False,
              max_pixels: int | None = None) -> TissueSpec | tuple[TissueSpec, CalibrationReport]:
    """A copy of ``spec`` whose appearance ranges cover a user's unlabelled images.

    Parameters
    ----------
    spec
        A :class:`TissueSpec`, a preset name or a spec YAML path (never modified).
    images
        One image or a list: paths (read by the project's image reader, within the pixel
        limit of :mod:`topdown._limits`) or arrays (any dtype, by :func:`topdown._image.to_uint8`).
        No labels are used.
    pixel_size_um
        µm per pixel of the images: one number, or one per image (required).
    modality
        ``"he"`` or ``"dapi"``; default the spec's ``imaging.modality``. Images of the other
        modality are refused.
    margin
        Relative margin added beyond the measured extremes (0.1 = 10 %).
    return_report
        Also return the :class:`CalibrationReport` (measurements and changes).
    max_pixels
        Pixel limit of an image file (default ``$TOPDOWN_MAX_IMAGE_PIXELS`` or 2**28).

    Returns
    -------
    TissueSpec, or ``(TissueSpec, CalibrationReport)`` with ``return_report=True``
        The calibrated spec (validated; its name gets a ``_calibrated`` suffix). Every range
        it changes holds the input range and the measured values.

    Raises
    ------
    InputError
        No pixel size, an image of the other modality, an image with no tissue.
    DataFileError
        A missing or unreadable image path.

    Examples
    --------
    >>> import topdown as td
    >>> spec, report = td.sim.calibrate("olfactory_bulb", ["mob_01.jpg"], pixel_size_um=2.75,
    ...                                 return_report=True)  # doctest: +SKIP
    >>> print(report)  # doctest: +SKIP
    >>> spec.to_yaml("olfactory_bulb_calibrated.yaml")  # doctest: +SKIP
    """
    from .simulate import _resolve_spec

    base = _resolve_spec(spec)
    modality = modality or base.imaging.modality
    if modality not in ("he", "dapi"):
        raise InputError(f"modality {modality!r} is not known; use 'he' or 'dapi'.")
    if not 0 <= margin <= 1:
        raise InputError(f"margin {margin!r} must lie in [0, 1] (a fraction, e.g. 0.1).")
    if pixel_size_um is None:
        _pixel_sizes(None, 0)
    loaded = _load(images, max_pixels)
    sizes = _pixel_sizes(pixel_size_um, len(loaded))
    ms = [measure_image(img, px, modality, name=name) for (name, img), px in zip(loaded, sizes, strict=True)]
    out = TissueSpec.from_dict(base.to_dict())
    out.name = base.name if base.name.endswith("_calibrated") else f"{base.name}_calibrated"
    report = CalibrationReport(spec_name=base.name, measurements=ms)
    _calibrate_artefacts(out, ms, margin, report)
    if modality == "he":
        _calibrate_eosin(out, ms, margin, report)
    _nuclei_note(out, ms, report)
    out = out.validate()
    return (out, report) if return_report else out
