"""The ``topdown demo`` pipeline: a simulated multi-sample study, end to end, with a report.

Modules, each importing only those above it: ``study`` (build the simulated study),
``result`` (what a run produced), ``report`` (figures and summary of a result),
``pipeline`` (the run itself).
"""

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach_stub(__name__, __file__)
