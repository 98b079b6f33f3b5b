"""Read the GiottoData-style Visium prostate subset (normal vs cancer) used to check region DE.

The folder holds ``expression_matrix.txt.gz`` (space-separated, genes x spots, raw counts),
``spatial_locs.txt`` (sdimx, sdimy; y negated) and ``cell_metadata.txt`` (in_tissue,
array_row, array_col, list_ID). It has no region labels, so :func:`expression_regions`
derives coarse regions from expression (k-means on PCA of log-normalised counts).
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
    >>> adata = read_giotto_visium("../shared/data/visium_prostate_normal_vs_cancer")  # doctest: +SKIP
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


def expression_regions(adata: ad.AnnData, n_regions: int = 3, *, sample_key: str = "sample",
                       key_added: str = "region", seed: int = 0) -> None:
    """Label spots by k-means on 20 PCs of log1p(CP10k) counts, jointly over all sections.

    The PCs are centred per section first (a crude batch correction), so clusters are tissue
    compartments found in every section rather than the sections themselves. A stand-in
    for anatomical regions where none are annotated (clusters ordered by size, named
    ``cluster_0`` ...); sets ``obs[key_added]`` (categorical).
    """
    from sklearn.cluster import KMeans
    from sklearn.decomposition import TruncatedSVD

    X = sparse.csr_matrix(adata.layers["counts"] if "counts" in adata.layers else adata.X, dtype=np.float64)
    lib = np.asarray(X.sum(axis=1)).ravel()
    X = sparse.diags(1e4 / np.maximum(lib, 1)) @ X
    X.data = np.log1p(X.data)
    pcs = TruncatedSVD(n_components=20, random_state=seed).fit_transform(X)
    sample = adata.obs[sample_key].astype(str).to_numpy()
    for s in np.unique(sample):
        pcs[sample == s] -= pcs[sample == s].mean(axis=0)
    labels = KMeans(n_clusters=n_regions, n_init=4, random_state=seed).fit_predict(pcs)
    order = np.argsort(-np.bincount(labels, minlength=n_regions))
    rank = np.empty(n_regions, dtype=int)
    rank[order] = np.arange(n_regions)
    adata.obs[key_added] = pd.Categorical([f"cluster_{rank[k]}" for k in labels],
                                          categories=[f"cluster_{i}" for i in range(n_regions)])
