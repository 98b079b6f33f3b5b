"""td.pl.regions on a synthetic annotated AnnData (no real data needed)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from test_assign_exact import make_adata  # noqa: E402

import topdown as td  # noqa: E402
from topdown.errors import InputError  # noqa: E402


@pytest.fixture
def annotated():
    rng = np.random.default_rng(0)
    a = make_adata(rng.uniform(0, 160, (50, 2)))
    td.tl.assign_regions(a, check_alignment="ignore")
    return a


def test_regions_returns_axes_and_draws(annotated):
    fig, ax = plt.subplots()
    out = td.pl.regions(annotated, ax=ax, show=False)
    assert out is ax
    # image + filled polygons + outlines + spots
    assert len(ax.images) == 1 and len(ax.collections) == 3
    spots = ax.collections[-1]
    assert spots.get_offsets().shape == (50, 2)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert {"A", "B", "C", "outside"} <= set(labels)
    # the image spans the full-res frame: 80 px / scalef 0.5 = 160
    assert ax.images[0].get_extent() == [0, 160.0, 160.0, 0]
    plt.close(fig)


def test_regions_save(annotated, tmp_path):
    p = tmp_path / "o.png"
    ax = td.pl.regions(annotated, save=p, legend=False)
    assert p.exists() and p.stat().st_size > 500 and ax.get_legend() is None
    plt.close("all")


def test_regions_without_assignment_and_errors(annotated):
    b = annotated.copy()
    del b.obs["region"]
    ax = td.pl.regions(b, show=False)
    assert len(ax.collections) == 2  # polygons only
    plt.close("all")
    with pytest.raises(InputError):
        td.pl.regions(annotated, library_id="nope", show=False)
