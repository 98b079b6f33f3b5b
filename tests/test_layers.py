"""The layer prior: laminar depth between the network's anchors, read off the preset's thicknesses."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import topdown as td
from topdown.errors import InputError, SpecError

BULB = ["onl", "gl", "core"]
PX_UM = 10.0


def bulb_prior() -> td.seg.LayerPrior:
    return td.seg.LayerPrior(order=("onl", "gl", "core"), thickness_um={"onl": 100.0, "gl": 300.0})


def disk(shape, centre, radius) -> np.ndarray:
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius ** 2


def noisy_bulb(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A round section (radius 80 px = 800 µm) whose core (radius 40) the network finds,
    with the outer 40 px called at random: what a texture-blind network gives."""
    rng = np.random.default_rng(seed)
    shape = (200, 200)
    tissue, core = disk(shape, (100, 100), 80), disk(shape, (100, 100), 40)
    labels = np.where(tissue, rng.integers(1, 3, shape), 0).astype(np.uint8)
    labels[core] = 3
    return labels, tissue


def test_concentric_layers_follow_the_thicknesses():
    labels, tissue = noisy_bulb()
    new, report = td.seg.apply_layer_prior(labels, BULB, bulb_prior(), PX_UM)
    assert report["applied"] and report["changed_fraction"] > 0.1
    radius = np.hypot(*(np.mgrid[:200, :200] - 100))
    # 40 px between surface and core: onl the outer quarter (10 px), gl the rest
    assert np.all(new[(radius > 72) & (radius < 79)] == 1)
    assert np.all(new[(radius > 44) & (radius < 68)] == 2)
    assert np.all(new[radius < 38] == 3)
    assert np.all(new[~tissue] == 0)
    assert report["changed_by_region"]["core"] == 0.0


def test_two_bulbs_touching_get_a_surface_between_them():
    """Both bulbs of a coronal section touch without glass between them: the midline is a surface."""
    shape = (200, 320)
    tissue = disk(shape, (100, 100), 80) | disk(shape, (100, 220), 80) | np.pad(np.ones((120, 60), bool), ((40, 40), (130, 130)))
    labels = np.where(tissue, 2, 0).astype(np.uint8)
    labels[disk(shape, (100, 100), 35) | disk(shape, (100, 220), 35)] = 3  # cores 500 µm apart
    new, report = td.seg.apply_layer_prior(labels, BULB, bulb_prior(), PX_UM)
    assert report["applied"]
    assert np.all(new[95:105, 158:162] == 1)  # the midline between the bulbs: outer layer
    assert np.all(new[95:105, 145] == 2)  # 15 px from the midline, 25 px from its core: gl


def test_core_at_the_surface_contradicts_the_order_and_is_relabelled():
    labels, tissue = noisy_bulb()
    edge_blob = disk(labels.shape, (100, 178), 12) & tissue  # "core" called at the bulb surface
    labels[edge_blob] = 3
    new, report = td.seg.apply_layer_prior(labels, BULB, bulb_prior(), PX_UM)
    assert not np.any(new[edge_blob] == 3)
    assert report["changed_by_region"]["core"] > 0.0


def test_core_extras_off_the_core_axis_become_the_core_layer():
    """The rostral migratory stream runs along the bulb's axis: a stream blob the network
    calls at the edge of the granule core is core layer, one at the centre stays."""
    labels, _ = noisy_bulb()
    centre, rim = disk(labels.shape, (100, 100), 8), disk(labels.shape, (100, 134), 5)
    labels[centre | rim] = 4
    prior = td.seg.LayerPrior(order=("onl", "gl", "core"), core=("rms",), thickness_um={"onl": 100.0, "gl": 300.0})
    new, report = td.seg.apply_layer_prior(labels, [*BULB, "rms"], prior, PX_UM)
    assert np.all(new[centre] == 4)
    assert np.all(new[rim] == 3)
    assert report["changed_by_region"]["rms"] > 0.0


def test_no_core_leaves_the_map_alone():
    labels, _ = noisy_bulb()
    labels[labels == 3] = 2
    new, report = td.seg.apply_layer_prior(labels, BULB, bulb_prior(), PX_UM)
    assert report == {"applied": False, "reason": "no core found deep enough to anchor the layers"}
    assert new is labels


def test_surface_layer_anchor_ignores_cut_edges():
    """Cortex: layer 1 along the pia on top, white matter below; the cut sides are no surface."""
    classes = ["l1", "l2", "l3", "wm"]
    prior = td.seg.LayerPrior(order=tuple(classes), surface="l1", thickness_um={"l2": 200.0, "l3": 600.0})
    rng = np.random.default_rng(1)
    labels = rng.integers(2, 4, (200, 160)).astype(np.uint8)  # texture-blind middle
    labels[:20], labels[120:] = 1, 4  # pia band (200 µm), white matter from 1.2 mm
    labels[:, :25] = 0  # glass on the left: a cut edge
    new, report = td.seg.apply_layer_prior(labels, classes, prior, PX_UM)
    assert report["applied"]
    # 100 px from layer 1 to the white matter: l2 a quarter (rows 20-45), l3 the rest
    assert np.all(new[22:43, 27:] == 2) and np.all(new[48:118, 27:] == 3)
    assert np.all(new[48:118, 26:32] == 3)  # beside the cut edge too: depth runs pia -> white matter
    assert np.all(new[2:18, 27:-2] == 1) and np.all(new[122:, 27:-2] == 4) and np.all(new[:, :25] == 0)


def test_surface_margin_continues_the_surface_layer_inside_the_networks_call():
    """Layer 1 continues ``surface_margin_um`` past the network's call, and the layers below shift."""
    classes = ["l1", "l2", "l3", "wm"]
    labels = np.full((200, 160), 3, np.uint8)
    labels[:20], labels[120:] = 1, 4  # the network's layer 1 (200 µm) and white matter from 1.2 mm
    prior = td.seg.LayerPrior(order=tuple(classes), surface="l1", thickness_um={"l2": 200.0, "l3": 600.0},
                              surface_margin_um=200.0)
    new, report = td.seg.apply_layer_prior(labels, classes, prior, PX_UM)
    assert report["applied"]
    # 100 px from the call to the white matter over 1000 µm of bands: l1 20 px more, l2 20, l3 60
    assert np.all(new[:38] == 1) and np.all(new[42:58] == 2) and np.all(new[62:118] == 3)
    plain, _ = td.seg.apply_layer_prior(labels, classes, dataclasses.replace(prior, surface_margin_um=0.0), PX_UM)
    assert np.all(plain[22:43] == 2)
    with pytest.raises(InputError, match="surface_margin_um must be >= 0 and needs a surface layer"):
        td.seg.LayerPrior(order=("a", "b"), thickness_um={"a": 1.0}, surface_margin_um=50.0)


def test_a_crop_keeps_the_networks_call_where_the_surface_may_lie_beyond_the_image():
    labels, tissue = noisy_bulb()
    crop = labels[:, 60:]  # the bulb runs off the left image edge
    new, report = td.seg.apply_layer_prior(crop, BULB, bulb_prior(), PX_UM)
    assert report["applied"] and report["unseen_fraction"] > 0
    assert np.array_equal(new[95:105, :5], crop[95:105, :5])  # at the cut: unknown depth, network's call
    radius = np.hypot(*(np.mgrid[:200, 60:200] - 100))
    assert np.all(new[(radius > 72) & (radius < 79) & (np.mgrid[:200, 60:200][1] > 150)] == 1)  # the seen surface


def test_core_shallower_than_min_core_depth_is_refused():
    """Cortex: a pale patch of grey matter called white matter between the pia and the real white
    matter; refused when nearer the pia than ``min_core_depth`` of the summed thickness."""
    classes = ["l1", "l2", "l3", "wm"]
    labels = np.full((240, 160), 3, np.uint8)
    labels[:20], labels[170:] = 1, 4  # pia band, white matter 1.5 mm below it
    labels[85:135, 55:105] = 4  # a 0.5 mm patch 650-1150 µm under layer 1: median 0.6 of the summed 1.5 mm
    for share, kept in ((0.5, True), (0.75, False)):
        prior = td.seg.LayerPrior(order=tuple(classes), surface="l1", thickness_um={"l2": 500.0, "l3": 1000.0},
                                  min_core_depth=share)
        new, report = td.seg.apply_layer_prior(labels, classes, prior, PX_UM)
        assert report["applied"] and np.all(new[175:-2, 2:-2] == 4)
        assert bool(np.all(new[100:120, 65:95] == 4)) is kept
    assert set(np.unique(new[100:120, 65:95])) == {3}  # refused: the layer its depth falls in


def test_surface_calls_beside_the_core_are_refused_when_no_core_is_deep_enough():
    """Cortex: layer 1 called along the pia and also along a cut edge right beside the white
    matter. No white matter lies deep enough under that strip, so the strip (not the white
    matter) contradicts the order: it is dropped from the surface and assigned by depth."""
    classes = ["l1", "l2", "l3", "wm"]
    prior = td.seg.LayerPrior(order=tuple(classes), surface="l1", thickness_um={"l2": 500.0, "l3": 1000.0},
                              min_core_depth=0.75)
    labels = np.full((240, 160), 3, np.uint8)
    labels[:20] = 1  # the pia
    labels[180:] = 4  # white matter 1.6 mm under it
    labels[140:240, :25] = 1  # layer 1 called along the cut edge beside the white matter (0.25 mm2)
    new, report = td.seg.apply_layer_prior(labels, classes, prior, PX_UM)
    assert report["applied"] and report["surface_refused_near_core"]
    assert np.all(new[185:-1, 30:-1] == 4)  # the white matter anchors the layers
    assert not np.any(new[145:235, 2:22] == 1)  # the strip is read by depth: no layer 1 beside the white matter
    assert np.all(new[2:18, 20:] == 1)  # the pia stays
    plain, plain_report = td.seg.apply_layer_prior(labels[:, 25:], classes, prior, PX_UM)  # no strip: as before
    assert plain_report["applied"] and not plain_report["surface_refused_near_core"]


def three_layer_bulb() -> tuple[np.ndarray, np.ndarray, td.seg.LayerPrior]:
    """A round section whose core the network finds, with a 30 µm layer (3 px) above the core
    under a 100 µm one and a 270 µm one: the bulb's mitral cell layer in miniature."""
    labels, tissue = noisy_bulb()
    prior = td.seg.LayerPrior(order=("onl", "gl", "thin", "core"),
                              thickness_um={"onl": 100.0, "gl": 270.0, "thin": 30.0})
    labels = np.where(labels == 3, 4, labels).astype(np.uint8)
    return labels, tissue, prior


def test_spot_scale_widens_only_layers_too_thin_for_a_spot_and_never_the_core():
    labels, tissue, prior = three_layer_bulb()
    classes = ["onl", "gl", "thin", "core"]
    anatomical, _ = td.seg.apply_layer_prior(labels, classes, prior, PX_UM)
    spots, report = td.seg.apply_layer_prior(labels, classes, dataclasses.replace(prior, spot_diameter_um=100.0), PX_UM)
    assert report["spot_scale"] == {"spot_diameter_um": 100.0, "widened": ["thin"]}
    radius = np.hypot(*(np.mgrid[:200, :200] - 100))
    # anatomically 3 px (40-43 px from the centre); for 100 µm spots 5 px more on its outer side,
    # none on the core's side
    assert np.all(anatomical[(radius > 44.5) & (radius < 47)] == 2)
    assert np.all(spots[(radius > 41) & (radius < 47)] == 3)
    assert np.array_equal(spots == 4, anatomical == 4)
    # the 100 µm outer layer can cover half a spot: not widened
    assert np.array_equal(spots == 1, anatomical == 1)
    # spots of 55 µm (Visium): the 30 µm layer covers more than half of one; the anatomical map
    same, report = td.seg.apply_layer_prior(labels, classes, dataclasses.replace(prior, spot_diameter_um=55.0), PX_UM)
    assert report["spot_scale"]["widened"] == [] and np.array_equal(same, anatomical)


def test_band_share_of_disc_is_the_most_of_a_spot_a_layer_covers():
    from topdown.seg.layers import band_share_of_disc

    assert band_share_of_disc(100.0, 50.0) == pytest.approx(1.0)
    assert band_share_of_disc(0.0, 50.0) == 0.0
    # the share is the disc's area between two chords, 2 * width/2 from the centre; a grid agrees
    yy, xx = np.mgrid[-500:501, -500:501] / 10.0
    inside = xx ** 2 + yy ** 2 <= 50.0 ** 2
    assert band_share_of_disc(30.0, 50.0) == pytest.approx((inside & (np.abs(yy) <= 15)).sum() / inside.sum(), abs=0.01)


@pytest.mark.parametrize("diameter", [-5.0, float("nan")])
def test_bad_spot_diameter_names_the_problem(diameter):
    with pytest.raises(InputError, match="spot_diameter_um must be a finite number"):
        dataclasses.replace(bulb_prior(), spot_diameter_um=diameter)


def test_unknown_prior_class_is_a_clear_error():
    labels, _ = noisy_bulb()
    with pytest.raises(InputError, match="the layer prior names"):
        td.seg.apply_layer_prior(labels, ["a", "b", "c"], bulb_prior(), PX_UM)


def test_presets_declare_their_layers_without_changing_the_spec_hash():
    bulb = td.sim.load_preset("olfactory_bulb")
    prior = td.seg.LayerPrior.from_spec(bulb)
    assert prior.order[-1] == "granule_cell_layer" and prior.surface == "outside"
    assert prior.total_um == pytest.approx(395.0)
    data = bulb.to_dict()
    assert td.sim.TissueSpec.from_dict(data) == bulb
    del data["layers"]
    assert td.sim.TissueSpec.from_dict(data).hash() == bulb.hash()  # an inference prior: same renders
    assert "layers" not in td.sim.load_preset("spinal_cord").to_dict()
    assert td.seg.LayerPrior.from_spec(td.sim.load_preset("spinal_cord")) is None
    assert prior.min_core_depth == 0.5
    assert td.seg.LayerPrior.from_spec(td.sim.load_preset("cortex_laminar")).min_core_depth == 0.75
    assert td.seg.LayerPrior.from_spec(td.sim.load_preset("cortex_laminar")).surface_margin_um == 90.0
    with pytest.raises(InputError, match="min_core_depth must lie in"):
        td.seg.LayerPrior(order=("a", "b"), thickness_um={"a": 1.0}, min_core_depth=1.5)


def test_network_probabilities_move_layer_boundaries_only_near_them():
    """Fused with the network's probabilities, a pixel near a layer boundary takes the layer
    the network prefers; far from a boundary the depth decides whatever the network says."""
    labels, tissue = noisy_bulb()
    radius = np.hypot(*(np.mgrid[:200, :200] - 100))
    probs = np.full((4, 200, 200), 0.05, np.float32)
    probs[2] = 0.85  # the network says gl everywhere ...
    probs[1][(radius > 50) & (radius < 60)] = 0.9  # ... except onl in a ring deep inside gl
    probs[2][(radius > 50) & (radius < 60)] = 0.05
    prior = td.seg.LayerPrior(order=("onl", "gl", "core"), thickness_um={"onl": 100.0, "gl": 300.0}, softness=0.02)
    new, report = td.seg.apply_layer_prior(labels, BULB, prior, PX_UM, probabilities=probs)
    hard, _ = td.seg.apply_layer_prior(labels, BULB, prior, PX_UM)
    assert report["applied"]
    near_edge = (radius > 69) & (radius < 71.5)  # depth (80 - r) / 40 ~0.25: the onl/gl boundary
    assert np.all(hard[near_edge & (radius < 70)] == 2) and np.all(hard[(radius > 70.2) & (radius < 71.5)] == 1)
    assert np.all(new[near_edge] == 2)
    assert np.all(new[(radius > 52) & (radius < 58)] == 2)  # depth ~0.5-0.7: gl, the network's onl refused
    assert np.all(new[(radius > 74) & (radius < 79)] == 1)  # the outer 5 px: onl although the network says gl
    no_softness = td.seg.LayerPrior(order=("onl", "gl", "core"), thickness_um={"onl": 100.0, "gl": 300.0},
                                    softness=0.0)
    assert np.array_equal(td.seg.apply_layer_prior(labels, BULB, no_softness, PX_UM, probabilities=probs)[0], hard)
    with pytest.raises(InputError, match="softness must lie in"):
        td.seg.LayerPrior(order=("a", "b"), thickness_um={"a": 1.0}, softness=-0.1)


@pytest.mark.parametrize(("layers", "message"), [
    ({"order": ["glomerular_layer"], "thickness_um": {}}, "at least two distinct"),
    ({"order": ["glomerular_layer", "granule_cell_layer"], "surface": "pia",
      "thickness_um": {"glomerular_layer": 100}}, "surface: 'pia' is not allowed"),
    ({"order": ["glomerular_layer", "granule_cell_layer"], "thickness_um": {}}, "mean thickness of exactly"),
    ({"order": ["glomerular_layer", "granule_cell_layer"], "thickness_um": {"glomerular_layer": -5}},
     "out of range"),
    ({"order": ["nerve", "granule_cell_layer"], "thickness_um": {"nerve": 100}}, "layers: unknown region 'nerve'"),
    ({"order": ["glomerular_layer", "granule_cell_layer"], "thickness_um": {"glomerular_layer": 100},
      "min_core_depth": 2}, "out of range"),
    ({"order": ["glomerular_layer", "granule_cell_layer"], "thickness_um": {"glomerular_layer": 100},
      "surface_margin_um": 50}, "surface_margin_um: needs a surface layer"),
])
def test_bad_layers_block_names_the_problem(layers, message):
    data = td.sim.load_preset("olfactory_bulb").to_dict()
    data["layers"] = layers
    with pytest.raises(SpecError, match=message):
        td.sim.TissueSpec.from_dict(data)


def test_segment_applies_the_prior_of_the_models_preset(tiny_bulb_model):
    image = np.full((96, 96, 3), 235, np.uint8)
    image[16:80, 16:80] = (150, 90, 160)
    auto = td.seg.segment(image, tiny_bulb_model, pixel_size_um="model", device="cpu")
    raw = td.seg.segment(image, tiny_bulb_model, pixel_size_um="model", device="cpu", layer_prior=None)
    assert raw.meta["layer_prior"] is None
    assert auto.meta["layer_prior"] is not None and "applied" in auto.meta["layer_prior"]
    with pytest.raises(InputError, match="layer_prior='on' is not allowed"):
        td.seg.segment(image, tiny_bulb_model, pixel_size_um="model", device="cpu", layer_prior="on")
    with pytest.raises(InputError, match="spot_diameter_um must be a number of µm"):
        td.seg.segment(image, tiny_bulb_model, pixel_size_um="model", device="cpu", spot_diameter_um="wide")


def test_segment_draws_the_prior_for_the_spots_it_is_given(monkeypatch, tiny_bulb_model):
    import topdown.seg.layers as layers

    seen = []
    monkeypatch.setattr(layers, "apply_layer_prior", lambda labels, classes, prior, px, probabilities=None:
                        (seen.append(prior), (labels, {"applied": False}))[1])
    image = np.full((96, 96, 3), 235, np.uint8)
    td.seg.segment(image, tiny_bulb_model, pixel_size_um="model", device="cpu", spot_diameter_um=100)
    td.seg.segment(image, tiny_bulb_model, pixel_size_um="model", device="cpu")
    assert [p.spot_diameter_um for p in seen] == [100.0, 0.0]
    assert seen[0].spot_scale_layers == ["mitral_cell_layer"]


def test_for_model_needs_matching_classes(tiny_bulb_model):
    assert td.seg.LayerPrior.for_model(tiny_bulb_model) == td.seg.LayerPrior.from_spec(
        td.sim.load_preset("olfactory_bulb"))
    tiny_bulb_model.name = "my_own_tissue"
    assert td.seg.LayerPrior.for_model(tiny_bulb_model) is None


@pytest.fixture
def tiny_bulb_model():
    """An untrained two-level network with the olfactory bulb preset's classes."""
    spec = td.sim.load_preset("olfactory_bulb")
    return td.seg.SegModel(classes=spec.classes, pixel_size_um=8.0, widths=(4, 8), name="olfactory_bulb",
                           colors=spec.colors)


def test_pseudo_labels_follow_the_prior(monkeypatch, tiny_bulb_model):
    """td.seg.adapt's pseudo-labels are the network's map with the layer prior enforced."""
    from topdown.seg import _adapt
    from topdown.seg.target import TargetImage

    spec = td.sim.load_preset("olfactory_bulb")
    prior = td.seg.LayerPrior.from_spec(spec)
    labels, tissue = noisy_bulb()
    labels = np.where(labels == 3, 5, labels).astype(np.uint8)  # core -> granule_cell_layer (label 5)
    probs = np.full((7, *labels.shape), 0.5, np.float16)
    monkeypatch.setattr(_adapt, "predict", lambda *a, **k: (labels, probs))
    target = TargetImage(name="x", sha256="0", image=np.zeros((*labels.shape, 3), np.uint8), tissue=tissue)
    got = _adapt.pseudo_labels(tiny_bulb_model, target, keep=1.0, layer_prior=prior)
    want, report = td.seg.apply_layer_prior(labels, spec.classes, prior, tiny_bulb_model.pixel_size_um)
    assert report["applied"] and np.array_equal(got, want)
    assert not np.array_equal(_adapt.pseudo_labels(tiny_bulb_model, target, keep=1.0), want)
    resolve = td.seg.LayerPrior.resolve
    assert resolve("auto", tiny_bulb_model) == prior and resolve(None, tiny_bulb_model) is None
    with pytest.raises(InputError, match="layer_prior='yes' is not allowed"):
        resolve("yes", tiny_bulb_model)
