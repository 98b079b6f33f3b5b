"""The demo report: figures, tables, annotated h5ad files and ``summary.md``."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402

from .._files import atomic_path, atomic_write_text  # noqa: E402
from ..errors import InputError  # noqa: E402
from .nuclei import FRAME_PIXEL_SIZE_UM  # noqa: E402
from .result import DemoResult  # noqa: E402


def _engine_name(de: pd.DataFrame) -> str:
    """How the DE table was computed, for the report heading."""
    engine = de.attrs.get("params", {}).get("engine", "nbglm")
    return {"nbglm": "DESeq2's NB GLM, batched engine nbglm", "pydeseq2": "PyDESeq2"}.get(engine, engine)


def _save(fig, path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=130, bbox_inches="tight", format=path.suffix.lstrip("."))
    plt.close(fig)


def _colors(result: DemoResult) -> dict[str, str]:
    """The preset's own region colours (as in overlays and contact sheets), plus ``outside``."""
    from ..sim.presets import load_preset

    return {**load_preset(result.config.preset).colors, "outside": "#d9d9d9"}


def _label_cmap(classes: list[str], colors: dict[str, str]) -> ListedColormap:
    return ListedColormap([colors.get("outside", "#d9d9d9"), *[colors[c] for c in classes]])


def truth_vs_prediction(result: DemoResult, path) -> None:
    """Rows = samples; columns = rendered image, true regions, segmented regions."""
    classes = list(result.samples[0].section.classes)
    cmap = _label_cmap(classes, _colors(result))
    n = len(result.samples)
    fig, axes = plt.subplots(n, 3, figsize=(9, 3 * n), squeeze=False)
    for row, s in zip(axes, result.samples, strict=True):
        row[0].imshow(s.image)
        row[1].imshow(s.truth_mask, cmap=cmap, vmin=0, vmax=len(classes), interpolation="nearest")
        row[2].imshow(s.record["pred_labels"], cmap=cmap, vmin=0, vmax=len(classes), interpolation="nearest")
        row[0].set_ylabel(s.name)
        for ax in row:
            ax.set_xticks([]), ax.set_yticks([])
    for ax, title in zip(axes[0], ["Blender render (H&E)", "true regions", "segmented (model)"], strict=True):
        ax.set_title(title)
    handles = [plt.Rectangle((0, 0), 1, 1, color=cmap(i)) for i in range(len(classes) + 1)]
    fig.legend(handles, ["outside", *classes], loc="lower center", ncol=5, frameon=False)
    fig.subplots_adjust(bottom=0.08)
    _save(fig, path)


def composition(result: DemoResult, path) -> None:
    """Share of in-tissue spots per region and sample: assigned (left) and true (right)."""
    classes = list(result.samples[0].section.classes)
    colors = _colors(result)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=True)
    for ax, col, title in zip(axes, ["region", "region_true"], ["assigned by topdown", "truth"], strict=True):
        table = pd.DataFrame({s.name: s.adata.obs[col].astype(str).value_counts(normalize=True)
                              for s in result.samples}).T.reindex(columns=[*classes, "outside"]).fillna(0)
        table = table.loc[:, table.sum() > 0]
        table.plot.bar(stacked=True, ax=ax, color=[colors.get(c, "#d9d9d9") for c in table.columns],
                       legend=False, width=0.8)
        ax.set_title(f"region composition ({title})")
        ax.set_ylabel("fraction of spots")
    axes[1].legend(loc="center left", bbox_to_anchor=(1, 0.5), frameon=False)
    _save(fig, path)


def nuclei_frames(result: DemoResult, path) -> None:
    """One counting frame of the first counted region per condition, nuclei outlined."""
    from ..pl import nuclei as plot_nuclei

    examples = result.nuclei_examples
    fig, axes = plt.subplots(1, len(examples), figsize=(7 * len(examples), 7.6), squeeze=False)
    region = result.config.nuclei_regions[0]
    for ax, (_, ex) in zip(axes[0], sorted(examples.items()), strict=True):
        plot_nuclei(ex["image"], ex["found"], ax=ax, show=False,
                    title=f"{ex['sample']}: {ex['n_frames']} counting frames\n{ex['n_nuclei']} nuclei found in "
                          f"{region} (cyan), {ex['n_true']} true")
        ax.contour(ex["inside"], levels=[0.5], colors="#00e5ff", linewidths=1.0)
    _save(fig, path)


def nuclei_density(result: DemoResult, path) -> None:
    """Nuclei per mm² of each sample, per counted region: found (dots) and true (crosses)."""
    from ..pl import nuclei_density as plot_density

    counts = result.nuclei_counts
    regions = [r for r in result.config.nuclei_regions if r in set(counts["region"])]
    plot_density(counts, result.nuclei_density, regions=regions, truth_key="n_true", save=path, show=False, dpi=130)
    plt.close("all")


def write_report(result: DemoResult, combined) -> None:
    """All figures and tables (the summary is written last, with the timings)."""
    from ..pl import region_de, region_de_counts, region_de_heatmap, regions

    out = result.out
    (out / "overlays").mkdir(exist_ok=True)
    for s in result.samples:
        regions(s.adata, library_id=s.name, save=out / "overlays" / f"{s.name}.png", show=False,
                title=f"{s.name}: segmented regions and spots")
        plt.close("all")
    truth_vs_prediction(result, out / "truth_vs_prediction.png")
    composition(result, out / "composition.png")
    region_de(result.de, save=out / "volcano.png", show=False)
    region_de_counts(result.de, save=out / "de_genes_per_region.png", show=False)
    try:
        region_de_heatmap(result.de, combined, save=out / "heatmap.png", show=False)
    except InputError as exc:  # no gene passes padj: say so in the summary instead
        result.notes.append(f"No heatmap: {exc}")
    plt.close("all")
    with atomic_path(out / "de_results.csv") as tmp:
        result.de.to_csv(tmp, index=False)
    if result.nuclei_counts is not None and len(result.nuclei_counts):
        with atomic_path(out / "nuclei_counts.csv") as tmp:
            result.nuclei_counts.to_csv(tmp, index=False)
        nuclei_density(result, out / "nuclei_density.png")
        if result.nuclei_examples:
            nuclei_frames(result, out / "nuclei_frames.png")
    if result.nuclei_density is not None:
        with atomic_path(out / "nuclei_density.csv") as tmp:
            result.nuclei_density.to_csv(tmp, index=False)


def _table(df: pd.DataFrame, floatfmt: str = ".3f") -> str:
    df = df.copy()
    for c in df.columns:
        if pd.api.types.is_float_dtype(df[c]):
            df[c] = df[c].map(lambda v: "" if pd.isna(v) else format(v, floatfmt))
    head = "| " + " | ".join(map(str, df.columns)) + " |"
    sep = "|" + "---|" * len(df.columns)
    body = ["| " + " | ".join(map(str, r)) + " |" for r in df.itertuples(index=False)]
    return "\n".join([head, sep, *body])


def _lesion_spots(result: DemoResult) -> int:
    return int(sum(s.adata.obs["in_lesion"].sum() for s in result.samples if "in_lesion" in s.adata.obs))


def _planted_loss(result: DemoResult) -> str:
    losses = [s.section.params["cell_loss"] for s in result.samples if s.section.params.get("cell_loss")]
    if not losses:
        return "No cell loss was planted."
    frac = np.mean([c["fraction"] for c in losses])
    who = ", ".join(losses[0].get("populations") or ["all cells"])
    return (f"Planted: the pathological sections lose {frac:.0%} of the {who} cells of {losses[0]['region']} "
            "on average (the other cells of the region stay).")


def _nuclei_section(result: DemoResult) -> list[str]:
    """The summary's cell-density section (empty when no counts were made)."""
    counts, found, true = result.nuclei_counts, result.nuclei_density, result.nuclei_density_true
    if counts is None or counts.empty or found is None:
        return []
    c = result.config
    cols = ["region", "density_ratio", "log2_ratio", "pvalue", "padj", "density_reference", "density_group"]
    table = found[cols].merge(true[["region", "density_ratio", "padj"]].rename(
        columns={"density_ratio": "true_ratio", "padj": "true_padj"}), on="region", how="left")
    detected = counts["n_nuclei"].sum() / max(counts["n_true"].sum(), 1)
    return [
        "## Cell density per region (nuclei), pathological vs. healthy",
        "",
        f"In each segmented region of {', '.join(c.nuclei_regions)}, about {c.nuclei_frames} counting frames "
        f"of {c.nuclei_frame_px * FRAME_PIXEL_SIZE_UM:.0f} µm on a systematic random grid, rendered from the "
        f"same simulated tissue at {FRAME_PIXEL_SIZE_UM:g} µm/px (Blender) and segmented by the shipped "
        "`nuclei_he` model; nuclei whose centre "
        "lies in the segmented region are counted. Quasi-Poisson count model per region with the counted "
        "area as offset and samples as replicates (`td.tl.nuclei_density_test`); `true_*` columns: the "
        "same test on the simulation's own nuclei in the same frames.",
        "",
        _planted_loss(result),
        "",
        _table(table),
        "",
        f"{int(counts['n_nuclei'].sum())} nuclei found where the simulation holds {int(counts['n_true'].sum())} "
        f"in focus or not ({detected:.2f} found per true nucleus; a thick section's out-of-focus nuclei are "
        "partly missed, the same in both conditions).",
        "",
        "![nuclei density](nuclei_density.png)",
        "",
        *(["![counting frames](nuclei_frames.png)", ""] if (result.out / "nuclei_frames.png").exists() else []),
    ]


def write_summary(result: DemoResult) -> None:
    """``summary.md``: what was done, accuracy against the simulation's truth, figures."""
    c = result.config
    seg, asg, tr = result.segmentation, result.assignment, result.de_truth
    planted = tr[tr["planted"]]
    other = tr[~tr["planted"]]
    called_total = int(tr["n_called"].sum())
    false_total = int((tr["n_called"] - tr["true_positives"]).sum())
    lines = [
        "# topdown demo report",
        "",
        f"A simulated study of `{c.preset}`: {c.n_per_condition} healthy + {c.n_per_condition} pathological "
        f"sections ({c.size}x{c.size} px) rendered with Blender Cycles, Visium-like spots (55 µm, 100 µm "
        f"pitch) with exact true regions, {c.n_genes} genes of negative-binomial counts with sample random "
        f"effects and planted condition effects in {', '.join(c.de_regions)}; the pathological sections lose "
        "CA pyramidal cells and carry a cortical lesion (anatomy change).",
        "",
        f"The counts carry the same anatomy change: {_lesion_spots(result)} spots of the pathological "
        "sections lie in the lesion (cell loss there plus a lesion gene program, `var['lesion_gene']`), "
        "and the CA region loses cells (lower counts).",
        "",
        f"Model: {result.model_info['name']} ({result.model_info['source']}).",
        "",
        "## Segmentation vs. the true region masks",
        "",
        _table(seg),
        "",
        f"Mean pixel accuracy {seg['pixel_accuracy'].mean():.3f}, mean mIoU {seg['mIoU'].mean():.3f}.",
        "",
        "![truth vs prediction](truth_vs_prediction.png)",
        "",
        "## Spot assignment vs. the exact true region of each spot",
        "",
        _table(asg),
        "",
        f"Overall spot accuracy {np.average(asg['accuracy'], weights=asg['n_spots']):.3f}.",
        "",
        "![composition](composition.png)",
        "",
        "Per-sample overlays: " + ", ".join(f"[{s.name}](overlays/{s.name}.png)" for s in result.samples),
        "",
        f"## Region-level DE (pseudobulk per sample x region, {_engine_name(result.de)}), pathological vs. healthy",
        "",
        _table(tr),
        "",
        f"Planted regions: recall {planted['recall'].mean():.3f}, FDR {planted['fdr'].mean():.3f} (padj < 0.05). "
        f"Regions without planted effects: {int(other['n_called'].sum())} genes called. "
        f"All regions: {called_total} calls, {false_total} false "
        f"({(false_total / called_total if called_total else 0):.3f} FDR).",
        "",
        "Note: genes are called DE in a region when padj < 0.05; region-level calls use the *assigned* "
        "regions, so segmentation errors propagate into DE, as they would on real data.",
        "",
        "### The same DE with the true regions (oracle)",
        "",
        "What the count model recovers when every spot carries its true region: the gap to the table "
        "above is the cost of segmentation errors.",
        "",
        _table(result.de_truth_oracle),
        "",
        "![volcano](volcano.png)",
        "",
        *(["![heatmap](heatmap.png)"] if (result.out / "heatmap.png").exists() else []),
        *result.notes,
        "",
        "![DE genes per region](de_genes_per_region.png)",
        "",
        *_nuclei_section(result),
        "## Files",
        "",
        "- `annotated/<sample>.h5ad`: region-annotated AnnData per sample (`obs['region']`, "
        "`obs['region_confidence']`, `obsm['region_fractions']`, `uns['regions']`).",
        "- `de_results.csv`: the tidy DE table.",
        "- `nuclei_counts.csv`, `nuclei_density.csv`: nuclei per sample x region, and their density test.",
        "",
        "## Timings (seconds since start)",
        "",
        ", ".join(f"{k}: {v}" for k, v in result.timings.items()),
        "",
    ]
    atomic_write_text(result.out / "summary.md", "\n".join(lines))
