"""Segmentation: a U-Net trained on simulations only, applied to real tissue images.

Examples
--------
>>> import topdown as td
>>> model = td.seg.load("mouse_brain_coronal")  # doctest: +SKIP
>>> rmap = td.seg.segment("tissue_lowres_image.png", model, pixel_size_um=17.6)  # doctest: +SKIP
>>> rmap.to_geodataframe().head()  # doctest: +SKIP
"""

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach_stub(__name__, __file__)
