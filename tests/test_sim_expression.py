"""td.sim.expression: NB counts with region effects, sample effects and planted DE truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

import topdown as td
from topdown.errors import InputError
from topdown.sim.expression import expression_study


def _obs(n_per_sample: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for cond, k in [("healthy", 1), ("healthy", 2), ("disease", 1), ("disease", 2)]:
        frames.append(pd.DataFrame({"sample": f"{cond}{k}", "condition": cond,
                                    "region": rng.choice(["a", "b"], n_per_sample),
                                    "cell_type": rng.choice(["n", "g"], n_per_sample)}))
    obs = pd.concat(frames, ignore_index=True)
    obs.index = obs.index.astype(str)
    return obs


def test_shapes_truth_and_integer_counts():
    obs = _obs()
    sim = td.sim.expression(obs, n_genes=300, de_regions=["a"], frac_de=0.1, seed=1,
                            cell_type_key="cell_type")
    assert sim.shape == (len(obs), 300)
    assert sparse.isspmatrix_csr(sim.X) and np.issubdtype(sim.X.dtype, np.integer)
    assert (sim.layers["counts"] != sim.X).nnz == 0
    assert sim.var["de_a"].sum() == 30 and sim.var["de_b"].sum() == 0
    lfc = sim.var.loc[sim.var["de_a"], "lfc_a"].abs()
    assert lfc.between(1.0, 2.0).all()
    assert (sim.obs["region"].to_numpy() == obs["region"].to_numpy()).all()
    assert sim.uns["sim_expression"]["de_regions"] == ["a"]
    assert 500 < sim.X.sum(axis=1).mean() < 2000  # depth=1000 on average


def test_seed_reproducible():
    obs = _obs(50)
    a = td.sim.expression(obs, n_genes=50, seed=3)
    b = td.sim.expression(obs, n_genes=50, seed=3)
    c = td.sim.expression(obs, n_genes=50, seed=4)
    assert (a.X != b.X).nnz == 0
    assert (a.X != c.X).nnz > 0


def test_planted_fold_changes_are_visible():
    sim = expression_study(n_per_condition=2, regions=["a", "b"], n_genes=200, n_spots=600,
                           de_regions=["a"], frac_de=0.2, lfc_range=(1.5, 2.5), sample_sd=0.05,
                           depth=5000, seed=2)
    X = sim.X.toarray() / sim.obs["size_factor"].to_numpy()[:, None]
    in_a = (sim.obs["region"] == "a").to_numpy()
    dis = (sim.obs["condition"] == "disease").to_numpy()
    de = sim.var["de_a"].to_numpy() & (sim.var["base_mean"].to_numpy() > 2)
    obs_lfc = np.log2((X[in_a & dis][:, de].mean(0) + 0.1) / (X[in_a & ~dis][:, de].mean(0) + 0.1))
    assert np.corrcoef(obs_lfc, sim.var.loc[de, "lfc_a"])[0, 1] > 0.9
    # region b carries no planted effect
    obs_b = np.log2((X[~in_a & dis][:, de].mean(0) + 0.1) / (X[~in_a & ~dis][:, de].mean(0) + 0.1))
    assert np.abs(obs_b).mean() < 0.5 * np.abs(obs_lfc).mean()


def test_sample_random_effects_add_between_sample_variance():
    def between_sample_cv(sd):
        sim = expression_study(n_per_condition=4, regions=["a"], n_genes=100, n_spots=300,
                               frac_de=0.0, sample_sd=sd, depth=3000, seed=5)
        pb = td.tl.pseudobulk(sim, "sample", "region", min_cells=1, min_counts=1)
        X = pb.X.toarray().astype(float)
        X = X / X.sum(1, keepdims=True)
        high = sim.var["base_mean"].to_numpy() > 5
        return np.median(X[:, high].std(0) / X[:, high].mean(0))

    assert between_sample_cv(0.5) > 2 * between_sample_cv(0.0)


def test_cell_loss_removes_cells_or_lowers_counts():
    obs = _obs(400)
    cells = td.sim.expression(obs, n_genes=30, cell_loss={"a": 0.5}, seed=0)
    dis_a = ((cells.obs["condition"] == "disease") & (cells.obs["region"] == "a")).sum()
    before = ((obs["condition"] == "disease") & (obs["region"] == "a")).sum()
    assert 0.35 * before < dis_a < 0.65 * before
    assert len(cells) < len(obs)
    spots = td.sim.expression(obs, n_genes=30, cell_loss={"a": 0.5}, cells_per_spot=8, seed=0)
    tot = np.asarray(spots.X.sum(axis=1)).ravel()
    o = spots.obs
    lesion = ((o["condition"] == "disease") & (o["region"] == "a")).to_numpy()
    ctrl = ((o["condition"] == "healthy") & (o["region"] == "a")).to_numpy()
    assert tot[lesion].mean() < 0.7 * tot[ctrl].mean()
    assert o.loc[lesion, "n_cells"].mean() < 0.7 * o.loc[ctrl, "n_cells"].mean()


@pytest.mark.parametrize("kwargs", [{"de_regions": ["nope"]}, {"frac_de": 2.0}, {"region_key": "x"},
                                    {"lfc_range": (2, 1)}, {"cell_loss": {"a": 1.5}}])
def test_bad_input_is_refused(kwargs):
    with pytest.raises(InputError):
        td.sim.expression(_obs(20), n_genes=10, **kwargs)


def test_focal_lesion_loses_cells_and_switches_on_its_program():
    n = 600
    obs = pd.DataFrame({"region": ["cortex"] * n, "sample": ["p1"] * (n // 2) + ["h1"] * (n // 2),
                        "condition": ["sick"] * (n // 2) + ["healthy"] * (n // 2)})
    obs["in_lesion"] = False
    obs.loc[obs.index[:100], "in_lesion"] = True
    plain = td.sim.expression(obs.drop(columns="in_lesion"), n_genes=200, cells_per_spot=10, seed=4)
    sim = td.sim.expression(obs, n_genes=200, cells_per_spot=10, lesion_key="in_lesion", seed=4)
    les = sim.obs["in_lesion"].to_numpy()
    assert sim.obs["n_cells"][les].mean() < 0.5 * sim.obs["n_cells"][~les].mean()
    genes = sim.var["lesion_gene"].to_numpy()
    assert genes.sum() == 4
    X = np.asarray(sim.X.todense(), dtype=float)
    frac = X / X.sum(axis=1, keepdims=True)
    assert (frac[les][:, genes].mean(0) > 2 * frac[~les][:, genes].mean(0)).all()
    with pytest.raises(td.TopdownError, match="lesion_key 'nope'"):
        td.sim.expression(obs, n_genes=10, lesion_key="nope")
    assert plain.n_obs == n  # without a lesion, nothing changes
