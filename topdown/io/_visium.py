"""Read 10x Genomics Visium Space Ranger ``outs`` folders (new and old layouts)."""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from .._files import existing_path
from ..errors import DataFileError, InputError
from ._common import check_matrix, read_image

log = logging.getLogger("topdown")

_POSITION_COLUMNS = ["barcode", "in_tissue", "array_row", "array_col",
                     "pxl_row_in_fullres", "pxl_col_in_fullres"]


def _read_counts(outs: Path, count_file: str | None):
    """Matrix from ``count_file`` or the first of filtered/raw h5/mtx found; returns (adata, name)."""
    import scanpy as sc

    names = [count_file] if count_file else [
        "filtered_feature_bc_matrix.h5", "filtered_feature_bc_matrix",
        "raw_feature_bc_matrix.h5", "raw_feature_bc_matrix"]
    for name in names:
        p = outs / name
        if not p.exists():
            continue
        try:
            if p.is_dir():
                adata = sc.read_10x_mtx(p, var_names="gene_symbols", make_unique=True)
            else:
                adata = sc.read_10x_h5(p)
        except Exception as exc:  # corrupt or foreign file: say which one
            raise DataFileError(f"cannot read the count matrix '{p}' ({type(exc).__name__}: {exc}); "
                                "the file is corrupt or not a 10x matrix; re-copy it from Space Ranger "
                                "or pass count_file= another matrix.") from exc
        return adata, name
    raise DataFileError(f"no count matrix in '{outs}': expected one of {names} "
                        "(Space Ranger outs); pass count_file= if it has another name.")


def _csv(path: Path, **kw) -> pd.DataFrame:
    """``pd.read_csv`` with an empty or unparsable file reported as one clear error."""
    try:
        return pd.read_csv(path, **kw)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataFileError(f"the spot positions file '{path}' is empty or not a CSV ({exc}); re-copy it "
                            "from Space Ranger's spatial/ folder.") from exc


def _scalefactors(path: Path, raw: object) -> dict[str, float]:
    """Scale factors as floats: scales and diameters positive finite numbers; other non-numbers dropped."""
    if not isinstance(raw, dict):
        raise DataFileError(f"'{path}' should hold a JSON object of scale factors; re-copy it.")
    out = {}
    for k, v in raw.items():
        ok = isinstance(v, int | float) and not isinstance(v, bool) and bool(np.isfinite(v))
        if not k.endswith(("_scalef", "_fullres")):
            if ok:
                out[k] = float(v)
            continue
        if not ok or v <= 0:
            raise DataFileError(f"'{path}': {k} is {v!r}; it must be a positive number (a Space Ranger "
                                "file has e.g. tissue_lowres_scalef 0.03). Re-copy or correct it.")
        out[k] = float(v)
    return out


def read_scalefactors(sf_path: Path) -> dict[str, float]:
    """The checked numbers of a Space Ranger ``scalefactors_json.json`` (one-line errors)."""
    if not sf_path.exists():
        raise DataFileError(f"'{sf_path}' is missing: without scalefactors the image cannot be placed on "
                            "the spots; copy it from Space Ranger's spatial/ folder.")
    try:
        return _scalefactors(sf_path, json.loads(sf_path.read_text()))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataFileError(f"'{sf_path}' is not valid JSON ({exc}); re-copy it.") from exc


def _read_positions(spatial: Path) -> pd.DataFrame:
    new, old = spatial / "tissue_positions.csv", spatial / "tissue_positions_list.csv"
    parquet = spatial / "tissue_positions.parquet"  # Visium HD bins
    if parquet.exists() and not new.exists():
        try:
            pos = pd.read_parquet(parquet)
        except Exception as exc:
            raise DataFileError(f"cannot read '{parquet}' ({type(exc).__name__}: {exc}); re-copy it.") from exc
    elif new.exists():
        pos = _csv(new, header=0)
        pos.columns = [str(c).strip() for c in pos.columns]
        if "barcode" not in pos.columns:  # header-less file under the new name
            pos = _csv(new, header=None, names=_POSITION_COLUMNS)
    elif old.exists():
        pos = _csv(old, header=None)
        if pos.shape[1] != 6:
            raise DataFileError(f"'{old}' should have 6 columns ({', '.join(_POSITION_COLUMNS)}), "
                                f"found {pos.shape[1]}.")
        if str(pos.iloc[0, 0]) == "barcode":
            pos = pos.iloc[1:].reset_index(drop=True)
        pos.columns = _POSITION_COLUMNS
    else:
        raise DataFileError(f"no spot positions in '{spatial}': expected tissue_positions.csv (Space Ranger "
                            ">= 2.0), tissue_positions.parquet (Visium HD) or tissue_positions_list.csv "
                            "(older); copy the whole spatial/ folder.")
    missing = [c for c in _POSITION_COLUMNS if c not in pos.columns]
    if missing:
        raise DataFileError(f"the positions file in '{spatial}' lacks columns {missing}.")
    pos["barcode"] = pos["barcode"].astype(str)
    if pos["barcode"].duplicated().any():
        dup = pos["barcode"][pos["barcode"].duplicated()].iloc[0]
        raise InputError(f"duplicate barcode '{dup}' in the positions file of '{spatial}'; "
                         "the file is corrupt (each spot must appear once).")
    for c in _POSITION_COLUMNS[1:]:
        try:
            pos[c] = pd.to_numeric(pos[c], errors="raise")
        except (ValueError, TypeError) as exc:
            raise DataFileError(f"column {c} of the positions file in '{spatial}' is not numeric ({exc}); "
                                "the file is corrupt.") from exc
    return pos.set_index("barcode")


def read_visium(path, *, count_file: str | None = None, library_id: str | None = None,
                in_tissue_only: bool | None = None, load_images: bool = True,
                fullres_image: str | None = None):
    """Read a Space Ranger ``outs`` folder into an AnnData ready for scanpy/squidpy.

    Copes with partial copies: filtered or raw matrix (``.h5`` or mtx folder), the new
    ``tissue_positions.csv`` (header) or the old header-less ``tissue_positions_list.csv``,
    hires and/or lowres image, and says what is missing.

    Parameters
    ----------
    path
        The ``outs`` folder (holding ``spatial/`` and a feature-barcode matrix).
    count_file
        Matrix to read (file or folder name inside ``path``); default: filtered, then raw.
    library_id
        Key under ``uns['spatial']``; default: the folder name above ``outs``.
    in_tissue_only
        Keep only spots under tissue. Default: True for a raw matrix (a warning says so),
        irrelevant for a filtered one. ``obs['in_tissue']`` is always set.
    load_images
        Load ``tissue_hires_image.png`` / ``tissue_lowres_image.png``.
    fullres_image
        Optional path of the full-resolution image, recorded in
        ``uns['spatial'][library_id]['metadata']['source_image_path']`` (not loaded).

    Returns
    -------
    AnnData with raw counts in ``X``; ``obs`` in_tissue, array_row, array_col;
    ``obsm['spatial']`` (x, y in full-res pixels, as scanpy/squidpy expect);
    ``uns['spatial'][library_id]`` with ``images``, ``scalefactors`` and ``metadata``.

    Examples
    --------
    >>> import topdown as td
    >>> adata = td.io.read_visium("visium_mouse_brain_v1/outs")  # doctest: +SKIP
    >>> adata.obsm["spatial"][:2]  # doctest: +SKIP
    """
    outs = existing_path(path, "Visium outs folder")
    if not outs.is_dir():
        raise DataFileError(f"'{outs}' is not a folder; pass the Space Ranger 'outs' folder.")
    spatial = outs / "spatial"
    if not spatial.is_dir():
        raise DataFileError(f"'{outs}' has no spatial/ folder; pass the Space Ranger 'outs' folder "
                            "(it holds spatial/ and the feature-barcode matrix).")
    adata, matrix_name = _read_counts(outs, count_file)
    check_matrix(adata, str(outs / matrix_name))
    is_raw = matrix_name.startswith("raw")
    positions = _read_positions(spatial)

    missing = adata.obs_names.difference(positions.index)
    if len(missing):
        raise InputError(f"{len(missing)} barcodes of the matrix (e.g. '{missing[0]}') are not in the "
                         "positions file: the matrix and spatial/ folder come from different runs.")
    pos = positions.loc[adata.obs_names]
    if in_tissue_only is None:
        in_tissue_only = is_raw
        if is_raw:
            warnings.warn(f"'{outs}' has no filtered_feature_bc_matrix: read {matrix_name} and kept only "
                          f"the {int(pos['in_tissue'].sum())} spots under tissue (pass "
                          "in_tissue_only=False, or --all-spots on the command line, to keep all, with "
                          "obs['in_tissue']).", UserWarning,
                          stacklevel=2)
    for c in ("in_tissue", "array_row", "array_col"):
        adata.obs[c] = pos[c].to_numpy().astype(np.int64)
    adata.obsm["spatial"] = pos[["pxl_col_in_fullres", "pxl_row_in_fullres"]].to_numpy(dtype=np.float64)
    if in_tissue_only:
        keep = adata.obs["in_tissue"].to_numpy() == 1
        if not keep.any():
            raise InputError(f"no spot of '{outs}' is marked in_tissue; pass in_tissue_only=False "
                             "(--all-spots on the command line).")
        adata = adata[keep].copy()

    sf_path = spatial / "scalefactors_json.json"
    scalefactors = read_scalefactors(sf_path)
    if "spot_diameter_fullres" not in scalefactors:
        raise DataFileError(f"'{sf_path}' lacks 'spot_diameter_fullres'; it is not a Space Ranger file.")

    images: dict[str, np.ndarray] = {}
    missing_parts = []
    if load_images:
        for key in ("hires", "lowres"):
            p = spatial / f"tissue_{key}_image.png"
            if p.exists():
                if f"tissue_{key}_scalef" not in scalefactors:
                    raise DataFileError(f"'{sf_path}' lacks 'tissue_{key}_scalef' for {p.name}.")
                images[key] = read_image(p)
            else:
                missing_parts.append(p.name)
        if not images:
            warnings.warn(f"'{spatial}' has no tissue_hires_image.png nor tissue_lowres_image.png; "
                          "segment_regions will need an image.", UserWarning, stacklevel=2)
        elif missing_parts:
            log.info("read_visium: %s absent in '%s'; using %s", ", ".join(missing_parts), spatial,
                     ", ".join(images))
    lib = library_id or (outs.parent.name if outs.name == "outs" else outs.name)
    metadata = {"technology": "visium", "source": str(outs), "count_file": matrix_name,
                "positions_file": next(n for n in ("tissue_positions.csv", "tissue_positions.parquet",
                                                   "tissue_positions_list.csv") if (spatial / n).exists())}
    if fullres_image:
        metadata["source_image_path"] = str(existing_path(fullres_image, "full-resolution image"))
    adata.uns["spatial"] = {lib: {"images": images,
                                  "scalefactors": scalefactors,
                                  "metadata": metadata}}
    adata.obs["library_id"] = pd.Categorical([lib] * adata.n_obs)
    adata.var_names_make_unique()
    return adata
