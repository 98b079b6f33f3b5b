"""Lazy attribute loading for subpackages (public names -> the private module defining them)."""

from __future__ import annotations

import importlib
from collections.abc import Callable


def attach(package: str, names: dict[str, str]) -> tuple[Callable, Callable, list[str]]:
    """Return ``(__getattr__, __dir__, __all__)`` that import ``names[attr]`` on first use.

    Examples
    --------
    >>> __getattr__, __dir__, __all__ = attach(__name__, {"simulate": "._simulate"})  # doctest: +SKIP
    """

    clashes = [n for n, mod in names.items() if mod.lstrip(".") == n]
    if clashes:  # importing such a submodule would rebind the package attribute to the module
        raise ValueError(f"{package}: lazy names {clashes} equal their module's name; import them eagerly "
                         "or rename the module (e.g. '._name')")

    def __getattr__(name: str):
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(names[name], package)
        value = getattr(module, name)
        importlib.import_module(package).__dict__[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(names)

    return __getattr__, __dir__, sorted(names)
