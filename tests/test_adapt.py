"""Unsupervised adaptation to unlabelled real images: style mixing (FDA, LAB) in training,
td.seg.adapt (AdaBN, pseudo-label self-training), the ``topdown adapt`` CLI and bad input.

Tiny models and synthetic images only: the file runs in well under a minute on 2 cores.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from test_seg_train import make_dataset

import topdown as td
from topdown.cli import main
from topdown.errors import InputError
from topdown.seg.style import StyleMixer, fda, lab_stats, match_lab

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = (8, 16)


def he_image(size: int = 96, seed: int = 0, tint=(170, 110, 80)) -> np.ndarray:
    """A brownish 'real' H&E-like section: grey-white glass, a tissue disk with dark nuclei."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    tissue = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (0.35 * size) ** 2
    img = np.where(tissue[..., None], np.array(tint, float), 232.0) + rng.normal(0, 5, (size, size, 3))
    img[tissue & (rng.random((size, size)) < 0.08)] = (60, 40, 90)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return td.seg.SegModel(["cortex", "striatum"], pixel_size_um=4.0, widths=TINY, name="tiny")


@pytest.fixture(scope="module")
def target_png(tmp_path_factory):
    from PIL import Image

    path = tmp_path_factory.mktemp("real") / "real.png"
    Image.fromarray(he_image()).save(path)
    return path


def _low_band(image: np.ndarray, beta: float) -> np.ndarray:
    f = np.abs(np.fft.fftshift(np.fft.fft2(image.astype(np.float64), axes=(0, 1)), axes=(0, 1)))
    h, w = image.shape[:2]
    b = int(np.floor(beta * min(h, w)))
    return f[h // 2 - b:h // 2 + b + 1, w // 2 - b:w // 2 + b + 1]


def test_fda_keeps_phase_shape_dtype_and_takes_the_target_low_frequencies():
    rng = np.random.default_rng(0)
    src = rng.uniform(0.3, 0.7, (64, 64, 3)).astype(np.float32)
    yy = np.linspace(0, 1, 64)[:, None, None]
    trg = (0.2 + 0.5 * yy * np.array([1.0, 0.6, 0.3]) + rng.normal(0, 0.02, (64, 64, 3))).astype(np.float32)
    out = fda(src, trg, beta=0.05, clip=False)
    assert out.shape == src.shape and out.dtype == src.dtype
    f_out, f_src = np.fft.fft2(out.astype(np.float64), axes=(0, 1)), np.fft.fft2(src.astype(np.float64), axes=(0, 1))
    strong = np.abs(f_src) > 1e-3
    dphase = np.angle(f_out[strong] * np.conj(f_src[strong]))
    assert np.abs(dphase).max() < 1e-3  # the phase is the source's
    before = np.abs(_low_band(src, 0.05) - _low_band(trg, 0.05)).mean()
    after = np.abs(_low_band(out, 0.05) - _low_band(trg, 0.05)).mean()
    assert after < 1e-3 * before  # the low band is the target's
    assert abs(float(out.mean()) - float(trg.mean())) < 1e-4  # so is the mean colour
    high = np.abs(np.fft.fft2(out - src, axes=(0, 1)))
    assert np.allclose(high[8:-8, 8:-8], 0, atol=1e-3)  # high frequencies untouched
    u8 = fda((src * 255).astype(np.uint8), (trg * 255).astype(np.uint8), beta=0.02)
    assert u8.dtype == np.uint8 and u8.shape == src.shape


def test_lab_matching_and_the_mixer():
    rng = np.random.default_rng(1)
    src = rng.uniform(0.5, 0.9, (32, 32, 3)).astype(np.float32)
    trg = he_image(32).astype(np.float32) / 255
    out = match_lab(src, lab_stats(trg))
    assert np.allclose(lab_stats(out), lab_stats(trg), atol=2.0)
    bank = np.stack([trg, trg])
    assert StyleMixer(bank, p=0.0)(src, rng) is src
    mixed = StyleMixer(bank, method="lab", p=1.0)(src, rng)
    assert np.allclose(lab_stats(mixed)[0], lab_stats(trg)[0], atol=2.0)
    with pytest.raises(InputError, match="fda, lab"):
        StyleMixer(bank, method="cyclegan")


def test_training_batches_take_the_target_look(target_png):
    """make_batch(style=StyleMixer(p=1)): every crop's mean colour becomes a real tissue crop's."""
    from topdown.seg.loop import make_batch
    from topdown.seg.target import load_targets, tissue_crops

    rng = np.random.default_rng(0)
    targets = load_targets([str(target_png)], 4.0, 4.0, "he")
    bank = tissue_crops(targets, 32, 8, rng)
    assert bank.shape == (8, 32, 32, 3) and (bank.mean(axis=(1, 2, 3)) < 0.7).all()  # tissue, not glass
    frames = [(np.full((48, 48, 3), (235, 160, 190), np.uint8), np.ones((48, 48), np.uint8))] * 2
    plain, _ = make_batch(frames, [0, 1], np.random.default_rng(1), 32, None, "he")
    mixed, y = make_batch(frames, [0, 1], np.random.default_rng(1), 32, None, "he", style=StyleMixer(bank, p=1.0))
    assert mixed.shape == plain.shape and (y == 1).all()
    colour = mixed.mean(dim=(2, 3)).numpy()
    assert np.abs(colour[:, None] - bank.mean(axis=(1, 2))[None]).min(axis=1).max() < 0.02
    assert np.abs(plain.mean(dim=(2, 3)).numpy() - colour).max() > 0.1


def test_train_with_adapt_to_records_the_images(tmp_path, target_png):
    ds = make_dataset(tmp_path / "ds", n=6)
    out = tmp_path / "m.pt"
    code = main(["train", "--data", str(ds.path), "--out", str(out), "--epochs", "1", "--batch-size", "4",
                 "--widths", "8,16", "--device", "cpu", "--adapt-to", str(target_png), "--adapt-pixel-size", "4",
                 "--adapt-p", "1.0"])
    assert code == 0
    rec = td.seg.load(out).train_config["adapt"]
    assert rec["method"] == "fda" and rec["p"] == 1.0 and rec["n_images"] == 1
    assert rec["sha256"] == [hashlib.sha256(target_png.read_bytes()).hexdigest()]
    assert json.loads(out.with_suffix(".json").read_text())["train_config"]["adapt"] == rec
    plan = td.seg.TrainPlan.from_dict(td.seg.load(out).train_config)
    assert plan.adapt == rec
    plain = td.seg.train(ds, epochs=1, batch_size=4, widths=TINY, device="cpu", progress=False)
    assert "adapt" not in plain.train_config


def test_adabn_changes_the_statistics_of_a_copy(tiny_model):
    before = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    adapted = td.seg.adapt(tiny_model, [he_image(), he_image(seed=1)], 4.0, method="adabn", progress=False)
    assert all(torch.equal(before[k], v) for k, v in tiny_model.state_dict().items())  # input untouched
    bn, bn0 = adapted.net.down[0][1], tiny_model.net.down[0][1]
    assert not torch.allclose(bn.running_mean, bn0.running_mean, atol=1e-3)
    assert torch.equal(adapted.net.down[0][0].weight, tiny_model.net.down[0][0].weight)  # weights as they were
    assert adapted.metrics["adapt"]["method"] == "adabn" and adapted.metrics["adapt"]["n_images"] == 2
    with pytest.raises(InputError, match="too small to estimate BatchNorm"):
        td.seg.adapt(tiny_model, he_image(40), 4.0, method="adabn", progress=False)
    with pytest.raises(InputError, match="adapt_norm must be True or False"):
        td.seg.adapt(tiny_model, he_image(), 4.0, adapt_norm=1, progress=False)


def test_pseudo_label_tunes_weights_deterministically(tiny_model):
    before = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    kw = {"method": "pseudo_label", "steps": 4, "crop": 32, "batch_size": 2, "lr": 1e-2, "progress": False}
    assert "adapt_norm" not in td.seg.adapt(tiny_model, he_image(), 4.0, adapt_norm=False, **kw).metrics["adapt"]
    a = td.seg.adapt(tiny_model, he_image(), 4.0, seed=3, **kw)
    b = td.seg.adapt(tiny_model, he_image(), 4.0, seed=3, **kw)
    assert all(torch.equal(before[k], v) for k, v in tiny_model.state_dict().items())
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
    assert not torch.equal(a.net.down[0][0].weight, tiny_model.net.down[0][0].weight)
    c = td.seg.adapt(tiny_model, he_image(), 4.0, seed=3, adapt_norm=False, **kw)
    assert a.metrics["adapt"]["adapt_norm"] is True  # the default: AdaBN first
    assert not torch.equal(c.net.down[0][1].running_mean, a.net.down[0][1].running_mean)
    rec = a.metrics["adapt"]
    assert rec["steps"] == 4 and sum(rec["pseudo_labelled_pixels"].values()) > 0
    from topdown.seg._adapt import pseudo_labels
    from topdown.seg.target import load_target

    raster = pseudo_labels(tiny_model, load_target(he_image(), 4.0, 4.0, "he"), keep=0.25)
    for c in np.unique(raster[raster != 255]):  # every class keeps its own top quarter
        assert 0 < (raster == c).sum()


def test_adapt_cli_round_trip(tmp_path, tiny_model, target_png, capsys):
    model_path = tmp_path / "tiny.pt"
    td.seg.save(tiny_model, model_path)
    out = tmp_path / "adapted.safetensors"
    args = ["adapt", str(model_path), str(target_png), "--pixel-size", "4", "--method", "pseudo_label",
            "--steps", "2", "--device", "cpu"]
    assert main([*args, "--out", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["n_images"] == 1
    loaded = td.seg.load(out)
    assert loaded.metrics["adapt"]["method"] == "pseudo_label" and (tmp_path / "adapted.json").is_file()
    assert main([*args, "--out", str(model_path)]) == 2  # never overwrite the input model
    assert "error" in capsys.readouterr().err


def test_adapt_cli_names_the_model_and_takes_a_pixel_size_per_image(tmp_path, tiny_model, target_png, capsys):
    model_path = tmp_path / "tiny.pt"
    td.seg.save(tiny_model, model_path)
    base = ["adapt", str(model_path), str(target_png), str(target_png), "--method", "adabn", "--device", "cpu"]
    out = tmp_path / "named.safetensors"
    assert main([*base, "--pixel-size", "4", "3.5", "--name", "my_tissue", "--out", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["model"] == "my_tissue"
    assert td.seg.load(out).name == "my_tissue"
    default = tmp_path / "default.safetensors"
    assert main([*base, "--pixel-size", "4", "--out", str(default)]) == 0
    assert td.seg.load(default).name == "tiny+adabn"
    assert main([*base, "--pixel-size", "4", "4", "4", "--out", str(tmp_path / "x.safetensors")]) == 2
    assert "3 pixel sizes for 2 images" in capsys.readouterr().err


def _dapi_like() -> np.ndarray:
    rng = np.random.default_rng(0)
    img = np.zeros((96, 96, 3), np.uint8)
    img[rng.random((96, 96)) < 0.1] = 200
    return img


@pytest.mark.parametrize(("image", "modality", "match"), [
    (_dapi_like(), "he", "DAPI.*give H&E images"),
    (np.repeat(he_image()[..., :1], 3, axis=2), "he", "greyscale.*give H&E images"),
    (he_image(), "dapi", "brightfield.*give DAPI images"),
    (np.full((96, 96, 3), 235, np.uint8), "he", "no tissue.*give images of tissue"),
])
def test_bad_images_are_refused_in_one_line(image, modality, match):
    model = td.seg.SegModel(["a", "b"], pixel_size_um=4.0, widths=TINY, modality=modality)
    with pytest.raises(InputError, match=match) as err:
        td.seg.adapt(model, [image], 4.0, progress=False)
    assert "\n" not in str(err.value)


def test_missing_pixel_size_names_the_fix(tmp_path, tiny_model, target_png, capsys):
    with pytest.raises(InputError, match="pixel size.*unknown.*pixel_size_um"):
        td.seg.adapt(tiny_model, he_image(), progress=False)
    ds = make_dataset(tmp_path / "ds", n=2)
    assert main(["train", "--data", str(ds.path), "--out", str(tmp_path / "m.pt"), "--epochs", "1",
                 "--adapt-to", str(target_png)]) == 2
    err = capsys.readouterr().err.strip()
    assert "--adapt-pixel-size" in err and len(err.splitlines()) == 1
