"""Read results back from an AnnData: regions, region DE tables, the spatial layout.

As scanpy's ``sc.get``: plain getters over what the readers (``td.io``) and tools
(``td.tl``) store, for users and for the other subpackages.

Examples
--------
>>> import topdown as td
>>> gdf = td.get.regions(adata)  # doctest: +SKIP
>>> de = td.get.region_de_df(adata)  # doctest: +SKIP
"""

from .._lazy import attach

__getattr__, __dir__, __all__ = attach(__name__, {
    # results of the tools
    "regions": "._tables",
    "region_de_df": "._tables",
    "REGION_DE_COLUMNS": "._tables",
    # the spatial layout of an AnnData (uns['spatial'], obsm['spatial'])
    "spatial_coords": "._library",
    "library_column": "._library",
    "spatial_libraries": "._library",
    "resolve_libraries": "._library",
    "scalefactors": "._library",
    "pick_image": "._library",
    "fullres_um_per_px": "._library",
    "technology": "._library",
    # how segmented regions are stored in adata.uns
    "StoredRegions": "._regions_store",
    "load_store": "._regions_store",
    "store_entry": "._regions_store",
})
