"""Region DE engines: the batched nbglm engine against PyDESeq2, contrasts, paired designs, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

import topdown as td
from topdown.errors import InputError
from topdown.sim.expression import expression_study
from topdown.tl import _nbglm as nb
from topdown.tl._de_engines import ENGINES


def _study(**kw):
    args = dict(n_per_condition=3, regions=["a", "b"], n_genes=100, n_spots=300, depth=3000,
                de_regions=["a"], frac_de=0.15, lfc_range=(1.0, 2.5), sample_sd=0.2, seed=5)
    args.update(kw)
    return expression_study(**args)


def _agreement(x: pd.DataFrame, y: pd.DataFrame) -> tuple[float, float, int]:
    keys = ["region", "group", "reference", "gene"]
    both = x.merge(y, on=keys, suffixes=("_x", "_y"))
    assert len(both) == len(x) == len(y)
    fin = np.isfinite(both["log2fc_x"]) & np.isfinite(both["log2fc_y"])
    r = np.corrcoef(both.loc[fin, "log2fc_x"], both.loc[fin, "log2fc_y"])[0, 1]
    cx, cy = set(both.index[both["padj_x"] < 0.05]), set(both.index[both["padj_y"] < 0.05])
    return float(r), len(cx & cy) / max(1, len(cx | cy)), len(cx)


@pytest.fixture(scope="module")
def sim():
    return _study()


def test_engines_registered():
    assert {"nbglm", "pydeseq2"} <= set(ENGINES)


def test_nbglm_reproduces_pydeseq2(sim):
    fast = td.tl.region_de(sim, reference="healthy", key_added=None)
    ref = td.tl.region_de(sim, reference="healthy", key_added=None, engine="pydeseq2")
    assert fast.attrs["params"]["engine"] == "nbglm" and ref.attrs["params"]["engine"] == "pydeseq2"
    r, jaccard, n_calls = _agreement(fast, ref)
    assert r >= 0.99 and jaccard >= 0.95 and n_calls >= 8
    called = fast.loc[fast["padj"] < 0.05]
    assert sim.var.loc[called.loc[called["region"] == "a", "gene"], "de_a"].mean() >= 0.8
    assert (called["region"] == "b").sum() <= 1
    both = fast.merge(ref, on=["region", "group", "gene"])
    np.testing.assert_allclose(both["base_mean_x"], both["base_mean_y"], rtol=1e-6)
    np.testing.assert_allclose(both["lfc_se_x"], both["lfc_se_y"], rtol=0.05)


def test_multilevel_contrasts_agree_with_pydeseq2():
    sim3 = _study(conditions=("healthy", "drugA", "drugB"), regions=["a"], n_genes=80, seed=6)
    pairs = [("drugA", "healthy"), "drugB vs drugA"]
    fast = td.tl.region_de(sim3, reference="healthy", contrasts=pairs, key_added=None)
    assert set(zip(fast["group"], fast["reference"], strict=True)) == {("drugA", "healthy"), ("drugB", "drugA")}
    assert (fast.groupby(["group", "reference"]).size() == fast["gene"].nunique()).all()
    assert (fast["n_samples_group"] == 3).all() and (fast["n_samples_reference"] == 3).all()
    ref = td.tl.region_de(sim3, reference="healthy", contrasts=pairs, key_added=None, engine="pydeseq2")
    r, jaccard, _ = _agreement(fast, ref)
    assert r >= 0.99 and jaccard >= 0.95
    # the default is every other level against the reference
    default = td.tl.region_de(sim3, reference="healthy", key_added=None)
    assert set(default["group"]) == {"drugA", "drugB"} and set(default["reference"]) == {"healthy"}


def test_paired_design(sim):
    paired = sim.copy()
    paired.obs["donor"] = paired.obs["sample"].astype(str).str.split("_").str[-1]
    res = td.tl.region_de(paired, reference="healthy", pair_key="donor", regions=["a"], key_added=None)
    assert res.attrs["params"]["design"] == "~ donor + condition"
    called = res.loc[res["padj"] < 0.05, "gene"]
    assert len(called) >= 5 and sim.var.loc[called, "de_a"].mean() >= 0.8
    ref = td.tl.region_de(paired, reference="healthy", pair_key="donor", regions=["a"], key_added=None,
                          engine="pydeseq2")
    r, jaccard, _ = _agreement(res, ref)
    assert r >= 0.99 and jaccard >= 0.9  # ~15 calls on 2 residual df: one borderline gene is 0.06


@pytest.mark.parametrize("kwargs, match", [
    ({"contrasts": [("drug", "healthy")]}, "contrast .* must name two different values"),
    ({"contrasts": ["disease vs disease"]}, "must name two different values"),
    ({"engine": "edger"}, "engine='edger' is not known"),
    ({"pair_key": "donor"}, r"obs\['donor'\] not found"),
])
def test_bad_contrasts_and_engines_are_one_line_errors(sim, kwargs, match):
    with pytest.raises(InputError, match=match) as err:
        td.tl.region_de(sim, reference="healthy", key_added=None, **kwargs)
    assert "\n" not in str(err.value)


def test_region_in_one_condition_is_a_note_not_a_crash(sim):
    one = sim[~((sim.obs["region"] == "b") & (sim.obs["condition"] == "disease"))].copy()
    res = td.tl.region_de(one, reference="healthy", key_added=None)
    assert set(res["region"]) == {"a"}
    assert "b" in res.attrs["skipped"] and "need 2 each" in res.attrs["skipped"]["b"]


def test_design_not_full_rank_in_one_region_is_a_note(sim):
    batch = {"healthy_1": "x", "healthy_2": "x", "disease_1": "x", "healthy_3": "y", "disease_2": "y",
             "disease_3": "y"}
    conf = sim.copy()
    conf.obs["batch"] = conf.obs["sample"].astype(str).map(batch)
    # in region b only healthy_1/2 (batch x) and disease_2/3 (batch y) remain: batch == condition
    drop = (conf.obs["region"] == "b") & conf.obs["sample"].isin(["healthy_3", "disease_1"])
    conf = conf[~drop.to_numpy()].copy()
    res = td.tl.region_de(conf, reference="healthy", design="~ batch + condition", key_added=None)
    assert set(res["region"]) == {"a"} and "not full rank" in res.attrs["skipped"]["b"]
    with pytest.raises(InputError, match="no region could be tested.*not full rank"):
        td.tl.region_de(conf, reference="healthy", design="~ batch + condition", regions=["b"],
                        key_added=None)


def test_all_zero_genes_are_nan_rows(sim):
    zero = sim.copy()
    for key in ["X", *zero.layers.keys()]:
        dense = (zero.X if key == "X" else zero.layers[key]).toarray()
        dense[:, :3] = 0
        if key == "X":
            zero.X = sparse.csr_matrix(dense)
        else:
            zero.layers[key] = sparse.csr_matrix(dense)
    res = td.tl.region_de(zero, reference="healthy", key_added=None, min_gene_counts=0, regions=["a"])
    rows = res[res["gene"].isin(zero.var_names[:3])]
    assert len(rows) == 3 and rows["pvalue"].isna().all() and (rows["base_mean"] == 0).all()
    assert res.loc[~res["gene"].isin(zero.var_names[:3]), "pvalue"].notna().mean() > 0.9


def test_batched_fit_equals_region_by_region():
    rng = np.random.default_rng(3)
    X = np.column_stack([np.ones(8), np.repeat([0.0, 1.0], 4)])
    blocks = [rng.negative_binomial(5, 0.05, size=(8, 40)).astype(float) + 1 for _ in range(2)]
    sfs = [np.repeat(nb.size_factors(y)[:, None], y.shape[1], 1) for y in blocks]
    both, _ = nb.fit(nb.Batch(np.hstack(blocks), np.hstack(sfs), X, np.repeat([0, 1], 40)))
    for s, (y, sf) in enumerate(zip(blocks, sfs, strict=True)):
        alone, _ = nb.fit(nb.Batch(y, sf, X, np.zeros(40, dtype=int)))
        np.testing.assert_allclose(both.beta[s * 40:(s + 1) * 40], alone.beta, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(both.disp[s * 40:(s + 1) * 40], alone.disp, rtol=1e-8)


def test_small_inverse_matches_numpy():
    rng = np.random.default_rng(0)
    for p in (1, 2, 3, 5):
        A = rng.normal(size=(20, p, p))
        M = A @ A.transpose(0, 2, 1) + p * np.eye(p)
        np.testing.assert_allclose(nb._inv(M), np.linalg.inv(M), rtol=1e-8, atol=1e-10)


def test_lfc_shrink_matches_pydeseq2(sim):
    fast = td.tl.region_de(sim, reference="healthy", regions=["a"], key_added=None, lfc_shrink=True)
    ref = td.tl.region_de(sim, reference="healthy", regions=["a"], key_added=None, lfc_shrink=True,
                          engine="pydeseq2")
    both = fast.merge(ref, on=["region", "group", "gene"])
    assert np.corrcoef(both["log2fc_x"], both["log2fc_y"])[0, 1] >= 0.999
    assert np.abs(both["log2fc_x"] - both["log2fc_y"]).max() < 0.05
    fin = both["pvalue_x"].notna() & both["pvalue_y"].notna()
    logp = np.log10(both.loc[fin, ["pvalue_x", "pvalue_y"]].to_numpy(float))
    assert np.corrcoef(logp.T)[0, 1] >= 0.999


def test_a_failing_batch_is_a_note_and_the_rest_is_kept(sim, monkeypatch):
    from topdown.tl import _de_engines

    real = _de_engines._nbglm_batch

    def flaky(jobs, opts):
        if jobs[0].region == "b":
            raise np.linalg.LinAlgError("Singular matrix")
        return real(jobs, opts)

    monkeypatch.setattr(_de_engines, "_nbglm_batch", flaky)
    sub = sim[~((sim.obs["region"] == "b") & (sim.obs["sample"] == "healthy_3"))].copy()  # b: own batch
    res = td.tl.region_de(sub, reference="healthy", key_added=None)
    assert set(res["region"]) == {"a"} and "Singular matrix" in res.attrs["skipped"]["b"]


def test_cooks_outliers_replaced_and_refit_as_pydeseq2():
    """>= 7 replicates per condition: outlier counts are replaced and the genes refitted."""
    from topdown.tl._de_deseq import check_design
    from topdown.tl._de_engines import EngineOptions, RegionJob

    rng = np.random.default_rng(1)
    n, genes = 16, 80
    cond = np.repeat(["healthy", "disease"], n // 2)
    meta = pd.DataFrame({"condition": pd.Categorical(cond, categories=["healthy", "disease"])},
                        index=[f"s{i}" for i in range(n)])
    base = np.exp(rng.normal(4, 1, genes))
    lfc = np.where(np.arange(genes) < 10, 1.5, 0.0)
    mu = base * np.exp2(np.outer(cond == "disease", lfc)) * rng.uniform(0.7, 1.3, (n, 1))
    y = rng.negative_binomial(10, 10 / (10 + mu))
    y[0, 20:25] *= 40  # outliers in one sample
    counts = pd.DataFrame(y, index=meta.index, columns=[f"g{i}" for i in range(genes)])
    job = RegionJob("r", counts, meta, check_design(meta, "~ condition", "condition"), [("disease", "healthy")])
    opts = EngineOptions("~ condition", "condition")
    fast = ENGINES["nbglm"]([job], opts)[0]["r"].set_index("gene")
    ref = ENGINES["pydeseq2"]([job], opts)[0]["r"].set_index("gene").loc[fast.index]
    assert np.corrcoef(fast["log2fc"], ref["log2fc"])[0, 1] >= 0.999
    np.testing.assert_allclose(fast["log2fc"], ref["log2fc"], atol=0.02)
    np.testing.assert_array_equal(fast["pvalue"].isna(), ref["pvalue"].isna())
    np.testing.assert_allclose(fast["base_mean"], ref["base_mean"], rtol=1e-6)
