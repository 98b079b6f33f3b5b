"""Guard for modules named like the function they export (train, evaluate, finetune).

``topdown.seg`` exports ``train`` lazily from ``.train``; but any ``import
topdown.seg.train`` (or ``from topdown.seg.train import x``) makes Python set the package
attribute ``train`` to the *module*, hiding the function. Making such modules callable
(forwarding to their function) keeps ``td.seg.train(...)`` working either way.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable


def make_module_callable(module_name: str, func: Callable) -> None:
    """Let calling module ``module_name`` call ``func``."""

    class _CallableModule(types.ModuleType):
        def __call__(self, *args, **kwargs):
            return func(*args, **kwargs)

    sys.modules[module_name].__class__ = _CallableModule
