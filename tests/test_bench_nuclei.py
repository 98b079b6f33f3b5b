"""benchmarks/nuclei.py: the speed image is real tissue at the pixel size it is read at."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import load_benchmark


@pytest.fixture(scope="module")
def bench():
    module = load_benchmark("nuclei")
    if not (module.CROP / "images" / "mini_dataset_dapi_z0.jpg").exists():
        pytest.skip(f"the real MERFISH crop is not here ({module.CROP})")
    return module


def test_speed_image_is_the_crop_at_its_own_pixel_size(bench):
    grey, stored = bench.crop_grey("z0")
    img = bench.speed_image(stored, 2 * grey.shape[1])
    assert img.shape == (2 * grey.shape[1],) * 2 and img.dtype == np.uint8
    h, w = grey.shape
    assert np.array_equal(img[:h, :w], grey)                 # not resampled
    assert np.array_equal(img[:h, w:2 * w], grey[:, ::-1])   # its right neighbour is mirrored: no seam


def test_speed_image_resamples_to_the_pixel_size_read(bench):
    grey, stored = bench.crop_grey("z0")
    tile = round(grey.shape[1] * stored / 0.4)               # the crop's width at 0.4 um/px
    img = bench.speed_image(0.4, 3 * tile)
    assert img.shape == (3 * tile, 3 * tile)
    assert np.abs(img[:, tile - 1].astype(int) - img[:, tile].astype(int)).mean() < 3   # mirrored at the seam
    assert abs(img[:tile, :tile].mean() - grey.mean()) < 2   # the same tissue, only smaller
