"""Input handling shared by pseudobulk and region-level DE: load, combine, check raw counts."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
from scipy import sparse

from .._files import existing_path
from ..errors import DataFileError, InputError

log = logging.getLogger(__name__)

AnnDataLike = ad.AnnData | str | os.PathLike
AnnDataInput = AnnDataLike | Sequence[AnnDataLike]


def _read_one(item: AnnDataLike) -> ad.AnnData:
    if isinstance(item, ad.AnnData):
        return item
    path = existing_path(item, "annotated h5ad file")
    try:
        return ad.read_h5ad(path)
    except Exception as exc:  # noqa: BLE001 - any reader failure is a bad file for the user
        raise DataFileError(f"cannot read '{path}' as an h5ad file ({exc}); pass an AnnData .h5ad "
                            "written by topdown annotate or anndata.") from exc


def combine(data: AnnDataInput, *, sample_key: str) -> tuple[ad.AnnData, bool]:
    """Return one AnnData from an AnnData, a path, or a list of them (one per sample).

    Returns ``(adata, single)`` where ``single`` is True when the caller passed one AnnData
    object (results may then be stored in its ``uns``). Files lacking ``obs[sample_key]``
    are labelled by their file stem (or list position) in that column.
    """
    if isinstance(data, ad.AnnData):
        return data, True
    if isinstance(data, str | os.PathLike):
        return _read_one(data), False
    items = list(data)
    if not items:
        raise InputError("no AnnData given; pass an AnnData, an .h5ad path or a list of them.")
    adatas, names = [], []
    for i, item in enumerate(items):
        a = _read_one(item)
        names.append(Path(item).stem if not isinstance(item, ad.AnnData) else f"sample{i}")
        adatas.append(a)
    if len(adatas) == 1:
        return adatas[0], False
    genes = [set(map(str, a.var_names)) for a in adatas]
    common = set.intersection(*genes)
    if not common:
        raise InputError("the given AnnData objects share no gene names (var_names); "
                         "they must be measured on the same gene panel.")
    if any(len(g) != len(common) for g in genes):
        log.warning("keeping the %d genes common to all %d inputs (panels differ).", len(common), len(adatas))
    labelled = []
    for a, name in zip(adatas, names, strict=True):
        if sample_key not in a.obs:
            a = a.copy()
            a.obs[sample_key] = name
            log.info("input '%s' has no obs['%s']; labelling its spots/cells as sample '%s'.",
                     name, sample_key, name)
        labelled.append(a)
    layers = set.intersection(*(set(a.layers.keys()) for a in labelled))
    stripped = [ad.AnnData(X=a.X, obs=a.obs, var=a.var[[]], layers={k: a.layers[k] for k in layers})
                for a in labelled]
    out = ad.concat(stripped, join="inner", index_unique="-", merge=None)
    for col in out.obs.columns:
        if out.obs[col].dtype == object:
            out.obs[col] = out.obs[col].astype(str)
    return out, False


def require_obs(adata: ad.AnnData, *keys: str, what: str = "") -> None:
    """Raise a clear InputError for any ``obs`` column that is missing."""
    for key in keys:
        if key not in adata.obs.columns:
            cols = ", ".join(map(str, adata.obs.columns[:20])) or "(none)"
            raise InputError(f"obs['{key}'] not found{what}; available obs columns: {cols}. "
                             f"Pass the right key or annotate the data first (e.g. td.tl.assign_regions).")


def count_matrix(adata: ad.AnnData, layer: str | None) -> tuple[sparse.csr_matrix | np.ndarray, str]:
    """Return the raw count matrix (cells x genes) and a label of where it came from.

    ``layer=None`` uses ``layers['counts']`` when present, otherwise ``X``; ``layer='raw'``
    uses ``adata.raw.X``. The matrix must hold non-negative integers.
    """
    if layer is None:
        layer = "counts" if "counts" in adata.layers else "X"
    if layer == "X":
        X = adata.X
    elif layer == "raw":
        if adata.raw is None:
            raise InputError("layer='raw' but adata.raw is empty; pass the layer holding raw counts.")
        if adata.raw.n_vars != adata.n_vars or not np.array_equal(adata.raw.var_names, adata.var_names):
            raise InputError("adata.raw has different genes from adata; subset it to adata.var_names first.")
        X = adata.raw.X
    elif layer in adata.layers:
        X = adata.layers[layer]
    else:
        raise InputError(f"layer '{layer}' not found; available layers: {list(adata.layers.keys()) or '(none)'}, "
                         "or 'X' / 'raw'.")
    if X is None:
        raise InputError("the count matrix is empty; pass raw counts in X or layers['counts'].")
    check_counts(X, where=f"adata.{'X' if layer == 'X' else ('raw.X' if layer == 'raw' else f'layers[{layer!r}]')}")
    if sparse.issparse(X):
        X = sparse.csr_matrix(X)
    else:
        X = np.asarray(X)
    return X, layer


def check_counts(X, *, where: str = "the count matrix") -> None:
    """Refuse matrices that are not raw counts (negative, non-integer, log-normalised)."""
    data = X.data if sparse.issparse(X) else np.asarray(X)
    if data.size == 0:
        return
    if np.issubdtype(data.dtype, np.integer):
        if data.min() < 0:
            raise InputError(f"{where} has negative values; region DE needs raw non-negative counts.")
        return
    if not np.isfinite(data).all():
        raise InputError(f"{where} has NaN or infinite values; region DE needs raw integer counts.")
    if data.min() < 0:
        raise InputError(f"{where} has negative values (scaled data?); region DE needs raw integer "
                         "counts: pass layer='counts' (or the layer holding raw UMI counts).")
    if not np.all(data == np.floor(data)):
        hint = " (it looks log-normalised)" if float(data.max()) < 30 else ""
        raise InputError(f"{where} holds non-integer values{hint}; a count model needs raw integer "
                         "counts. Keep them before normalising (adata.layers['counts'] = adata.X.copy()) "
                         "and pass layer='counts', or layer='raw' if adata.raw holds them.")


def categories(values: pd.Series) -> pd.Categorical:
    """Return ``values`` as strings in a categorical, keeping an existing category order."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        cats = [str(c) for c in values.cat.categories]
        return pd.Categorical(values.astype(str), categories=list(dict.fromkeys(cats)))
    return pd.Categorical(values.astype(str))
