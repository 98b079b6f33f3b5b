"""The demo's cell counts: counting frames on a systematic grid, rendered as windows of the section."""

from __future__ import annotations

import numpy as np
import pytest
from shapely.geometry import box

import topdown as td
from topdown._demo.nuclei import FRAME_PIXEL_SIZE_UM, count_region, frame_centres, mosaic
from topdown._demo.study import StudyConfig, StudySample
from topdown.errors import InputError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def section():
    return td.sim.layout(td.sim.load_preset("mouse_brain_coronal"), 5, size=96, condition="pathological")


def test_frame_centres_are_a_seeded_grid_inside_the_region():
    mask = np.zeros((100, 100), bool)
    mask[10:50, 20:90] = True  # 2,800 px
    a = frame_centres(mask, 20.0, 16, np.random.default_rng(1))
    assert 10 <= len(a) <= 24
    rows, cols = (a[:, 1] / 20.0).astype(int), (a[:, 0] / 20.0).astype(int)
    assert mask[rows, cols].all()
    assert np.array_equal(a, frame_centres(mask, 20.0, 16, np.random.default_rng(1)))
    spaced = frame_centres(mask, 20.0, 16, np.random.default_rng(1), frame_um=300.0)  # frames never overlap
    gaps = np.abs(spaced[:, None] - spaced[None]).max(axis=2) + np.eye(len(spaced)) * 1e9
    assert len(spaced) < len(a) and gaps.min() >= 300.0 - 1e-6
    tiny = np.zeros((100, 100), bool)
    tiny[5, 5] = True  # a region under one frame: exactly one frame, on it
    one = frame_centres(tiny, 20.0, 16, np.random.default_rng(0), frame_um=100.0)
    assert one.shape == (1, 2) and np.all((one >= 100.0) & (one < 120.0))
    assert frame_centres(np.zeros((5, 5), bool), 1.0, 4, np.random.default_rng(0)).shape == (0, 2)


def test_window_is_the_same_tissue_moved_to_its_origin(section):
    x0, y0 = 0.4 * section.width_um, 0.4 * section.height_um
    win = section.window(x0, y0, 200.0, 150.0, pixel_size_um=0.5)
    assert win.shape == (300, 400) and win.pixel_size_um == 0.5
    c, w = section.cells, win.cells
    strictly = c["x_um"].between(x0, x0 + 200, inclusive="left") & c["y_um"].between(y0, y0 + 150, inclusive="left")
    inside = w["x_um"].between(0, 200, inclusive="left") & w["y_um"].between(0, 150, inclusive="left")
    assert int(strictly.sum()) == int(inside.sum()) > 0
    assert np.allclose(np.sort(w.loc[inside, "x_um"] + x0), np.sort(c.loc[strictly, "x_um"]))
    frame = box(x0, y0, x0 + 200, y0 + 150)
    for name, g in win.regions.items():
        assert g.area == pytest.approx(section.regions[name].intersection(frame).area)
        assert g.is_empty or min(g.bounds[:2]) >= -1e-6
    lesion = section.params.get("lesion")
    if lesion:  # the renderer reads the lesion centre from the region style: moved with the window
        moved = win.region_style[lesion["region"]]["lesion"]["centre_um"]
        assert moved == pytest.approx([lesion["centre_um"][0] - x0, lesion["centre_um"][1] - y0])
    with pytest.raises(InputError, match="window size must be positive.*above 0"):
        section.window(0, 0, 0, 10)


def test_mosaic_keeps_each_frames_nuclei_in_its_tile(section):
    corners = np.array([[0.3, 0.3], [0.5, 0.5], [0.6, 0.3]]) * [section.width_um, section.height_um]
    scene, offsets = mosaic(section, corners, 60.0, 12.0, FRAME_PIXEL_SIZE_UM)
    assert scene.width_um == pytest.approx(12 + 2 * 72) and scene.height_um == pytest.approx(12 + 2 * 72)
    x, y = scene.cells["x_um"].to_numpy(), scene.cells["y_um"].to_numpy()
    tile = np.zeros(len(x), int) - 1
    for j, (ox, oy) in enumerate(offsets):
        tile[(x >= ox) & (x < ox + 60) & (y >= oy) & (y < oy + 60)] = j
    assert (tile >= 0).all()  # every nucleus centre in a frame, none in the glass between
    for j, ((cx, cy), n) in enumerate(zip(corners, np.bincount(tile, minlength=3), strict=True)):
        c = section.cells
        assert n == int((c["x_um"].between(cx, cx + 60, inclusive="left")
                         & c["y_um"].between(cy, cy + 60, inclusive="left")).sum()), j


def test_count_region_counts_found_and_true_nuclei_in_the_region(section):
    pred = td.sim.region_mask(section)
    label = section.classes.index("thalamus") + 1
    sample = StudySample("s", "healthy", section, np.zeros((*section.shape, 3), np.uint8), pred, None,
                         {"seed": 1})
    config = StudyConfig(nuclei_frame_px=96, samples=1)
    centres = frame_centres(pred == label, section.pixel_size_um, 3, np.random.default_rng(0))
    res = count_region(sample, pred, label, centres, config, td.seg.load("nuclei_he", kind="nuclei"), seed=1)
    assert res["n_frames"] == len(centres) and res["area_mm2"] > 0
    assert res["n_true"] > 0 and 0.5 * res["n_true"] <= res["n_nuclei"] <= 1.5 * res["n_true"]
    assert res["image"].shape[:2] == res["inside"].shape == res["found"].shape
