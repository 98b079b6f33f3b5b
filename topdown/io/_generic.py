"""Generic reader: a table of cells (x, y in µm) + an image + a µm -> pixel affine transform."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .._files import existing_path
from ..errors import DataFileError, InputError
from ..get import affine_matrix
from ._common import check_matrix, downsample_image, read_image

#: obs columns never treated as genes
_META_COLUMNS = {"fov", "volume", "center_x", "center_y", "min_x", "max_x", "min_y", "max_y",
                 "anisotropy", "transcript_count", "perimeter_area_ratio", "solidity",
                 "x", "y", "z", "cell_id", "EntityID"}


def read_transform(transform) -> np.ndarray:
    """A 3x3 µm -> image-pixel affine from an array or a MERSCOPE-style text file."""
    if transform is None:
        return np.eye(3)
    if isinstance(transform, (str, Path)):
        p = existing_path(transform, "micron-to-pixel transform file")
        try:
            m = np.loadtxt(p, delimiter=None if "," not in p.read_text() else ",")
        except ValueError as exc:
            raise DataFileError(f"'{p}' is not a 3x3 matrix of numbers ({exc}).") from exc
    else:
        m = transform
    return affine_matrix(m)


def apply_affine(m: np.ndarray, xy: np.ndarray) -> np.ndarray:
    xy = np.asarray(xy, dtype=np.float64)
    return xy @ m[:2, :2].T + m[:2, 2]


def boundaries_to_uns(polygons, obs_names, m: np.ndarray) -> dict:
    """Cell polygons (µm) -> ragged exterior coordinates in full-res pixels, h5ad-safe."""
    import shapely

    geoms = np.asarray(polygons, dtype=object)
    geoms = shapely.transform(geoms, lambda xy: apply_affine(m, xy))
    # one exterior ring per cell (largest part of a MultiPolygon)
    parts, idx = shapely.get_parts(geoms, return_index=True)
    area = shapely.area(parts)
    order = np.lexsort((-area, idx))
    first = order[np.r_[True, idx[order][1:] != idx[order][:-1]]]
    if len(first) != len(geoms):
        raise InputError("some cells have an empty boundary polygon; drop them or their boundaries.")
    rings = shapely.get_exterior_ring(parts[first])
    coords, ring_idx = shapely.get_coordinates(rings, return_index=True)
    offsets = np.r_[0, np.cumsum(np.bincount(ring_idx, minlength=len(rings)))]
    return {"coords": coords.astype(np.float64), "offsets": offsets.astype(np.int64),
            "obs_names": np.asarray(obs_names, dtype=object)}


def read_cells(cells, image=None, *, transform=None, x: str = "x", y: str = "y",
               counts: pd.DataFrame | None = None, genes: list[str] | None = None,
               boundaries=None, library_id: str = "cells", max_image_side: int = 4000,
               cell_diameter_um: float = 10.0, technology: str = "cells"):
    """Build an AnnData from a cells table (x, y in µm), an optional image and transform.

    Parameters
    ----------
    cells
        DataFrame (or CSV path) with one row per cell, index = cell id, columns ``x``,
        ``y`` in µm, gene count columns and metadata.
    image
        Tissue image (array or path) whose pixels are the full-resolution frame.
    transform
        3x3 affine (array or MERSCOPE ``micron_to_mosaic_pixel_transform.csv``) mapping
        µm to image pixels; identity (1 px = 1 µm) when None.
    x, y
        Coordinate columns.
    counts
        Optional cells x genes DataFrame (same index); default: ``genes`` columns of
        ``cells``, or every numeric non-metadata column.
    genes
        Gene columns of ``cells`` (when ``counts`` is None).
    boundaries
        Optional cell polygons in µm (GeoSeries or sequence aligned with the cells, or a
        Series indexed by cell id); stored in ``uns['cell_boundaries']`` in full-res px.
    library_id
        Key under ``uns['spatial']``.
    max_image_side
        The stored ``hires`` image is shrunk to at most this many pixels per side
        (``tissue_hires_scalef`` records the factor).
    cell_diameter_um
        Typical cell diameter, stored as ``spot_diameter_fullres`` for plotting.

    Returns
    -------
    AnnData: counts in ``X``; ``obsm['spatial']`` (full-res pixels), ``obsm['spatial_um']``;
    ``uns['spatial'][library_id]`` with ``images['hires']`` and ``scalefactors`` including
    ``microns_per_pixel`` (µm per full-res pixel).

    Examples
    --------
    >>> import topdown as td
    >>> adata = td.io.read_cells("cells.csv", "dapi.tif", transform=[[9.2, 0, -100], [0, 9.2, -50], [0, 0, 1]])  # doctest: +SKIP
    """
    import anndata as ad
    from scipy import sparse

    if isinstance(cells, (str, Path)):
        p = existing_path(cells, "cells table")
        try:
            cells = pd.read_csv(p, index_col=0)
        except Exception as exc:
            raise DataFileError(f"cannot read the cells table '{p}' ({exc}).") from exc
    if not isinstance(cells, pd.DataFrame):
        raise InputError("cells must be a pandas DataFrame or a CSV path.")
    for c in (x, y):
        if c not in cells.columns:
            raise InputError(f"the cells table has no '{c}' column (columns: {list(cells.columns)[:12]}); "
                             "pass x=/y= naming the µm coordinate columns.")
    cells = cells.copy()
    cells.index = cells.index.astype(str)
    if counts is None:
        if genes is None:
            genes = [c for c in cells.columns if c not in _META_COLUMNS | {x, y}
                     and pd.api.types.is_numeric_dtype(cells[c])]
        missing = [g for g in genes if g not in cells.columns]
        if missing:
            raise InputError(f"gene columns {missing[:5]} are not in the cells table.")
        counts = cells[genes]
        obs = cells.drop(columns=genes)
    else:
        if not counts.index.astype(str).equals(cells.index):
            raise InputError("counts and cells must have the same index (cell ids) in the same order.")
        obs = cells
    mat = sparse.csr_matrix(counts.to_numpy(dtype=np.float32))
    adata = ad.AnnData(X=mat, obs=obs, var=pd.DataFrame(index=[str(g) for g in counts.columns]))
    check_matrix(adata, "cells table")
    xy_um = cells[[x, y]].to_numpy(dtype=np.float64)
    if not np.isfinite(xy_um).all():
        raise InputError("some cells have NaN coordinates; drop them first.")
    m = read_transform(transform)
    adata.obsm["spatial_um"] = xy_um
    adata.obsm["spatial"] = apply_affine(m, xy_um)
    um_per_px = float(1.0 / np.sqrt(abs(np.linalg.det(m[:2, :2]))))
    sf = {"microns_per_pixel": um_per_px, "spot_diameter_fullres": cell_diameter_um / um_per_px}
    images = {}
    if image is not None:
        img = read_image(image) if isinstance(image, (str, Path)) else np.asarray(image)
        small, scale = downsample_image(img, max_image_side)
        images["hires"] = small
        sf["tissue_hires_scalef"] = scale
    adata.uns["spatial"] = {library_id: {
        "images": images, "scalefactors": sf,
        "metadata": {"technology": technology, "transform": m}}}
    if boundaries is not None:
        geoms = boundaries
        if isinstance(boundaries, pd.Series):
            geoms = boundaries.reindex(adata.obs_names)
            if geoms.isna().any():
                raise InputError(f"{int(geoms.isna().sum())} cells have no boundary polygon.")
        if len(geoms) != adata.n_obs:
            raise InputError("boundaries must have one polygon per cell.")
        adata.uns["cell_boundaries"] = boundaries_to_uns(np.asarray(geoms, dtype=object),
                                                         adata.obs_names, m)
    adata.obs["library_id"] = pd.Categorical([library_id] * adata.n_obs)
    return adata
