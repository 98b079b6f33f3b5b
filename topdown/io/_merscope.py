"""Read Vizgen MERSCOPE output folders."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from .._files import existing_path
from ..errors import DataFileError, InputError
from ._generic import read_cells


def _read_csv(p: Path, what: str) -> pd.DataFrame:
    try:
        df = pd.read_csv(p, index_col=0)
    except Exception as exc:
        raise DataFileError(f"cannot read the MERSCOPE {what} '{p}' ({type(exc).__name__}: {exc}).") from exc
    df.index = df.index.astype(str)
    if df.index.has_duplicates:
        raise InputError(f"duplicate cell id '{df.index[df.index.duplicated()][0]}' in '{p}'.")
    return df


def _read_boundaries(root: Path, z_index: int | None) -> pd.Series | None:
    """``cell_boundaries.parquet`` (EntityID, ZIndex, Geometry as WKB) -> Series of polygons."""
    import shapely

    p = root / "cell_boundaries.parquet"
    if not p.exists():
        if (root / "cell_boundaries").is_dir():
            warnings.warn(f"'{root / 'cell_boundaries'}' (per-FOV hdf5) is not read; cells are assigned "
                          "by centroid. Export cell_boundaries.parquet to use cell polygons.",
                          UserWarning, stacklevel=3)
        return None
    try:
        df = pd.read_parquet(p)
    except Exception as exc:
        raise DataFileError(f"cannot read '{p}' ({type(exc).__name__}: {exc}).") from exc
    cols = {c.lower(): c for c in df.columns}
    if "entityid" not in cols or "geometry" not in cols:
        raise DataFileError(f"'{p}' needs columns EntityID and Geometry (WKB); found {list(df.columns)}.")
    if "zindex" in cols:
        zs = np.sort(df[cols["zindex"]].unique())
        z = int(zs[len(zs) // 2]) if z_index is None else int(z_index)
        if z not in zs:
            raise InputError(f"z_index {z} is not in '{p}' (available: {zs.tolist()}).")
        df = df[df[cols["zindex"]] == z]
    geoms = shapely.from_wkb(df[cols["geometry"]].to_numpy())
    return pd.Series(geoms, index=df[cols["entityid"]].astype(str).to_numpy())


def read_merscope(path, *, stain: str = "DAPI", z: int | None = None, z_index: int | None = None,
                  library_id: str | None = None, max_image_side: int = 4000,
                  use_boundaries: bool = True):
    """Read a MERSCOPE output folder.

    Reads ``cell_by_gene.csv`` (``Blank-*`` barcodes go to ``obsm['blank_counts']``),
    ``cell_metadata.csv`` (``center_x``/``center_y`` in µm), ``cell_boundaries.parquet``
    (optional) and the mosaic image ``images/mosaic_{stain}_z{z}.tif`` placed with
    ``images/micron_to_mosaic_pixel_transform.csv``. Full-res pixels = mosaic pixels.
    Transcripts and polygons without a cell-by-gene table (the GiottoData "mini" layout):
    :func:`read_giotto_merscope`.

    Parameters
    ----------
    path
        The MERSCOPE region folder.
    stain
        Mosaic stain to load (``DAPI``, ``PolyT``, ...).
    z
        Mosaic z plane (default: the middle one present).
    z_index
        Boundary z plane (default: the middle one present).
    library_id
        Key under ``uns['spatial']`` (default: the folder name).
    max_image_side
        The stored ``hires`` image is shrunk to at most this size.
    use_boundaries
        Read cell polygons (enables polygon-overlap assignment).

    Returns
    -------
    AnnData as from :func:`read_cells`, with technology ``"merscope"``.

    Examples
    --------
    >>> import topdown as td
    >>> adata = td.io.read_merscope("region_0")  # doctest: +SKIP
    """
    root = existing_path(path, "MERSCOPE folder")
    cbg_p, meta_p = root / "cell_by_gene.csv", root / "cell_metadata.csv"
    for p in (cbg_p, meta_p):
        if not p.exists():
            raise DataFileError(f"'{root}' has no {p.name}: pass a MERSCOPE output folder (holding "
                                "cell_by_gene.csv, cell_metadata.csv and images/)"
                                + (". It holds vizgen_transcripts.gz (the GiottoData mini layout): read it with "
                                   "td.io.read_giotto_merscope." if (root / "vizgen_transcripts.gz").exists()
                                   else "."))
    cbg = _read_csv(cbg_p, "cell_by_gene")
    meta = _read_csv(meta_p, "cell_metadata")
    for c in ("center_x", "center_y"):
        if c not in meta.columns:
            raise DataFileError(f"'{meta_p}' lacks '{c}' (cell centroid in µm).")
    common = meta.index.intersection(cbg.index)
    if len(common) == 0:
        raise InputError(f"no cell id is shared by '{cbg_p.name}' and '{meta_p.name}'; they come "
                         "from different runs.")
    meta, cbg = meta.loc[common], cbg.loc[common]
    blank = [c for c in cbg.columns if str(c).lower().startswith("blank")]
    counts = cbg.drop(columns=blank)

    img_dir = root / "images"
    tr_p = img_dir / "micron_to_mosaic_pixel_transform.csv"
    image = transform = None
    if tr_p.exists():
        transform = tr_p
        pat = re.compile(rf"mosaic_{re.escape(stain)}_z(\d+)\.tiff?$", re.IGNORECASE)
        found = {int(m.group(1)): f for f in img_dir.iterdir() if (m := pat.match(f.name))}
        if found:
            zs = sorted(found)
            zz = zs[len(zs) // 2] if z is None else int(z)
            if zz not in found:
                raise InputError(f"no mosaic_{stain}_z{zz}.tif in '{img_dir}' (z planes: {zs}).")
            image = found[zz]
        else:
            warnings.warn(f"no mosaic_{stain}_z*.tif in '{img_dir}': no image, so no segmentation.",
                          UserWarning, stacklevel=2)
    else:
        warnings.warn(f"'{tr_p}' is missing: coordinates stay in µm and no image is loaded.",
                      UserWarning, stacklevel=2)
    boundaries = _read_boundaries(root, z_index) if use_boundaries else None
    if boundaries is not None:
        boundaries = boundaries[~boundaries.index.duplicated()]
        if not meta.index.isin(boundaries.index).all():
            warnings.warn(f"{int((~meta.index.isin(boundaries.index)).sum())} cells have no boundary; "
                          "using centroids for all.", UserWarning, stacklevel=2)
            boundaries = None
    adata = read_cells(meta, image, transform=transform, x="center_x", y="center_y", counts=counts,
                       boundaries=boundaries, library_id=library_id or root.name,
                       max_image_side=max_image_side, technology="merscope")
    if blank:
        adata.obsm["blank_counts"] = cbg[blank].to_numpy(dtype=np.float32)
        adata.uns["blank_genes"] = np.array(blank, dtype=object)
    return adata
