"""Do the regions found on the real Visium mouse brain agree with its expression?

There are no expert labels for the real section, but its spots carry expression. Marker
genes among the 100 genes shipped in ``../shared/data/visium_mouse_brain_v1`` give an
independent check of a model's map:

- ``Nrgn`` (neurogranin) is high in the telencephalon (cortex, hippocampus) and low in the
  thalamus and hypothalamus: its AUROC for "telencephalon vs diencephalon" spots says how
  well the model separates the two (0.5 = chance);
- ``Plp1`` (myelin) is higher in fibre tracts than in the cortex;
- ``Ttr`` (choroid plexus) is higher in ventricle spots than elsewhere.

One view of the section is not enough to compare models: the session-10 model's Nrgn AUROC
moved from 0.856 to 0.747 between the section and its mirror image (the brain models train
with left-right flips, so both are equally valid inputs). Each model is therefore scored on
four views: as scanned, mirrored (image and spot coordinates), white-balanced (each
colour channel scaled so the grey glass, about (129, 132, 126) here, becomes the
simulator's 240: another exposure of the same slide) and both; compare the means.

Run by hand (not a test), with shipped names or checkpoint paths:

    python benchmarks/visium_markers.py mouse_brain_coronal
    python benchmarks/visium_markers.py mouse_brain_coronal candidates/brain.safetensors --adapt-norm
    python benchmarks/visium_markers.py mouse_brain_coronal --single   # the scanned view only
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

OUTS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "visium_mouse_brain_v1" / "outs"
TELENCEPHALON = ("cortex", "hippocampus_CA", "dentate_gyrus")
DIENCEPHALON = ("thalamus", "hypothalamus")


def auroc(score: np.ndarray, positive: np.ndarray) -> float | None:
    """Area under the ROC curve of ``score`` for ``positive`` (``None`` if one side is empty)."""
    from sklearn.metrics import roc_auc_score

    if positive.all() or not positive.any():
        return None
    return float(roc_auc_score(positive, score))


#: views of the section: (mirrored, white-balanced)
VIEWS = {"scanned": (False, False), "mirrored": (True, False), "white-balanced": (False, True),
         "mirrored + white-balanced": (True, True)}
SCORES = ("nrgn_auroc_telencephalon_vs_diencephalon", "plp1_auroc_fibre_tracts_vs_cortex",
          "ttr_auroc_ventricle_vs_rest")


def mirror(adata) -> None:
    """Mirror the (single-library) section left-right in place: every image of
    ``uns['spatial']`` and the spots' full-resolution x (``x' = W / scalef - x`` for an
    image W px wide)."""
    (lib,) = adata.uns["spatial"].values()
    images, scalef = lib["images"], lib["scalefactors"]
    for kind, image in images.items():
        images[kind] = np.ascontiguousarray(np.asarray(image)[:, ::-1])
    kind = "hires" if "hires" in images else "lowres"
    width_full = images[kind].shape[1] / float(scalef[f"tissue_{kind}_scalef"])
    xy = np.asarray(adata.obsm["spatial"], dtype=float).copy()
    xy[:, 0] = width_full - xy[:, 0]
    adata.obsm["spatial"] = xy


def white_balance(adata, glass_white: float = 240.0) -> None:
    """Scale each colour channel of every uint8 image so that its glass is ``glass_white``
    (the simulator's glass: 211-255, median 236-242). Glass: outside the tissue detector's mask."""
    from scipy import ndimage as ndi

    from topdown.seg.tissue import tissue_mask
    from topdown.tl._segment_regions import _as_uint8_rgb  # the conversion segment_regions applies

    for lib in adata.uns["spatial"].values():
        images = lib["images"]
        for kind, image in images.items():
            rgb = _as_uint8_rgb(image)
            tissue = tissue_mask(rgb, "he")
            if tissue is None:  # no glass in view: nothing to balance against
                continue
            glass = ~ndi.binary_dilation(tissue, iterations=3)
            gain = glass_white / np.median(rgb[glass].astype(float), axis=0)
            images[kind] = np.clip(rgb * gain, 0, 255).round().astype(np.uint8)


def marker_scores(model: str, section, adapt_norm: bool = False, mirrored: bool = False,
                  balanced: bool = False) -> dict:
    """Segment a copy of ``section`` (the Visium AnnData, left as it is) in one view and
    score the map by marker genes."""
    import scanpy as sc

    import topdown as td

    adata = section.copy()
    if mirrored:
        mirror(adata)
    if balanced:
        white_balance(adata)
    td.tl.segment_regions(adata, model, adapt_norm=adapt_norm)
    td.tl.assign_regions(adata)
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    region = adata.obs["region"].astype(str).to_numpy()

    def expr(gene: str) -> np.ndarray:
        x = adata[:, gene].X
        return np.asarray(x.toarray() if hasattr(x, "toarray") else x).ravel()

    out: dict = {"model": model, "adapt_norm": adapt_norm, "mirrored": mirrored, "white_balanced": balanced,
                 "spots": int(adata.n_obs),
                 "regions": {k: int(v) for k, v in adata.obs["region"].value_counts().items() if v}}
    both = np.isin(region, TELENCEPHALON + DIENCEPHALON)
    out["nrgn_auroc_telencephalon_vs_diencephalon"] = auroc(expr("Nrgn")[both], np.isin(region[both], TELENCEPHALON))
    tract_or_cortex = np.isin(region, ("fiber_tracts", "cortex"))
    out["plp1_auroc_fibre_tracts_vs_cortex"] = auroc(expr("Plp1")[tract_or_cortex],
                                                     region[tract_or_cortex] == "fiber_tracts")
    out["ttr_auroc_ventricle_vs_rest"] = auroc(expr("Ttr"), region == "lateral_ventricle")
    return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in out.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", help="shipped model names or checkpoint paths")
    p.add_argument("--outs", default=str(OUTS), help="Space Ranger outs folder (default: ../shared/data)")
    p.add_argument("--adapt-norm", action=argparse.BooleanOptionalAction, default=False,
                   help="AdaBN before segmenting (default off, as in td.tl.segment_regions)")
    p.add_argument("--single", action="store_true", help="score the scanned view only")
    args = p.parse_args()
    os.environ.setdefault("TOPDOWN_NO_PROGRESS", "1")
    if not Path(args.outs).is_dir():
        raise SystemExit(f"no Visium outs folder at {args.outs}; pass --outs")
    import topdown as td

    section = td.io.read_visium(Path(args.outs))  # read once; each view segments a copy
    views = {"scanned": VIEWS["scanned"]} if args.single else VIEWS
    for model in args.models:
        rows = []
        for mirrored, balanced in views.values():
            rows.append(marker_scores(model, section, args.adapt_norm, mirrored, balanced))
            print(json.dumps(rows[-1]), flush=True)
        if len(rows) > 1:
            summary = {"model": model, "views": list(views)}
            for key in SCORES:
                values = np.array([np.nan if r[key] is None else r[key] for r in rows], dtype=float)
                summary[key] = {"mean": round(float(np.nanmean(values)), 3), "min": round(float(np.nanmin(values)), 3),
                                "max": round(float(np.nanmax(values)), 3)}
            print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
