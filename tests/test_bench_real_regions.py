"""benchmarks/real_regions.py: its scoring pieces on made-up spots, and one real section end to end."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("real_regions")


def _two_tone_image() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Left half dark purple, right half pale pink; spots on a grid with their true half."""
    image = np.zeros((60, 80, 3), np.uint8)
    image[:, :40] = (90, 40, 130)
    image[:, 40:] = (235, 190, 215)
    xs, ys = np.meshgrid(np.arange(5, 80, 10), np.arange(5, 60, 10))
    xy = np.column_stack([xs.ravel(), ys.ravel()]).astype(float)
    return image, xy, (xy[:, 0] >= 40).astype(int)


def test_disk_features_separate_the_two_tissues(bench):
    image, xy, truth = _two_tone_image()
    feats = bench.disk_features(image, xy, radius=3)
    assert feats.shape == (len(xy), 7)
    assert np.allclose(feats[truth == 0, 0], 90 / 255, atol=1e-6)
    assert np.allclose(feats[truth == 1, 0], 235 / 255, atol=1e-6)
    assert bench.spot_features(image, xy, 3).shape == (len(xy), 7 * len(bench.CONTEXT_SCALES))
    labels = bench.kmeans_labels(feats, 2)
    assert len(set(zip(labels, truth, strict=True))) == 2          # clusters are exactly the two halves


def test_neighbour_mean_averages_the_nearest_spots(bench):
    xy = np.array([[0.0, 0.0], [1.0, 0.0], [10.0, 0.0]])
    feats = np.array([[0.0], [2.0], [9.0]])
    out = bench.neighbour_mean(feats, xy, k=1)
    assert out[:, 0].tolist() == [1.0, 1.0, 5.5]


def test_layer_accuracy_through_the_label_map(bench):
    truth = pd.Series(["L1", "L1", "L2", "L2"])
    predicted = np.array(["layer_1", "outside", "layer_2", "layer_2"])
    acc = bench.layer_accuracy(truth, predicted, {"L1": "layer_1", "L2": "layer_2", "L3": "layer_3"})
    assert acc == {"L1": 0.5, "L2": 1.0}


def test_one_real_section_end_to_end(bench, real_dev, tmp_path):
    rc = bench.main(["--data", str(real_dev), "--sets", "dlpfc", "--sections", "151507", "--tta", "off",
                     "--adapt", "adabn", "--out", str(tmp_path)])
    assert rc == 0
    (record,) = json.loads((tmp_path / "real_regions.json").read_text())
    assert record["n_spots"] > 3000
    assert -1 <= record["ari"] <= 1 and -1 <= record["kmeans_ari"] <= 1
    assert set(record["accuracy"]) == {"Layer1", "Layer2", "Layer3", "Layer4", "Layer5", "Layer6", "WM"}
    assert sum(record["predicted_counts"].values()) == record["n_spots"]
    assert (tmp_path / "dlpfc_151507.png").stat().st_size > 10_000
    assert record["adapt"] == "adabn" and record["layer_prior"]["applied"] in (True, False)


def test_auto_adapts_only_models_not_adapted_yet(bench):
    class Model:
        def __init__(self, metrics):
            self.metrics = metrics

    assert bench.adapt_method("auto", Model({"epochs_done": 3})) == "pseudo_label"
    assert bench.adapt_method("auto", Model({"epochs_done": 3, "adapt": {"method": "pseudo_label"}})) == "off"
    assert bench.adapt_method("adabn", Model({"adapt": {}})) == "adabn"  # an explicit choice is kept
