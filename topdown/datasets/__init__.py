"""Public datasets (checksummed downloads from ``data_manifests/``) and the embedded demo."""

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach_stub(__name__, __file__)
