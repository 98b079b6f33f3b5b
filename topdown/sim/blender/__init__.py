"""The Blender backend of the simulator: the only package that imports ``bpy``.

Small modules named after what they touch (BlenderProc style):

- :mod:`.scene`      render settings (Cycles, samples, seed, threads, colour management), world
- :mod:`.camera`     orthographic virtual microscope camera with shallow depth of field
- :mod:`.materials`  nucleus and tissue-slab shaders (H&E transmission, DAPI emission)
- :mod:`.nuclei`     one point cloud + a geometry-nodes "Instance on Points" of an ico sphere
- :mod:`.tissue`     the stroma / neuropil slab and its per-frame texture (numpy -> image)
- :mod:`.renderer`   :class:`BlenderRenderer`: builds the skeleton once, renders many sections

Nothing here is imported by ``import topdown``; :func:`topdown.sim.render_section` imports
it lazily the first time a frame is rendered.
"""

from .renderer import BlenderRenderer, blender_version

__all__ = ["BlenderRenderer", "blender_version"]
