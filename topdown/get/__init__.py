"""Read results back from an AnnData: regions, region DE tables, the spatial layout.

As scanpy's ``sc.get``: plain getters over what the readers (``td.io``) and tools
(``td.tl``) store, for users and for the other subpackages.

Examples
--------
>>> import topdown as td
>>> gdf = td.get.regions(adata)  # doctest: +SKIP
>>> de = td.get.region_de_df(adata)  # doctest: +SKIP
"""

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach_stub(__name__, __file__)
