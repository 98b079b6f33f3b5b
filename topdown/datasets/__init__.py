"""Public datasets (checksummed downloads from ``data_manifests/``) and the embedded demo."""

from .._lazy import attach

__getattr__, __dir__, __all__ = attach(__name__, {
    "list": "._fetch",
    "manifest": "._fetch",
    "fetch": "._fetch",
    "demo": "._demo",
})
