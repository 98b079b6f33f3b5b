"""The embedded demo dataset: a simulated multi-sample Visium study (no download)."""

from __future__ import annotations

import anndata as ad


def demo(quick: bool = False, seed: int = 0, n_per_condition: int = 3) -> ad.AnnData:
    """Simulate the demo study: 3 healthy + 3 pathological mouse-brain sections.

    Each section is rendered with Blender (H&E), carries a hexagonal grid of Visium-like
    spots with exact true regions (``obs['region_true']``), and negative-binomial counts
    with sample random effects, planted condition effects in two regions
    (``var['de_<region>']``, ``var['lfc_<region>']``) and CA pyramidal cell loss plus a
    cortical lesion in the pathological sections. Nothing is downloaded.

    Parameters
    ----------
    quick
        Smaller images and fewer genes (about 3x faster).
    seed
        Random seed of the whole study.
    n_per_condition
        Sections (biological replicates) per condition.

    Returns
    -------
    AnnData with all spots; ``obs['sample']`` names the library of each spot, whose image
    and scalefactors are in ``uns['spatial'][sample]``; raw counts in ``X`` and
    ``layers['counts']``.

    Examples
    --------
    >>> import topdown as td
    >>> adata = td.datasets.demo(quick=True)  # doctest: +SKIP
    >>> adata.obs.groupby("condition").sample.nunique()  # doctest: +SKIP
    """
    from .._demo import StudyConfig, build_study

    config = (StudyConfig.quick if quick else StudyConfig)(seed=seed, n_per_condition=n_per_condition)
    samples = build_study(config)
    adata = ad.concat([s.adata for s in samples], uns_merge="first", merge="same")
    adata.uns["spatial"] = {s.name: s.adata.uns["spatial"][s.name] for s in samples}
    adata.uns["sim_expression"] = samples[0].adata.uns.get("sim_expression", {})
    return adata
