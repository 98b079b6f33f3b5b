"""Inference, image handling, resampling, polygons, checkpoint I/O and input errors (no training)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import shapely
import torch

import topdown as td
from topdown.errors import DataFileError, InputError
from topdown.seg.image import open_image
from topdown.seg.regionmap import polygons_from_labels
from topdown.seg.resample import (
    map_shape,
    pixel_size_from_scalefactors,
    resample_array,
    resample_tile,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = td.seg.SegModel(["cortex", "striatum", "thalamus"], pixel_size_um=4.0, widths=(8, 16, 24), name="tiny")
    # give BatchNorm non-trivial running statistics, as after training
    m.train()
    with torch.no_grad():
        for _ in range(3):
            m(torch.rand(2, 3, 32, 32))
    return m.eval()


def _img(h, w, seed=0):
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), 245, np.uint8)
    r0, r1, c0, c1 = h // 4, 3 * h // 4, w // 4, 3 * w // 4
    img[r0:r1, c0:c1] = rng.integers(80, 200, (r1 - r0, c1 - c0, 3))
    return img


@pytest.mark.parametrize("shape", [(37, 53), (1, 1), (65, 17), (130, 129)])
def test_odd_sizes(model, shape):
    img = _img(*shape)
    r = td.seg.segment(img, model, pixel_size_um=4.0)
    assert r.labels.shape == shape and r.image_shape == shape and r.downsample == 1.0
    assert r.probabilities.shape == (4, *shape) and r.probabilities.dtype == np.float16
    assert np.allclose(r.probabilities.astype(np.float32).sum(0), 1, atol=5e-3)
    assert r.classes == model.classes and r.meta["model"] == "tiny"


def test_channels_and_dtypes_agree(model):
    img = _img(48, 40)
    grey = img[..., 0]
    base = td.seg.segment(np.repeat(grey[..., None], 3, axis=2), model, pixel_size_um="model").labels
    assert np.array_equal(td.seg.segment(grey, model, pixel_size_um="model").labels, base)
    # uint16 with the same content (robust percentiles rescale it back to ~0..255)
    u16 = grey.astype(np.uint16) * 257
    out16 = td.seg.segment(u16, model, pixel_size_um="model")
    assert out16.labels.shape == grey.shape
    # RGBA: fully opaque == RGB; fully transparent == white glass
    rgba = np.dstack([img, np.full(img.shape[:2], 255, np.uint8)])
    rgb_labels = td.seg.segment(img, model, pixel_size_um="model").labels
    assert np.array_equal(td.seg.segment(rgba, model, pixel_size_um="model").labels, rgb_labels)
    src = open_image(np.dstack([img, np.zeros(img.shape[:2], np.uint8)]))
    assert (src.read(0, 48, 0, 40) == 255).all()
    assert open_image(np.zeros((5, 6), np.float32)).read(0, 5, 0, 6).shape == (5, 6, 3)


def test_tiling_matches_single_pass(model):
    img = _img(150, 170, seed=3)
    whole = td.seg.segment(img, model, pixel_size_um="model", tissue=False, tile=256)
    tiled = td.seg.segment(img, model, pixel_size_um="model", tissue=False, tile=64, overlap=32)
    agree = (whole.labels == tiled.labels).mean()
    assert agree > 0.95  # only tile-border context differs (BatchNorm eval: no tile statistics)
    diff = np.abs(whole.probabilities.astype(np.float32) - tiled.probabilities.astype(np.float32))
    assert np.median(diff) < 0.02


def _mirror_gap(model, img, axes, **kw):
    """Largest probability change between the map of ``img`` and the unmirrored map of its
    mirror along the image ``axes`` (0: upside-down, 1: left-right, (0, 1): half turn)."""
    def probs(x):
        r = td.seg.segment(x, model, pixel_size_um="model", tissue=False, **kw)
        return r.probabilities.astype(np.float32)

    axes = tuple(np.atleast_1d(axes))
    map_axes = tuple(a + 1 for a in axes)  # probabilities are (classes, rows, cols)
    return float(np.abs(probs(img) - np.flip(probs(np.flip(img, axes)), map_axes)).max())


def test_tta_makes_the_map_mirror_equivariant(model):
    """With TTA a half-turned image gives the half-turned map; one raw pass does not."""
    from topdown.seg.infer import tta_flips

    img = _img(64, 64, seed=4)  # one tile, a multiple of the net's stride: mirroring is exact
    assert tta_flips(model) == ((False, False), (True, True))  # no train_config: free orientation
    averaged, raw = _mirror_gap(model, img, (0, 1)), _mirror_gap(model, img, (0, 1), tta=False)
    assert averaged < 1e-3 and raw > 10 * averaged
    assert _mirror_gap(model, img, 1) > 10 * averaged  # two passes: not every mirror is averaged
    r = td.seg.segment(img, model, pixel_size_um="model")
    assert r.meta["params"]["tta"] is True  # on by default, and recorded


def test_tta_flips_follow_the_training_orientation(model):
    """Upright models are averaged over left-right mirrors only; no flips in training, no TTA."""
    from topdown.seg.infer import class_probabilities, tta_flips

    upright = td.seg.SegModel(model.classes, pixel_size_um=4.0, widths=(8, 16, 24),
                              train_config={"augment": {"any_orientation": False, "flip": True}})
    upright.load_state_dict(model.state_dict())
    upright.eval()
    assert tta_flips(upright) == ((False, False), (False, True))
    plain = td.seg.SegModel(model.classes, train_config={"augment": {"flip": False}})
    assert tta_flips(plain) == ((False, False),)
    x = torch.from_numpy(_img(32, 48, seed=5)).permute(2, 0, 1)[None]
    with torch.inference_mode():
        raw = torch.softmax(upright(x).float(), 1)
        mirrored = torch.softmax(upright(x.flip(3)).float(), 1).flip(3)
        averaged = class_probabilities(upright, x, tta=True)
        assert torch.allclose(averaged, (raw + mirrored) / 2, atol=1e-6)
        assert torch.allclose(class_probabilities(upright, x), raw, atol=1e-6)
    img = _img(64, 64, seed=4)
    left_right, upside_down = _mirror_gap(upright, img, 1), _mirror_gap(upright, img, 0)
    assert left_right < 1e-3 and upside_down > 10 * left_right  # upright: not asked to be upside-down


def test_pixel_size_resampling(model):
    img = _img(200, 160)
    r = td.seg.segment(img, model, pixel_size_um=1.0, tile=32, overlap=8)  # 4x coarser map
    assert r.labels.shape == (50, 40) and r.downsample == pytest.approx(4.0)
    assert r.image_shape == (200, 160)
    gdf = r.to_geodataframe()
    assert gdf.total_bounds[2] <= 160 + 1e-6 and gdf.total_bounds[3] <= 200 + 1e-6
    r2 = td.seg.segment(img, model, pixel_size_um=8.0)  # upsampling: map finer than image
    assert r2.labels.shape == (400, 320) and r2.downsample == pytest.approx(0.5)


def test_resample_round_trip_and_tiles():
    rng = np.random.default_rng(0)
    small = rng.integers(0, 255, (40, 30, 3)).astype(np.uint8)
    from scipy import ndimage as ndi

    smooth = ndi.gaussian_filter(small.astype(float), (2, 2, 0)).astype(np.uint8)
    up = resample_array(smooth, 3.0)
    assert up.shape == (120, 90, 3)
    back = resample_array(up, 1 / 3)
    assert back.shape == smooth.shape
    assert np.abs(back.astype(int) - smooth.astype(int))[2:-2, 2:-2].max() <= 3
    labels = rng.integers(0, 5, (17, 23)).astype(np.uint8)
    assert np.array_equal(resample_array(resample_array(labels, 4.0, order=0), 0.25, order=0), labels)
    # tiles of a downsampled image equal the whole downsampled image
    big = ndi.gaussian_filter(rng.integers(0, 255, (301, 257, 3)).astype(float), (3, 3, 0)).astype(np.uint8)
    src, f = open_image(big), 0.37
    h, w = map_shape(big.shape[:2], f)
    whole = resample_tile(src, 0, h, 0, w, f)
    parts = np.concatenate([np.concatenate([resample_tile(src, r, min(r + 32, h), c, min(c + 32, w), f)
                                            for c in range(0, w, 32)], axis=1) for r in range(0, h, 32)])
    assert np.abs(parts.astype(int) - whole.astype(int)).max() <= 2


def test_polygons_cover_the_labels_exactly():
    rng = np.random.default_rng(1)
    labels = (rng.random((30, 40)) * 4).astype(np.uint8)
    labels[10:20, 10:20] = 2
    labels[13:16, 13:16] = 0  # a hole
    rmap = td.seg.RegionMap(labels, ["a", "b", "c"], downsample=2.0)
    gdf = rmap.to_geodataframe(coords="map")
    for _, row in gdf.iterrows():
        assert row.geometry.area == (labels == row.label).sum()
        assert row.geometry.is_valid
    # every pixel centre lies in exactly the polygon of its label
    rr, cc = np.mgrid[0:30, 0:40]
    pts = shapely.points(cc.ravel() + 0.5, rr.ravel() + 0.5)
    got = np.zeros(labels.size, int)
    for lab, geom in polygons_from_labels(labels).items():
        got[shapely.contains(geom, pts)] = lab
    assert np.array_equal(got.reshape(labels.shape), labels)
    img_gdf = rmap.to_geodataframe()
    assert img_gdf.area.sum() == pytest.approx(4 * (labels > 0).sum())


def test_checkpoint_round_trip_and_class_check(model, tmp_path):
    path = td.seg.save(model, tmp_path / "m.pt")
    meta = json.loads((tmp_path / "m.json").read_text())
    assert meta["classes"] == list(model.classes) and meta["pixel_size_um"] == 4.0
    loaded = td.seg.load(path, classes=list(model.classes))
    x = torch.rand(1, 3, 24, 24)
    with torch.inference_mode():
        assert torch.allclose(model(x), loaded(x), atol=2e-2)
    with pytest.raises(InputError, match=r"cortex.*hippocampus|hippocampus.*cortex"):
        td.seg.load(path, classes=["hippocampus"])
    with open(path, "rb") as fh:
        assert fh.read(8) != b"\x80\x02\x8a\x0a" * 2  # not a pickle
    assert not any(p.suffix == ".pkl" for p in tmp_path.iterdir())


def test_load_errors(tmp_path):
    with pytest.raises(InputError, match="unknown model"):
        td.seg.load("no_such_preset")
    with pytest.raises(DataFileError, match="not found"):
        td.seg.load(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(DataFileError, match="not a readable topdown checkpoint"):
        td.seg.load(bad)
    assert isinstance(td.seg.available_models(), list)


def test_image_errors(model, tmp_path):
    with pytest.raises(DataFileError, match="not found"):
        td.seg.segment(tmp_path / "nope.png", model, pixel_size_um=1.0)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG garbage")
    with pytest.raises(DataFileError, match="cannot read"):
        td.seg.segment(broken, model, pixel_size_um=1.0)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(DataFileError, match="empty"):
        td.seg.segment(empty, model, pixel_size_um=1.0)
    with pytest.raises(InputError, match="empty"):
        td.seg.segment(np.zeros((0, 5, 3), np.uint8), model, pixel_size_um=1.0)
    with pytest.raises(InputError, match="shape"):
        td.seg.segment(np.zeros((4, 5, 7), np.uint8), model, pixel_size_um=1.0)
    with pytest.raises(InputError, match="--pixel-size.*scalefactors"):
        td.seg.segment(_img(20, 20), model)
    with pytest.raises(InputError, match="positive"):
        td.seg.segment(_img(20, 20), model, pixel_size_um=-1)
    with pytest.raises(InputError, match="adapt_norm must be True or False"):
        td.seg.segment(_img(20, 20), model, pixel_size_um=1.0, adapt_norm="no")
    with pytest.raises(InputError, match="tta must be True or False"):
        td.seg.segment(_img(20, 20), model, pixel_size_um=1.0, tta=1)


def test_visium_scalefactors(model, tmp_path):
    sf = {"spot_diameter_fullres": 110.0, "tissue_hires_scalef": 0.2, "tissue_lowres_scalef": 0.05}
    assert pixel_size_from_scalefactors(sf, "fullres") == pytest.approx(0.5)
    assert pixel_size_from_scalefactors(sf, "lowres") == pytest.approx(10.0)
    with pytest.raises(InputError, match="tissue_hires_scalef"):
        pixel_size_from_scalefactors({"spot_diameter_fullres": 1.0}, "hires")
    from PIL import Image

    (tmp_path / "scalefactors_json.json").write_text(json.dumps(sf))
    Image.fromarray(_img(30, 20)).save(tmp_path / "tissue_lowres_image.png")
    r = td.seg.segment(tmp_path / "tissue_lowres_image.png", model)  # px size found next to it
    assert r.meta["image_pixel_size_um"] == pytest.approx(10.0)
    assert r.labels.shape == (75, 50)


def test_real_visium_lowres_image(model, visium_outs):
    r = td.seg.segment(visium_outs / "spatial" / "tissue_lowres_image.png", model, probabilities=False)
    assert r.image_shape == (600, 576) or r.image_shape == (576, 600)
    assert r.probabilities is None
    assert 0.05 < r.tissue_fraction() < 0.95  # glass around the section is detected


def test_lazy_tiff(model, tmp_path):
    import tifffile

    img = _img(96, 80)
    tifffile.imwrite(tmp_path / "x.tif", img, tile=(32, 32))
    a = td.seg.segment(tmp_path / "x.tif", model, pixel_size_um=4.0)
    b = td.seg.segment(img, model, pixel_size_um=4.0)
    assert np.array_equal(a.labels, b.labels)


@pytest.mark.parametrize("kw", [{"tile": (32, 32)}, {"rowsperstrip": 7}, {"tile": (64, 32), "compression": "zlib"}])
def test_tiff_reader_reads_only_what_is_asked(tmp_path, kw):
    import tifffile

    img = np.random.default_rng(0).integers(0, 255, (301, 257, 3)).astype(np.uint8)
    tifffile.imwrite(tmp_path / "t.tif", img, **kw)
    src = open_image(tmp_path / "t.tif")
    for sl in [(slice(0, 301, 5), slice(3, 250, 7)), (slice(10, 100), slice(33, 200)), (slice(None), slice(None, None, 3))]:
        assert np.array_equal(np.asarray(src.array[sl]), img[sl])
    thumb, step = src.thumbnail(max_side=64)
    assert np.array_equal(thumb, img[::step, ::step])


def test_dapi_tissue_detection_and_background():
    torch.manual_seed(0)
    m = td.seg.SegModel(["a"], pixel_size_um=2.0, modality="dapi", widths=(8, 16)).eval()
    rng = np.random.default_rng(0)
    img = (rng.random((240, 240)) * 10).astype(np.uint8)  # dark glass
    yy, xx = np.mgrid[0:240, 0:240]
    inside = (yy - 120) ** 2 + (xx - 120) ** 2 < 60 ** 2
    img[inside & (rng.random((240, 240)) < 0.3)] = 220  # sparse bright nuclei
    r = td.seg.segment(img.astype(np.uint16) * 100, m, pixel_size_um=2.0)
    frac = r.tissue_fraction()
    assert frac <= inside.mean() * 1.6 + 0.05
    assert r.labels[0, 0] == 0 and r.labels[:5, :5].max() == 0
    assert m.background_value == 0
    from topdown.seg.tissue import tissue_mask

    for px in (None, 2.0):  # smoothed Otsu; glass disks of DAPI_GLASS_RADIUS_UM
        tm = tissue_mask(np.repeat(img[..., None], 3, axis=2), "dapi", pixel_size_um=px)
        assert (tm & inside).sum() / (tm | inside).sum() > 0.7


def test_dapi_tissue_keeps_dark_gaps_between_nuclei():
    """In a DAPI crop full of tissue, the dark space between sparse nuclei is not glass."""
    from topdown.seg.tissue import DAPI_GLASS_RADIUS_UM, tissue_mask

    rng = np.random.default_rng(1)
    img = np.full((200, 200, 3), 12, np.uint8)
    img[rng.random((200, 200)) < 0.02] = 230  # nuclei everywhere...
    img[:, 120:] = 12  # ...but none in a strip 80 px wide at the right edge
    gap_um = 80 * 1.0  # at 1 µm/px, its far edge is 80 µm from the nearest nucleus
    assert gap_um < DAPI_GLASS_RADIUS_UM
    assert tissue_mask(img, "dapi", pixel_size_um=1.0) is None  # 200 µm: no room for a glass disk, left to the model
    wide = np.full((300, 300, 3), 12, np.uint8)  # 300 µm: room for a glass disk...
    wide[rng.random((300, 300)) < 0.02] = 230
    wide[:, 220:] = 12  # ...but the only dark strip is 80 µm wide: all tissue
    assert tissue_mask(wide, "dapi", pixel_size_um=1.0).all()
    # the same strip at 5 µm/px is 400 µm wide: glass, and the rest is tissue
    tm = tissue_mask(img, "dapi", pixel_size_um=5.0)
    assert tm is not None and not tm[100, 190] and tm[100, 10] and 0.55 < tm.mean() < 0.8


@pytest.fixture(scope="module")
def shipped_models():
    """``{name: model}`` of every shipped region model, the simulation-only ones as
    ``sim/<name>`` (skips where the checkout has none)."""
    names = td.seg.available_models()
    if not names:
        pytest.skip("no shipped weights in this checkout")
    return {**{name: td.seg.load(name) for name in names},
            **{f"sim/{name}": td.seg.load(name, kind="sim") for name in td.seg.available_models("sim")}}


def test_shipped_models_load_by_name(shipped_models):
    for name, m in shipped_models.items():
        assert m.name == name.removeprefix("sim/") and m.pixel_size_um and len(m.classes) >= 2
        assert m.weights_sha256 and m.metrics.get("epochs_done")
        r = td.seg.segment(np.full((40, 40, 3), 240, np.uint8), m, pixel_size_um=m.pixel_size_um)
        assert r.labels.shape == (40, 40) and r.tissue_fraction() == 0.0  # blank glass


def test_shipped_models_match_their_presets(shipped_models):
    """A preset edited without retraining its model leaves stale weights: catch it here."""
    for name, m in shipped_models.items():
        preset = m.name.removesuffix(f"_{m.modality}")  # mouse_brain_coronal_dapi -> mouse_brain_coronal
        spec = td.sim.load_preset(preset)
        assert tuple(m.classes) == tuple(spec.classes), name
        assert m.spec_hash == spec.hash(), (
            f"{name} was trained on another version of the {preset} preset: retrain it "
            f"(benchmarks/train_shipped.sh {preset})")


def test_real_adapted_models_come_from_their_shipped_simulation_only_models(shipped_models):
    """A shipped model adapted to real sections records its adaptation, and its base is the
    simulation-only model shipped beside it (``kind="sim"``), so either can be re-made."""
    sim_only = {n.removeprefix("sim/"): m for n, m in shipped_models.items() if n.startswith("sim/")}
    assert {"olfactory_bulb", "cortex_laminar"} <= set(sim_only)
    for name, base in sim_only.items():
        record = shipped_models[name].metrics["adapt"]
        assert record["method"] == "pseudo_label" and record["n_images"] >= 1 and len(record["sha256"]) == record["n_images"]
        assert record["base_weights_sha256"] == base.weights_sha256
        assert "adapt" not in base.metrics
        assert shipped_models[name].spec_hash == base.spec_hash
    with pytest.raises(InputError, match="kind='regions'"):
        td.seg.load("spinal_cord", kind="sim")  # no real adaptation: its one model is a regions model
    assert td.seg.load("sim/olfactory_bulb").weights_sha256 == sim_only["olfactory_bulb"].weights_sha256
    with pytest.raises(InputError, match="unknown model 'no_such'.*Available: sim/cortex_laminar, sim/olfactory_bulb"):
        td.seg.load("sim/no_such")


def test_tissue_detector_abstains_without_glass():
    """Glass-free crops are left to the model; a featureless image has no tissue."""
    from topdown.seg.tissue import tissue_mask

    assert not tissue_mask(np.full((64, 64, 3), 240, np.uint8), "he").any()  # featureless: glass
    rng = np.random.default_rng(0)
    full = rng.integers(90, 160, (64, 64, 3)).astype(np.uint8)  # a crop full of tissue
    assert tissue_mask(full, "he") is None


def test_detected_tissue_always_gets_a_region(model):
    img = np.full((96, 96, 3), 235, np.uint8)
    img[24:72, 24:72] = (150, 90, 160)  # stained tissue on white glass
    r = td.seg.segment(img, model, pixel_size_um=model.pixel_size_um)
    core = r.labels[30:66, 30:66]
    assert (core > 0).all()  # the detector sees tissue: never 'outside' there
    assert r.labels[:10, :10].max() == 0  # glass stays outside


def test_dapi_field_full_of_tissue_has_no_outside():
    """A DAPI crop from inside a section: the detector finds no glass, so no pixel is 'outside'
    even where the model is sure of it; with glass in view its confident 'outside' stands."""
    torch.manual_seed(0)
    m = td.seg.SegModel(["a", "b"], pixel_size_um=4.0, modality="dapi", widths=(8, 16)).eval()
    with torch.no_grad():
        m.net.head.bias[0] = 30.0  # the network says 'outside' everywhere, with p ~ 1
    rng = np.random.default_rng(2)
    field = np.full((400, 400), 10, np.uint8)  # 400 µm at 1 µm/px, sparse nuclei everywhere
    field[rng.random((400, 400)) < 0.02] = 220
    r = td.seg.segment(field, m, pixel_size_um=1.0)
    assert r.meta["params"]["all_tissue"] is True
    assert r.tissue_fraction() == 1.0 and float(r.probabilities[0].min()) > 0.99
    assert td.seg.segment(field, m, pixel_size_um=1.0, tissue=False).tissue_fraction() == 0.0
    field[:, 200:] = 10  # the right half empty: 200 µm of glass, room for a glass disk
    r = td.seg.segment(field, m, pixel_size_um=1.0)
    assert r.meta["params"]["all_tissue"] is False
    assert r.labels[:, -10:].max() == 0 and r.labels[:, :150].max() == 0  # confident 'outside' kept


def test_image_labels_show_the_map_at_image_resolution():
    labels = np.array([[0, 1], [2, 2]], np.uint8)
    rmap = td.seg.RegionMap(labels=labels, classes=("a", "b"), downsample=3.0, image_shape=(6, 5, 3))
    img = rmap.image_labels()
    assert img.shape == (6, 5)
    assert np.array_equal(img[:3, :3], np.zeros((3, 3))) and np.all(img[:3, 3:] == 1) and np.all(img[3:] == 2)
    assert rmap.image_labels((2, 2)).tolist() == [[0, 0], [0, 0]]
    assert np.array_equal(td.seg.RegionMap(labels=labels, classes=("a", "b")).image_labels(), labels)


@pytest.mark.parametrize("norm", ["batch", "group"])
def test_for_inference_folds_batchnorm_and_keeps_the_outputs(norm):
    """The prediction copy gives the model's logits; the model itself is left as it was."""
    torch.manual_seed(0)
    model = td.seg.SegModel(["a", "b"], pixel_size_um=4.0, widths=(8, 16, 24), norm=norm)
    with torch.no_grad():  # trained-looking statistics and affine terms, not the identity of a new layer
        for layer in model.modules():
            if isinstance(layer, (torch.nn.BatchNorm2d, torch.nn.GroupNorm)):
                layer.weight.uniform_(0.5, 2.0)
                layer.bias.uniform_(-0.5, 0.5)
            if isinstance(layer, torch.nn.BatchNorm2d):
                layer.running_mean.uniform_(-1.0, 1.0)
                layer.running_var.uniform_(0.2, 3.0)
    model.train()
    fast = model.for_inference()
    norms = [type(m).__name__ for m in fast.net.modules() if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.GroupNorm))]
    assert norms == ([] if norm == "batch" else ["GroupNorm"] * 10)
    assert model.training and any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) == (norm == "batch")
    assert not any(p.requires_grad for p in fast.parameters())
    x = torch.from_numpy(_img(40, 56, seed=6)).permute(2, 0, 1)[None]  # H x W x 3 pixels: channels-last
    with torch.inference_mode():
        want = model.eval()(x)
        got = fast(x)
    assert got.shape == want.shape == (1, 3, 40, 56)
    scale = float(want.abs().max())
    assert scale > 0.1 and torch.allclose(got, want, atol=1e-4 * scale)  # float rounding, not a new model
