"""Read NanoString (Bruker) CosMx SMI flat-file exports (AtoMx)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from .._files import existing_path
from ..errors import DataFileError, InputError
from ._generic import read_cells

#: µm per pixel of the CosMx SMI camera (global pixel coordinates)
COSMX_PIXEL_SIZE = 0.12028
_LAYOUT = "<run>_exprMat_file.csv(.gz) and <run>_metadata_file.csv(.gz)"


def _one(root: Path, suffix: str) -> Path:
    found = sorted(p for p in root.iterdir() if p.name.endswith((suffix + ".csv", suffix + ".csv.gz")))
    if not found:
        raise DataFileError(f"'{root}' has no *{suffix}.csv: pass a CosMx flat-file export folder "
                            f"(holding {_LAYOUT}).")
    if len(found) > 1:
        raise InputError(f"'{root}' holds several *{suffix}.csv files ({[p.name for p in found]}); "
                         "pass the folder of one run.")
    return found[0]


def _keyed(p: Path) -> pd.DataFrame:
    try:
        df = pd.read_csv(p)
    except Exception as exc:
        raise DataFileError(f"cannot read '{p}' ({type(exc).__name__}: {exc}).") from exc
    missing = [c for c in ("fov", "cell_ID") if c not in df.columns]
    if missing:
        raise DataFileError(f"'{p}' lacks the column(s) {missing} (CosMx tables are keyed by fov and cell_ID).")
    df = df[df["cell_ID"] != 0]  # cell 0 of each FOV: transcripts outside every cell
    df.index = pd.Index([f"{c}_{f}" for c, f in zip(df["cell_ID"], df["fov"], strict=True)], name="cell")
    if df.index.has_duplicates:
        raise InputError(f"duplicate (fov, cell_ID) '{df.index[df.index.duplicated()][0]}' in '{p}'.")
    return df


def read_cosmx(path, *, image=None, transform=None, pixel_size_um: float = COSMX_PIXEL_SIZE,
               library_id: str | None = None, max_image_side: int = 4000):
    """Read a CosMx SMI flat-file export: expression matrix, cell metadata, an optional image.

    Reads ``*_exprMat_file.csv`` (one row per fov and cell_ID, one column per target;
    ``NegPrb*`` and ``SystemControl*`` go to ``obsm['control_counts']``) and
    ``*_metadata_file.csv`` (``CenterX_global_px``, ``CenterY_global_px``). Cell ids are
    ``<cell_ID>_<fov>``; cell 0 of each FOV (transcripts outside cells) is dropped. CosMx images
    come per FOV; pass a stitched ``image`` and its global-pixel -> image-pixel ``transform`` to
    segment regions (full-res pixels are then the image's pixels), else full-res pixels are the
    global pixels and there is no image.

    Parameters
    ----------
    path
        The export folder.
    image
        Optional stitched image (array or path).
    transform
        3x3 affine from global CosMx pixels to ``image`` pixels (identity when None).
    pixel_size_um
        µm per global pixel (0.12028 for the SMI).
    library_id
        Key under ``uns['spatial']`` (default: the folder name).
    max_image_side
        The stored ``hires`` image is shrunk to at most this size.

    Returns
    -------
    AnnData: integer counts (CSR) in ``X``; ``obs`` the cell metadata (``fov``, ``cell_ID``, ...);
    ``obsm['spatial']`` (full-res pixels), ``obsm['spatial_um']``; ``uns['spatial'][library_id]``
    as from :func:`read_cells` with technology ``"cosmx"``.

    Examples
    --------
    >>> import topdown as td
    >>> adata = td.io.read_cosmx("Lung5_Rep1-Flat_files_and_images")  # doctest: +SKIP
    """
    from scipy import sparse

    from ..get import affine_matrix

    root = existing_path(path, "CosMx export folder")
    expr, meta = _keyed(_one(root, "_exprMat_file")), _keyed(_one(root, "_metadata_file"))
    for c in ("CenterX_global_px", "CenterY_global_px"):
        if c not in meta.columns:
            raise DataFileError(f"the CosMx metadata file lacks '{c}' (cell centre in global pixels).")
    common = expr.index.intersection(meta.index)
    if len(common) == 0:
        raise InputError("no (fov, cell_ID) is shared by the expression and metadata files; they come from "
                         "different runs.")
    expr, meta = expr.loc[common], meta.loc[common]
    targets = expr.columns.drop(["fov", "cell_ID", "cell"], errors="ignore")
    ctrl = [c for c in targets if str(c).startswith(("NegPrb", "Negative", "SystemControl", "FalseCode"))]
    counts = expr[[c for c in targets if c not in ctrl]]
    if not all(pd.api.types.is_integer_dtype(counts[c]) for c in counts.columns):
        raise DataFileError("the CosMx expression matrix holds non-integer values; it is not a count matrix.")
    m = np.diag([1 / pixel_size_um, 1 / pixel_size_um, 1.0])  # µm -> global pixels
    if image is not None:
        m = affine_matrix(transform if transform is not None else np.eye(3)) @ m
    elif transform is not None:
        warnings.warn("transform is ignored without an image.", UserWarning, stacklevel=2)
    cells = meta.assign(x_um=meta["CenterX_global_px"] * pixel_size_um,
                        y_um=meta["CenterY_global_px"] * pixel_size_um)
    adata = read_cells(cells, image, transform=m, x="x_um", y="y_um", counts=counts,
                       library_id=library_id or root.name, max_image_side=max_image_side,
                       technology="cosmx")
    adata.X = sparse.csr_matrix(counts.to_numpy(dtype=np.int32))
    if ctrl:
        adata.obsm["control_counts"] = expr[ctrl].to_numpy(dtype=np.int32)
        adata.uns["control_features"] = np.asarray(ctrl, dtype=object)
    return adata
