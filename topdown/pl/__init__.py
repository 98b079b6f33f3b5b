"""Plotting: region overlays and region-level differential-expression plots."""

from .._lazy import attach

__getattr__, __dir__, __all__ = attach(__name__, {
    "regions": "._regions",
    "region_de": "._region_de",
    "region_de_heatmap": "._region_de",
    "region_de_counts": "._region_de",
})
