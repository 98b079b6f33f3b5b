"""Tools: segment the tissue image into regions, assign spots/cells, compare regions."""

from .._lazy import attach

__getattr__, __dir__, __all__ = attach(__name__, {
    "segment_regions": "._segment_regions",
    "assign_regions": "._assign_regions",
    "pseudobulk": "._pseudobulk",
    "region_de": "._region_de",
})
