"""Readers and writers: Visium, MERSCOPE, Giotto, generic cell tables; region-annotated h5ad."""

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach_stub(__name__, __file__)
