"""Blender rendering (real bpy + Cycles, tiny frames) and image-level artefacts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import Point, box

from topdown.errors import InputError, SpecError
from topdown.sim.artefacts import apply_artefacts, sample_artefacts
from topdown.sim.render import render_section
from topdown.sim.section import Section

pytestmark = pytest.mark.blender


def _section(size=64, px=2.0, n=150, seed=0, folds=()):
    rng = np.random.default_rng(seed)
    w = size * px
    tissue = box(0, 0, w * 0.6, w)  # right 40 % of the field is glass
    core = Point(w * 0.3, w * 0.5).buffer(w * 0.2)
    x, y = rng.uniform(0, w * 0.6, n), rng.uniform(0, w, n)
    reg = np.where(shapely.contains_xy(core, x, y), "core", "rim")
    cells = pd.DataFrame({
        "x_um": x, "y_um": y, "z_um": rng.uniform(0, 8, n), "major_um": rng.uniform(7, 10, n),
        "minor_um": rng.uniform(5, 7, n), "angle_rad": rng.uniform(0, np.pi, n),
        "cell_type": np.where(reg == "core", "granule", "glia"), "region": reg,
        "stain": np.ones(n), "layer": np.zeros(n, int)})
    return Section(classes=["rim", "core"], regions={"rim": tissue.difference(core), "core": core},
                   cells=cells, width_um=w, height_um=w, pixel_size_um=px, thickness_um=8.0,
                   folds=list(folds),
                   region_style={"rim": {"eosin": 0.6, "texture": "fibres", "fibre_angle_rad": 0.4},
                                 "core": {"eosin": 0.3}},
                   cell_style={"granule": {"hematoxylin": 1.2}, "glia": {"hematoxylin": 0.8}})


def _labels(sec):
    h, w = sec.shape
    yy, xx = np.mgrid[0:h, 0:w]
    xs, ys = (xx.ravel() + 0.5) * sec.pixel_size_um, (yy.ravel() + 0.5) * sec.pixel_size_um
    lab = np.zeros(h * w, np.uint8)
    for k, name in enumerate(sec.classes, 1):
        lab[shapely.contains_xy(sec.regions[name], xs, ys)] = k
    return lab.reshape(h, w)


def test_he_render_glass_bright_tissue_stained_deterministic():
    sec = _section()
    lab = _labels(sec)
    img, info = render_section(sec, "he", seed=3, labels=lab, return_info=True)
    assert img.shape == (64, 64, 3) and img.dtype == np.uint8
    assert info["renderer"] == "blender-cycles" and info["blender_version"].startswith("5.")
    glass, tissue = img[lab == 0].astype(float), img[lab > 0].astype(float)
    assert glass.mean() > 235  # white backlight through bare glass
    assert tissue.mean() < glass.mean() - 20
    # eosin/haematoxylin: the green channel is absorbed most in tissue
    assert tissue[:, 1].mean() < tissue[:, 0].mean()
    again = render_section(sec, "he", seed=3, labels=lab)
    assert np.abs(again.astype(int) - img).max() <= 1
    other = render_section(sec, "he", seed=4, labels=lab)
    assert np.abs(other.astype(int) - img).max() > 1


def test_dapi_render_dark_background_bright_nuclei():
    sec = _section()
    lab = _labels(sec)
    img = render_section(sec, "dapi", seed=1, labels=lab)
    assert (img[..., 0] == img[..., 1]).all()  # grey, stored as RGB
    assert img[lab == 0].mean() < 10
    assert img[lab > 0].max() > 120  # nuclei glow
    # no nuclei -> only weak autofluorescence
    empty = _section(n=0)
    assert render_section(empty, "dapi", seed=1, labels=lab)[lab > 0].mean() < img[lab > 0].mean()


@pytest.mark.parametrize("modality", ["he", "dapi"])
def test_subpixel_nuclei_render_as_points_that_look_like_the_ellipsoids(modality, monkeypatch):
    import topdown.sim.blender.nuclei as nuclei

    sec = _section(size=32, px=16.0, n=600)  # ~0.5 px nuclei, sparse enough not to saturate
    lab = _labels(sec)
    tissue = lab > 0
    points, info = render_section(sec, modality, seed=2, labels=lab, return_info=True)
    assert info["nuclei_as"] == "points"
    empty = render_section(_section(size=32, px=16.0, n=0), modality, seed=2, labels=lab)
    monkeypatch.setattr(nuclei, "POINT_LOD_PX", 0.0)  # force ico-sphere ellipsoids
    ellipsoids, info = render_section(sec, modality, seed=2, labels=lab, return_info=True)
    assert info["nuclei_as"] == "ellipsoids"
    effect_points = points[tissue].astype(float).mean() - empty[tissue].mean()
    effect_ellipsoids = ellipsoids[tissue].astype(float).mean() - empty[tissue].mean()
    # the nuclei darken (H&E) or brighten (DAPI) the tissue, by the same amount either way
    assert abs(effect_ellipsoids) > 5
    assert np.sign(effect_points) == np.sign(effect_ellipsoids)
    assert abs(effect_points - effect_ellipsoids) < 0.1 * abs(effect_ellipsoids)


def test_fold_doubles_stain():
    sec = _section(n=0, folds=[box(0, 0, 40, 128)])
    lab = _labels(sec)
    img = render_section(sec, "he", seed=0, labels=lab).astype(float)
    fold = img[2:60, 2:18].mean()
    flat = img[2:60, 24:36].mean()
    assert fold < flat - 10


def test_render_bad_input():
    with pytest.raises(InputError, match="modality"):
        render_section(_section(), "ihc")
    with pytest.raises(InputError, match="engine_options"):
        render_section(_section(), "he", engine_options={"bogus": 1}, labels=np.zeros((64, 64), np.uint8))


def test_artefacts_sampled_recorded_and_reproducible():
    img = np.full((64, 64, 3), 200, np.uint8)
    ranges = {"noise": (0.3, 0.3), "blur_px": (0.5, 1.5), "vignetting": (0.3, 0.3),
              "illumination": (0.1, 0.2), "stain_shift": (0.1, 0.2), "debris": (3, 3),
              "bubbles": (1, 1), "jpeg_quality": (50, 60), "fiducial_frame": (1, 1),
              "tears": (0, 2), "folds": (0, 1)}
    a, pa = apply_artefacts(img, ranges, np.random.default_rng(5), pixel_size_um=2.0)
    b, pb = apply_artefacts(img, ranges, np.random.default_rng(5), pixel_size_um=2.0)
    assert pa == pb and (a == b).all()
    assert pa["noise"] == 0.3 and pa["debris"] == 3 and pa["fiducial_frame"] is True
    assert 50 <= pa["jpeg_quality"] <= 60 and "tears" not in pa
    assert a.std() > 10  # noise applied
    clean, p0 = apply_artefacts(img, {}, np.random.default_rng(0))
    assert (clean == img).all() and p0["noise"] == 0


def test_artefacts_noise_fraction_and_validation():
    img = np.zeros((32, 32, 3), np.uint8)
    heavy, _ = apply_artefacts(img, {"noise": (0.95, 0.95)}, np.random.default_rng(0))
    assert 100 < heavy.mean() < 140  # ~95 % uniform noise on black
    with pytest.raises(SpecError, match="noise"):
        sample_artefacts({"noise": (0.0, 1.0)}, np.random.default_rng(0))
    with pytest.raises(SpecError, match="unknown artefact"):
        sample_artefacts({"sparkles": (0, 1)}, np.random.default_rng(0))


def test_lesion_changes_the_stroma_only_inside_it():
    import topdown as td
    from topdown.sim.blender.textures import lesion_weight, slab_texture

    spec = td.sim.load_preset("mouse_brain_coronal")
    sick = td.sim.layout(spec, 3, size=96, condition="pathological")
    labels = td.sim.region_mask(sick)
    weight = lesion_weight(sick, labels)
    assert weight is not None and weight.max() == 1.0
    assert (labels[weight > 0] == sick.label_of(sick.params["lesion"]["region"])).all()
    healthy_style = {k: {kk: vv for kk, vv in v.items() if kk != "lesion"} for k, v in sick.region_style.items()}
    plain = type(sick)(**{**sick.__dict__, "region_style": healthy_style})
    a = slab_texture(sick, labels, "he", np.random.default_rng(0))
    b = slab_texture(plain, labels, "he", np.random.default_rng(0))
    inside, outside = weight == 1.0, weight == 0.0
    assert np.allclose(a[outside], b[outside])
    factor = sick.params["lesion"]["eosin_factor"]
    # eosin_factor > 1 absorbs more: less light transmitted inside the lesion
    assert (a[inside, :3].mean() < b[inside, :3].mean()) == (factor > 1)


def test_fascicle_bundles_render_paler_than_their_grey_matter():
    import topdown as td
    from topdown.sim.blender.textures import bundle_weight, slab_texture

    spec = td.sim.TissueSpec.from_dict({
        "name": "basal_ganglia", "variation": {"whole": 1.0, "pixel_size_jitter": 0},
        "regions": [{"name": "thalamus", "geometry": {"type": "ellipse", "radii": [600, 600]}},
                    {"name": "striatum", "geometry": {"type": "ellipse", "center": [250, 0], "radii": [300, 400]},
                     "background": {"texture": "fascicles"}}]})
    sec = td.sim.layout(spec, 1, size=128, pixel_size_um=10.0)
    labels = td.sim.region_mask(sec)
    striatum = labels == sec.label_of("striatum")
    weight = bundle_weight(sec, "striatum", labels.shape)
    assert weight.max() == 1.0 and (weight[labels > 0] > 0).sum() >= (weight > 0).sum() * 0.9
    assert not bundle_weight(sec, "thalamus", labels.shape).any()  # neuropil has no bundles
    for modality, paler in (("he", True), ("dapi", False)):
        tex = slab_texture(sec, labels, modality, np.random.default_rng(0))[..., :3].mean(axis=-1)
        bundle, grey = tex[striatum & (weight == 1.0)].mean(), tex[striatum & (weight == 0.0)].mean()
        # H&E: bundles absorb less (more light through); DAPI: myelin glows more
        assert bundle > grey * (1.05 if paler else 1.2), (modality, bundle, grey)
