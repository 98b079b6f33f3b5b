"""BlenderRenderer: build the scene skeleton once, then render many Sections.

Per frame only data changes: the nuclei point cloud and its attributes, the slab texture,
the camera framing and depth of field, the Cycles seed. Import of ``bpy`` and the scene
build are paid once per process.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import bpy
import numpy as np

from ..._modalities import MODALITIES
from . import camera as _camera
from . import materials as _materials
from . import nuclei as _nuclei
from . import scene as _scene
from . import textures as _textures


def blender_version() -> str:
    """The bpy / Blender version string, e.g. ``"5.0.1"``."""
    return ".".join(str(v) for v in bpy.app.version)


class BlenderRenderer:
    """A Cycles scene that turns :class:`~topdown.sim.Section` objects into images.

    Parameters
    ----------
    threads
        CPU threads Cycles uses (``None``: all cores). Fixed, for reproducibility.
    device
        ``"auto"`` (GPU when Cycles finds one), ``"cpu"`` or ``"gpu"``.
    subdivisions
        Ico-sphere subdivisions of the nucleus mesh (1: 80 faces, 2: 320 faces).

    Examples
    --------
    >>> r = BlenderRenderer(threads=1)  # doctest: +SKIP
    >>> image, info = r.render(section, "he", seed=3)  # doctest: +SKIP
    """

    def __init__(self, *, threads: int | None = None, device: str = "auto", subdivisions: int = 2) -> None:
        self.threads = threads
        self.subdivisions = int(subdivisions)
        self.scene = _scene.empty_scene()
        _scene.enable_cycles()
        self.device = "CPU"
        if device in ("auto", "gpu"):
            self.device = _scene.setup_gpu(self.scene)
        self.camera = _camera.make_camera(self.scene)
        self.nucleus_mats = {(m, points): _materials.nucleus_material(m, per_point=points)
                             for m in MODALITIES for points in (False, True)}
        self.nuclei = _nuclei.make_nuclei_object(self.scene, self.nucleus_mats["he", False],
                                                 self.nucleus_mats["he", True], subdivisions=subdivisions)
        self._slab_image = None
        self._slab_mats: dict[str, bpy.types.Material] = {}
        self.slab = None
        self._tmp = Path(tempfile.mkdtemp(prefix="topdown_render_"))
        self._shape: tuple[int, int] | None = None

    # -- per-frame pieces ----------------------------------------------------------------
    def _ensure_slab(self, h: int, w: int) -> None:
        if self._shape == (h, w):
            return
        if self.slab is not None:
            bpy.data.objects.remove(self.slab)
        for mat in self._slab_mats.values():
            bpy.data.materials.remove(mat)
        if self._slab_image is not None:
            bpy.data.images.remove(self._slab_image)
        img = bpy.data.images.new("slab", width=w, height=h, alpha=True, float_buffer=True)
        img.colorspace_settings.name = "Non-Color"
        self._slab_image = img
        self._slab_mats = {m: _materials.slab_material(m, img) for m in MODALITIES}
        mesh = bpy.data.meshes.new("slab")
        mesh.from_pydata([(-0.5, -0.5, 0), (0.5, -0.5, 0), (0.5, 0.5, 0), (-0.5, 0.5, 0)], [], [(0, 1, 2, 3)])
        uv = mesh.uv_layers.new(name="UVMap")
        uv.data.foreach_set("uv", np.array([0, 0, 1, 0, 1, 1, 0, 1], np.float32))
        mesh.materials.append(self._slab_mats["he"])
        self.slab = bpy.data.objects.new("slab", mesh)
        self.scene.collection.objects.link(self.slab)
        self._shape = (h, w)

    def _set_modality(self, modality: str) -> None:
        _nuclei.set_materials(self.nuclei, self.nucleus_mats[modality, False], self.nucleus_mats[modality, True])
        if self.slab.data.materials[0] != self._slab_mats[modality]:
            self.slab.data.materials[0] = self._slab_mats[modality]
        if modality == "dapi":
            _scene.set_world(self.scene, (0.0, 0.0, 0.0), 0.0)
        else:
            _scene.set_world(self.scene, (1.0, 1.0, 1.0), 1.0)

    def render(self, section, modality: str = "he", *, seed: int = 0, samples: int = 8,
               labels: np.ndarray | None = None, fold_mask: np.ndarray | None = None,
               defocus_ratio: float = 0.3, focus_offset_um: float = 0.0,
               backlight: float = 1.0) -> tuple[np.ndarray, dict[str, Any]]:
        """Render ``section``; return ``(uint8 H x W x 3 image, info)``.

        ``labels`` / ``fold_mask`` are the region label raster and the fold raster at render
        resolution (computed from the section when omitted).
        """
        t0 = time.perf_counter()
        h, w = section.shape
        if labels is None:
            from ..rasterize import region_mask

            labels = region_mask(section)
        if fold_mask is None:
            fold_mask = fold_raster(section)
        rng = np.random.default_rng(seed)
        _scene.configure(self.scene, width=w, height=h, samples=samples, seed=seed,
                         threads=self.threads, device=self.device, linear=modality == "dapi")
        self._ensure_slab(h, w)
        self._set_modality(modality)
        if modality != "dapi":
            _scene.set_world(self.scene, (1.0, 1.0, 1.0), backlight)
        self.slab.scale = (section.width_um, section.height_um, 1.0)
        tex = _textures.slab_texture(section, np.asarray(labels), modality, rng, fold_mask)
        self._slab_image.pixels.foreach_set(np.ascontiguousarray(tex[::-1]).ravel())
        self._slab_image.update()
        self._set_nuclei(section, modality)
        nuclei_as = self._set_detail(section)
        _camera.frame_field(self.camera, section.width_um, section.height_um,
                            focus_offset_um=focus_offset_um, defocus_ratio=defocus_ratio)
        t1 = time.perf_counter()
        out = self._tmp / f"frame_{os.getpid()}.png"
        self.scene.render.filepath = str(out)
        bpy.ops.render.render(write_still=True)
        from PIL import Image

        with Image.open(out) as im:
            image = np.asarray(im.convert("RGB")).copy()
        t2 = time.perf_counter()
        return image, {"prepare_seconds": t1 - t0, "cycles_seconds": t2 - t1,
                       "device": self.device, "samples": int(samples), "nuclei_as": nuclei_as}

    def _set_detail(self, section) -> str:
        """Level of detail from the on-screen nucleus size; returns ``"points"`` or ``"ellipsoids"``.

        Nuclei below :data:`~topdown.sim.blender.nuclei.POINT_LOD_PX` pixels are Cycles points,
        larger ones ico spheres of ``subdivisions`` (a coarser ico sphere, being inscribed in
        the ellipsoid, would absorb a quarter less light than the nucleus it stands for).
        """
        size_px = float(np.median(section.cells["major_um"])) / section.pixel_size_um if section.n_cells() else 0
        as_points = size_px < _nuclei.POINT_LOD_PX
        _nuclei.set_level_of_detail(self.nuclei, as_points=as_points, subdivisions=self.subdivisions)
        return "points" if as_points else "ellipsoids"

    def _set_nuclei(self, section, modality: str) -> None:
        c = section.cells
        n = len(c)
        t = float(section.thickness_um)
        centres = np.zeros((n, 3), np.float32)
        if n:
            centres[:, 0] = c["x_um"].to_numpy() - section.width_um / 2
            centres[:, 1] = section.height_um / 2 - c["y_um"].to_numpy()
            centres[:, 2] = t / 2 - c["z_um"].to_numpy() + t * c["layer"].to_numpy()
        attrs = _textures.nucleus_attributes(section, modality)
        scl = np.zeros((n, 3), np.float32)
        rot = np.zeros((n, 3), np.float32)
        if n:
            major, minor = c["major_um"].to_numpy(), c["minor_um"].to_numpy()
            scl[:, 0], scl[:, 1], scl[:, 2] = major, minor, np.minimum(minor, t * 1.5)
            rot[:, 2] = c["angle_rad"].to_numpy()
        # a point's radius gives the ellipse's projected area: pi r^2 = pi (major/2)(minor/2)
        radius = (0.5 * np.sqrt(scl[:, 0] * scl[:, 1])).astype(np.float32)
        attrs.update(scl=scl, rot=rot, radius=radius)
        _nuclei.set_nuclei(self.nuclei, centres, attrs)


def fold_raster(section) -> np.ndarray:
    """Boolean H x W raster of the section's fold areas (pixel centres inside a fold)."""
    h, w = section.shape
    mask = np.zeros((h, w), bool)
    if not section.folds:
        return mask
    import shapely

    px = section.pixel_size_um
    yy, xx = np.mgrid[0:h, 0:w]
    xs, ys = (xx.ravel() + 0.5) * px, (yy.ravel() + 0.5) * px
    for geom in section.folds:
        if geom is None or geom.is_empty:
            continue
        shapely.prepare(geom)
        mask |= shapely.contains_xy(geom, xs, ys).reshape(h, w)
    return mask
