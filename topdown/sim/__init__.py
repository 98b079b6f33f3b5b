"""Simulation (Si-Do-La): tissue specs -> layouts -> Blender renders + exact masks.

Examples
--------
>>> import topdown as td
>>> td.sim.presets()  # doctest: +SKIP
['cortex_laminar', 'mouse_brain_coronal', 'olfactory_bulb', 'sciatic_nerve', 'spinal_cord']
>>> spec = td.sim.load_preset("olfactory_bulb")  # doctest: +SKIP
>>> ds = td.sim.simulate(spec, n=4, out="sims/ob", size=128, seed=7)  # doctest: +SKIP
"""

from .._lazy import attach

__getattr__, __dir__, __all__ = attach(__name__, {
    "TissueSpec": ".spec",
    "presets": ".presets",
    "load_preset": ".presets",
    "Section": ".section",
    "layout": ".layout",
    "region_mask": ".rasterize",
    "nuclei_mask": ".rasterize",
    "apply_artefacts": ".artefacts",
    "render_section": ".render",
    "SimDataset": ".dataset",
    "simulate": ".simulate",
    "expression": ".expression",
})
