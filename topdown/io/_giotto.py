"""Read the GiottoData-style Visium prostate subset (normal vs cancer) used to check region DE.

The folder holds ``expression_matrix.txt.gz`` (space-separated, genes x spots, raw counts),
``spatial_locs.txt`` (sdimx, sdimy; y negated) and ``cell_metadata.txt`` (in_tissue,
array_row, array_col, list_ID). It has no region labels (``topdown.tl._expression_regions``
derives coarse ones from expression).
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
from scipy import sparse

from .._files import existing_path


def read_giotto_visium(path, *, condition_names: dict[str, str] | None = None) -> ad.AnnData:
    """AnnData with raw counts in ``X`` and ``layers['counts']``, ``obs['sample']`` (list_ID),
    ``obs['condition']`` (NP -> normal, CP -> cancer by default) and ``obsm['spatial']``.

    Examples
    --------
    >>> import topdown as td
    >>> adata = td.io.read_giotto_visium("../shared/data/visium_prostate_normal_vs_cancer")  # doctest: +SKIP
    """
    root = existing_path(path, "Giotto Visium folder")
    names = condition_names or {"NP": "normal", "CP": "cancer"}
    expr = pd.read_csv(existing_path(root / "expression_matrix.txt.gz", "expression matrix"), sep=" ",
                       index_col=0)
    meta = pd.read_csv(existing_path(root / "cell_metadata.txt", "cell metadata"), sep=" ", index_col=0)
    locs = pd.read_csv(existing_path(root / "spatial_locs.txt", "spatial locations"), sep=" ")
    locs = locs.set_index("cell_ID").reindex(expr.columns)
    meta = meta.reindex(expr.columns)
    X = sparse.csr_matrix(expr.to_numpy(dtype=np.int32).T)
    obs = pd.DataFrame({
        "sample": meta["list_ID"].astype(str).to_numpy(),
        "condition": meta["list_ID"].astype(str).map(names).fillna(meta["list_ID"].astype(str)).to_numpy(),
        "in_tissue": meta["in_tissue"].to_numpy(),
    }, index=expr.columns.astype(str))
    adata = ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=expr.index.astype(str)))
    adata.layers["counts"] = X.copy()
    adata.obsm["spatial"] = np.column_stack([locs["sdimx"].to_numpy(float), -locs["sdimy"].to_numpy(float)])
    return adata
