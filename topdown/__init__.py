"""topdown: top-down spatial omics.

Cut the tissue image into anatomical regions with a segmentation model trained only on
Blender-simulated sections ("simulate, don't label"), label every spot or cell with its
region, then compare expression region by region.

Submodules are imported lazily so that ``import topdown`` stays fast and never starts
Blender or PyTorch by itself::

    import topdown as td
    td.sim.presets()
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ._version import __version__
from .errors import TopdownError

_SUBMODULES = ("sim", "seg", "get", "tl", "io", "pl", "datasets")

if TYPE_CHECKING:  # pragma: no cover
    from . import datasets, get, io, pl, seg, sim, tl  # noqa: F401

__all__ = ["__version__", "TopdownError", *_SUBMODULES]


def __getattr__(name: str):
    if name in _SUBMODULES:
        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module 'topdown' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
