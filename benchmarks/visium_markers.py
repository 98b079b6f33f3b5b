"""Do the regions found on the real Visium mouse brain agree with its expression?

There are no expert labels for the real section, but its spots carry expression. Marker
genes among the 100 genes shipped in ``../shared/data/visium_mouse_brain_v1`` give an
independent check of a model's map:

- ``Nrgn`` (neurogranin) is high in the telencephalon (cortex, hippocampus) and low in the
  thalamus and hypothalamus: its AUROC for "telencephalon vs diencephalon" spots says how
  well the model separates the two (0.5 = chance);
- ``Plp1`` (myelin) is higher in fibre tracts than in the cortex;
- ``Ttr`` (choroid plexus) is higher in ventricle spots than elsewhere.

Run by hand (not a test), with shipped names or checkpoint paths:

    python benchmarks/visium_markers.py mouse_brain_coronal
    python benchmarks/visium_markers.py mouse_brain_coronal candidates/brain.safetensors --no-adapt-norm
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


def marker_scores(model: str, outs: Path, adapt_norm: bool = True) -> dict:
    import scanpy as sc

    import topdown as td

    adata = td.io.read_visium(outs)
    td.tl.segment_regions(adata, model, adapt_norm=adapt_norm)
    td.tl.assign_regions(adata)
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    region = adata.obs["region"].astype(str).to_numpy()

    def expr(gene: str) -> np.ndarray:
        x = adata[:, gene].X
        return np.asarray(x.toarray() if hasattr(x, "toarray") else x).ravel()

    out: dict = {"model": model, "adapt_norm": adapt_norm, "spots": int(adata.n_obs),
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
    p.add_argument("--no-adapt-norm", action="store_false", dest="adapt_norm")
    args = p.parse_args()
    os.environ.setdefault("TOPDOWN_NO_PROGRESS", "1")
    if not Path(args.outs).is_dir():
        raise SystemExit(f"no Visium outs folder at {args.outs}; pass --outs")
    for model in args.models:
        print(json.dumps(marker_scores(model, Path(args.outs), args.adapt_norm)), flush=True)


if __name__ == "__main__":
    main()
