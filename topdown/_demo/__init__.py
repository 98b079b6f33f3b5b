"""The ``topdown demo`` pipeline: a simulated multi-sample study, end to end, with a report.

Modules, each importing only those above it: ``study`` (build the simulated study),
``result`` (what a run produced), ``report`` (figures and summary of a result),
``pipeline`` (the run itself).
"""

from .._lazy import attach

__getattr__, __dir__, __all__ = attach(__name__, {
    "run_demo": ".pipeline",
    "StudyConfig": ".study",
    "build_study": ".study",
})
