"""td.tl.pseudobulk: sums per (sample, region), filters, covariates, input forms."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

import topdown as td
from topdown.errors import InputError
from topdown.tl._pseudobulk import aggregate_counts


def _adata(n: int = 120, genes: int = 6, seed: int = 0, dense: bool = False) -> ad.AnnData:
    rng = np.random.default_rng(seed)
    X = rng.poisson(2.0, (n, genes)).astype(np.float32)
    sample = rng.choice(["s1", "s2", "s3"], n)
    obs = pd.DataFrame({"sample": sample, "region": rng.choice(["ctx", "hip", "outside"], n),
                        "sex": pd.Series(sample).map({"s1": "F", "s2": "M", "s3": "F"}).to_numpy(),
                        "depth": rng.random(n)}, index=[f"c{i}" for i in range(n)])
    return ad.AnnData(X=X if dense else sparse.csr_matrix(X), obs=obs,
                      var=pd.DataFrame(index=[f"g{i}" for i in range(genes)]))


@pytest.mark.parametrize("dense", [False, True])
def test_sums_match_groupby(dense):
    a = _adata(dense=dense)
    pb = td.tl.pseudobulk(a, "sample", "region", min_cells=1, min_counts=0)
    X = a.X.toarray() if sparse.issparse(a.X) else a.X
    expected = pd.DataFrame(X).groupby([a.obs["sample"].to_numpy(), a.obs["region"].to_numpy()]).sum()
    assert "outside" not in set(pb.obs["region"])
    assert len(pb) == 6
    for name, row in zip(pb.obs_names, pb.X.toarray(), strict=True):
        s, r = name.split("|")
        np.testing.assert_array_equal(row, expected.loc[(s, r)].to_numpy())
        assert pb.obs.loc[name, "n_cells"] == ((a.obs["sample"] == s) & (a.obs["region"] == r)).sum()
    assert np.issubdtype(pb.X.dtype, np.integer)
    np.testing.assert_array_equal(pb.layers["counts"].toarray(), pb.X.toarray())
    assert pb.uns["pseudobulk"]["layer"] == "X"


def test_covariates_carried_and_varying_ones_refused():
    a = _adata()
    pb = td.tl.pseudobulk(a, "sample", "region", min_cells=1, min_counts=0)
    assert "sex" in pb.obs and "depth" not in pb.obs
    assert (pb.obs.loc[pb.obs["sample"] == "s2", "sex"] == "M").all()
    with pytest.raises(InputError, match="varies within"):
        td.tl.pseudobulk(a, "sample", "region", min_cells=1, min_counts=0, obs_keys=["region", "depth"])


def test_min_cells_min_counts_and_gene_filter():
    a = _adata()
    a.obs.loc[a.obs_names[:100], "sample"] = "s1"  # s2/s3 keep few cells
    pb = td.tl.pseudobulk(a, "sample", "region", min_cells=15, min_counts=0)
    assert set(pb.obs["sample"]) == {"s1"}
    assert len(pb.uns["pseudobulk"]["dropped"]) > 0
    pb2 = td.tl.pseudobulk(a, "sample", "region", min_cells=1, min_counts=10**6)
    assert len(pb2) == 0
    X = a.X.toarray()
    X[:, 0] = 0
    a.X = sparse.csr_matrix(X)
    pb3 = td.tl.pseudobulk(a, "sample", "region", min_cells=1, min_counts=0, min_gene_counts=1)
    assert "g0" not in pb3.var_names and pb3.n_vars == 5


def test_refuses_non_integer_and_missing_keys():
    a = _adata()
    a.layers["counts"] = a.X.copy()
    a.X = a.X.astype(np.float64)
    a.X.data = np.log1p(a.X.data)
    pb = td.tl.pseudobulk(a, "sample", "region", min_cells=1, min_counts=0)  # uses layers['counts']
    assert pb.uns["pseudobulk"]["layer"] == "counts"
    with pytest.raises(InputError, match="non-integer"):
        td.tl.pseudobulk(a, "sample", "region", layer="X")
    with pytest.raises(InputError, match="obs\\['batch'\\] not found"):
        td.tl.pseudobulk(a, "batch", "region")
    with pytest.raises(InputError, match="layer 'nope'"):
        td.tl.pseudobulk(a, "sample", "region", layer="nope")


def test_list_of_files_labelled_by_name(tmp_path):
    a = _adata()
    paths = []
    for s in ["s1", "s2"]:
        part = a[a.obs["sample"] == s].copy()
        del part.obs["sample"]
        p = tmp_path / f"{s}.h5ad"
        part.write_h5ad(p)
        paths.append(p)
    pb = td.tl.pseudobulk(paths, "sample", "region", min_cells=1, min_counts=0)
    ref = td.tl.pseudobulk(a[a.obs["sample"].isin(["s1", "s2"])].copy(), "sample", "region",
                           min_cells=1, min_counts=0)
    np.testing.assert_array_equal(pb.X.toarray(), ref[pb.obs_names].X.toarray())


def test_aggregate_drops_negative_codes():
    X = sparse.csr_matrix(np.arange(12).reshape(4, 3))
    out = aggregate_counts(X, np.array([1, -1, 1, 0]), 2).toarray()
    np.testing.assert_array_equal(out, [[9, 10, 11], [6, 8, 10]])
