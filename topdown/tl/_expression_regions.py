"""Coarse regions from expression, for data without region labels (e.g. the Giotto prostate set)."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
from scipy import sparse


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
