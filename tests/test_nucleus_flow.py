"""Step-field nucleus design: targets, turned targets, instances from steps, training and inference."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import topdown as td
from topdown.errors import InputError
from topdown.seg import nuclei_infer
from topdown.seg.nucleus_flow import STEP_CLASSES, step_instances, step_target, turn_steps
from topdown.seg.nucleus_target import nucleus_target


def _overlapping() -> np.ndarray:
    """Three nuclei: two touching discs, and a third behind one of them (its visible part a crescent)."""
    yy, xx = np.mgrid[:48, :64]
    ids = np.zeros((48, 64), np.int32)
    ids[np.hypot(yy - 33, xx - 30) <= 11] = 3  # behind: drawn first, then covered
    ids[np.hypot(yy - 24, xx - 28) <= 10] = 1
    ids[np.hypot(yy - 24, xx - 48) <= 9] = 2
    return ids


def _one_hot(target: np.ndarray) -> np.ndarray:
    return np.eye(len(STEP_CLASSES) + 1, dtype=np.float32)[target].transpose(2, 0, 1)


def test_following_exact_steps_recovers_touching_and_overlapping_nuclei():
    ids = _overlapping()
    lab = step_instances(_one_hot(step_target(ids)), min_area=1)
    assert td.seg.match_instances(ids, lab, iou=0.9)["f1"] == 1.0
    # the same nuclei as edge-distance bins: the crescent's core touches its occluder's, one instance
    dist = nuclei_infer.instances(np.eye(4, dtype=np.float32)[nucleus_target(ids)].transpose(2, 0, 1), min_area=1)
    assert td.seg.match_instances(ids, dist, iou=0.9)["f1"] < 1.0


def test_a_nucleus_cut_in_two_by_another_leads_to_a_centre_in_each_part():
    ids = np.zeros((20, 30), np.int32)
    ids[5:15, 2:28] = 2
    ids[2:18, 12:18] = 1  # lies over the middle of nucleus 2
    t = step_target(ids)
    lab = step_instances(_one_hot(t), min_area=1)
    assert lab.max() == 3 and lab[10, 4] != lab[10, 25] and len(np.unique(lab[ids == 1])) == 1
    assert (t[ids == 2] > 0).all()


def test_every_step_stays_inside_its_nucleus_and_centres_are_small():
    ids = _overlapping()
    t = step_target(ids)
    assert ((t > 0) == (ids > 0)).all()
    steps = np.array([(0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1), (1, 0), (1, 1)])
    r, c = np.nonzero(t >= 2)
    dr, dc = steps[t[r, c] - 2].T
    assert (ids[r + dr, c + dc] == ids[r, c]).all()
    for i in (1, 2, 3):
        assert 1 <= ((t == 1) & (ids == i)).sum() <= 13  # a geodesic disc of radius 2 px


@pytest.mark.parametrize(("turns", "mirror"), [(1, False), (2, False), (3, True), (0, True)])
def test_turned_targets_still_lead_to_their_centres(turns, mirror):
    ids = _overlapping()
    turned_ids = np.rot90(ids, turns)
    turned = np.rot90(step_target(ids), turns)
    if mirror:
        turned_ids, turned = turned_ids[:, ::-1], turned[:, ::-1]
    lab = step_instances(_one_hot(turn_steps(np.ascontiguousarray(turned), turns, mirror)), min_area=1)
    assert td.seg.match_instances(np.ascontiguousarray(turned_ids), lab, iou=0.9)["f1"] == 1.0
    if turns % 4:  # without the relabelling the steps lead astray
        wrong = step_instances(_one_hot(np.ascontiguousarray(turned)), min_area=1)
        assert td.seg.match_instances(np.ascontiguousarray(turned_ids), wrong, iou=0.9)["f1"] < 1.0


def test_step_instances_across_block_seams(monkeypatch):
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:150, :150]
    ids = np.zeros((150, 150), np.int32)
    for k, (r, c) in enumerate(rng.integers(12, 138, (14, 2)), start=1):
        ids[np.hypot(yy - r, xx - c) <= 8] = k
    ids = np.unique(ids, return_inverse=True)[1].reshape(ids.shape).astype(np.int32)
    probs = _one_hot(step_target(ids))
    monkeypatch.setattr(nuclei_infer, "BLOCK", 40)
    lab = nuclei_infer._block_instances(probs, step_instances, min_area=5)
    assert td.seg.match_instances(ids, lab)["f1"] == pytest.approx(td.seg.match_instances(
        ids, step_instances(probs, min_area=5))["f1"]) and lab.max() >= 10


def test_step_instances_refuses_other_probabilities():
    with pytest.raises(InputError, match="10 probabilities"):
        step_instances(np.zeros((4, 8, 8), np.float32))


def test_train_and_segment_with_the_step_design(tmp_path):
    """A tiny step-design model trains on Blender frames, refuses mixed designs, and segments."""
    spec = td.sim.load_preset("mouse_brain_coronal")
    data = td.sim.simulate(spec, n=3, out=tmp_path / "sims", seed=5, size=48, pixel_size_um=0.4, modality="dapi",
                           samples=1)
    kw = dict(batch_size=2, crop=32, widths=(4, 8), save_every=2, val_fraction=0.34, precision="fp32",
              log=lambda s: None)
    model = td.seg.train_nuclei(data.path, tmp_path / "steps.pt", steps=2, design="steps", **kw)
    assert tuple(model.classes) == STEP_CLASSES and model.train_config["design"] == "steps"
    img = np.asarray(td.sim.SimDataset(data.path)[0][0])
    with warnings.catch_warnings():  # two steps of training may find no nuclei yet, and warn so
        warnings.simplefilter("ignore", UserWarning)
        res = td.seg.nuclei(img, tmp_path / "steps.pt", pixel_size_um=0.4, device="cpu")
    assert res.meta["design"] == "steps" and res.labels.shape == img.shape[:2]
    with pytest.raises(InputError, match="'steps' nucleus model"):
        td.seg.train_nuclei(data.path, tmp_path / "d.pt", steps=1, init=tmp_path / "steps.pt", **kw)
    with pytest.raises(InputError, match="resume it with design='steps'"):
        td.seg.train_nuclei(data.path, tmp_path / "steps.pt", steps=4, resume=True, design="distance", **kw)
    with pytest.raises(InputError, match="design must be one of"):
        td.seg.train_nuclei(data.path, tmp_path / "x.pt", steps=1, design="flows", **kw)
    from topdown.cli import main

    assert main(["train", "--data", str(data.path), "--out", str(tmp_path / "r.pt"), "--design", "steps"]) == 2
