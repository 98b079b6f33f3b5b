"""Convert a region-annotated AnnData to a SpatialData object."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import InputError


def to_spatialdata(adata, *, regions_key: str = "regions", library_id: str | None = None):
    """Build a :class:`spatialdata.SpatialData` from a (region-annotated) AnnData.

    One coordinate system per library, named after it, in full-resolution pixels:
    images (``{lib}_hires`` / ``{lib}_lowres``) carry a scale transform to it; spots or
    cells are circle shapes (``{lib}_spots``, radius = half ``spot_diameter_fullres``);
    segmented regions are polygon shapes (``{lib}_regions``: columns ``region``,
    ``label``, ``color``). The table (``table``) is the AnnData, annotating the spots.

    Examples
    --------
    >>> import topdown as td
    >>> sdata = td.io.to_spatialdata(adata)  # doctest: +SKIP
    >>> sdata.shapes["V1_regions"].head()  # doctest: +SKIP
    """
    import geopandas as gpd
    import shapely
    import spatialdata as sd
    from spatialdata.models import Image2DModel, ShapesModel, TableModel
    from spatialdata.transformations import Identity, Scale

    from ..get import SpatialLayout, load_store

    layout = SpatialLayout(adata)
    xy = layout.xy
    libs = layout.resolve(library_id)
    if len(libs) > 1 and "library_id" not in adata.obs:
        raise InputError("several libraries in uns['spatial'] but no obs['library_id'] naming each "
                         "spot's library; add it or pass library_id=.")
    obs_lib = (adata.obs["library_id"].astype(str).to_numpy() if "library_id" in adata.obs
               else np.full(adata.n_obs, libs[0], dtype=object))
    stores = load_store(adata, regions_key) if regions_key in adata.uns else {}
    images, shapes = {}, {}
    region_of_obs = np.full(adata.n_obs, "", dtype=object)
    for lib in libs:
        sf = layout.scalefactors(lib)
        ident = {lib: Identity()}
        for key, img in (layout.libraries[lib].get("images") or {}).items():
            s = sf.get(f"tissue_{key}_scalef")
            if s is None:
                continue
            arr = np.asarray(img)
            arr = arr[None] if arr.ndim == 2 else np.moveaxis(arr, -1, 0)
            images[f"{lib}_{key}"] = Image2DModel.parse(
                arr, dims=("c", "y", "x"),
                transformations={lib: Scale([1.0 / s, 1.0 / s], axes=("y", "x"))})
        idx = np.flatnonzero(obs_lib == lib)
        if len(idx):
            radius = float(sf.get("spot_diameter_fullres", 1.0)) / 2.0
            spots = gpd.GeoDataFrame({"radius": np.full(len(idx), radius)},
                                     geometry=shapely.points(xy[idx]), index=pd.RangeIndex(len(idx)))
            shapes[f"{lib}_spots"] = ShapesModel.parse(spots, transformations=ident)
            region_of_obs[idx] = f"{lib}_spots"
        if lib in stores:
            gdf = stores[lib].to_geodataframe().reset_index(drop=True)
            shapes[f"{lib}_regions"] = ShapesModel.parse(
                gpd.GeoDataFrame(gdf[["region", "label", "color"]], geometry=gdf.geometry.values),
                transformations=ident)
    keep = region_of_obs != ""
    table = adata[keep].copy()
    table.obs["spatialdata_shapes"] = pd.Categorical(region_of_obs[keep])
    inst = np.zeros(adata.n_obs, dtype=np.int64)
    for lib in libs:
        idx = np.flatnonzero(obs_lib == lib)
        inst[idx] = np.arange(len(idx))
    table.obs["spatialdata_instance"] = inst[keep]
    table = TableModel.parse(table, region=sorted(set(region_of_obs[keep])),
                             region_key="spatialdata_shapes", instance_key="spatialdata_instance")
    return sd.SpatialData(images=images, shapes=shapes, tables={"table": table})
