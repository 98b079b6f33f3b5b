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


def _image_levels(img) -> list:
    """The pyramid levels (DataArrays c, y, x), largest first, of a spatialdata image element."""
    if hasattr(img, "children") and len(img.children):
        nodes = sorted(img.children, key=lambda k: int(str(k).replace("scale", "") or 0))
        return [next(iter(img[n].ds.data_vars.values())) for n in nodes]
    return [img]


def _pick_image(sdata, image_key: str | None, cs: str):
    from spatialdata.transformations import get_transformation

    keys = [image_key] if image_key else [k for k in sdata.images
                                          if cs in get_transformation(sdata.images[k], get_all=True)]
    if image_key and image_key not in sdata.images:
        raise InputError(f"no image '{image_key}' in the SpatialData object (images: {list(sdata.images)}).")
    return keys[0] if keys else None


def _level_array(levels: list, max_side: int) -> tuple[np.ndarray, float]:
    """The largest level at most ``max_side`` (else the smallest) as uint8 (H, W[, 3]); its scale."""
    from .._image import to_uint8
    from .._limits import check_image_pixels
    from ._tenx import fitting_level

    lv = levels[fitting_level([max(lv.sizes["y"], lv.sizes["x"]) for lv in levels], max_side)]
    check_image_pixels((lv.sizes["y"], lv.sizes["x"]), "SpatialData image", tiled_reader=False)
    arr = np.asarray(lv.transpose("y", "x", "c").values)
    arr = arr[..., 0] if arr.shape[-1] != 3 else arr  # first channel unless RGB
    return to_uint8(arr, name="the SpatialData image"), float(lv.sizes["x"] / levels[0].sizes["x"])


def from_spatialdata(sdata, *, table_key: str = "table", region: str | None = None,
                     image_key: str | None = None, coordinate_system: str | None = None,
                     library_id: str | None = None, microns_per_pixel: float | None = None,
                     max_image_side: int = 4000, technology: str | None = None):
    """AnnData with ``obsm['spatial']`` and ``uns['spatial']`` from a :class:`spatialdata.SpatialData`.

    The table ``table_key`` annotates a shapes element (``region``; default: the table's only
    one): its centroids, mapped through ``coordinate_system`` into the pixels of the image
    ``image_key`` (default: the first image in that coordinate system), give
    ``obsm['spatial']``; full-res pixels are the image's pixels at scale 0, and the pyramid
    level at most ``max_image_side`` is stored as ``hires``. Circles give
    ``spot_diameter_fullres`` (technology ``"visium"``); polygons give ``uns['cell_boundaries']``.

    Parameters
    ----------
    sdata
        The SpatialData object.
    table_key
        Table to read (``sdata.tables``).
    region
        Shapes element the table annotates, when it annotates several.
    image_key
        Image element placed under ``uns['spatial']``.
    coordinate_system
        Coordinate system shared by the shapes and the image (default: the first shared one).
    library_id
        Key under ``uns['spatial']`` (default: ``region``).
    microns_per_pixel
        µm per full-res (scale-0 image) pixel, needed by ``segment_regions`` unless circles of
        a 55 µm Visium spot say it.
    max_image_side
        Longest side of the stored image.
    technology
        ``uns['spatial'][lib]['metadata']['technology']`` (default: ``"visium"`` for circles,
        else ``"cells"``).

    Returns
    -------
    AnnData: a copy of the table's rows of ``region``, with ``obsm['spatial']``,
    ``uns['spatial'][library_id]`` and, for polygons, ``uns['cell_boundaries']``.

    Examples
    --------
    >>> import topdown as td
    >>> adata = td.io.from_spatialdata(sdata, image_key="morphology_focus", microns_per_pixel=0.2125)  # doctest: +SKIP
    """
    import shapely
    from spatialdata.transformations import get_transformation

    from ._generic import apply_affine, boundaries_to_uns

    if table_key not in sdata.tables:
        raise InputError(f"no table '{table_key}' in the SpatialData object (tables: {list(sdata.tables)}).")
    table = sdata.tables[table_key]
    attrs = table.uns.get("spatialdata_attrs") or {}
    regions = attrs.get("region")
    regions = [regions] if isinstance(regions, str) else list(regions or [])
    region = region or (regions[0] if len(regions) == 1 else None)
    if region is None or region not in sdata.shapes:
        raise InputError(f"pass region= naming the shapes element the table annotates (table regions: "
                         f"{regions}; shapes: {list(sdata.shapes)}).")
    rows = table[table.obs[attrs["region_key"]].astype(str).to_numpy() == region] if "region_key" in attrs else table
    shapes = sdata.shapes[region]
    geoms = shapes.geometry.reindex(rows.obs[attrs["instance_key"]].to_numpy()) if "instance_key" in attrs \
        else shapes.geometry
    if geoms.isna().any() or len(geoms) != rows.n_obs:
        raise InputError(f"{int(geoms.isna().sum())} rows of table '{table_key}' have no shape in '{region}'.")
    shape_cs = get_transformation(shapes, get_all=True)
    cs = coordinate_system or next(iter(shape_cs))
    key = _pick_image(sdata, image_key, cs)
    a_shape = get_transformation(shapes, to_coordinate_system=cs).to_affine_matrix(("x", "y"), ("x", "y"))
    m = np.asarray(a_shape, dtype=float)
    sf: dict[str, float] = {}
    images = {}
    if key is not None:
        a_img = get_transformation(sdata.images[key], to_coordinate_system=cs).to_affine_matrix(("x", "y"), ("x", "y"))
        m = np.linalg.inv(np.asarray(a_img, dtype=float)) @ m
        images["hires"], sf["tissue_hires_scalef"] = _level_array(_image_levels(sdata.images[key]), max_image_side)
    adata = rows.copy()
    adata.uns.pop("spatialdata_attrs", None)  # no longer annotates an element of sdata
    adata.obs_names = adata.obs_names.astype(str)
    g = geoms.to_numpy()
    adata.obsm["spatial"] = apply_affine(m, shapely.get_coordinates(shapely.centroid(g)))
    circles = "radius" in shapes.columns and (shapely.get_type_id(g) == 0).all()
    if circles:
        scale = float(np.sqrt(abs(np.linalg.det(m[:2, :2]))))
        sf["spot_diameter_fullres"] = float(2 * np.median(shapes["radius"]) * scale)
    elif (np.isin(shapely.get_type_id(g), (3, 6))).all():
        adata.uns["cell_boundaries"] = boundaries_to_uns(g, adata.obs_names, m)
    if microns_per_pixel is not None:
        sf["microns_per_pixel"] = float(microns_per_pixel)
    lib = library_id or region
    adata.uns["spatial"] = {lib: {"images": images, "scalefactors": sf, "metadata": {
        "technology": technology or ("visium" if circles else "cells"), "coordinate_system": cs,
        "image": key or ""}}}
    return adata
