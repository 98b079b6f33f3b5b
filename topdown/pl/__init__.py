"""Plotting: region overlays, nuclei overlays and densities, region-level differential-expression plots."""

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach_stub(__name__, __file__)
