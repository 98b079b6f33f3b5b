"""Nuclei: targets, watershed instances, block seams, scores, inference, AnnData tools, CLI, density test."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import topdown as td
from topdown.errors import InputError
from topdown.seg import nuclei_infer
from topdown.seg.nucleus_target import NUCLEUS_CLASSES, nucleus_target

PX = 0.4  # µm per pixel of the synthetic images (the shipped model's)


def _discs(shape=(192, 192), n=14, radius=11, seed=0) -> tuple[np.ndarray, np.ndarray]:
    """A DAPI-like image (bright blurred discs on a dark, noisy ground) and its instance ids."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    ids = np.zeros(shape, np.int32)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    centres: list[tuple[int, int]] = []
    while len(centres) < n:
        c = tuple(int(v) for v in rng.integers(radius + 2, np.array(shape) - radius - 2))
        if all((c[0] - a) ** 2 + (c[1] - b) ** 2 > (2.2 * radius) ** 2 for a, b in centres):
            centres.append(c)
            ids[(yy - c[0]) ** 2 + (xx - c[1]) ** 2 <= radius ** 2] = len(centres)
    img = ndimage.gaussian_filter((ids > 0) * 170.0, 1.2) + 15 + rng.normal(0, 3, shape)
    return np.clip(img, 0, 255).astype(np.uint8), ids


@pytest.fixture(scope="module")
def model():
    names = td.seg.available_models("nuclei")
    if "nuclei_dapi" not in names:
        pytest.skip("no shipped nucleus weights in this checkout")
    return td.seg.load("nuclei_dapi", kind="nuclei")


def test_targets_keep_touching_nuclei_apart():
    ids = np.zeros((20, 30), int)
    ids[2:18, 2:15], ids[2:18, 15:28] = 1, 2  # two touching squares
    t = nucleus_target(ids)
    assert t[:, 14].max() == 1 and t[:, 15].max() == 1  # the shared edge is "edge"
    from scipy import ndimage

    assert ndimage.label(t == 3)[1] == 2  # two separate cores


def test_instances_split_touching_discs():
    yy, xx = np.mgrid[:40, :60]
    d1 = np.hypot(yy - 20, xx - 20) / 11
    d2 = np.hypot(yy - 20, xx - 39) / 11
    dist = np.clip(1 - np.minimum(d1, d2), 0, 1)
    probs = np.zeros((4, 40, 60), np.float32)
    probs[0] = dist == 0
    probs[3] = dist > 0  # a soft distance map: core weight grows inwards
    probs[1] = (dist > 0) * (1 - dist)
    probs[3] *= dist
    probs /= np.maximum(probs.sum(0), 1e-6)
    lab = nuclei_infer.instances(probs, seed_level=0.4, min_area=5)
    assert lab.max() == 2 and lab[20, 20] != lab[20, 39]


def test_block_seams_keep_each_nucleus_once(monkeypatch):
    _, ids = _discs((150, 150), n=12, radius=9, seed=3)
    probs = np.zeros((4, 150, 150), np.float32)
    probs[0], probs[3] = ids == 0, ids > 0
    whole = nuclei_infer.instances(probs, min_area=5)
    monkeypatch.setattr(nuclei_infer, "BLOCK", 40)  # many seams cut through nuclei
    blocks = nuclei_infer._block_instances(probs, min_area=5)
    assert blocks.max() == whole.max() == 12
    assert td.seg.match_instances(ids, blocks)["f1"] == 1.0


def test_instances_from_bands_match_the_whole_map(monkeypatch):
    _, ids = _discs((150, 150), n=12, radius=9, seed=3)
    probs = np.zeros((4, 150, 150), np.float32)
    probs[0], probs[3] = ids == 0, ids > 0
    monkeypatch.setattr(nuclei_infer, "BLOCK", 40)
    whole = nuclei_infer._block_instances(probs, min_area=5)
    build = nuclei_infer.BlockInstances((150, 150), nuclei_infer.instances, min_area=5)
    for r0, r1 in [(0, 7), (7, 61), (61, 62), (62, 150)]:  # uneven bands, as tiles finish
        build.add(r0, probs[:, r0:r1])
        assert sum(b.shape[1] for b in build._rows) <= 40 + 2 * 48 + 54  # a block row and its halo, not the map
    assert (build.finish() == whole).all()
    with pytest.raises(ValueError, match="in order"):
        nuclei_infer.BlockInstances((150, 150)).add(10, probs[:, 10:20])


def test_predict_hands_every_band_over_once_and_skips_unwanted_maps():
    from topdown.seg.image import open_image
    from topdown.seg.infer import predict

    model = td.seg.SegModel(["a", "b"], pixel_size_um=1.0, widths=(4, 8))
    src = open_image(np.random.default_rng(0).integers(0, 255, (100, 70, 3), dtype=np.uint8))
    labels, probs = predict(model, src, 1.0, tile=32, overlap=8)
    bands = []
    no_labels, none = predict(model, src, 1.0, tile=32, overlap=8, probabilities=False, label_map=False,
                              on_band=lambda r0, band: bands.append((r0, band.copy())))
    assert none is None and no_labels is None  # only the bands: no label map, no probability map
    assert [r0 for r0, _ in bands] == sorted({r0 for r0, _ in bands})
    assert np.array_equal(np.concatenate([b for _, b in bands], axis=1), probs)
    assert labels.shape == (100, 70) and labels.dtype == np.uint8
    # a tissue thumbnail needs the labels (glass is label 0): they are kept
    tissue = np.ones((100, 70), bool)
    kept, _ = predict(model, src, 1.0, tile=32, overlap=8, tissue=tissue, label_map=False)
    assert kept is not None and kept.shape == (100, 70)


def test_scores():
    t = np.zeros((10, 10), int)
    t[1:5, 1:5], t[6:9, 6:9] = 1, 2
    m = td.seg.match_instances(t, t * 3)
    assert m["f1"] == 1.0 and m["mean_iou"] == 1.0
    p = t.copy()
    p[p == 2] = 0  # the small object (9 px) missed ...
    assert td.seg.match_instances(t, p)["recall"] == 0.5
    assert td.seg.match_instances(t, p, ignore_smaller=10)["f1"] == 1.0  # ... is left out when too small
    import shapely

    s = td.seg.centroid_scores(np.array([[1.0, 1.0], [1.5, 1.5], [4.0, 1.0]]),
                               [shapely.box(0, 0, 2, 2), shapely.box(3, 0, 5, 2)])
    assert s["found"] == 1 and s["n_detected"] == 3  # two centroids in one cell: not found


def test_nuclei_on_synthetic_dapi(model):
    img, ids = _discs()
    res = td.seg.nuclei(img, model, pixel_size_um=PX, device="cpu")
    labels, table = res
    assert labels.shape == img.shape and len(table) == len(res)
    assert td.seg.match_instances(ids, labels)["f1"] >= 0.9
    assert {"label", "y", "x", "area_um2"} <= set(table.columns)
    # the same image at twice the resolution gives the same nuclei, in its own pixels
    big = np.kron(img, np.ones((2, 2), np.uint8))
    res2 = td.seg.nuclei(big, model, pixel_size_um=PX / 2, device="cpu")
    assert abs(len(res2) - len(res)) <= 1
    assert np.median(res2.table["area_um2"]) == pytest.approx(np.median(table["area_um2"]), rel=0.15)
    gdf = res.to_geodataframe()
    assert len(gdf) == len(table) and gdf.geometry.is_valid.all()
    # bfloat16 autocast (the default where the CPU has it natively) finds the same nuclei as float32
    fp32 = td.seg.nuclei(img, model, pixel_size_um=PX, device="cpu", precision="fp32")
    bf16 = td.seg.nuclei(img, model, pixel_size_um=PX, device="cpu", precision="bf16")
    assert fp32.meta["params"]["precision"] == "fp32" and bf16.meta["params"]["precision"] == "bf16"
    assert res.meta["params"]["precision"] in ("fp32", "bf16")
    assert td.seg.match_instances(fp32.labels, bf16.labels)["f1"] >= 0.95


def test_bad_inputs_are_refused(model):
    img, _ = _discs((96, 96), n=4)
    with pytest.raises(InputError, match="pixel size"):
        td.seg.nuclei(img, model)
    with pytest.raises(InputError, match="precision must be one of"):
        td.seg.nuclei(img, model, pixel_size_um=PX, precision="fp16")
    with pytest.raises(InputError, match="progress must be True or False"):
        td.seg.nuclei(img, model, pixel_size_um=PX, progress=1)
    # a nucleus model given where a region model belongs: the error says what to use instead
    with pytest.raises(InputError, match=r"is a nucleus model .*td.seg.segment takes region models. Find nuclei "
                                         r"with td.seg.nuclei"):
        td.seg.segment(img, model, pixel_size_um=PX)
    with pytest.raises(InputError, match=r"is a nucleus model .*td.seg.adapt takes region models"):
        td.seg.adapt(model, [img], PX, progress=False)
    he = np.full((96, 96, 3), (235, 200, 225), np.uint8)  # pink ground ...
    he[30:50, 30:50] = (90, 60, 160)  # ... and a purple nucleus: an H&E image
    with pytest.raises(InputError, match="brightfield"):
        td.seg.nuclei(he, model, pixel_size_um=PX)
    with pytest.raises(InputError, match="blank"):
        td.seg.nuclei(np.zeros((96, 96), np.uint8), model, pixel_size_um=PX)
    packed = img.copy()  # a DAPI field more than half covered by bright debris is still DAPI
    packed[:, 20:] = np.maximum(packed[:, 20:], 150)
    assert np.median(packed) >= 150 and td.seg.nuclei(packed, model, pixel_size_um=PX) is not None
    with pytest.raises(InputError, match="not a nucleus model"):
        td.seg.nuclei(img, td.seg.SegModel(["a", "b"], pixel_size_um=PX, widths=(4, 8)), pixel_size_um=PX)
    dark = (np.random.default_rng(0).normal(10, 2, (96, 96))).clip(0, 255).astype(np.uint8)
    with pytest.raises(InputError, match="blank"):  # noise only
        td.seg.nuclei(dark, model, pixel_size_um=PX)
    dark[40:46, 40:46] = 60  # a 2.4 µm speck, far smaller than a nucleus
    with pytest.warns(UserWarning, match="no nuclei"):
        td.seg.nuclei(dark, model, pixel_size_um=PX)


def test_nucleus_weights_are_kept_apart_from_region_models():
    assert "nuclei_dapi" not in td.seg.available_models()
    with pytest.raises(InputError, match="kind"):
        td.seg.available_models("cells")
    with pytest.raises(InputError, match="shipped nuclei model"):
        td.seg.load("nuclei_dapi")  # a region-model call gets told where it is


def _visium_like(img: np.ndarray):
    import anndata as ad
    import geopandas as gpd
    import shapely

    from topdown.get import StoredRegions, store_entry

    spots = np.array([[48.0, 48.0], [144.0, 48.0], [48.0, 144.0], [144.0, 144.0]])
    adata = ad.AnnData(np.ones((4, 2), np.float32), obsm={"spatial": spots})
    diam = 55.0 / PX  # full-res = image pixels at PX µm
    adata.uns["spatial"] = {"S1": {"images": {"hires": img}, "scalefactors": {
        "tissue_hires_scalef": 1.0, "spot_diameter_fullres": diam}}}
    regions = gpd.GeoDataFrame({"region": ["left", "right"]},
                               geometry=[shapely.box(0, 0, 96, 192), shapely.box(96, 0, 192, 192)])
    adata.uns["regions"] = store_entry(None, "S1", StoredRegions.from_geodataframe(regions))
    return adata


def test_segment_nuclei_counts_spots_and_regions(model):
    img, ids = _discs(n=14)
    adata = _visium_like(img)
    td.tl.segment_nuclei(adata, model, device="cpu")
    gdf = td.get.nuclei(adata)
    assert abs(len(gdf) - 14) <= 1 and set(gdf["region"]) <= {"left", "right"}
    xy = gdf[["x", "y"]].to_numpy()
    spots, r = adata.obsm["spatial"], 55.0 / PX / 2
    manual = [(np.hypot(*(xy - s).T) <= r).sum() for s in spots]
    assert adata.obs["n_nuclei"].tolist() == manual
    per = td.get.nuclei_per_region(adata)
    assert per["n_nuclei"].sum() == len(gdf)
    area = per.set_index("region")["area_mm2"]
    assert area["left"] == pytest.approx(96 * 192 * PX ** 2 / 1e6)
    assert np.allclose(per["nuclei_per_mm2"], per["n_nuclei"] / per["area_mm2"])


def test_segment_nuclei_counts_the_nuclei_of_each_cell_outline(model):
    """MERSCOPE / Xenium cells with outlines: obs['n_nuclei'] counts the centroids in each outline."""
    import anndata as ad
    import shapely

    from topdown.io._generic import boundaries_to_uns

    img, ids = _discs(n=14)
    boxes = [(0, 0, 96, 96), (96, 0, 192, 96), (0, 96, 96, 192), (96, 96, 192, 192), (150, 150, 160, 160)]
    adata = ad.AnnData(np.ones((5, 2), np.float32),
                       obsm={"spatial": np.array([[(a + c) / 2, (b + d) / 2] for a, b, c, d in boxes])})
    adata.obs_names = [f"cell{i}" for i in range(5)]
    adata.uns["spatial"] = {"S1": {"images": {"hires": img}, "scalefactors": {
        "tissue_hires_scalef": 1.0, "microns_per_pixel": PX}}}
    adata.uns["cell_boundaries"] = boundaries_to_uns([shapely.box(*b) for b in boxes], adata.obs_names, np.eye(3))
    td.tl.segment_nuclei(adata, model, device="cpu")
    xy = td.get.nuclei(adata)[["x", "y"]].to_numpy()
    manual = [int(((xy[:, 0] > a) & (xy[:, 0] < c) & (xy[:, 1] > b) & (xy[:, 1] < d)).sum()) for a, b, c, d in boxes]
    assert adata.obs["n_nuclei"].tolist() == manual
    assert sum(manual[:4]) == len(xy)  # the four quadrants tile the image: each nucleus in one of them
    from scipy import ndimage

    centres = np.asarray(ndimage.center_of_mass(ids > 0, ids, range(1, 15)))[:, ::-1]  # true discs, x y
    truth = [int(((centres[:, 0] >= a) & (centres[:, 0] < c) & (centres[:, 1] >= b) & (centres[:, 1] < d)).sum())
             for a, b, c, d in boxes]
    assert np.abs(np.subtract(manual, truth)).max() <= 1 and sum(truth[:4]) == 14
    # a cell the outlines lack: <NA> for it, with a warning naming it; the others keep their counts
    adata.uns["cell_boundaries"] = boundaries_to_uns([shapely.box(*b) for b in boxes[:4]],
                                                     adata.obs_names[:4], np.eye(3))
    with pytest.warns(UserWarning, match=r"1 of 5 cells have no outline .*\(cell4\)"):
        td.tl.segment_nuclei(adata, model, device="cpu")
    assert str(adata.obs["n_nuclei"].dtype) == "Int64" and adata.obs["n_nuclei"].isna().tolist() == [False] * 4 + [True]
    assert adata.obs["n_nuclei"].iloc[:4].tolist() == manual[:4]


def test_cli_and_plot(model, tmp_path, capsys, monkeypatch):
    from PIL import Image

    from topdown.cli import main

    monkeypatch.delenv("TOPDOWN_NO_PROGRESS", raising=False)
    img, _ = _discs((128, 128), n=6)
    Image.fromarray(img).save(tmp_path / "dapi.png")
    rc = main(["nuclei", str(tmp_path / "dapi.png"), "--pixel-size", str(PX), "--out", str(tmp_path / "n.csv"),
               "--geojson", str(tmp_path / "n.geojson"), "--overlay", str(tmp_path / "o.png"), "--device", "cpu"])
    assert rc == 0 and len(pd.read_csv(tmp_path / "n.csv")) >= 5
    assert "nuclei: 100%" in capsys.readouterr().err  # the command line shows a progress bar over tiles
    assert (tmp_path / "o.png").stat().st_size > 1000 and (tmp_path / "n.geojson").is_file()
    assert main(["nuclei", str(tmp_path / "dapi.png"), "--out", str(tmp_path / "m.csv")]) == 2  # no pixel size


def test_density_test_finds_cell_loss_with_replicates():
    rng = np.random.default_rng(1)
    rows = []
    for cond, loss in (("healthy", 1.0), ("pathological", 0.5)):
        for k in range(4):
            for region, dens in (("CA", 3000.0), ("cortex", 2000.0)):
                area = rng.uniform(0.2, 0.4)
                mu = dens * area * (loss if region == "CA" else 1.0) * rng.lognormal(0, 0.1)
                rows.append({"sample": f"{cond}{k}", "condition": cond, "region": region,
                             "n_nuclei": int(rng.poisson(mu)), "area_mm2": area})
    t = pd.DataFrame(rows)
    res = td.tl.nuclei_density_test(t, reference="healthy").set_index("region")
    assert res.loc["CA", "padj"] < 0.01 and res.loc["CA", "density_ratio"] == pytest.approx(0.5, abs=0.1)
    assert res.loc["cortex", "padj"] > 0.05
    with pytest.raises(InputError, match="biological samples"):
        td.tl.nuclei_density_test(t[t["sample"].isin(["healthy0", "pathological0"])], reference="healthy")


def test_he_model_finds_nuclei_and_refuses_dapi():
    if "nuclei_he" not in td.seg.available_models("nuclei"):
        pytest.skip("no shipped H&E nucleus weights in this checkout")
    from scipy import ndimage

    img, ids = _discs(n=10, seed=5)
    he = np.stack([ndimage.gaussian_filter(np.where(ids > 0, n, g).astype(np.float32), 1.2)
                   for g, n in zip((235, 200, 225), (90, 60, 160), strict=True)], axis=-1)
    he = np.clip(he + np.random.default_rng(0).normal(0, 3, he.shape), 0, 255).astype(np.uint8)
    res = td.seg.nuclei(he, "nuclei_he", pixel_size_um=PX, device="cpu")
    assert td.seg.match_instances(ids, res.labels)["f1"] >= 0.9
    with pytest.raises(InputError, match="fluorescence"):
        td.seg.nuclei(img, "nuclei_he", pixel_size_um=PX)


def test_train_nuclei_learns_from_a_tiny_simulation(tmp_path):
    """The training path end to end: Blender DAPI frames -> a saved nucleus model that loads and runs."""
    spec = td.sim.load_preset("mouse_brain_coronal")
    data = td.sim.simulate(spec, n=4, out=tmp_path / "sims", seed=3, size=48, pixel_size_um=PX, modality="dapi",
                           samples=1)
    model = td.seg.train_nuclei(data.path, tmp_path / "nuc.pt", steps=4, batch_size=2, crop=32, widths=(4, 8),
                                save_every=2, val_fraction=0.25, precision="fp32", log=lambda s: None)
    cfg = model.train_config
    assert cfg["precision"] == "fp32" and cfg["steps"] == 4 and len(cfg["val_frames"]) == 1
    back = td.seg.load(tmp_path / "nuc.pt", kind="nuclei")
    assert tuple(back.classes) == NUCLEUS_CLASSES and back.modality == "dapi" and cfg["design"] == "distance"
    with pytest.raises(InputError, match="precision must be one of"):
        td.seg.train_nuclei(data.path, tmp_path / "bad.pt", steps=1, precision="half")
    # a run stopped after 2 of 4 steps then resumed ends where an uninterrupted one does
    kw = dict(batch_size=2, crop=32, widths=(4, 8), save_every=2, val_fraction=0.25, precision="fp32",
              log=lambda s: None)
    whole = td.seg.train_nuclei(data.path, tmp_path / "whole.pt", steps=4, **kw)

    def stop_at_step_4(line):  # the log comes before each save: this stops the run after step 2's
        if line.startswith("step 4/"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        td.seg.train_nuclei(data.path, tmp_path / "cut.pt", steps=4, **{**kw, "log": stop_at_step_4})
    resumed = td.seg.train_nuclei(data.path, tmp_path / "cut.pt", steps=4, resume=True, **kw)
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.allclose(a.float(), b.float(), atol=1e-6)
    with pytest.raises(InputError, match="not both"):
        td.seg.train_nuclei(data.path, tmp_path / "cut.pt", steps=4, resume=True, init=tmp_path / "nuc.pt", **kw)
    # a warm start or a resumed run keeps its checkpoint's widths (4, 8 here, not the default);
    # other widths asked for are refused by name, not by a tensor size mismatch
    no_widths = {k: v for k, v in kw.items() if k != "widths"}
    warm = td.seg.train_nuclei(data.path, tmp_path / "warm.pt", steps=2, init=tmp_path / "nuc.pt", **no_widths)
    assert warm.net.widths == (4, 8) and warm.train_config["init"] == str(tmp_path / "nuc.pt")
    assert td.seg.load(tmp_path / "warm.pt", kind="nuclei").train_config["init"] == str(tmp_path / "nuc.pt")
    again = td.seg.train_nuclei(data.path, tmp_path / "cut.pt", steps=6, resume=True, **no_widths)
    assert again.net.widths == (4, 8) and again.train_config["steps"] == 6
    with pytest.raises(InputError, match="has U-Net widths 4,8, not 8,16: drop widths"):
        td.seg.train_nuclei(data.path, tmp_path / "w.pt", steps=1, init=tmp_path / "nuc.pt",
                            **{**no_widths, "widths": (8, 16)})
    # the command line: topdown train --task nuclei
    from topdown.cli import main

    args = ["train", "--task", "nuclei", "--data", str(data.path), "--out", str(tmp_path / "cli.pt"), "--steps", "2",
            "--batch-size", "2", "--crop", "32", "--widths", "4,8", "--precision", "fp32"]
    assert main(args) == 0
    cli = td.seg.load(tmp_path / "cli.pt", kind="nuclei")
    assert cli.train_config["task"] == "nuclei" and cli.train_config["steps"] == 2
    assert main(args + ["--adapt-to", str(tmp_path / "cli.pt")]) == 2
    assert main(args + ["--orientation", "upright"]) == 2
    if not torch.cuda.is_available():  # a GPU is asked for by name: a clear error where there is none
        with pytest.raises(InputError, match="no CUDA GPU is available"):
            td.seg.train_nuclei(data.path, tmp_path / "gpu.pt", steps=1, device="cuda", **kw)
        assert main(args + ["--device", "cuda"]) == 2
