"""The designs of a nucleus model: its classes, and how a frame's class target is made from its instances.

* ``distance`` (:mod:`topdown.seg.nucleus_target`): normalised edge-distance bins; instances
  by a seeded watershed (:func:`topdown.seg.nuclei_infer.instances`). The shipped models.
* ``steps`` (:mod:`topdown.seg.nucleus_flow`): each pixel's step towards its nucleus's centre;
  instances by following the steps (:func:`topdown.seg.nucleus_flow.step_instances`).
"""

from __future__ import annotations

from ..errors import InputError
from .nucleus_flow import STEP_CLASSES, step_target
from .nucleus_target import NUCLEUS_CLASSES, nucleus_target

#: design name -> (classes, target function of an instance image)
DESIGNS = {"distance": (NUCLEUS_CLASSES, nucleus_target), "steps": (STEP_CLASSES, step_target)}


def _design_name(classes) -> str | None:
    """The design whose classes are ``classes``, or ``None`` (a region model's classes)."""
    return next((name for name, (names, _) in DESIGNS.items() if tuple(classes) == names), None)


def refuse_nucleus_model(model, task: str, instead: str) -> None:
    """An InputError when ``model`` (a SegModel) is a nucleus model, which ``task`` does not take.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> refuse_nucleus_model(SimpleNamespace(classes=("outside", "cortex")), "segment", "")  # a region model: passes
    """
    if _design_name(model.classes) is not None:
        raise InputError(f"model '{model.name}' is a nucleus model (classes {', '.join(model.classes)}); "
                         f"{task} takes region models. {instead}")


def design_of(classes) -> str:
    """The design (key of :data:`DESIGNS`) whose classes are ``classes``, or an InputError.

    Examples
    --------
    >>> design_of(NUCLEUS_CLASSES), design_of(STEP_CLASSES)
    ('distance', 'steps')
    """
    name = _design_name(classes)
    if name is not None:
        return name
    raise InputError(f"classes {list(classes)[:4]}... are not those of a nucleus model "
                     f"(designs: {', '.join(DESIGNS)}); use a checkpoint from td.seg.train_nuclei.")
