"""Read 10x Genomics Visium HD Space Ranger outputs: square bins and segmented cells."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from .._files import existing_path
from ..errors import DataFileError, InputError
from ._tenx import read_10x_matrix
from ._visium import read_visium

_LAYOUT = ("binned_outputs/square_<bin>um/ (filtered_feature_bc_matrix.h5 and spatial/ with "
           "tissue_positions.parquet, scalefactors_json.json, tissue_hires_image.png)")


def _bins_folder(root: Path, bin_size: int) -> Path:
    name = f"square_{int(bin_size):03d}um"
    for cand in (root / "binned_outputs" / name, root / name, root):
        if cand.name == name and cand.is_dir():
            return cand
    have = sorted(p.name for p in (root / "binned_outputs").glob("square_*um")) if (root / "binned_outputs").is_dir() \
        else sorted(p.name for p in root.glob("square_*um"))
    raise DataFileError(f"'{root}' has no binned_outputs/{name}/ (bins present: {have or 'none'}); pass the "
                        f"Visium HD outs folder (holding {_LAYOUT}) and a bin_size it holds.")


def _cell_polygons(p: Path, barcodes: pd.Index):
    """``cell_segmentations.geojson`` (cell_id integers, polygons in full-res pixels) -> polygons in the
    order of ``barcodes`` (``cellid_<9 digits>-1``)."""
    import shapely

    try:
        feats = json.loads(p.read_text())["features"]
        ids = [int(f["properties"]["cell_id"]) for f in feats]
        geoms = shapely.from_geojson([json.dumps(f["geometry"]) for f in feats])
    except Exception as exc:
        raise DataFileError(f"'{p}' is not a GeoJSON FeatureCollection with properties.cell_id "
                            f"({type(exc).__name__}: {exc}).") from exc
    polys = pd.Series(list(geoms), index=[f"cellid_{i:09d}-1" for i in ids])
    polys = polys[~polys.index.duplicated()].reindex(barcodes)
    return polys


def read_visium_hd(path, bin_size: int = 8, *, cells: bool = False, library_id: str | None = None,
                   load_images: bool = True):
    """Read a Visium HD Space Ranger ``outs`` folder: one bin size, or the segmented cells.

    Bins: ``binned_outputs/square_<bin>um/`` read as a Visium outs folder
    (:func:`read_visium`: ``filtered_feature_bc_matrix.h5``, ``spatial/tissue_positions.parquet``,
    ``scalefactors_json.json`` with ``microns_per_pixel`` and ``bin_size_um``, the hires and lowres
    images). Cells (``cells=True``, Space Ranger >= 4): ``segmented_outputs/``
    ``filtered_feature_cell_matrix.h5``, ``cell_segmentations.geojson`` (polygons in full-res
    pixels; centroids give ``obsm['spatial']``, outlines ``uns['cell_boundaries']``) and the
    ``spatial/`` folder of the 8 µm bins (or ``segmented_outputs/spatial``) for the images.

    Parameters
    ----------
    path
        The ``outs`` folder (or its ``binned_outputs/square_<bin>um`` folder).
    bin_size
        Bin side in µm: 2, 8 or 16 (what the folder holds).
    cells
        Read the segmented cells instead of the bins.
    library_id
        Key under ``uns['spatial']`` (default: the folder above ``outs``, else the folder name).
    load_images
        Load ``tissue_hires_image.png`` / ``tissue_lowres_image.png``.

    Returns
    -------
    AnnData: integer counts (CSR) of ``Gene Expression`` features in ``X``; ``obsm['spatial']``
    in full-res pixels; ``uns['spatial'][library_id]`` with images, scalefactors
    (``microns_per_pixel``, ``bin_size_um``, ...) and ``metadata['technology'] == "visium_hd"``.

    Examples
    --------
    >>> import topdown as td
    >>> adata = td.io.read_visium_hd("Visium_HD_Mouse_Brain/outs", bin_size=16)  # doctest: +SKIP
    >>> cells = td.io.read_visium_hd("Visium_HD_Mouse_Brain/outs", cells=True)  # doctest: +SKIP
    """
    root = existing_path(path, "Visium HD outs folder")
    outs = root.parent.parent if root.name.startswith("square_") and root.parent.name == "binned_outputs" else root
    lib = library_id or (outs.parent.name if outs.name == "outs" else outs.name)
    if cells:
        return _read_cells(root, lib, load_images)
    folder = _bins_folder(root, bin_size)
    adata = read_visium(folder, library_id=lib, load_images=load_images)
    adata.X = adata.X.astype(np.int32)
    meta = adata.uns["spatial"][lib]["metadata"]
    meta.update(technology="visium_hd", bin_size_um=float(
        adata.uns["spatial"][lib]["scalefactors"].get("bin_size_um", bin_size)))
    return adata


def _spatial_entry(spatial: Path, load_images: bool) -> dict:
    """``uns['spatial'][library]`` from a spatial/ folder: scalefactors and images, no positions."""
    from ._common import read_image
    from ._visium import read_scalefactors

    sf = read_scalefactors(spatial / "scalefactors_json.json")
    images = {}
    for key in ("hires", "lowres") if load_images else ():
        p = spatial / f"tissue_{key}_image.png"
        if p.exists() and f"tissue_{key}_scalef" in sf:
            images[key] = read_image(p)
    return {"images": images, "scalefactors": sf,
            "metadata": {"technology": "visium_hd", "source": str(spatial.parent)}}


def _read_cells(root: Path, lib: str, load_images: bool):
    import shapely

    from ._generic import boundaries_to_uns

    seg = root / "segmented_outputs"
    mat = seg / "filtered_feature_cell_matrix.h5"
    geo = seg / "cell_segmentations.geojson"
    for p in (mat, geo):
        if not p.exists():
            raise DataFileError(f"'{root}' has no segmented_outputs/{p.name}: pass a Visium HD outs folder "
                                "from Space Ranger >= 4 (segmented_outputs/ holds "
                                "filtered_feature_cell_matrix.h5 and cell_segmentations.geojson).")
    adata = read_10x_matrix(mat, "Visium HD cell matrix")
    adata = adata[:, (adata.var["feature_types"].astype(str) == "Gene Expression").to_numpy()].copy()
    polys = _cell_polygons(geo, adata.obs_names)
    if polys.isna().any():
        raise InputError(f"{int(polys.isna().sum())} cells of '{mat.name}' (e.g. '{polys.index[polys.isna()][0]}') "
                         f"have no polygon in '{geo.name}': the files come from different runs.")
    cent = shapely.centroid(polys.to_numpy())
    adata.obsm["spatial"] = np.c_[shapely.get_x(cent), shapely.get_y(cent)]
    adata.uns["cell_boundaries"] = boundaries_to_uns(polys.to_numpy(), adata.obs_names, np.eye(3))
    spatial = next((s for s in (seg / "spatial", root / "binned_outputs" / "square_008um" / "spatial")
                    if (s / "scalefactors_json.json").exists()), None)
    if spatial is None:
        raise DataFileError(f"'{root}' has no segmented_outputs/spatial/ nor binned_outputs/square_008um/spatial/ "
                            "with scalefactors_json.json: the cells cannot be placed on the image.")
    adata.uns["spatial"] = {lib: _spatial_entry(spatial, load_images)}
    adata.uns["spatial"][lib]["metadata"].update(count_file=mat.name, cells=True)
    adata.obs["library_id"] = pd.Categorical([lib] * adata.n_obs)
    return adata
