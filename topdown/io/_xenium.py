"""Read 10x Genomics Xenium output (``outs``) folders."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from .._files import existing_path
from ..errors import DataFileError, InputError
from ._common import check_matrix
from ._generic import boundaries_to_uns
from ._tenx import read_10x_matrix, read_pyramid_level, split_controls

#: µm per morphology-image pixel of every Xenium run so far (used when experiment.xenium is absent)
XENIUM_PIXEL_SIZE = 0.2125
_LAYOUT = ("cells.parquet (or cells.csv.gz), cell_feature_matrix.h5 (or cell_feature_matrix/), "
           "experiment.xenium and morphology_focus.ome.tif (or morphology_focus/)")


def _read_cells(root: Path) -> pd.DataFrame:
    for name in ("cells.parquet", "cells.csv.gz", "cells.csv"):
        p = root / name
        if p.exists():
            break
    else:
        raise DataFileError(f"'{root}' has no cells.parquet nor cells.csv.gz: pass a Xenium output folder "
                            f"(holding {_LAYOUT}).")
    try:
        df = pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p)
    except Exception as exc:
        raise DataFileError(f"cannot read '{p}' ({type(exc).__name__}: {exc}).") from exc
    missing = [c for c in ("cell_id", "x_centroid", "y_centroid") if c not in df.columns]
    if missing:
        raise DataFileError(f"'{p}' lacks the column(s) {missing} (a Xenium cells table has cell_id, "
                            "x_centroid, y_centroid in µm, transcript_counts, ...).")
    df["cell_id"] = [c.decode() if isinstance(c, bytes) else str(c) for c in df["cell_id"]]
    return df.set_index("cell_id")


def _read_boundaries(root: Path, which: str) -> pd.Series | None:
    """``{which}_boundaries.parquet`` (or ``.csv.gz``: ``cell_id``, ``vertex_x``, ``vertex_y`` in µm,
    one row per vertex in ring order) -> Series of polygons indexed by cell id; ``None`` if absent."""
    import shapely

    for name in (f"{which}_boundaries.parquet", f"{which}_boundaries.csv.gz", f"{which}_boundaries.csv"):
        p = root / name
        if p.exists():
            break
    else:
        return None
    try:
        df = pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p)
    except Exception as exc:
        raise DataFileError(f"cannot read '{p}' ({type(exc).__name__}: {exc}).") from exc
    missing = [c for c in ("cell_id", "vertex_x", "vertex_y") if c not in df.columns]
    if missing:
        raise DataFileError(f"'{p}' lacks the column(s) {missing} (a Xenium boundaries table has cell_id, "
                            "vertex_x, vertex_y in µm, one row per vertex).")
    ids = np.array([c.decode() if isinstance(c, bytes) else str(c) for c in df["cell_id"]], dtype=object)
    first = np.r_[True, ids[1:] != ids[:-1]]  # vertices of a cell are consecutive rows
    ring = np.cumsum(first) - 1
    n_vertices = np.bincount(ring)
    if pd.Index(ids[first]).has_duplicates:
        raise DataFileError(f"'{p}': the vertices of a cell are not consecutive rows; is it a Xenium "
                            "boundaries table?")
    if (n_vertices < 3).any():
        raise DataFileError(f"'{p}': cell '{ids[first][np.argmax(n_vertices < 3)]}' has fewer than 3 vertices.")
    xy = df[["vertex_x", "vertex_y"]].to_numpy(dtype=np.float64)
    polygons = shapely.make_valid(shapely.polygons(shapely.linearrings(xy, indices=ring)))
    return pd.Series(polygons, index=ids[first])


def _pixel_size(root: Path) -> tuple[float, dict]:
    p = root / "experiment.xenium"
    if not p.exists():
        warnings.warn(f"'{p}' is missing: assuming {XENIUM_PIXEL_SIZE} µm per morphology-image pixel.",
                      UserWarning, stacklevel=3)
        return XENIUM_PIXEL_SIZE, {}
    try:
        meta = json.loads(p.read_text())
        px = float(meta.get("pixel_size", XENIUM_PIXEL_SIZE))
    except (json.JSONDecodeError, UnicodeDecodeError, TypeError, ValueError) as exc:
        raise DataFileError(f"'{p}' is not valid JSON with a numeric pixel_size ({exc}).") from exc
    if not np.isfinite(px) or px <= 0:
        raise DataFileError(f"'{p}': pixel_size is {px}; it must be a positive number of µm (0.2125).")
    keep = ("run_name", "region_name", "panel_name", "analysis_sw_version", "instrument_sw_version")
    return px, {k: str(meta[k]) for k in keep if k in meta}


def _morphology(root: Path) -> Path | None:
    for name in ("morphology_focus.ome.tif", "morphology_mip.ome.tif", "morphology.ome.tif"):
        if (root / name).exists():
            return root / name
    folder = root / "morphology_focus"
    if folder.is_dir():  # XOA >= 2.0: one pyramid per stain, 0000 is DAPI
        files = sorted(folder.glob("*.ome.tif"))
        if files:
            return files[0]
    return None


def read_xenium(path, *, library_id: str | None = None, max_image_side: int = 4000,
                load_image: bool = True, cell_diameter_um: float = 10.0, boundaries: str | None = "cell"):
    """Read a Xenium output folder into an AnnData ready for scanpy/squidpy and topdown.

    Reads ``cell_feature_matrix.h5`` (or the ``cell_feature_matrix/`` MEX folder), the cells
    table ``cells.parquet`` (or ``cells.csv.gz``: ``x_centroid``/``y_centroid`` in µm),
    ``experiment.xenium`` (``pixel_size``, µm per morphology pixel) and the DAPI morphology image
    ``morphology_focus.ome.tif`` (or ``morphology_focus/morphology_focus_0000.ome.tif``, or
    ``morphology_mip.ome.tif``). Full-res pixels are the morphology image's level-0 pixels; the
    image stored as ``hires`` is the largest pyramid level at most ``max_image_side`` pixels
    wide and high (``tissue_hires_scalef`` records its scale).

    Parameters
    ----------
    path
        The Xenium output folder.
    library_id
        Key under ``uns['spatial']`` (default: the folder name, or the one above ``outs``).
    max_image_side
        Longest side of the stored image; a pyramid level is read, not the full image.
    load_image
        Read the morphology image (needed by :func:`topdown.tl.segment_regions`).
    cell_diameter_um
        Typical cell diameter, stored as ``spot_diameter_fullres`` for plotting.
    boundaries
        ``"cell"`` (default): the outlines of ``cell_boundaries.parquet`` (or ``.csv.gz``) go
        to ``uns['cell_boundaries']``, so :func:`topdown.tl.assign_regions` assigns each cell
        by the region covering most of it; ``"nucleus"``: ``nucleus_boundaries``; ``None``:
        none read (cells are assigned by centroid, as they are when the file is absent).

    Returns
    -------
    AnnData: integer counts (CSR) of the ``Gene Expression`` features in ``X`` (negative
    control probes and codewords in ``obsm['control_counts']``, names in
    ``uns['control_features']``); ``obs`` the cells table; ``obsm['spatial']`` (full-res
    pixels), ``obsm['spatial_um']``; ``uns['spatial'][library_id]`` with ``images['hires']``,
    ``scalefactors`` (``tissue_hires_scalef``, ``microns_per_pixel``, ``spot_diameter_fullres``)
    and ``metadata`` (technology ``"xenium"``, ``transform`` µm -> full-res pixels);
    ``uns['cell_boundaries']`` (full-res pixels) when ``boundaries`` are read.

    Examples
    --------
    >>> import topdown as td
    >>> adata = td.io.read_xenium("Xenium_V1_mouse_brain/outs")  # doctest: +SKIP
    >>> td.tl.segment_regions(adata, "mouse_brain_coronal_dapi")  # doctest: +SKIP
    """
    import anndata as ad

    if boundaries not in ("cell", "nucleus", None):
        raise InputError(f"boundaries must be 'cell', 'nucleus' or None, got {boundaries!r}.")
    root = existing_path(path, "Xenium output folder")
    if not root.is_dir():
        raise DataFileError(f"'{root}' is not a folder; pass a Xenium output folder (holding {_LAYOUT}).")
    for name in ("cell_feature_matrix.h5", "cell_feature_matrix"):
        if (root / name).exists():
            counts = split_controls(read_10x_matrix(root / name, "Xenium cell-feature matrix"))
            break
    else:
        raise DataFileError(f"'{root}' has no cell_feature_matrix.h5 nor cell_feature_matrix/: pass a Xenium "
                            f"output folder (holding {_LAYOUT}).")
    cells = _read_cells(root)
    missing = counts.obs_names.difference(cells.index)
    if len(missing):
        raise InputError(f"{len(missing)} cells of the matrix (e.g. '{missing[0]}') are not in the cells "
                         "table: the files come from different runs.")
    px, run = _pixel_size(root)
    obs = cells.loc[counts.obs_names]
    adata = ad.AnnData(X=counts.X, obs=obs.copy(), var=counts.var.copy(), obsm=dict(counts.obsm),
                       uns=dict(counts.uns))
    check_matrix(adata, str(root / "cell_feature_matrix"))
    xy_um = obs[["x_centroid", "y_centroid"]].to_numpy(dtype=np.float64)
    m = np.array([[1 / px, 0.0, 0.0], [0.0, 1 / px, 0.0], [0.0, 0.0, 1.0]])
    adata.obsm["spatial_um"] = xy_um
    adata.obsm["spatial"] = xy_um / px
    sf = {"microns_per_pixel": px, "spot_diameter_fullres": cell_diameter_um / px}
    images = {}
    img_p = _morphology(root) if load_image else None
    if img_p is not None:
        images["hires"], sf["tissue_hires_scalef"] = read_pyramid_level(img_p, max_image_side)
    elif load_image:
        warnings.warn(f"'{root}' has no morphology_focus.ome.tif nor morphology_focus/: no image, so "
                      "segment_regions cannot run.", UserWarning, stacklevel=2)
    lib = library_id or (root.parent.name if root.name == "outs" else root.name)
    adata.uns["spatial"] = {lib: {"images": images, "scalefactors": sf, "metadata": {
        "technology": "xenium", "transform": m, "source": str(root),
        "image": img_p.name if img_p is not None else "", **run}}}
    adata.obs["library_id"] = pd.Categorical([lib] * adata.n_obs)
    outlines = _read_boundaries(root, boundaries) if boundaries else None
    if outlines is not None:
        outlines = outlines.reindex(adata.obs_names)
        if outlines.isna().any():
            warnings.warn(f"{int(outlines.isna().sum())} cells have no {boundaries} boundary; no outlines are "
                          "stored and cells are assigned by centroid.", UserWarning, stacklevel=2)
        else:
            adata.uns["cell_boundaries"] = boundaries_to_uns(outlines.to_numpy(), adata.obs_names, m)
    return adata
