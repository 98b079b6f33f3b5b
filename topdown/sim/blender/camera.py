"""The virtual microscope: an orthographic camera looking down on the section, with a thin
depth of field (Si-Do-La style optics) so nuclei away from the focal plane blur.

World units are micrometres. The section's mid-plane is ``z = 0``, its top (towards the
objective) at ``z = +thickness/2``; the camera sits :data:`HEIGHT_UM` above the mid-plane.
"""

from __future__ import annotations

import bpy

#: camera height above the section mid-plane (µm); also the focus distance
HEIGHT_UM = 100.0


def make_camera(scene: bpy.types.Scene) -> bpy.types.Object:
    """Create the orthographic camera (looking along -Z, image top = +Y) and make it active."""
    data = bpy.data.cameras.new("microscope")
    data.type = "ORTHO"
    data.clip_start = 1.0
    data.clip_end = 4 * HEIGHT_UM
    cam = bpy.data.objects.new("microscope", data)
    scene.collection.objects.link(cam)
    cam.location = (0.0, 0.0, HEIGHT_UM)
    cam.rotation_euler = (0.0, 0.0, 0.0)
    scene.camera = cam
    return cam


def frame_field(cam: bpy.types.Object, width_um: float, height_um: float, *,
                focus_offset_um: float = 0.0, defocus_ratio: float = 0.0) -> None:
    """Fit the camera to the field of view and set the depth of field.

    Parameters
    ----------
    width_um, height_um
        Field of view (the render resolution has the same aspect ratio).
    focus_offset_um
        Focal plane relative to the section mid-plane (+ = towards the camera).
    defocus_ratio
        Radius of the circle of confusion per unit distance from the focal plane (µm/µm;
        about the objective's numerical aperture: ~0.1 at 4x, ~0.5 at 20x). 0 turns depth of
        field off.
    """
    data = cam.data
    data.ortho_scale = float(max(width_um, height_um))
    focus = HEIGHT_UM - float(focus_offset_um)
    data.dof.focus_distance = focus
    if defocus_ratio <= 0:
        data.dof.use_dof = False
        return
    data.dof.use_dof = True
    # Cycles orthographic lens: aperture radius = 1 / (2 * fstop) world units and a ray
    # offset of (aperture * dz / focus) at distance dz from the focal plane.
    aperture = defocus_ratio * focus
    data.dof.aperture_fstop = 1.0 / (2.0 * aperture)
    data.dof.aperture_blades = 0
