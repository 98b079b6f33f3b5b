"""Readers and writers: Visium, Visium HD, Xenium, MERSCOPE, CosMx, SpatialData, Giotto, generic cell
tables; region-annotated h5ad."""

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach_stub(__name__, __file__)
