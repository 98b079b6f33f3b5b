"""topdown demo: the whole pipeline on a tiny simulated study (real Blender renders,
real segmentation code path, real batched DESeq2 GLM), with the report checked for content."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import topdown as td
from topdown._demo.pipeline import _de_truth, run_demo
from topdown._demo.study import StudyConfig, build_study
from topdown.sim.spots import spot_region_fractions, spot_truth, visium_grid

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = StudyConfig(n_per_condition=2, size=96, n_genes=60, seed=3, samples=1, nuclei_frames=2, nuclei_frame_px=64,
                   nuclei_regions=tuple(td.sim.load_preset("mouse_brain_coronal").classes))  # whatever is segmented


@pytest.fixture(scope="module")
def tiny_model():
    spec = td.sim.load_preset(TINY.preset)
    from topdown.seg.model import SegModel

    return SegModel(classes=spec.classes, pixel_size_um=spec.imaging.pixel_size_um, widths=(4, 8),
                    name="untrained")


def test_spot_truth_is_exact_for_a_known_section():
    spec = td.sim.load_preset("mouse_brain_coronal")
    section = td.sim.layout(spec, 5, size=64)
    xy = visium_grid(section.shape, section.pixel_size_um)
    frac = spot_region_fractions(section, xy)
    assert np.allclose(frac.sum(axis=1), 1.0, atol=1e-6)
    truth = spot_truth(frac)
    # a spot whose centre pixel is inside a region and whose disk is all tissue is in that region
    labels = td.sim.region_mask(section)
    full = frac["outside"] < 1e-9
    pure = frac.drop(columns="outside").max(axis=1) > 0.999
    sel = np.flatnonzero(full & pure)
    assert len(sel) > 0
    centre = labels[xy[sel, 1].astype(int), xy[sel, 0].astype(int)]
    assert (np.array(section.classes)[centre - 1] == truth.to_numpy()[sel]).all()


def test_study_has_replicates_truth_and_images():
    samples = build_study(TINY)
    assert [s.condition for s in samples] == ["healthy"] * 2 + ["pathological"] * 2
    for s in samples:
        a = s.adata
        assert a.n_obs > 0 and a.uns["spatial"][s.name]["images"]["hires"].shape == (96, 96, 3)
        assert set(a.obs["region_true"].astype(str)) <= set(s.section.classes)
        assert np.issubdtype(a.X.dtype, np.integer)
    assert samples[2].section.params.get("lesion") or samples[2].section.params.get("cell_loss")


def test_de_truth_counts_false_calls():
    de = pd.DataFrame({"region": ["a"] * 4, "gene": list("wxyz"), "padj": [0.01, 0.01, 0.2, 0.01]})
    var = pd.DataFrame({"de_a": [True, True, True, False]}, index=list("wxyz"))
    row = _de_truth(de, var, ["a"]).iloc[0]
    assert row["true_positives"] == 2 and row["n_called"] == 3
    assert row["recall"] == pytest.approx(2 / 3) and row["fdr"] == pytest.approx(1 / 3)
    var["lesion_gene"] = [False, False, False, True]  # z is the lesion program, and a lies in the lesion
    row = _de_truth(de, var, ["a"], lesion_region="a").iloc[0]
    assert row["true_positives"] == 3 and row["fdr"] == 0.0


def test_run_demo_writes_a_complete_report(tmp_path, tiny_model):
    res = run_demo(tmp_path / "report", model=tiny_model, config=TINY)
    out = res.out
    for name in ["summary.md", "truth_vs_prediction.png", "composition.png", "volcano.png",
                 "de_results.csv", "de_genes_per_region.png"]:
        assert (out / name).stat().st_size > 0, name
    # an untrained model on 60 genes calls nothing: the report says so instead of a heatmap
    assert (out / "heatmap.png").exists() or any("No heatmap" in n for n in res.notes)
    for s in res.samples:
        assert (out / "overlays" / f"{s.name}.png").exists()
        back = td.io.read_annotated(out / "annotated" / f"{s.name}.h5ad")
        assert "region" in back.obs and "regions" in back.uns
    summary = (out / "summary.md").read_text()
    assert "Segmentation vs. the true region masks" in summary and "untrained" in summary
    assert len(res.segmentation) == 4 and res.segmentation["mIoU"].between(0, 1).all()
    assert res.assignment["accuracy"].between(0, 1).all()
    # cell counts in counting frames over the segmented regions, and their density test (or why not)
    counts = res.nuclei_counts
    assert list(counts.columns) == ["sample", "condition", "region", "n_frames", "n_nuclei", "n_true", "area_mm2"]
    assert len(counts) > 0 and (counts["area_mm2"] > 0).all() and (counts["n_frames"] >= 1).all()
    assert set(counts["region"]) <= set(TINY.nuclei_regions)
    assert (out / "nuclei_counts.csv").exists() and (out / "nuclei_density.png").exists()
    if res.nuclei_density is not None:
        assert "Cell density per region (nuclei)" in summary and (out / "nuclei_density.csv").exists()
    else:
        assert any(n.startswith("No cell-density test") for n in res.notes)
