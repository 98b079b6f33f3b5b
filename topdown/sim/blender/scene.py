"""Scene-wide settings: Cycles engine, sampling, seed, threads, colour management, world."""

from __future__ import annotations

import os

import bpy


def enable_cycles() -> None:
    """Make sure the Cycles add-on is registered (it is in the bpy module, but be explicit)."""
    import addon_utils

    if "cycles" not in bpy.context.preferences.addons:
        addon_utils.enable("cycles", default_set=True)


def empty_scene() -> bpy.types.Scene:
    """Remove every object, mesh, material and node group; return the (single) scene."""
    for coll in (bpy.data.objects, bpy.data.meshes, bpy.data.materials, bpy.data.node_groups,
                 bpy.data.images, bpy.data.cameras, bpy.data.lights, bpy.data.worlds):
        for block in list(coll):
            coll.remove(block)
    return bpy.context.scene


def configure(scene: bpy.types.Scene, *, width: int, height: int, samples: int, seed: int,
              threads: int | None, device: str = "CPU", linear: bool = False) -> None:
    """Cycles settings for a fast, deterministic, transmission-only render.

    ``linear=True`` writes linear values (fluorescence camera) instead of sRGB.
    """
    enable_cycles()
    r = scene.render
    r.engine = "CYCLES"
    r.resolution_x, r.resolution_y, r.resolution_percentage = int(width), int(height), 100
    r.film_transparent = False
    r.use_persistent_data = True
    r.threads_mode = "FIXED"
    r.threads = int(threads or os.cpu_count() or 1)
    r.image_settings.file_format = "PNG"
    r.image_settings.color_mode = "RGB"
    r.image_settings.color_depth = "8"
    r.image_settings.compression = 0
    c = scene.cycles
    c.device = device
    c.samples = int(samples)
    c.use_adaptive_sampling = False
    c.use_denoising = False
    c.seed = int(seed)
    c.use_animated_seed = False
    c.max_bounces = 0
    c.diffuse_bounces = c.glossy_bounces = c.transmission_bounces = c.volume_bounces = 0
    c.transparent_max_bounces = 24
    c.caustics_reflective = c.caustics_refractive = False
    c.sample_clamp_direct = c.sample_clamp_indirect = 0.0
    c.pixel_filter_type = "GAUSSIAN"
    c.filter_width = 1.5  # px: sub-pixel nuclei at low magnification average over neighbours
    c.use_auto_tile = False
    # bright field: sRGB-encoded like a colour camera; fluorescence: a linear (scientific) camera
    scene.view_settings.view_transform = "Raw" if linear else "Standard"
    scene.view_settings.look = "None"
    scene.view_settings.exposure = 0.0
    scene.view_settings.gamma = 1.0
    scene.display_settings.display_device = "sRGB"
    scene.sequencer_colorspace_settings.name = "sRGB"


def set_world(scene: bpy.types.Scene, color: tuple[float, float, float], strength: float = 1.0) -> None:
    """Uniform background light: white for bright-field (transmitted lamp), black for fluorescence."""
    world = scene.world or bpy.data.worlds.new("microscope_world")
    scene.world = world
    nt = world.node_tree
    if nt is None:  # pragma: no cover - bpy < 5 needs use_nodes
        world.use_nodes = True
        nt = world.node_tree
    bg = nt.nodes.get("Background") or nt.nodes.new("ShaderNodeBackground")
    out = nt.nodes.get("World Output") or nt.nodes.new("ShaderNodeOutputWorld")
    if not out.inputs["Surface"].links:
        nt.links.new(bg.outputs["Background"], out.inputs["Surface"])
    bg.inputs["Color"].default_value = (*color, 1.0)
    bg.inputs["Strength"].default_value = float(strength)


def setup_gpu(scene: bpy.types.Scene) -> str:
    """Use a GPU for Cycles when one is present; return the device used ("GPU" or "CPU")."""
    try:
        prefs = bpy.context.preferences.addons["cycles"].preferences
        for backend in ("OPTIX", "CUDA", "HIP", "ONEAPI", "METAL"):
            try:
                prefs.compute_device_type = backend
            except TypeError:
                continue
            prefs.refresh_devices()
            gpus = [d for d in prefs.devices if d.type != "CPU"]
            if gpus:
                for d in prefs.devices:
                    d.use = d.type != "CPU"
                return "GPU"
        prefs.compute_device_type = "NONE"
    except Exception:  # noqa: BLE001 - no GPU support compiled in: CPU it is
        pass
    return "CPU"
