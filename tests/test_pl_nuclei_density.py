"""td.pl.nuclei_density: one panel per region, a dot per sample at its nuclei per mm², test results in the titles."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

import topdown as td  # noqa: E402
from topdown.errors import InputError  # noqa: E402


@pytest.fixture
def table() -> pd.DataFrame:
    """Three samples per condition; CA loses half its nuclei in 'lesion', cortex is unchanged."""
    rows = []
    for i, (cond, ca) in enumerate([("ctrl", 100), ("ctrl", 110), ("ctrl", 95), ("lesion", 50), ("lesion", 55),
                                    ("lesion", 45)]):
        rows.append({"sample": f"s{i}", "condition": cond, "region": "CA", "n_nuclei": ca, "area_mm2": 0.5,
                     "n_true": ca + 5})
        rows.append({"sample": f"s{i}", "condition": cond, "region": "cortex", "n_nuclei": 200 + i, "area_mm2": 1.0,
                     "n_true": 210})
    return pd.DataFrame(rows)


def _dots(ax) -> list[np.ndarray]:
    """The (x, y) offsets of each scatter on ``ax``, in drawing order."""
    from matplotlib.collections import PathCollection

    return [np.asarray(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection)]


def test_panels_dots_and_titles(table, tmp_path):
    res = td.tl.nuclei_density_test(table, reference="lesion")
    axes = td.pl.nuclei_density(table, res, truth_key="n_true", save=tmp_path / "d.png", show=False)
    assert (tmp_path / "d.png").stat().st_size > 5000
    assert [ax.get_title().split("\n")[0] for ax in axes] == ["CA", "cortex"]
    ca = res.set_index("region").loc["CA"]
    assert axes[0].get_title() == f"CA\nratio {ca['density_ratio']:.2f}, padj {ca['padj']:.3f}"
    # the reference condition comes first; its three samples at x = 0 +/- 0.12, y = nuclei / area
    assert [t.get_text() for t in axes[0].get_xticklabels()] == ["lesion", "ctrl"]
    found_lesion, true_lesion, found_ctrl, _ = _dots(axes[0])
    np.testing.assert_allclose(found_lesion, [[-0.12, 100], [0.0, 110], [0.12, 90]])
    np.testing.assert_allclose(true_lesion[:, 1], [110, 120, 100])
    np.testing.assert_allclose(found_ctrl[:, 1], [200, 220, 190])
    # the pooled density of each condition (what the count model compares) as a bar
    from matplotlib.collections import LineCollection

    bars = [seg for coll in axes[0].collections if isinstance(coll, LineCollection) for seg in coll.get_segments()]
    np.testing.assert_allclose(sorted(b[0][1] for b in bars), [100, 610 / 3])
    plt.close("all")


def test_regions_and_defaults(table):
    axes = td.pl.nuclei_density(table, regions="cortex", show=False)
    assert len(axes) == 1 and axes[0].get_title() == "cortex"  # no results: no test line
    assert [t.get_text() for t in axes[0].get_xticklabels()] == ["ctrl", "lesion"]
    assert axes[0].get_legend() is None  # no truth column: nothing to tell apart
    plt.close("all")


def test_bad_input_is_named(table):
    with pytest.raises(InputError, match=r"lacks column\(s\) \['n_true'\]"):
        td.pl.nuclei_density(table.drop(columns="n_true"), truth_key="n_true", show=False)
    with pytest.raises(InputError, match="not in the table's 'region' column"):
        td.pl.nuclei_density(table, regions=["thalamus"], show=False)
    with pytest.raises(InputError, match="positive areas"):
        td.pl.nuclei_density(table.assign(area_mm2=0.0), show=False)
    with pytest.raises(InputError, match="reference 'sham' is not a value"):
        td.pl.nuclei_density(table, reference="sham", show=False)
