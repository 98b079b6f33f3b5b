"""Write and read region-annotated h5ad files (atomic, round-trip safe)."""

from __future__ import annotations

import os

from .._files import atomic_path, existing_path, output_file
from ..errors import DataFileError, OutputError


def write_annotated(adata, path: str | os.PathLike, *, compression: str | None = "gzip",
                    overwrite: bool = True, inputs: tuple = ()) -> None:
    """Write ``adata`` (with its regions) to an ``.h5ad`` file atomically.

    The file appears under its final name only once completely written; every field of
    ``adata`` (the user's and topdown's: ``uns['regions']``, ``obs['region']``,
    ``obsm['region_fractions']``, colours) survives ``anndata.read_h5ad``.

    Parameters
    ----------
    adata
        The AnnData to write.
    path
        Output ``.h5ad`` path.
    compression
        h5py compression of the arrays.
    overwrite
        Refuse an existing file when False.
    inputs
        Paths that must not be overwritten (the user's input files).

    Examples
    --------
    >>> import topdown as td
    >>> td.io.write_annotated(adata, "annotated.h5ad")  # doctest: +SKIP
    """
    out = output_file(path, inputs=inputs, overwrite=overwrite)
    try:
        with atomic_path(out) as tmp:
            adata.write_h5ad(tmp, compression=compression)
    except OutputError:
        raise
    except OSError:
        raise
    except Exception as exc:  # anndata's IORegistryError, TypeError, ValueError, ...
        raise OutputError(f"cannot write '{out}': a field of the AnnData is not h5ad-serialisable "
                          f"({type(exc).__name__}: {exc}); nothing was written. Convert or delete "
                          "that field (e.g. del adata.uns[...]) and retry.") from exc


def read_annotated(path: str | os.PathLike):
    """Read an annotated ``.h5ad`` (as written by :func:`write_annotated`).

    Examples
    --------
    >>> import topdown as td
    >>> adata = td.io.read_annotated("annotated.h5ad")  # doctest: +SKIP
    """
    import anndata as ad

    p = existing_path(path, "h5ad file")
    try:
        return ad.read_h5ad(p)
    except Exception as exc:
        raise DataFileError(f"cannot read '{p}' as h5ad ({type(exc).__name__}: {exc}); the file is "
                            "corrupt or not an AnnData file.") from exc
