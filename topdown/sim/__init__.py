"""Simulation (Si-Do-La): tissue specs -> layouts -> Blender renders + exact masks.

Examples
--------
>>> import topdown as td
>>> td.sim.presets()
['cortex_laminar', 'mouse_brain_coronal', 'olfactory_bulb', 'sciatic_nerve', 'spinal_cord']
>>> spec = td.sim.load_preset("olfactory_bulb")
>>> ds = td.sim.simulate(spec, n=4, out="sims/ob", size=128, seed=7)  # doctest: +SKIP
"""

import lazy_loader as lazy

# Functions named like their own submodule are imported eagerly: a later
# ``from .layout import ...`` anywhere would otherwise bind ``topdown.sim.layout`` to the
# module instead of the function. None of these imports Blender or PyTorch.
from .calibrate import calibrate as calibrate
from .expression import expression as expression
from .expression import expression_study as expression_study
from .layout import layout as layout
from .presets import load_preset as load_preset
from .presets import presets as presets
from .simulate import simulate as simulate

__getattr__, __dir__, __all__ = lazy.attach_stub(__name__, __file__)
