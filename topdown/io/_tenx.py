"""Pieces shared by the 10x readers (Xenium, Visium HD): feature-barcode matrices, OME-TIFF pyramids."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataFileError, InputError

GENE_EXPRESSION = "Gene Expression"


def read_10x_matrix(p: Path, what: str):
    """A 10x feature-barcode matrix (HDF5 file or MEX folder) with every feature type, counts int32 CSR."""
    import scanpy as sc
    from scipy import sparse

    try:
        if p.is_dir():
            adata = sc.read_10x_mtx(p, var_names="gene_symbols", make_unique=False, gex_only=False)
        else:
            adata = sc.read_10x_h5(p, gex_only=False)
    except Exception as exc:
        raise DataFileError(f"cannot read the {what} '{p}' ({type(exc).__name__}: {exc}); it is corrupt "
                            "or not a 10x feature-barcode matrix (HDF5 group 'matrix' or a MEX folder).") from exc
    X = sparse.csr_matrix(adata.X)
    if X.nnz and not np.array_equal(X.data, np.round(X.data)):
        raise DataFileError(f"the {what} '{p}' holds non-integer counts; it is not a raw count matrix.")
    adata.X = X.astype(np.int32)
    return adata


def split_controls(adata):
    """Keep ``Gene Expression`` features in ``X``; the others (negative control probes and codewords,
    unassigned codewords) go to ``obsm['control_counts']`` with names in ``uns['control_features']``
    and types in ``uns['control_feature_types']``."""
    if "feature_types" not in adata.var.columns:
        return adata
    gex = (adata.var["feature_types"].astype(str) == GENE_EXPRESSION).to_numpy()
    if gex.all():
        return adata
    ctrl = adata[:, ~gex]
    out = adata[:, gex].copy()
    out.obsm["control_counts"] = np.asarray(ctrl.X.toarray(), dtype=np.int32)
    out.uns["control_features"] = np.asarray(ctrl.var_names, dtype=object)
    out.uns["control_feature_types"] = np.asarray(ctrl.var["feature_types"].astype(str), dtype=object)
    return out


def fitting_level(sides: list[int], max_side: int) -> int:
    """Index of the largest pyramid level (``sides``: longer side of each, largest first) whose
    longer side is at most ``max_side``, else of the smallest level."""
    return next((i for i, side in enumerate(sides) if side <= max_side), len(sides) - 1)


def read_pyramid_level(p: Path, max_side: int, max_pixels: int | None = None) -> tuple[np.ndarray, float]:
    """The largest level of an (OME-)TIFF pyramid whose longer side is at most ``max_side`` (else the
    smallest), first channel, as uint8; returns (image, level width / full width)."""
    import tifffile

    from .._image import to_uint8
    from .._limits import check_image_pixels

    try:
        with tifffile.TiffFile(str(p)) as tif:
            series = tif.series[0]
            levels = list(series.levels)
            axes = series.axes
            full_w = levels[0].shape[axes.index("X")]
            lv = levels[fitting_level([max(lv.shape[axes.index("Y")], lv.shape[axes.index("X")])
                                       for lv in levels], max_side)]
            check_image_pixels((lv.shape[axes.index("Y")], lv.shape[axes.index("X")]), p, max_pixels,
                               tiled_reader=False)
            arr = lv.asarray()
    except (DataFileError, InputError):  # the size limit: already one clear line
        raise
    except Exception as exc:
        raise DataFileError(f"cannot read the image '{p}' ({type(exc).__name__}: {exc}); it is corrupt "
                            "or not a TIFF.") from exc
    # first channel / z plane: keep Y and X
    index = tuple(slice(None) if a in "YX" else (slice(None) if a == "S" else 0) for a in axes)
    arr = np.asarray(arr[index])
    return to_uint8(arr, name=f"the image '{p}'"), float(arr.shape[1] / full_w)
