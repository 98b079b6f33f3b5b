"""Render a :class:`~topdown.sim.Section` with Blender (bpy, Cycles).

This module does not import ``bpy``; the Blender backend (:mod:`topdown.sim.blender`) is
imported on the first call and its scene is kept for the life of the process, so many
frames pay the bpy import and the scene build once.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np

from .._modalities import MODALITIES
from ..errors import InputError

#: default Cycles samples per pixel (low: transmission only, no denoiser)
DEFAULT_SAMPLES = 4
_RENDERERS: dict[tuple, Any] = {}

#: ``engine_options`` keys that configure the (cached) renderer rather than a frame
_RENDERER_KEYS = ("threads", "device", "subdivisions")


_BPY_SCRIPTS = re.compile(r"[\\/]bpy[\\/]\d+\.\d+[\\/]scripts([\\/]|$)")


def _clean_sys_path() -> None:
    """Drop Blender's script folders inherited from a parent that imported bpy.

    ``import bpy`` adds ``.../bpy/5.0/scripts/modules`` (which holds a ``bpy`` folder without
    ``_bpy``) to ``sys.path``; spawned children (pool or dask workers) inherit that path and
    would import the wrong ``bpy``. Blender adds the folders back when it loads.
    """
    if "bpy" not in sys.modules:
        sys.path[:] = [p for p in sys.path if not _BPY_SCRIPTS.search(str(p))]


def get_renderer(threads: int | None = None, device: str = "auto", subdivisions: int = 2):
    """The process-wide :class:`~topdown.sim.blender.BlenderRenderer` for these settings."""
    key = (threads, device, subdivisions)
    if key not in _RENDERERS:
        _clean_sys_path()
        with quiet_stdout():
            from .blender import BlenderRenderer

            _RENDERERS.clear()  # one Blender scene per process
            _RENDERERS[key] = BlenderRenderer(threads=threads, device=device, subdivisions=subdivisions)
    return _RENDERERS[key]


def blender_version() -> str:
    """Version of the bpy module that renders (e.g. ``"5.0.1"``); imports bpy."""
    _clean_sys_path()
    with quiet_stdout():
        from .blender import blender_version as _v

        return _v()


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Silence Blender's C-level prints ("Saved: ...", "Fra: ...") on stdout and stderr."""
    if os.environ.get("TOPDOWN_BLENDER_VERBOSE"):
        yield
        return
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
    except (OSError, ValueError):  # pragma: no cover - no real fds (e.g. some notebooks)
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


def render_section(section, modality: str = "he", *, seed: int = 0, samples: int | None = None,
                   engine_options: dict[str, Any] | None = None, labels: np.ndarray | None = None,
                   return_info: bool = False):
    """Render a section through Blender Cycles.

    Nuclei are instanced ellipsoids (geometry nodes; Cycles points when they are smaller
    than 1.5 px) with per-cell-type stain, the stroma /
    neuropil is a textured slab, seen by an orthographic microscope camera with a thin
    depth of field. H&E: transmitted white light through absorbing stains; DAPI: bright
    nuclei on a dark background.

    Parameters
    ----------
    section
        The :class:`~topdown.sim.Section` to render.
    modality
        ``"he"`` (bright field) or ``"dapi"`` (fluorescence).
    seed
        Cycles seed and texture noise seed (same seed -> same image).
    samples
        Cycles samples per pixel (default :data:`DEFAULT_SAMPLES`).
    engine_options
        ``threads`` (CPU threads, default all), ``device`` (``"auto"``/``"cpu"``/``"gpu"``),
        ``subdivisions`` (nucleus mesh), ``defocus_ratio`` (depth-of-field blur radius per µm
        from the focal plane, ~ numerical aperture), ``focus_offset_um`` (focal plane vs mid-section),
        ``backlight`` (lamp brightness, H&E).
    labels
        The region label raster at render resolution, if already computed.
    return_info
        Also return a dict of render facts (seconds, device, samples, Blender version).

    Returns
    -------
    numpy.ndarray
        ``uint8`` array ``H x W x 3`` (DAPI is grey, stored as RGB); with ``return_info``,
        ``(image, info)``.

    Examples
    --------
    >>> import topdown as td
    >>> spec = td.sim.load_preset("olfactory_bulb")  # doctest: +SKIP
    >>> image = td.sim.render_section(td.sim.layout(spec, seed=0, size=128), "he")  # doctest: +SKIP
    """
    if modality not in MODALITIES:
        raise InputError(f"unknown modality {modality!r}; use one of {', '.join(MODALITIES)}.")
    opts = dict(engine_options or {})
    renderer_opts = {k: opts.pop(k) for k in _RENDERER_KEYS if k in opts}
    unknown = set(opts) - {"defocus_ratio", "focus_offset_um", "backlight", "fold_mask"}
    if unknown:
        raise InputError(f"unknown engine_options {sorted(unknown)}; allowed: threads, device, "
                         "subdivisions, defocus_ratio, focus_offset_um, backlight.")
    h, w = section.shape
    if h < 1 or w < 1:
        raise InputError(f"section has an empty field of view ({h} x {w} px); check size and pixel size.")
    renderer = get_renderer(**renderer_opts)
    with quiet_stdout():
        image, info = renderer.render(section, modality, seed=int(seed),
                                      samples=int(samples or DEFAULT_SAMPLES), labels=labels, **opts)
        info["blender_version"] = blender_version()
    info["renderer"] = "blender-cycles"
    return (image, info) if return_info else image
