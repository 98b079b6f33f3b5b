"""``topdown demo``: simulate a study -> load (or train) a model -> segment -> assign -> DE and
cell counts -> report."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .._files import writable_dir
from .nuclei import count_nuclei
from .result import DemoResult
from .study import HEALTHY, StudyConfig, StudySample, build_study

log = logging.getLogger(__name__)


def _model(preset: str, out: Path, quick: bool, seed: int):
    """The shipped model of ``preset``, or a small one trained now on fresh simulations."""
    from ..seg.checkpoint import available_models, load

    if preset in available_models():
        model = load(preset)
        return model, {"source": "shipped weights", "name": preset}
    from ..seg import train
    from ..sim.presets import load_preset
    from ..sim.simulate import simulate

    log.warning("no shipped weights for %r: training a small model on the spot (lower accuracy)", preset)
    n, epochs = (48, 6) if quick else (160, 15)
    ds = simulate(load_preset(preset), n=n, out=out / "training_sims", seed=seed + 99)
    model = train(ds, out / "model" / f"{preset}.safetensors", epochs=epochs, seed=seed)
    return model, {"source": f"trained on the spot ({n} frames, {epochs} epochs)", "name": preset}


def _segmentation_scores(sample: StudySample, rmap, classes: list[str]) -> dict:
    from ..seg.metrics import confusion, scores

    pred = rmap.image_labels(sample.truth_mask.shape)
    cm = confusion(sample.truth_mask, pred, len(classes) + 1)
    s = scores(cm, ["outside", *classes])
    return {"sample": sample.name, "condition": sample.condition, "pixel_accuracy": s["pixel_accuracy"],
            "mIoU": s["miou"], "pred_labels": pred}


def _de_truth(de: pd.DataFrame, var: pd.DataFrame, de_regions, padj: float = 0.05,
              lesion_region: str | None = None) -> pd.DataFrame:
    """Recall and FDR per region; the truth of a region is its planted genes, plus the lesion
    program's genes in the region holding the lesion (they change there too)."""
    rows = []
    for region in sorted(de["region"].unique()):
        d = de[de["region"] == region]
        called = set(d.loc[d["padj"] < padj, "gene"])
        col = f"de_{region}"
        truth = set(var.index[var[col]]) if col in var else set()
        if region == lesion_region and "lesion_gene" in var:
            truth |= set(var.index[var["lesion_gene"]])
        tested_truth = truth & set(d["gene"])
        tp = len(called & truth)
        rows.append({"region": region, "planted": region in de_regions, "n_true_de": len(truth),
                     "n_called": len(called), "true_positives": tp,
                     "recall": tp / len(tested_truth) if tested_truth else np.nan,
                     "fdr": (len(called) - tp) / len(called) if called else 0.0})
    return pd.DataFrame(rows)


def _density_tests(counts: pd.DataFrame) -> tuple[pd.DataFrame | None, pd.DataFrame | None, str | None]:
    """Nuclei density per region, pathological vs. healthy: on the nuclei found and on the true ones."""
    from ..errors import InputError
    from ..tl import nuclei_density_test

    if counts.empty:
        return None, None, "No cell-density test: no counting frame fell in the regions asked for."
    try:
        return (nuclei_density_test(counts, reference=HEALTHY),
                nuclei_density_test(counts, reference=HEALTHY, count_key="n_true"), None)
    except InputError as exc:  # e.g. a single sample per condition
        return None, None, f"No cell-density test: {exc}"


def run_demo(out: str | Path = "demo_report", *, quick: bool = False, seed: int = 0,
             model=None, config: StudyConfig | None = None) -> DemoResult:
    """Run the whole top-down pipeline on the embedded simulated study and write a report.

    Parameters
    ----------
    out
        Report folder (created; existing files of an earlier demo are replaced atomically).
    quick
        Smaller study (under 3 minutes on 2 CPU cores).
    seed
        Seed of the study (images, spots, counts).
    model
        A SegModel, model name or checkpoint path to use instead of the shipped model of
        the study's preset.
    config
        The study's size (overrides ``quick`` and ``seed``).

    Returns
    -------
    DemoResult with the per-sample segmentation and assignment scores and the DE table.

    Examples
    --------
    >>> from topdown._demo.pipeline import run_demo
    >>> res = run_demo("demo_report", quick=True)  # doctest: +SKIP
    """
    import anndata as ad

    from ..get import load_store
    from ..io import write_annotated
    from ..seg.regionmap import RegionMap
    from ..tl import assign_regions, region_de, segment_regions
    from .report import write_report, write_summary  # matplotlib (Agg) only when a report is made

    out = writable_dir(out)
    config = config or (StudyConfig.quick if quick else StudyConfig)(seed=seed)
    t = {"start": time.perf_counter()}
    samples = build_study(config)
    t["simulate"] = time.perf_counter()
    if model is None:
        model, model_info = _model(config.preset, out, quick, seed)
    else:
        from ..seg.checkpoint import load

        model = load(model)
        model_info = {"source": "given by the caller", "name": model.name or "model"}
    classes = list(model.classes)
    t["model"] = time.perf_counter()

    seg_rows, assign_rows = [], []
    for s in samples:
        segment_regions(s.adata, model, library_id=s.name)
        assign_regions(s.adata, library_id=s.name)
        stored = load_store(s.adata, "regions")[s.name]
        rmap = RegionMap(stored.labels, stored.classes, downsample=stored.scale.fullres)  # image = full-res
        row = _segmentation_scores(s, rmap, classes)
        s.record["pred_labels"] = row.pop("pred_labels")
        seg_rows.append(row)
        truth = s.adata.obs["region_true"].astype(str).to_numpy()
        pred = s.adata.obs["region"].astype(str).to_numpy()
        assign_rows.append({"sample": s.name, "condition": s.condition, "n_spots": len(truth),
                            "accuracy": float(np.mean(truth == pred)),
                            "assigned_to_region": float(np.mean(pred != "outside"))})
    t["segment_assign"] = time.perf_counter()

    annotated = out / "annotated"
    for s in samples:
        write_annotated(s.adata, annotated / f"{s.name}.h5ad")
    combined = ad.concat([s.adata for s in samples], merge="same")
    de = region_de(combined, condition_key="condition", sample_key="sample", reference=HEALTHY,
                   region_key="region")
    oracle = region_de(combined, condition_key="condition", sample_key="sample", reference=HEALTHY,
                       region_key="region_true", key_added=None)
    t["de"] = time.perf_counter()
    nuclei_counts, nuclei_examples = count_nuclei(samples, classes, config)
    density, density_true, note = _density_tests(nuclei_counts)
    t["nuclei"] = time.perf_counter()
    var = samples[0].adata.var
    lesion_region = next((s.section.params["lesion"]["region"] for s in samples if s.section.params.get("lesion")),
                         None)
    result = DemoResult(out=out, config=config, samples=samples, model_info=model_info,
                        segmentation=pd.DataFrame(seg_rows), assignment=pd.DataFrame(assign_rows),
                        de=de, de_truth=_de_truth(de, var, config.de_regions, lesion_region=lesion_region),
                        de_truth_oracle=_de_truth(oracle, var, config.de_regions, lesion_region=lesion_region),
                        nuclei_counts=nuclei_counts, nuclei_density=density, nuclei_density_true=density_true,
                        nuclei_examples=nuclei_examples)
    if note:
        result.notes.append(note)
    write_report(result, combined)
    t["report"] = time.perf_counter()
    result.timings = {k: round(t[k] - t["start"], 1) for k in t if k != "start"}
    write_summary(result)
    return result
