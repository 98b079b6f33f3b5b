"""orientation='auto': an upright model's map is made in the quarter turn it is surest of;
orientation='ensemble': the four turns combined."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import topdown as td
from topdown.errors import InputError


class TopIsFirst(torch.nn.Module):
    """A stand-in 'upright' network: sure of itself only where the image is dark at the top."""

    multiple = 4

    def forward(self, x):
        b, _, h, w = x.shape
        dark_top = (x[:, :, : h // 4].mean() < x[:, :, 3 * h // 4:].mean()).float()
        logits = torch.zeros(b, 3, h, w)
        logits[:, 0] = -8.0  # never outside
        logits[:, 1] = 4.0 * dark_top  # region "a" everywhere, confidently only when dark is on top ...
        logits[:, 2] = 0.5  # ... else a slight preference for "b"
        return logits


@pytest.fixture
def upright_model():
    model = td.seg.SegModel(["a", "b"], pixel_size_um=10.0, widths=(4, 8), name="toy",
                            train_config={"augment": {"any_orientation": False}})
    model.net = TopIsFirst()
    return model


def test_auto_orientation_turns_back_the_most_confident_map(upright_model):
    image = np.full((64, 48, 3), 120, np.uint8)
    image[:, :12] = 40  # dark on the left: one quarter turn clockwise puts it on top
    rmap = td.seg.segment(image, upright_model, pixel_size_um=10.0, tissue=False, tta=False, layer_prior=None,
                          orientation="auto", device="cpu")
    turns = rmap.meta["orientation"]["quarter_turns"]
    assert np.rot90(image, turns)[:16].mean() < np.rot90(image, turns)[-16:].mean()  # dark on top when it won
    assert max(rmap.meta["orientation"]["confidence"]) == rmap.meta["orientation"]["confidence"][turns]
    assert rmap.labels.shape == (64, 48) and rmap.probabilities.shape[1:] == (64, 48)
    assert rmap.image_shape[:2] == (64, 48)
    as_is = td.seg.segment(image, upright_model, pixel_size_um=10.0, tissue=False, tta=False, layer_prior=None,
                           orientation=None, device="cpu")
    assert "orientation" not in as_is.meta and np.all(as_is.labels > 0)
    default = td.seg.segment(image, upright_model, pixel_size_um=10.0, tissue=False, tta=False, layer_prior=None,
                             device="cpu")
    assert default.meta["orientation"] == rmap.meta["orientation"]  # the search is the default
    assert np.array_equal(default.labels, rmap.labels)


def test_ensemble_orientation_combines_the_four_turns(upright_model):
    image = np.full((64, 48, 3), 120, np.uint8)
    image[:, :12] = 40  # dark on the left: only one turn finds "a" with confidence
    as_is = td.seg.segment(image, upright_model, pixel_size_um=10.0, tissue=False, tta=False, layer_prior=None,
                           orientation=None, device="cpu")
    assert np.all(as_is.labels == 2)  # unsure, as given: "b"
    rmap = td.seg.segment(image, upright_model, pixel_size_um=10.0, tissue=False, tta=False, layer_prior=None,
                          orientation="ensemble", device="cpu")
    assert rmap.meta["orientation"]["quarter_turns"] == "ensemble"
    assert len(rmap.meta["orientation"]["confidence"]) == 4
    assert rmap.labels.shape == (64, 48) and rmap.probabilities.shape == (3, 64, 48)
    assert np.allclose(rmap.probabilities.astype(np.float32).sum(axis=0), 1.0, atol=1e-2)
    # geometric mean: one sure turn (a 0.97) outweighs three unsure ones (a 0.38, b 0.62)
    assert np.all(rmap.labels == 1)
    assert rmap.meta["layer_prior"] is None


def test_ensemble_orientation_applies_the_layer_prior_once_on_the_combined_map(upright_model):
    """The prior runs on the combined map, with its probabilities: its report is the ensemble's."""
    image = np.full((64, 48, 3), 120, np.uint8)
    image[:, :12] = 40
    prior = td.seg.LayerPrior(order=("a", "b"), thickness_um={"a": 100.0})
    rmap = td.seg.segment(image, upright_model, pixel_size_um=10.0, tissue=False, tta=False, layer_prior=prior,
                          orientation="ensemble", device="cpu")
    # all tissue, no glass: the prior has no surface to measure depth from and says so
    assert rmap.meta["layer_prior"] == {"applied": False,
                                        "reason": "no glass in view: the section's surface lies outside the image"}


def test_a_turn_without_tissue_never_wins():
    from topdown.seg.orient import confidence

    empty = td.seg.RegionMap(labels=np.zeros((8, 8), np.uint8), classes=("a",), pixel_size_um=1.0, downsample=1.0,
                             probabilities=np.zeros((2, 8, 8), np.float16), image_shape=(8, 8, 3))
    assert np.isnan(confidence(empty))


def test_free_orientation_models_need_no_search(upright_model):
    upright_model.train_config = {"augment": {"any_orientation": True}}
    rmap = td.seg.segment(np.full((32, 32, 3), 100, np.uint8), upright_model, pixel_size_um=10.0, tissue=False,
                          orientation="auto", device="cpu")
    assert "orientation" not in rmap.meta


def test_bad_orientation_is_refused(upright_model):
    with pytest.raises(InputError, match="orientation='upright' is not allowed"):
        td.seg.segment(np.full((32, 32, 3), 100, np.uint8), upright_model, pixel_size_um=10.0,
                       orientation="upright", device="cpu")


@pytest.mark.parametrize(("flag", "expected"), [([], "auto"), (["--orientation", "as-is"], None),
                                                 (["--orientation", "ensemble"], "ensemble")])
def test_cli_orientation_option(flag, expected):
    import argparse

    from topdown.cli._inference_options import add_inference_options, orientation_arg

    parser = argparse.ArgumentParser()
    add_inference_options(parser)
    assert orientation_arg(parser.parse_args(flag)) == expected
