"""Names of ``topdown._demo``, for readers, IDEs and type checkers; loaded lazily at run time."""

from .pipeline import run_demo as run_demo
from .study import StudyConfig as StudyConfig
from .study import build_study as build_study
