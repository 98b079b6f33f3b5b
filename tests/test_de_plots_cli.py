"""Region DE plots (Agg) and the `topdown de` command."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

import topdown as td  # noqa: E402
from topdown.cli import main  # noqa: E402
from topdown.errors import InputError  # noqa: E402
from topdown.sim.expression import expression_study  # noqa: E402


def _fake_results() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for region in ["cortex", "thalamus"]:
        for i in range(40):
            p = rng.random() * (1e-6 if i < 5 else 1)
            rows.append({"region": region, "group": "disease", "reference": "healthy", "gene": f"g{i}",
                         "log2fc": rng.normal(0, 2) if i < 5 else rng.normal(0, 0.3), "pvalue": p,
                         "padj": min(1, p * 40), "base_mean": 10.0, "exploratory": False})
    return pd.DataFrame(rows)


def test_volcano_grid_and_single(tmp_path):
    res = _fake_results()
    axes = td.pl.region_de(res, show=False)
    assert len(axes) == 2 and "cortex" in axes[0].get_title()
    fig, ax = plt.subplots()
    out = td.pl.region_de(res, region="thalamus", ax=ax, show=False, save=tmp_path / "v.png")
    assert out is ax and (tmp_path / "v.png").stat().st_size > 0
    assert len(ax.collections[0].get_offsets()) == 40
    with pytest.raises(InputError, match="not in the results"):
        td.pl.region_de(res, region="nope", show=False)
    plt.close("all")


def test_counts_bar_and_heatmap_from_table():
    res = _fake_results()
    ax = td.pl.region_de_counts(res, show=False, lfc=0.5)
    heights = [p.get_height() for p in ax.patches]
    sig = (res["padj"] < 0.05) & (res["log2fc"].abs() >= 0.5)
    assert sum(heights) == sig.sum()
    ax2 = td.pl.region_de_heatmap(res, n_top=3, show=False)
    assert ax2.images[0].get_array().shape[1] == 2
    with pytest.raises(InputError, match="no gene"):
        td.pl.region_de_heatmap(res.assign(padj=1.0), show=False)
    plt.close("all")


@pytest.fixture(scope="module")
def small_study():
    return expression_study(n_per_condition=2, regions=["a", "b"], n_genes=60, n_spots=200, depth=3000,
                            de_regions=["a"], frac_de=0.2, lfc_range=(2.0, 3.0), seed=3)


def test_cli_writes_csv_and_heatmap_with_conditions(small_study, tmp_path):
    paths = []
    for s in small_study.obs["sample"].cat.categories:
        p = tmp_path / f"{s}.h5ad"
        small_study[small_study.obs["sample"] == s].copy().write_h5ad(p)
        paths.append(str(p))
    out = tmp_path / "de.csv"
    code = main(["de", *paths, "--condition-key", "condition", "--sample-key", "sample",
                 "--reference", "healthy", "--out", str(out)])
    assert code == 0
    res = pd.read_csv(out)
    assert {"region", "gene", "log2fc", "pvalue", "padj", "base_mean"} <= set(res.columns)
    assert set(res["region"]) == {"a", "b"}
    assert not list(tmp_path.glob(".de.csv*"))  # no temporary left behind
    # heatmap across regions x conditions uses the data's pseudobulk
    res.attrs["params"] = {"condition_key": "condition", "sample_key": "sample", "region_key": "region",
                           "layer": "counts", "reference": "healthy"}
    ax = td.pl.region_de_heatmap(res, small_study, n_top=3, padj=0.5, show=False)
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ["a | healthy", "a | disease", "b | healthy", "b | disease"]
    plt.close("all")


def test_cli_refuses_single_replicates(small_study, tmp_path, capsys):
    one = small_study[small_study.obs["sample"].isin(["healthy_1", "disease_1"])].copy()
    path = tmp_path / "one.h5ad"
    one.write_h5ad(path)
    code = main(["de", str(path), "--condition-key", "condition", "--sample-key", "sample",
                 "--reference", "healthy", "--out", str(tmp_path / "x.csv")])
    assert code == 2
    err = capsys.readouterr().err
    assert "at least 2 biological samples" in err and "Traceback" not in err
    assert not (tmp_path / "x.csv").exists()
    code = main(["de", str(path), "--condition-key", "condition", "--sample-key", "sample",
                 "--reference", "healthy", "--out", str(path)])
    assert code == 2 and "refusing to overwrite" in capsys.readouterr().err


def test_cli_engine_and_named_contrast(small_study, tmp_path):
    path = tmp_path / "study.h5ad"
    small_study.write_h5ad(path)
    out = tmp_path / "de.csv"
    code = main(["de", str(path), "--condition-key", "condition", "--sample-key", "sample",
                 "--reference", "healthy", "--engine", "nbglm", "--contrast", "disease:healthy",
                 "--out", str(out)])
    assert code == 0
    res = pd.read_csv(out)
    assert set(res["group"]) == {"disease"} and set(res["reference"]) == {"healthy"}
    code = main(["de", str(path), "--condition-key", "condition", "--sample-key", "sample",
                 "--reference", "healthy", "--contrast", "drug:healthy", "--out", str(out)])
    assert code != 0
