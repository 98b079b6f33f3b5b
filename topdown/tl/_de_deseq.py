"""Design formulas for region DE: the variables a formula uses, the model matrix and its rank."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ..errors import InputError


def design_factors(design: str) -> list[str]:
    """Variable names used in a formula such as ``'~ condition + sex'``."""
    rhs = design.split("~", 1)[-1]
    names = re.findall(r"[A-Za-z_][A-Za-z0-9_.]*", rhs)
    skip = {"C", "Treatment", "contr", "treatment", "sum", "I", "np", "log", "center", "scale"}
    return list(dict.fromkeys(n for n in names if n not in skip))


def check_design(meta: pd.DataFrame, design: str, condition_key: str) -> pd.DataFrame:
    """The model matrix of ``design`` on ``meta``; refuse one that is not full rank."""
    from formulaic import model_matrix

    try:
        frame = pd.DataFrame(model_matrix(design, meta))
        mm = frame.to_numpy(dtype=float)
    except Exception as exc:  # noqa: BLE001 - formula errors are user errors
        raise InputError(f"cannot build the design '{design}' ({exc}); use obs column names, "
                         f"e.g. '~ {condition_key} + sex'.") from exc
    rank = np.linalg.matrix_rank(mm)
    if rank < mm.shape[1]:
        raise InputError(f"design '{design}' is not full rank on these samples (a covariate is "
                         f"confounded with '{condition_key}' or constant); drop that covariate or add samples.")
    if mm.shape[0] - rank < 1:
        raise InputError(f"design '{design}' leaves no residual degrees of freedom ({mm.shape[0]} "
                         "pseudobulk samples); add samples or drop covariates.")
    return frame
