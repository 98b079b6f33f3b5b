"""td.sim.calibrate / measure_image and `topdown calibrate`: synthetic images with known
stain vectors, glass, blur and noise are recovered; the spec covers them; bad input is refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage as ndi

import topdown as td
from topdown.cli import main
from topdown.errors import DataFileError, InputError
from topdown.sim.artefacts import _RGB_FROM_HED
from topdown.sim.measure import (
    UNIFORM_SD,
    angle_deg,
    blur_sigma,
    macenko,
    measure_image,
    srgb_to_linear,
)

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real_dev"
H_VEC = np.array([0.60, 0.72, 0.35]) / np.linalg.norm([0.60, 0.72, 0.35])  # not Ruifrok's
E_VEC = np.array([0.20, 0.95, 0.25]) / np.linalg.norm([0.20, 0.95, 0.25])


def _linear_to_srgb(a: np.ndarray) -> np.ndarray:
    a = np.clip(a, 0, 1)
    return np.where(a <= 0.0031308, a * 12.92, 1.055 * a ** (1 / 2.4) - 0.055)


def he_image(size: int = 256, glass=(0.92, 0.90, 0.93), noise: float = 0.0, blur: float = 0.0,
             seed: int = 0, floor: float = 0.05) -> np.ndarray:
    """Glass around a disk of tissue stained with H_VEC / E_VEC (blocky concentrations: sharp edges)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    tissue = np.hypot(yy - size / 2, xx - size / 2) < size * 0.35
    blocks = lambda: np.kron(rng.uniform(0, 1, (size // 16, size // 16)), np.ones((16, 16)))  # noqa: E731
    ch = np.where(tissue, floor + 1.0 * blocks() ** 2, 0.0)
    ce = np.where(tissue, floor + 0.7 * blocks() ** 2, 0.0)
    od = ch[..., None] * H_VEC + ce[..., None] * E_VEC
    lin = srgb_to_linear(np.array(glass)) * np.exp(-od)
    srgb = _linear_to_srgb(lin)
    if blur:
        srgb = ndi.gaussian_filter(srgb, (blur, blur, 0))
    srgb = srgb + rng.normal(0, noise, srgb.shape) if noise else srgb
    return np.clip(np.rint(srgb * 255), 0, 255).astype(np.uint8)


def test_macenko_recovers_known_stain_vectors():
    m = measure_image(he_image(), 2.0)
    assert angle_deg(np.array(m.hematoxylin), H_VEC) < 4.0  # uint8 + sRGB rounding, 1 % percentiles
    assert angle_deg(np.array(m.eosin), E_VEC) < 4.0
    # the angle to the simulator's vectors is reported, and these vectors are not its own
    assert m.stain_angle_deg[0] == pytest.approx(angle_deg(H_VEC, _RGB_FROM_HED[0]), abs=3.0)
    assert m.stain_angle_deg[1] > 5.0


def test_macenko_on_pure_mixtures():
    rng = np.random.default_rng(1)
    c = rng.uniform(0, 1, (5000, 2))
    h, e = macenko(c[:, :1] * H_VEC + c[:, 1:] * E_VEC)
    assert angle_deg(h, H_VEC) < 1.0 and angle_deg(e, E_VEC) < 1.0


def test_glass_level_colour_and_tissue_fraction():
    m = measure_image(he_image(glass=(0.80, 0.85, 0.78), floor=0.3), 2.0)
    assert m.glass_rgb == pytest.approx((0.80, 0.85, 0.78), abs=0.01)
    assert m.tissue_fraction == pytest.approx(np.pi * 0.35 ** 2, abs=0.04)


@pytest.mark.parametrize("sd", [0.01, 0.03])
def test_noise_is_recovered(sd):
    m = measure_image(he_image(noise=sd, seed=3), 2.0)
    assert m.noise_sd == pytest.approx(sd, rel=0.2)


def test_noise_free_image_measures_little_noise():
    assert measure_image(he_image(), 2.0).noise_sd < 0.003


@pytest.mark.parametrize("sigma", [0.7, 1.4, 2.0])
def test_blur_is_recovered(sigma):
    m = measure_image(he_image(blur=sigma, size=384), 2.0)
    assert m.blur_px == pytest.approx(sigma, abs=0.4)


@pytest.mark.parametrize("sigma", [0.0, 1.5, 3.0])
def test_blur_of_a_blurred_step(sigma):
    step = np.zeros((64, 64), np.float32)
    step[:, 32:] = 1.0
    assert blur_sigma(ndi.gaussian_filter(step, sigma)) == pytest.approx(sigma, abs=0.3)


def test_spec_ranges_cover_the_measurements_and_round_trip(tmp_path):
    images = [he_image(noise=0.04, blur=2.0, glass=(0.75, 0.78, 0.76), seed=s) for s in range(2)]
    base = td.sim.load_preset("olfactory_bulb")
    spec, report = td.sim.calibrate(base, images, pixel_size_um=2.0, return_report=True)
    assert isinstance(spec, td.sim.TissueSpec) and spec.name == "olfactory_bulb_calibrated"
    assert base == td.sim.load_preset("olfactory_bulb"), "the input spec is not modified"
    for m in report.measurements:
        assert spec.artefacts.noise[0] <= m.noise_sd / UNIFORM_SD <= spec.artefacts.noise[1]
        assert spec.artefacts.blur_px[0] <= m.blur_px <= spec.artefacts.blur_px[1]
        assert spec.artefacts.illumination[1] >= 0.95 - min(m.glass_rgb)
        assert spec.artefacts.stain_shift[1] >= np.mean(np.sin(np.radians(m.stain_angle_deg)))
    for old, new in zip(base.regions, spec.regions, strict=True):  # never narrower
        assert new.background.eosin[0] <= old.background.eosin[0] <= old.background.eosin[1] <= new.background.eosin[1]
    for name in ("noise", "blur_px", "illumination", "stain_shift"):
        lo, hi = getattr(spec.artefacts, name)
        old = getattr(base.artefacts, name)
        assert lo <= old[0] and hi >= old[1]
    assert "artefacts.noise" in report.changes and "noise_sd" in str(report)
    path = tmp_path / "cal.yaml"
    spec.to_yaml(path)
    again = td.sim.TissueSpec.from_yaml(path)
    assert again == spec and again.validate() == spec


def test_blender_slab_od_matches():
    pytest.importorskip("bpy")
    from topdown.sim.blender.textures import SLAB_OD
    from topdown.sim.calibrate import SLAB_OD as MIRROR

    assert MIRROR == SLAB_OD


# --------------------------------------------------------------------------- bad input
def test_dapi_image_for_he_spec_is_refused():
    grey = he_image()[..., 1]
    with pytest.raises(InputError, match="fluorescence.*imaging.modality: dapi"):
        td.sim.calibrate("olfactory_bulb", [255 - grey], pixel_size_um=1.0)


def test_he_image_for_dapi_spec_is_refused():
    with pytest.raises(InputError, match="bright-field.*imaging.modality: he"):
        td.sim.calibrate("olfactory_bulb", [he_image()], pixel_size_um=1.0, modality="dapi")


def test_image_without_tissue_is_refused():
    blank = np.full((128, 128, 3), 235, np.uint8)
    blank = np.clip(blank + np.random.default_rng(0).normal(0, 2, blank.shape), 0, 255).astype(np.uint8)
    with pytest.raises(InputError, match="shows no tissue"):
        td.sim.calibrate("olfactory_bulb", [blank], pixel_size_um=2.0)


def test_missing_pixel_size_and_path_are_refused(tmp_path):
    with pytest.raises(InputError, match="no pixel size given; pass pixel_size_um="):
        td.sim.calibrate("olfactory_bulb", [he_image()])
    with pytest.raises(DataFileError, match="image not found"):
        td.sim.calibrate("olfactory_bulb", [tmp_path / "nope.png"], pixel_size_um=2.0)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(DataFileError, match="corrupt or not an image"):
        td.sim.calibrate("olfactory_bulb", [bad], pixel_size_um=2.0)


def test_pixel_limit_is_respected(tmp_path, monkeypatch):
    path = tmp_path / "img.png"
    Image.fromarray(he_image(128)).save(path)
    monkeypatch.setenv("TOPDOWN_MAX_IMAGE_PIXELS", "1000")
    with pytest.raises(InputError, match="above the limit"):
        td.sim.calibrate("olfactory_bulb", [path], pixel_size_um=2.0)


# --------------------------------------------------------------------------- command line
def test_cli_writes_the_spec_and_refuses_to_overwrite_its_input(tmp_path, capsys):
    img = tmp_path / "img.png"
    Image.fromarray(he_image(192, noise=0.02)).save(img)
    out = tmp_path / "cal.yaml"
    assert main(["calibrate", "olfactory_bulb", str(img), "--pixel-size", "2", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "noise_sd=" in text and f"wrote {out}" in text
    spec = td.sim.TissueSpec.from_yaml(out)
    assert spec.name == "olfactory_bulb_calibrated"
    before = out.read_bytes()
    assert main(["calibrate", str(out), str(img), "--pixel-size", "2", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "refusing to overwrite the input" in err
    assert out.read_bytes() == before
    assert main(["calibrate", "olfactory_bulb", str(img), "--out", str(tmp_path / "x.yaml")]) == 2
    assert "--pixel-size" in capsys.readouterr().err


# --------------------------------------------------------------------------- real images
@pytest.mark.skipif(not REAL.exists(), reason="../shared/data/real_dev is absent")
def test_real_dlpfc_images_are_measured():
    paths = sorted(REAL.glob("dlpfc/*/image.png"))[:2]
    px = [json.loads((p.parent / "meta.json").read_text())["pixel_size_um"] for p in paths]
    spec, report = td.sim.calibrate("cortex_laminar", paths, pixel_size_um=px, return_report=True)
    for m in report.measurements:
        assert 0.3 < m.tissue_fraction < 0.8
        assert 0.6 < min(m.glass_rgb) < 0.75  # Visium low-res glass is grey
        assert m.stain_angle_deg[0] < 20 and m.nuclei is None
    assert spec.artefacts.illumination[1] > 0.2
    assert any("not resolvable" in n for n in report.notes)
