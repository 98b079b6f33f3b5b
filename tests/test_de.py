"""td.tl.region_de: replicate-aware pseudobulk DESeq2, refusals, exploratory Wilcoxon, real data."""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pytest

import topdown as td
from topdown.errors import InputError
from topdown.sim.expression import expression_study
from topdown.tl._region_de import COLUMNS, ExploratoryWarning, results_table


def _study(**kw):
    args = dict(n_per_condition=3, regions=["a", "b", "c"], n_genes=120, n_spots=300, depth=3000,
                de_regions=["a"], frac_de=0.1, lfc_range=(1.5, 2.5), sample_sd=0.2, seed=11)
    args.update(kw)
    return expression_study(**args)


@pytest.fixture(scope="module")
def sim():
    return _study()


@pytest.fixture(scope="module")
def result(sim):
    adata = sim.copy()
    res = td.tl.region_de(adata, condition_key="condition", sample_key="sample", reference="healthy")
    return adata, res


def test_planted_effects_found_with_few_false_calls(sim, result):
    _, res = result
    assert list(res.columns) == list(COLUMNS)
    assert set(res["region"]) == {"a", "b", "c"}
    assert (res["n_samples_group"] == 3).all() and (res["n_samples_reference"] == 3).all()
    assert not res["exploratory"].any() and res.attrs["exploratory"] is False
    a = res[res["region"] == "a"].set_index("gene")
    called = a.index[a["padj"] < 0.05]
    truth = sim.var["de_a"]
    tp = int(truth.loc[called].sum())
    assert tp >= 0.6 * truth.sum()
    assert (len(called) - tp) <= max(2, 0.2 * len(called))
    # the sign of the estimated fold change follows the planted one
    both = called[truth.loc[called].to_numpy()]
    assert (np.sign(a.loc[both, "log2fc"]) == np.sign(sim.var.loc[both, "lfc_a"])).all()
    # regions without planted effects: (almost) nothing called
    assert (res.loc[res["region"] != "a", "padj"] < 0.05).sum() <= 2


def test_results_stored_h5ad_serialisable(result, tmp_path):
    adata, res = result
    rec = adata.uns["region_de"]
    assert rec["params"]["method"] == "deseq2" and rec["params"]["design"] == "~ condition"
    path = tmp_path / "de.h5ad"
    adata.write_h5ad(path)
    back = results_table(ad.read_h5ad(path))
    assert list(back.columns) == list(COLUMNS)
    np.testing.assert_allclose(back["pvalue"].to_numpy(float), res["pvalue"].to_numpy(float))
    assert list(back["gene"]) == list(res["gene"])


def test_refuses_one_sample_per_condition(sim):
    one = sim[sim.obs["sample"].isin(["healthy_1", "disease_1"])].copy()
    with pytest.raises(InputError, match="at least 2 biological samples per condition") as err:
        td.tl.region_de(one, reference="healthy")
    assert "method='wilcoxon'" in str(err.value)
    assert "region_de" not in one.uns  # nothing half-written


def test_refuses_lognormalised_and_non_integer(sim):
    norm = sim.copy()
    del norm.layers["counts"]
    norm.X = norm.X.astype(np.float32)
    norm.X.data = np.log1p(norm.X.data)
    with pytest.raises(InputError, match="raw integer counts"):
        td.tl.region_de(norm, reference="healthy")
    frac = sim.copy()
    frac.layers["counts"] = frac.layers["counts"].astype(np.float64) * 1.5
    with pytest.raises(InputError, match="non-integer"):
        td.tl.region_de(frac, reference="healthy")


@pytest.mark.parametrize("kwargs, match", [
    ({"reference": "control"}, "reference 'control'"),
    ({"region_key": "area"}, "obs\\['area'\\] not found"),
    ({"design": "~ sex"}, "does not contain the condition"),
    ({"design": "~ batch + condition"}, "obs\\['batch'\\] not found"),
    ({"method": "ttest"}, "not known"),
])
def test_bad_arguments_are_explained(sim, kwargs, match):
    args = {"reference": "healthy", **kwargs}
    with pytest.raises(InputError, match=match):
        td.tl.region_de(sim, **args)


def test_confounded_covariate_refused(sim):
    conf = sim.copy()
    conf.obs["batch"] = conf.obs["condition"].astype(str)
    with pytest.raises(InputError, match="not full rank"):
        td.tl.region_de(conf, reference="healthy", design="~ batch + condition", regions=["a"])


def test_lfc_shrink_keeps_pvalues_and_shrinks(sim, result):
    _, plain = result
    plain = plain[plain["region"] == "a"].set_index("gene")
    shrunk = td.tl.region_de(sim, reference="healthy", regions=["a"], key_added=None, lfc_shrink=True)
    assert "region_de" not in sim.uns
    np.testing.assert_allclose(shrunk["pvalue"].to_numpy(float),
                               plain.loc[shrunk["gene"], "pvalue"].to_numpy(float))
    mle = plain.loc[shrunk["gene"], "log2fc"].to_numpy(float)
    assert np.nanmedian(np.abs(shrunk["log2fc"].to_numpy(float))) < np.nanmedian(np.abs(mle))


def test_design_with_covariate(sim):
    res = td.tl.region_de(sim, reference="healthy", regions=["a"], key_added=None,
                          design="~ sex + condition")
    called = res.loc[res["padj"] < 0.05, "gene"]
    assert sim.var.loc[called, "de_a"].mean() > 0.8 and len(called) >= 5


def test_wilcoxon_is_exploratory(sim):
    with pytest.warns(ExploratoryWarning, match="exploratory"):
        res = td.tl.region_de(sim, reference="healthy", method="wilcoxon", regions=["a", "b"],
                              key_added="de_explore")
    assert res["exploratory"].all() and res.attrs["exploratory"] is True
    assert sim.uns["de_explore"]["params"]["exploratory"]
    assert (res["n_cells_group"] > 100).all()
    del sim.uns["de_explore"]


def test_list_of_files_one_per_sample(sim, result, tmp_path):
    paths = []
    for s in sim.obs["sample"].cat.categories:
        p = tmp_path / f"{s}.h5ad"
        sim[sim.obs["sample"] == s].copy().write_h5ad(p)
        paths.append(str(p))
    res = td.tl.region_de(paths, reference="healthy", regions=["b"])
    ref = result[1][result[1]["region"] == "b"]
    np.testing.assert_allclose(res.set_index("gene").loc[ref["gene"], "pvalue"].to_numpy(float),
                               ref["pvalue"].to_numpy(float), rtol=1e-6)


def test_prostate_normal_vs_cancer(prostate_visium):
    from topdown.io import read_giotto_visium
    from topdown.tl._expression_regions import expression_regions

    adata = read_giotto_visium(prostate_visium)
    expression_regions(adata, n_regions=3, seed=0)
    assert set(adata.obs["condition"]) == {"normal", "cancer"}
    with pytest.raises(InputError, match="found normal: 1 \\(NP\\); cancer: 1 \\(CP\\)"):
        td.tl.region_de(adata, reference="normal")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExploratoryWarning)
        res = td.tl.region_de(adata, reference="normal", method="wilcoxon", regions=["cluster_2"])
    assert res["exploratory"].all() and len(res) == adata.n_vars
    assert (res["n_samples_group"] == 1).all()
    assert res["padj"].notna().all() and (res["padj"] < 0.05).any()
