"""Built-in tissue specs (YAML files shipped in ``topdown/sim/presets/``)."""

from __future__ import annotations

from pathlib import Path

from ..errors import SpecError
from .spec import TissueSpec

_DIR = Path(__file__).with_name("presets")


def presets() -> list[str]:
    """Names of the built-in tissues.

    Examples
    --------
    >>> import topdown as td
    >>> td.sim.presets()
    ['cortex_laminar', 'mouse_brain_coronal', 'olfactory_bulb', 'sciatic_nerve', 'spinal_cord']
    """
    return sorted(p.stem for p in _DIR.glob("*.yaml"))


def load_preset(name: str) -> TissueSpec:
    """Load a built-in tissue spec by name.

    Parameters
    ----------
    name
        One of :func:`presets`.

    Returns
    -------
    TissueSpec
        A validated spec (a fresh object each call: edit it freely).

    Examples
    --------
    >>> import topdown as td
    >>> spec = td.sim.load_preset("mouse_brain_coronal")
    >>> spec.classes[0]
    'cortex'
    """
    valid = presets()
    if not isinstance(name, str) or name not in valid:
        raise SpecError(f"unknown preset {name!r}; valid presets: {', '.join(valid)} "
                        f"(or give a spec YAML file)")
    return TissueSpec.from_yaml(_DIR / f"{name}.yaml")
