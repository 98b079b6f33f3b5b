"""Tools: segment the tissue image into regions, assign spots/cells, compare regions."""

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach_stub(__name__, __file__)
