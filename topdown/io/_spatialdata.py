"""Convert a region-annotated AnnData to a SpatialData object."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import InputError

SHAPES_KEY = "spatialdata_shapes"  # obs column naming the element a table row annotates
INSTANCE_KEY = "spatialdata_instance"  # obs column naming the row's instance in that element


def to_spatialdata(adata, *, regions_key: str = "regions", library_id: str | None = None,
                   region_key: str = "region"):
    """Build a :class:`spatialdata.SpatialData` from a (region-annotated) AnnData.

    One coordinate system per library, named after it, in full-resolution pixels (the
    units of ``obsm['spatial']``). Per library ``lib``:

    - images ``{lib}_hires`` / ``{lib}_lowres``: a scale transform to it;
    - shapes ``{lib}_spots``: the spots or cells as circles (radius = half
      ``spot_diameter_fullres``), identity transform;
    - shapes ``{lib}_regions``: the region polygons (columns ``region``, ``label``,
      ``color``), identity transform;
    - labels ``{lib}_region_map``: the segmented raster (0 = outside, ``k`` = class
      ``k``), a scale transform of ``scale_to_fullres`` (full-res pixels per map pixel);
      absent for hand-drawn regions (polygons only).

    Tables: ``table`` is the AnnData, annotating the spots; ``regions`` annotates the
    polygons and ``region_map`` the raster's label ids (``obs['label']``), each with a
    categorical ``obs['region']`` and ``uns['region_colors']`` in category order, the
    colours of the AnnData's ``obs['region']`` (so spatialdata-plot draws regions and
    spots alike). In every table ``obs['spatialdata_shapes']`` names the element a row
    annotates and ``obs['spatialdata_instance']`` the instance in it.

    Examples
    --------
    >>> import topdown as td
    >>> sdata = td.io.to_spatialdata(adata)  # doctest: +SKIP
    >>> sdata.pl.render_shapes("V1_regions", color="region", table_name="regions").pl.show()  # doctest: +SKIP
    """
    import spatialdata as sd

    from ..get import SpatialLayout, load_store

    layout = SpatialLayout(adata)
    libs = layout.resolve(library_id)
    if len(libs) > 1 and "library_id" not in adata.obs:
        raise InputError("several libraries in uns['spatial'] but no obs['library_id'] naming each "
                         "spot's library; add it or pass library_id=.")
    obs_lib = (adata.obs["library_id"].astype(str).to_numpy() if "library_id" in adata.obs
               else np.full(adata.n_obs, libs[0], dtype=object))
    stores = load_store(adata, regions_key) if regions_key in adata.uns else {}
    palette = _spot_palette(adata, region_key)
    images, shapes, labels, tables = {}, {}, {}, {}
    region_rows, map_rows = [], []
    for lib in libs:
        images.update(_images(layout, lib))
        shapes.update(_spots(layout, lib, np.flatnonzero(obs_lib == lib)))
        if lib in stores:
            polys, rows = _region_polygons(stores[lib], lib)
            shapes[f"{lib}_regions"] = polys
            region_rows.append(rows)
            if stores[lib].has_raster:
                labels[f"{lib}_region_map"], rows = _region_map(stores[lib], lib)
                map_rows.append(rows)
    tables["table"] = _spots_table(adata, obs_lib, libs, shapes)
    if region_rows:
        tables["regions"] = _regions_table(region_rows, palette, stores)
    if map_rows:
        tables["region_map"] = _regions_table(map_rows, palette, stores)
    return sd.SpatialData(images=images, shapes=shapes, labels=labels, tables=tables)


def _images(layout, lib: str) -> dict:
    from spatialdata.models import Image2DModel
    from spatialdata.transformations import Scale

    sf = layout.scalefactors(lib)
    out = {}
    for key, img in (layout.libraries[lib].get("images") or {}).items():
        s = sf.get(f"tissue_{key}_scalef")
        if s is None:
            continue
        arr = np.asarray(img)
        arr = arr[None] if arr.ndim == 2 else np.moveaxis(arr, -1, 0)
        out[f"{lib}_{key}"] = Image2DModel.parse(
            arr, dims=("c", "y", "x"), transformations={lib: Scale([1.0 / s, 1.0 / s], axes=("y", "x"))})
    return out


def _spots(layout, lib: str, idx: np.ndarray) -> dict:
    import geopandas as gpd
    import shapely
    from spatialdata.models import ShapesModel
    from spatialdata.transformations import Identity

    if not len(idx):
        return {}
    radius = float(layout.scalefactors(lib).get("spot_diameter_fullres", 1.0)) / 2.0
    spots = gpd.GeoDataFrame({"radius": np.full(len(idx), radius)},
                             geometry=shapely.points(layout.xy[idx]), index=pd.RangeIndex(len(idx)))
    return {f"{lib}_spots": ShapesModel.parse(spots, transformations={lib: Identity()})}


def _spots_table(adata, obs_lib: np.ndarray, libs: list[str], shapes: dict):
    from spatialdata.models import TableModel

    region_of_obs = np.array([f"{lib}_spots" if f"{lib}_spots" in shapes else "" for lib in obs_lib],
                             dtype=object)
    inst = np.zeros(adata.n_obs, dtype=np.int64)
    for lib in libs:
        idx = np.flatnonzero(obs_lib == lib)
        inst[idx] = np.arange(len(idx))
    keep = region_of_obs != ""
    table = adata[keep].copy()
    table.obs[SHAPES_KEY] = pd.Categorical(region_of_obs[keep])
    table.obs[INSTANCE_KEY] = inst[keep]
    return TableModel.parse(table, region=sorted(set(region_of_obs[keep])),
                            region_key=SHAPES_KEY, instance_key=INSTANCE_KEY)


def _region_polygons(stored, lib: str):
    """The ``{lib}_regions`` shapes element and its table rows (element, instance, region, label)."""
    import geopandas as gpd
    from spatialdata.models import ShapesModel
    from spatialdata.transformations import Identity

    gdf = stored.to_geodataframe().reset_index(drop=True)
    polys = ShapesModel.parse(
        gpd.GeoDataFrame(gdf[["region", "label", "color"]], geometry=gdf.geometry.values),
        transformations={lib: Identity()})
    rows = pd.DataFrame({SHAPES_KEY: f"{lib}_regions", INSTANCE_KEY: np.arange(len(gdf)),
                         "region": gdf["region"].astype(str).to_numpy(),
                         "label": gdf["label"].astype(np.int64).to_numpy(), "library_id": lib})
    return polys, rows


def _region_map(stored, lib: str):
    """The ``{lib}_region_map`` labels element (map px -> full-res px) and its table rows."""
    from spatialdata.models import Labels2DModel
    from spatialdata.transformations import Scale

    s = float(stored.scale_to_fullres)
    lab = np.asarray(stored.labels)
    el = Labels2DModel.parse(lab, dims=("y", "x"),
                             transformations={lib: Scale([s, s], axes=("y", "x"))})
    ids = [int(k) for k in np.unique(lab) if 0 < k <= len(stored.classes)]
    rows = pd.DataFrame({SHAPES_KEY: f"{lib}_region_map", INSTANCE_KEY: np.asarray(ids, dtype=np.int64),
                         "region": [stored.classes[k - 1] for k in ids],
                         "label": np.asarray(ids, dtype=np.int64), "library_id": lib})
    return el, rows


def _spot_palette(adata, region_key: str) -> dict[str, str]:
    """Colour of each category of ``obs[region_key]`` (``uns[f'{region_key}_colors']``)."""
    col = adata.obs.get(region_key)
    colors = adata.uns.get(f"{region_key}_colors")
    if col is None or colors is None or not isinstance(col.dtype, pd.CategoricalDtype):
        return {}
    cats = [str(c) for c in col.cat.categories]
    return dict(zip(cats, (str(c) for c in colors), strict=False)) if len(colors) >= len(cats) else {}


def _regions_table(rows: list[pd.DataFrame], palette: dict[str, str], stores: dict):
    """One row per region instance; ``obs['region']`` ordered and coloured like the spots'."""
    import anndata as ad
    from spatialdata.models import TableModel

    obs = pd.concat(rows, ignore_index=True)
    present = list(dict.fromkeys(obs["region"]))
    order = [c for c in palette if c in present] + [c for c in present if c not in palette]
    store_colors: dict[str, str] = {}
    for st in stores.values():
        for c in st.classes:
            store_colors.setdefault(c, st.colors.get(c, "#000000"))
    obs["region"] = pd.Categorical(obs["region"], categories=order)
    obs[SHAPES_KEY] = pd.Categorical(obs[SHAPES_KEY])
    obs.index = obs.index.astype(str)
    table = ad.AnnData(obs=obs)
    table.uns["region_colors"] = np.array([palette.get(c, store_colors.get(c, "#000000")) for c in order],
                                          dtype=object)
    return TableModel.parse(table, region=list(obs[SHAPES_KEY].cat.categories),
                            region_key=SHAPES_KEY, instance_key=INSTANCE_KEY)
