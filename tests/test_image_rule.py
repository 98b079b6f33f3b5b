"""The one image-to-uint8 rule (topdown._image.to_uint8) and its three users agreeing."""

from __future__ import annotations

import numpy as np
import pytest

import topdown as td
from topdown._image import STRETCH_PERCENTILES, to_uint8, value_range
from topdown.errors import InputError
from topdown.io._common import read_image
from topdown.seg.image import open_image


def test_uint8_is_unchanged():
    rng = np.random.default_rng(0)
    for shape in ((7, 5), (7, 5, 3)):
        a = rng.integers(0, 256, shape).astype(np.uint8)
        out = to_uint8(a)
        assert out.dtype == np.uint8 and out.shape == shape and np.array_equal(out, a)
    grey = rng.integers(0, 256, (4, 6)).astype(np.uint8)
    assert np.array_equal(to_uint8(grey, rgb=True), np.repeat(grey[..., None], 3, axis=2))
    assert np.array_equal(to_uint8(grey[..., None]), grey)  # (H, W, 1) is greyscale


def test_bool_is_0_or_255():
    a = np.array([[True, False], [False, True]])
    assert np.array_equal(to_uint8(a), np.array([[255, 0], [0, 255]], np.uint8))


def test_floats_in_0_1_are_times_255():
    a = np.array([[0.0, 0.25, 0.5, 1.0]], np.float32)
    assert np.array_equal(to_uint8(a), np.array([[0, 64, 128, 255]], np.uint8))
    assert value_range(a) == (0.0, 1.0)
    # a dim float image in [0, 1] is not stretched
    assert to_uint8(np.full((3, 3), 0.1)).max() == 26


def test_other_ranges_are_stretched_between_robust_percentiles():
    a = np.linspace(-50.0, 950.0, 2001).reshape(1, -1)
    lo, hi = np.percentile(a, STRETCH_PERCENTILES)
    assert value_range(a) == (pytest.approx(lo), pytest.approx(hi))
    out = to_uint8(a)
    assert out[0, 0] == 0 and out[0, -1] == 255 and out[0, 1000] in (127, 128)
    u16 = (np.arange(256, dtype=np.uint16) * 16).reshape(16, 16)  # 12-bit data in uint16
    out16 = to_uint8(u16)
    assert out16.min() == 0 and out16.max() == 255 and (np.diff(out16.ravel().astype(int)) >= 0).all()
    i32 = np.array([[-1000, 0, 1000]], np.int32)
    assert list(to_uint8(i32)[0]) == [0, 128, 255]
    flat = np.full((4, 4), 7, np.uint16)  # no spread: lo maps to 0
    assert (to_uint8(flat) == 0).all()


def test_nan_and_inf():
    a = np.array([[0.0, np.nan, np.inf, -np.inf, 1.0]], np.float32)
    assert list(to_uint8(a)[0]) == [0, 0, 255, 0, 255]
    with pytest.raises(InputError, match="no finite values"):
        to_uint8(np.full((3, 3), np.nan))


def test_alpha_is_composited_onto_the_background_and_dropped():
    rgb = np.array([[[200, 100, 0]]], np.uint8)
    for alpha, white, black in ((255, [200, 100, 0], [200, 100, 0]), (0, [255, 255, 255], [0, 0, 0]),
                                (51, [244, 224, 204], [40, 20, 0])):
        rgba = np.dstack([rgb, np.full((1, 1), alpha, np.uint8)])
        assert list(to_uint8(rgba)[0, 0]) == white
        assert list(to_uint8(rgba, background=0)[0, 0]) == black
    la = np.array([[[100, 0], [100, 255]]], np.uint8)
    assert to_uint8(la).tolist() == [[255, 100]]
    # alpha's full scale follows the dtype: 65535 for uint16, 1 for floats
    u16 = np.array([[[0, 0, 0, 65535], [0, 0, 0, 0]]], np.uint16)
    assert to_uint8(u16).tolist() == [[[0, 0, 0], [255, 255, 255]]]
    f = np.array([[[0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0]]], np.float32)
    assert to_uint8(f).tolist() == [[[0, 0, 0], [255, 255, 255]]]


def test_shapes_refused():
    for shape in ((5,), (4, 4, 5), (2, 3, 4, 3)):
        with pytest.raises(InputError, match="expected an"):
            to_uint8(np.zeros(shape, np.uint8))


def _cases():
    rng = np.random.default_rng(3)
    smooth = rng.random((1300, 900))  # larger than the 1024 px sample: the range comes from a stride
    yield "uint16 grey", (smooth * 4000).astype(np.uint16)
    yield "float 0..1 rgb", np.dstack([smooth, smooth ** 2, 1 - smooth]).astype(np.float32)[:300, :200]
    yield "float -1..3", (smooth * 4 - 1).astype(np.float32)[:200, :300]
    alpha = (smooth[:250, :250] * 255).astype(np.uint8)
    yield "uint8 rgba", np.dstack([alpha, alpha[::-1], alpha.T, 255 - alpha])
    yield "uint8 rgb", np.dstack([alpha, alpha[::-1], alpha.T])


@pytest.mark.parametrize("name,array", list(_cases()))
def test_the_three_users_agree(tmp_path, monkeypatch, name, array):
    """io.read_image, seg's ImageSource and segment_regions see the same uint8 pixels."""
    import anndata as ad
    import tifffile

    from topdown.seg.regionmap import RegionMap
    from topdown.tl import _segment_regions

    tif = tmp_path / "img.tif"
    tifffile.imwrite(tif, array)
    expected = to_uint8(array, rgb=True)
    read = read_image(tif)
    assert np.array_equal(read if read.ndim == 3 else np.repeat(read[..., None], 3, axis=2), expected)
    h, w = array.shape[:2]
    assert np.array_equal(open_image(tif).read(0, h, 0, w), expected)
    assert np.array_equal(open_image(array).read(0, h, 0, w), expected)
    # tiles use the whole image's range
    assert np.array_equal(open_image(array).read(10, 60, 20, 90), expected[10:60, 20:90])

    seen = {}

    def fake_segment(image, model, pixel_size_um=None, **kw):
        seen["pixels"] = open_image(image).read(0, h, 0, w)  # what seg.segment makes of the image
        return RegionMap(np.ones((h // 10, w // 10), np.uint8), ("tissue",), downsample=10.0, image_shape=(h, w))

    monkeypatch.setattr(_segment_regions, "_segment_fn", lambda: fake_segment)
    adata = ad.AnnData(np.ones((1, 1), np.float32))
    adata.obsm["spatial"] = np.array([[5.0, 5.0]])
    adata.uns["spatial"] = {"lib": {"images": {"hires": array},
                                    "scalefactors": {"tissue_hires_scalef": 1.0, "microns_per_pixel": 1.0}}}
    td.tl.segment_regions(adata, "fake")
    assert np.array_equal(seen["pixels"], expected)


def test_pillow_images_follow_the_rule(tmp_path):
    from PIL import Image

    rgba = np.zeros((4, 5, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:2, :, 3] = 255  # top half opaque red, bottom half transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    out = read_image(tmp_path / "a.png")
    assert out.shape == (4, 5, 3) and (out[:2] == [200, 0, 0]).all() and (out[2:] == 255).all()
    assert np.array_equal(open_image(tmp_path / "a.png").read(0, 4, 0, 5), out)
    u16 = (np.arange(20, dtype=np.uint16) * 1000).reshape(4, 5)
    Image.fromarray(u16).save(tmp_path / "b.png")
    assert np.array_equal(read_image(tmp_path / "b.png"), to_uint8(u16))
