"""Names of ``topdown.datasets``, for readers, IDEs and type checkers; loaded lazily at run time."""

from ._demo import demo as demo
from ._fetch import fetch as fetch
from ._fetch import list as list
from ._fetch import manifest as manifest
