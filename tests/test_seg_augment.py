"""Training augmentation: geometry keeps shapes, colour keeps tissue visible."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from topdown.seg.augment import AugmentConfig, augment

NO_COLOUR = dict(hed_sigma=0.0, hed_bias=0.0, hue=0.0, saturation=(1.0, 1.0), gamma=(1.0, 1.0),
                 brightness=0.0, contrast=(1.0, 1.0), p_blur=0.0, p_jpeg=0.0, noise_sigma=(0.0, 0.0))


def _disk(size: int = 96, radius: float = 20.0) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:size, 0:size]
    inside = (yy - size / 2 + 0.5) ** 2 + (xx - size / 2 + 0.5) ** 2 < radius ** 2
    image = np.full((size, size, 3), 245, np.uint8)
    image[inside] = (200, 120, 180)
    return image, inside.astype(np.uint8)


@pytest.mark.parametrize("seed", range(12))
def test_rotation_with_flips_keeps_the_shape(seed):
    """Mirroring the sampling grid must not shear it: a disk stays a disk of the same area."""
    image, mask = _disk()
    cfg = AugmentConfig(rotate_deg=180.0, scale=(1.0, 1.0), elastic_px=0.0, p_geometric=1.0, **NO_COLOUR)
    _, lab = augment(image, mask, np.random.default_rng(seed), size=96, config=cfg, ignore_index=255)
    area = int((lab == 1).sum())
    assert abs(area - int(mask.sum())) <= 0.03 * mask.sum()
    rows, cols = np.nonzero(lab == 1)
    # a sheared disk is an ellipse: its two extents differ
    assert abs(np.ptp(rows) - np.ptp(cols)) <= 2


def test_colour_jitter_keeps_tissue_distinct_from_glass():
    """Stain jitter must not tint the glass into the tissue's colour or wash the tissue out."""
    image, mask = _disk(size=64, radius=22)
    inside = mask.astype(bool)
    before = np.abs(image[inside].mean(0) / 255.0 - image[~inside].mean(0) / 255.0).sum()
    cfg = AugmentConfig(p_geometric=0.0, flip=False)
    rng = np.random.default_rng(0)
    contrast, glass = [], []
    for _ in range(60):
        img, _ = augment(image, mask, rng, size=64, config=cfg)
        contrast.append(np.abs(img[inside].mean(0) - img[~inside].mean(0)).sum() / before)
        glass.append(1.0 - img[~inside].mean())
    assert np.quantile(contrast, 0.05) > 0.4, np.round(np.sort(contrast)[:5], 3)
    assert np.median(glass) < 0.12, np.median(glass)


def test_augment_is_seeded():
    image, mask = _disk()
    cfg = replace(AugmentConfig(), p_jpeg=1.0, p_blur=1.0)
    a = augment(image, mask, np.random.default_rng(3), size=64, config=cfg)
    b = augment(image, mask, np.random.default_rng(3), size=64, config=cfg)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def _halves(size: int = 96) -> tuple[np.ndarray, np.ndarray]:
    mask = np.ones((size, size), np.uint8)
    mask[size // 2:] = 2
    image = np.where(mask[..., None] == 1, 200, 120).astype(np.uint8).repeat(3, axis=2)
    return image, mask


@pytest.mark.parametrize(("orientation", "ever_upside_down"), [("upright", False), ("free", True)])
def test_orientation_keeps_or_frees_dorsal_up(orientation, ever_upside_down):
    """Upright training never turns the top (label 1) below the bottom (label 2); free does."""
    from topdown.seg.augment import orientation_config

    image, mask = _halves()
    cfg = orientation_config(orientation)
    rng = np.random.default_rng(0)
    upside_down = []
    for _ in range(40):
        _, lab = augment(image, mask, rng, size=64, config=cfg, ignore_index=255)
        rows = np.arange(64)[:, None].repeat(64, axis=1)
        if (lab == 1).any() and (lab == 2).any():
            upside_down.append(rows[lab == 1].mean() > rows[lab == 2].mean())
    assert len(upside_down) > 20
    assert any(upside_down) == ever_upside_down


def test_orientation_rejects_unknown():
    from topdown.errors import InputError
    from topdown.seg.augment import orientation_config

    with pytest.raises(InputError, match="'free' or 'upright'"):
        orientation_config("sideways")


def test_elastic_upsampler_equals_cubic_zoom():
    from scipy import ndimage as ndi

    from topdown.seg.augment import _spline_upsampler

    coarse = np.random.default_rng(0).normal(0, 4, (6, 6)).astype(np.float32)
    up = _spline_upsampler(6, 96)
    ref = ndi.zoom(coarse, 16, order=3, mode="nearest")
    np.testing.assert_allclose(up @ coarse @ up.T, ref, atol=1e-4)


def test_hue_jitter_keeps_grey_and_moves_colour():
    from topdown.seg.augment import _hue_saturation_jitter

    grey = np.full((4, 4, 3), 0.6, np.float32)
    pink = np.tile(np.array([0.9, 0.5, 0.8], np.float32), (4, 4, 1))
    cfg = AugmentConfig(hue=0.1, saturation=(0.5, 0.5))
    np.testing.assert_allclose(_hue_saturation_jitter(grey, cfg, np.random.default_rng(1)), grey, atol=1e-5)
    out = _hue_saturation_jitter(pink, cfg, np.random.default_rng(1))
    luma = np.array([0.299, 0.587, 0.114], np.float32)
    assert abs(float(out[0, 0] @ luma - pink[0, 0] @ luma)) < 1e-4  # brightness kept
    assert np.ptp(out[0, 0]) < np.ptp(pink[0, 0])  # half the saturation
