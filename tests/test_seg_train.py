"""Training, evaluation, resume and fine-tuning of the segmentation CNN on a tiny dataset.

The fixture writes a SimDataset-format folder (through the real DatasetWriter) of
synthetic 48 px frames: white glass, a pink 'cortex' disk and a purple 'striatum' band,
each textured with dark nucleus-like dots, so the tests run in seconds without Blender.
"""

from __future__ import annotations

import hashlib
import json
import sys

import numpy as np
import pytest
import torch

import topdown as td
from topdown.errors import DataFileError, InputError, OutputError

CLASSES = ["cortex", "striatum"]
SMALL = (8, 16, 24)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


class _Spec:
    name = "toy"
    classes = CLASSES
    colors = {"cortex": "#ff0000", "striatum": "#0000ff"}

    def to_yaml(self, path=None):
        text = "name: toy\n"
        if path is not None:
            open(path, "w").write(text)
        return text

    def hash(self):
        return hashlib.sha256(b"toy").hexdigest()


def toy_frame(rng: np.random.Generator, size: int = 48) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:size, 0:size]
    mask = np.zeros((size, size), np.uint8)
    cy, cx = rng.uniform(0.3, 0.7, 2) * size
    r = rng.uniform(0.2, 0.3) * size
    mask[(yy - cy) ** 2 + (xx - cx) ** 2 < r ** 2] = 1
    y0 = int(rng.integers(0, size - 10))
    mask[y0:y0 + 8, :] = np.where(mask[y0:y0 + 8, :] == 0, 2, mask[y0:y0 + 8, :])
    colors = np.array([[245, 245, 245], [235, 160, 190], [140, 90, 170]], np.float64)
    img = colors[mask] + rng.normal(0, 6, (size, size, 3))
    dots = (rng.random((size, size)) < 0.05) & (mask > 0)
    img[dots] = [70, 40, 120]
    return np.clip(img, 0, 255).astype(np.uint8), mask


def make_dataset(path, n: int = 12, size: int = 48, seed: int = 0, modality: str = "he"):
    from topdown.sim.dataset import DatasetWriter, SimDataset

    w = DatasetWriter(path, _Spec(), modality=modality, size=size, pixel_size_um=4.0, seed=seed)
    rng = np.random.default_rng(seed)
    for i in range(n):
        img, mask = toy_frame(rng, size)
        if modality == "dapi":  # fluorescence: dark glass, bright nuclei
            img = 255 - img
        w.write_frame(i, img, mask, np.zeros_like(mask, np.uint32),
                      {"seed": i, "pixel_size_um": 4.0, "shape": [size, size], "params": {}})
    return SimDataset(path)


@pytest.fixture(scope="module")
def toy_ds(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("toy") / "ds", n=20)


@pytest.fixture(scope="module")
def trained(toy_ds, tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "toy.pt"
    model = td.seg.train(toy_ds, out=out, epochs=12, batch_size=4, widths=SMALL, lr=1e-2, seed=1,
                         device="cpu", progress=False)
    return model, out


def test_loss_drops_and_checkpoint_metadata(trained, toy_ds):
    model, out = trained
    hist = model.metrics["history"]
    assert len(hist) == 12
    assert np.mean([h["loss"] for h in hist[-3:]]) < 0.8 * hist[0]["loss"]
    assert model.classes == tuple(CLASSES)
    assert model.pixel_size_um == 4.0
    assert model.spec_hash == toy_ds.spec_hash
    assert "val_miou" in model.metrics and "val_iou" in model.metrics
    loaded = td.seg.load(out)
    assert loaded.classes == model.classes and loaded.seed == 1
    assert loaded.metrics["epochs_done"] == 12
    assert out.with_suffix(".json").is_file()
    assert loaded.weights_sha256 == hashlib.sha256(out.read_bytes()).hexdigest()
    x = torch.from_numpy(toy_ds[0][0].copy()).permute(2, 0, 1)[None]
    with torch.inference_mode():
        a, b = model(x), loaded(x)
    assert torch.allclose(a, b, atol=0.05)  # float16 storage


def test_evaluate_learns_the_toy_task(trained, toy_ds):
    model, _ = trained
    res = td.seg.evaluate(model, toy_ds)
    assert set(res["iou"]) == {"outside", *CLASSES}
    assert res["n_frames"] == len(toy_ds) and res["tta"] is True  # scored as segment() maps by default
    raw = td.seg.evaluate(model, toy_ds, tta=False)
    assert raw["tta"] is False and raw["miou"] > 0.5
    with pytest.raises(InputError, match="tta must be True or False"):
        td.seg.evaluate(model, toy_ds, tta="no")  # a string is not a flag (bool("no") is True)
    assert res["miou"] > 0.5 and res["pixel_accuracy"] > 0.75
    cm = np.array(res["confusion"])
    assert cm.sum() == len(toy_ds) * 48 * 48


def test_evaluate_locates_errors_at_boundaries(trained, toy_ds, monkeypatch):
    """A prediction off by one pixel at every boundary: all errors in the band, interior perfect."""
    model, _ = trained
    truth = np.zeros((12, 12), np.uint8)
    truth[:, 4:8] = 1
    truth[:, 8:] = 2
    shifted = np.roll(truth, 1, axis=1)
    shifted[:, 0] = 0
    mod = sys.modules["topdown.seg._evaluate"]
    monkeypatch.setattr(mod, "predictions_on", lambda *a, **k: iter([(truth, shifted)]))
    res = td.seg.evaluate(model, toy_ds, indices=[0])
    assert res["miou"] < 0.8
    assert res["errors_near_boundary"] == 1.0
    assert res["interior"]["miou"] == 1.0
    assert res["interior"]["n_pixels"] == 12 * (12 - 4)  # columns 3, 4, 7, 8 are within 1 px
    monkeypatch.setattr(mod, "predictions_on", lambda *a, **k: iter([(truth, shifted)]))
    assert "interior" not in td.seg.evaluate(model, toy_ds, indices=[0], boundary_px=0)
    with pytest.raises(InputError, match="boundary_px"):
        td.seg.evaluate(model, toy_ds, boundary_px=-1)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_both_precisions_learn(toy_ds, precision):
    model = td.seg.train(toy_ds, epochs=6, batch_size=4, widths=SMALL, lr=1e-2, seed=1, device="cpu",
                         precision=precision, progress=False)
    hist = model.metrics["history"]
    assert model.train_config["precision"] == precision
    assert hist[-1]["loss"] < 0.8 * hist[0]["loss"]
    assert all(p.is_contiguous() for p in model.parameters())  # channels-last only while training
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_precision_choice():
    from topdown.seg.loop import bf16_is_native, pick_precision

    assert pick_precision("auto", "cpu") == ("bf16" if bf16_is_native("cpu") else "fp32")
    assert pick_precision("fp32", "cpu") == "fp32"
    with pytest.raises(InputError, match="precision must be one of auto, fp32, bf16"):
        pick_precision("fp16", "cpu")


def test_read_labels_matches_read_frame(toy_ds):
    from topdown.seg.data import read_frame, read_labels

    for px in (None, 4.0, 2.5):
        assert np.array_equal(read_labels(toy_ds, 3, px), read_frame(toy_ds, 3, px)[1])
    assert read_labels(toy_ds, 3, 2.0).shape == (96, 96)


def test_boundary_band_widths():
    from topdown.seg.scoring import boundary_band

    mask = np.zeros((9, 9), np.uint8)
    mask[4, 4] = 3
    assert not boundary_band(mask, 0).any()
    assert boundary_band(mask, 1).sum() == 9 and boundary_band(mask, 2).sum() == 25


def test_evaluate_rejects_mismatched_classes(trained, tmp_path):
    model, _ = trained
    other = td.seg.SegModel(["a", "b"], pixel_size_um=4.0, widths=SMALL)
    with pytest.raises(InputError, match="cortex"):
        td.seg.evaluate(other, make_dataset(tmp_path / "ds2", n=2))


def test_resume_reproduces_uninterrupted_run(toy_ds, tmp_path, monkeypatch):
    kw = dict(batch_size=4, widths=(8, 16), seed=3, device="cpu", progress=False, epochs=2)
    full = td.seg.train(toy_ds, out=tmp_path / "full.pt", **kw)
    mod = sys.modules["topdown.seg._train"]
    real = mod.save_state

    def crash_after_saving(*args, **kwargs):
        real(*args, **kwargs)
        raise KeyboardInterrupt  # the run dies right after epoch 1 is on disk

    monkeypatch.setattr(mod, "save_state", crash_after_saving)
    with pytest.raises(KeyboardInterrupt):
        td.seg.train(toy_ds, out=tmp_path / "part.pt", **kw)
    monkeypatch.setattr(mod, "save_state", real)
    assert td.seg.load(tmp_path / "part.pt").metrics["epochs_done"] == 1
    part = td.seg.train(toy_ds, out=tmp_path / "part.pt", resume=True, **kw)
    assert [h["epoch"] for h in part.metrics["history"]] == [0, 1]
    for k, v in full.state_dict().items():
        if v.is_floating_point():
            assert torch.allclose(v, part.state_dict()[k], atol=1e-5), k


def test_same_seed_same_model(toy_ds):
    kw = dict(epochs=1, batch_size=4, widths=(8, 16), seed=5, device="cpu", progress=False)
    a, b = td.seg.train(toy_ds, **kw), td.seg.train(toy_ds, **kw)
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k


def test_warm_start_continues_from_the_given_weights(trained, toy_ds, tmp_path):
    model, out = trained
    before = {k: v.clone() for k, v in model.state_dict().items()}
    warm = td.seg.train(toy_ds, out=tmp_path / "warm.pt", init=out, epochs=1, batch_size=4, lr=1e-3,
                        widths=(8, 16), seed=2, device="cpu", progress=False)
    cold = td.seg.train(toy_ds, epochs=1, batch_size=4, lr=1e-3, widths=SMALL, seed=2, device="cpu",
                        progress=False)
    assert warm.net.widths == model.net.widths  # the checkpoint's architecture, not widths=
    assert warm.metrics["val_miou"] > cold.metrics["val_miou"] + 0.1
    assert len(warm.metrics["history"]) == 1 and warm.seed == 2
    assert warm.train_config["init"]["weights_sha256"] == model.weights_sha256
    assert td.seg.load(tmp_path / "warm.pt").train_config["init"]["source"] == str(out)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k  # the starting model is not trained in place
    with pytest.raises(OutputError, match="overwrite the input"):
        td.seg.train(toy_ds, out=out, init=out, epochs=1)
    with pytest.raises(InputError, match="not both"):
        td.seg.train(toy_ds, out=tmp_path / "x.pt", init=out, resume=True, epochs=1)
    with pytest.raises(InputError, match="cortex"):
        td.seg.train(toy_ds, init=td.seg.SegModel(["a", "b"], pixel_size_um=4.0, widths=SMALL), epochs=1)


def test_warm_start_across_modalities(trained, tmp_path):
    """An H&E model starts a DAPI one: same weights to begin with, the dataset's modality after."""
    model, out = trained
    dapi = make_dataset(tmp_path / "dapi", n=8, modality="dapi")
    warm = td.seg.train(dapi, out=tmp_path / "dapi.pt", init=out, epochs=1, batch_size=4, lr=1e-9,
                        seed=2, device="cpu", progress=False)
    assert warm.modality == "dapi" and warm.background_value == 0
    assert warm.train_config["init"]["modality"] == "he"
    assert model.modality == "he"  # the starting model is left as it was
    loaded = td.seg.load(tmp_path / "dapi.pt")
    assert loaded.modality == "dapi" and loaded.train_config["init"]["weights_sha256"] == model.weights_sha256
    start, end = td.seg.load(out).state_dict(), warm.state_dict()
    convs = [k for k, v in start.items() if k.endswith("weight") and v.ndim == 4]
    assert convs and all(torch.allclose(start[k], end[k], atol=1e-6) for k in convs)  # lr ~ 0: unchanged


def test_train_bad_input(tmp_path, toy_ds):
    with pytest.raises(DataFileError):
        td.seg.train(tmp_path / "nope", epochs=1)
    with pytest.raises(InputError, match="epochs"):
        td.seg.train(toy_ds, epochs=0)
    with pytest.raises(InputError, match="cuda"):
        if torch.cuda.is_available():
            pytest.skip("CUDA present")
        td.seg.train(toy_ds, epochs=1, device="cuda")


def _shifted(rng, n):
    """'Real-like' frames: the toy task with a strong stain shift the model never saw."""
    out = []
    for _ in range(n):
        img, mask = toy_frame(rng)
        img = np.clip(img.astype(float)[..., ::-1] * 0.85, 0, 255).astype(np.uint8)  # swap R/B, darker
        out.append((img, mask))
    return out


def test_finetune_with_points_and_masks(trained):
    model, _ = trained
    rng = np.random.default_rng(11)
    train_set, test_set = _shifted(rng, 3), _shifted(rng, 4)
    # point labels: 40 random labelled pixels per image, as (xy, names)
    pts = []
    for _, mask in train_set:
        r, c = rng.integers(0, 48, 40), rng.integers(0, 48, 40)
        pts.append((np.c_[c + 0.5, r + 0.5], [model.names[k] for k in mask[r, c]]))
    tuned = td.seg.finetune(model, [i for i, _ in train_set], pts, pixel_size_um=4.0, steps=40,
                            lr=3e-3, crop=32, spot_radius_px=1.0, seed=0, device="cpu")
    assert tuned is not model and tuned.name.endswith("+finetuned")
    ft = tuned.metrics["finetune"]
    assert ft["n_images"] == 3 and ft["n_labelled_pixels"] > 0

    def acc(m):
        hits = 0
        for img, mask in test_set:
            hits += (td.seg.segment(img, m, pixel_size_um=4.0, tissue=False).labels == mask).mean()
        return hits / len(test_set)

    assert acc(tuned) > acc(model)
    # full masks (255 = unlabelled) are accepted too
    masks = [m.copy() for _, m in train_set]
    masks[0][:10] = 255
    td.seg.finetune(model, [i for i, _ in train_set], masks, pixel_size_um="model", steps=2, crop=32,
                    device="cpu", augment_images=True)


def test_finetune_bad_labels(trained):
    model, _ = trained
    img = np.full((48, 48, 3), 200, np.uint8)
    with pytest.raises(InputError, match="unknown region"):
        td.seg.finetune(model, [img], [(np.array([[3, 3]]), ["hippocampus"])], pixel_size_um=4.0, steps=1)
    with pytest.raises(InputError, match="shape"):
        td.seg.finetune(model, [img], [np.zeros((10, 10), np.uint8)], pixel_size_um=4.0, steps=1)
    with pytest.raises(InputError, match="one label set per image"):
        td.seg.finetune(model, [img, img], [np.zeros((48, 48), np.uint8)], pixel_size_um=4.0, steps=1)


def test_public_functions_stay_callable_after_submodule_imports(toy_ds):
    import importlib

    for name in ("train", "evaluate", "finetune"):
        importlib.import_module(f"topdown.seg._{name}")  # the private module behind the name
        assert callable(getattr(td.seg, name)) and getattr(td.seg, name).__name__ == name
    model = td.seg.train(toy_ds, epochs=1, batch_size=4, widths=(8, 16), device="cpu", progress=False)
    assert "miou" in td.seg.evaluate(model, toy_ds, indices=[0])


def test_adapt_batchnorm_takes_the_image_statistics(trained):
    """AdaBN: the first BatchNorm's running mean becomes the mean of its input on the image,
    and segment(adapt_norm=True) adapts a copy, never the caller's model."""
    from topdown.seg.adabn import adapt_batchnorm

    model, _ = trained
    before = {k: v.clone() for k, v in model.state_dict().items()}
    image = np.full((80, 80, 3), (120, 60, 150), np.uint8)
    rmap = td.seg.segment(image, model, pixel_size_um=model.pixel_size_um, tissue=False, adapt_norm=True)
    assert rmap.meta["params"]["adapt_norm"] is True
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())

    import copy

    adapted = copy.deepcopy(model)
    adapt_batchnorm(adapted, [image], np.random.default_rng(0), crop=32, device="cpu", n_batches=2)
    conv, bn = adapted.net.down[0][0], adapted.net.down[0][1]
    x = torch.from_numpy(image[:32, :32].astype(np.float32) / 255.0).permute(2, 0, 1)[None]
    with torch.no_grad():
        expected = conv((x - adapted.mean) / adapted.std).mean(dim=(0, 2, 3))
    assert torch.allclose(bn.running_mean, expected, atol=1e-4)
    assert not torch.allclose(bn.running_mean, model.net.down[0][1].running_mean, atol=1e-3)


def test_adapt_norm_is_skipped_on_images_too_small_for_statistics(trained):
    model, _ = trained
    image = np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8)
    with pytest.warns(UserWarning, match="adapt_norm skipped.*40 x 40 px"):
        small = td.seg.segment(image, model, pixel_size_um=model.pixel_size_um, tissue=False, adapt_norm=True)
    plain = td.seg.segment(image, model, pixel_size_um=model.pixel_size_um, tissue=False)
    assert small.meta["params"]["adapt_norm"] is False
    assert np.array_equal(small.labels, plain.labels)


def test_the_training_plan_is_saved_with_the_model(trained):
    """train_config is a TrainPlan written out: it reads back into one, and from the checkpoint."""
    model, out = trained
    plan = td.seg.TrainPlan.from_dict(model.train_config)
    assert (plan.epochs, plan.batch_size, plan.lr, plan.seed) == (12, 4, 1e-2, 1)
    assert plan.n_train + plan.n_val == 20 and plan.steps_per_epoch == -(-plan.n_train // 4)
    assert plan.init is None and len(plan.class_weights) == len(model.classes) + 1
    assert plan.to_dict() == model.train_config and "init" not in model.train_config
    saved = td.seg.TrainPlan.from_dict(td.seg.load(out).train_config)  # JSON: tuples come back as lists
    assert saved.to_dict() == json.loads(json.dumps(plan.to_dict()))
