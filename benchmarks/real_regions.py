"""Real tissue as the judge: score a region model on real sections with expert labels.

Run by hand (not a test); it prints a table and writes one PNG per section plus
``real_regions.json`` under ``--out``:

    python benchmarks/real_regions.py                            # every set, its preset's shipped model
    python benchmarks/real_regions.py --sets mob                 # the olfactory bulb sections only
    python benchmarks/real_regions.py --sets dlpfc --model models/cortex.pt   # a checkpoint path
    python benchmarks/real_regions.py --tta off --out out/real_regions_notta

Data: ``<set>/<section>/{image.*, spots.csv, meta.json}`` and ``label_map.json`` under
``--data`` (default ``$TOPDOWN_REAL_DEV`` or ``../shared/data/real_dev`` beside the
repository). The labels are used for **scoring only** (see that folder's README).

What it runs, by default, is the zero-label recipe a user runs on their own sections:
``td.seg.adapt`` on all of the set's images (AdaBN + confident pseudo-labels, no labels)
unless the model is adapted already (``--adapt auto``: the shipped ``olfactory_bulb`` and
``cortex_laminar`` are, to the real_dev images; adapting them once more to a batch of sections
of the same kind changed little with two or four sections and cost with one,
``benchmarks/adapt_transfer.py``; ``--adapt pseudo_label|adabn|off`` to force it), then
``td.seg.segment`` with the preset's layer prior (``--layer-prior off``) and, for upright
models, the four-turn orientation ensemble (``--orientation auto|as-is``), with the map drawn
for the set's spots (``--spot-scale off`` for the anatomical map: ``spot_diameter_um`` of
``td.seg.segment``, from the spots' diameter, which a user's data gives too; it widens only
layers too thin to cover half a spot, the bulb's mitral cell layer under ST's 100 µm spots).
``--model sim/olfactory_bulb --adapt off --layer-prior off --orientation as-is`` is the plain
simulation-only model.

Per section, in one run:

- ``ari``: adjusted Rand index between the expert labels and the region each spot's
  centre falls in (a spot off the map or on glass counts as ``outside``, its own label);
- ``accuracy``: per expert layer, the fraction of its spots whose predicted region is the
  preset class ``label_map.json`` maps it to; ``outside_fraction``: labelled spots called
  outside;
- ``kmeans_ari`` / ``kmeans_smoothed_ari``: the label-free yardstick, k-means (k = number
  of expert labels, 10 restarts, seed 0) on colour and texture features of the image disk
  under each spot and of its context (disks of 2 and 4 spot radii), and on the same
  features averaged over each spot's 6 nearest neighbours. (The context scales were
  chosen as the strongest of r, 2r, r+2r, r+2r+4r by the mean yardstick over all sections:
  MOB 0.27, 0.36, 0.36, 0.36; DLPFC 0.12, 0.20, 0.17, 0.18; a yardstick should be hard to beat.)

The PNG shows the image | the expert labels | the prediction (region map and spots).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
KMEANS_SEED = 0
NEIGHBOURS = 6
#: disk radii of the yardstick's features, in spot radii: the spot and its context
CONTEXT_SCALES = (1.0, 2.0, 4.0)


@dataclass
class Section:
    """One real section: its image, pixel size and labelled spots (image pixels)."""

    set_name: str
    name: str
    image: np.ndarray
    pixel_size_um: float
    spots: pd.DataFrame

    @property
    def xy(self) -> np.ndarray:
        return self.spots[["x_px", "y_px"]].to_numpy(float)

    @property
    def spot_diameter_um(self) -> float:
        """The spots' diameter in µm (the array's geometry, as a user's data gives it; no labels)."""
        return float(self.spots["diameter_px"].median()) * self.pixel_size_um


def default_data_dir() -> Path:
    env = os.environ.get("TOPDOWN_REAL_DEV")
    return Path(env) if env else REPO.parent / "shared" / "data" / "real_dev"


def load_sections(data: Path, set_name: str) -> list[Section]:
    """Every section of ``set_name`` under ``data``, in name order."""
    from PIL import Image

    out = []
    for folder in sorted(p for p in (data / set_name).iterdir() if p.is_dir()):
        meta = json.loads((folder / "meta.json").read_text())
        image = np.asarray(Image.open(folder / meta["image_file"]).convert("RGB"))
        spots = pd.read_csv(folder / "spots.csv")
        out.append(Section(set_name, folder.name, image, float(meta["pixel_size_um"]), spots))
    return out


def disk_features(image: np.ndarray, xy: np.ndarray, radius: float) -> np.ndarray:
    """Colour and texture of the image disk under each spot.

    Per spot: mean and standard deviation of R, G, B and mean gradient magnitude of the
    grey image inside a disk of ``radius`` px (at least 2 px) around the centre.
    """
    from scipy import ndimage

    rgb = image.astype(np.float32) / 255.0
    grey = rgb.mean(axis=2)
    grad = np.hypot(ndimage.sobel(grey, 0), ndimage.sobel(grey, 1))
    channels = np.concatenate([rgb, grad[..., None]], axis=2)
    r = max(float(radius), 2.0)
    offs = np.arange(-int(np.ceil(r)), int(np.ceil(r)) + 1)
    dy, dx = np.meshgrid(offs, offs, indexing="ij")
    keep = dy ** 2 + dx ** 2 <= r ** 2
    dy, dx = dy[keep], dx[keep]
    h, w = grey.shape
    rows = np.clip(np.round(xy[:, 1])[:, None].astype(int) + dy[None], 0, h - 1)
    cols = np.clip(np.round(xy[:, 0])[:, None].astype(int) + dx[None], 0, w - 1)
    patch = channels[rows, cols]                     # (n spots, n disk px, 4)
    return np.concatenate([patch.mean(axis=1), patch[..., :3].std(axis=1)], axis=1)


def spot_features(image: np.ndarray, xy: np.ndarray, spot_radius: float) -> np.ndarray:
    """:func:`disk_features` of each spot at every radius of :data:`CONTEXT_SCALES`, side by side."""
    return np.hstack([disk_features(image, xy, m * spot_radius) for m in CONTEXT_SCALES])


def neighbour_mean(features: np.ndarray, xy: np.ndarray, k: int = NEIGHBOURS) -> np.ndarray:
    """Each spot's features averaged with those of its ``k`` nearest spots."""
    from scipy.spatial import cKDTree

    k = min(k + 1, len(xy))
    _, idx = cKDTree(xy).query(xy, k=k)
    return features[np.atleast_2d(idx)].mean(axis=1)


def kmeans_labels(features: np.ndarray, k: int) -> np.ndarray:
    """k-means clusters of standardised ``features`` (10 restarts, fixed seed)."""
    from sklearn.cluster import KMeans

    z = (features - features.mean(0)) / (features.std(0) + 1e-9)
    return KMeans(n_clusters=k, n_init=10, random_state=KMEANS_SEED).fit_predict(z)


def layer_accuracy(truth: pd.Series, predicted: np.ndarray, label_to_class: dict[str, str]) -> dict[str, float]:
    """Per expert label: fraction of its spots predicted as the mapped preset class."""
    return {label: float(np.mean(predicted[(truth == label).to_numpy()] == cls))
            for label, cls in label_to_class.items() if (truth == label).any()}


def adapt_method(choice: str, model) -> str:
    """``--adapt`` for one model: ``auto`` is ``pseudo_label`` unless the model records an adaptation."""
    if choice != "auto":
        return choice
    return "off" if "adapt" in (getattr(model, "metrics", None) or {}) else "pseudo_label"


def score_section(section: Section, model, label_to_class: dict[str, str], *, tta: bool,
                  device: str, adapt_norm: bool = False, layer_prior: str | None = "auto",
                  orientation: str | None = "auto", spot_scale: bool = True) -> tuple[dict, object, np.ndarray]:
    """Segment one section and score it; returns the record, the RegionMap and predicted names."""
    from sklearn.metrics import adjusted_rand_score

    import topdown as td

    t0 = time.perf_counter()
    rmap = td.seg.segment(section.image, model, pixel_size_um=section.pixel_size_um, tta=tta,
                          device=device, probabilities=False, adapt_norm=adapt_norm, layer_prior=layer_prior,
                          orientation=orientation, spot_diameter_um=section.spot_diameter_um if spot_scale else None)
    seconds = time.perf_counter() - t0
    names = np.array(["outside", *rmap.classes])[rmap.lookup(section.xy)]
    truth = section.spots["label"].astype(str)
    k = truth.nunique()
    feats = spot_features(section.image, section.xy, section.spots["diameter_px"].median() / 2)
    record = {
        "set": section.set_name, "section": section.name, "n_spots": len(truth),
        "ari": float(adjusted_rand_score(truth, names)),
        "kmeans_ari": float(adjusted_rand_score(truth, kmeans_labels(feats, k))),
        "kmeans_smoothed_ari": float(adjusted_rand_score(
            truth, kmeans_labels(neighbour_mean(feats, section.xy), k))),
        "outside_fraction": float(np.mean(names == "outside")),
        "accuracy": layer_accuracy(truth, names, label_to_class),
        "predicted_counts": {str(n): int(c) for n, c in zip(*np.unique(names, return_counts=True), strict=True)},
        "segment_seconds": round(seconds, 2),
        "adapt_norm": adapt_norm, "layer_prior": rmap.meta.get("layer_prior"),
        "orientation": rmap.meta.get("orientation"),
        "spot_diameter_um": round(section.spot_diameter_um, 1) if spot_scale else None,
    }
    return record, rmap, names


def plot_section(section: Section, rmap, predicted: np.ndarray, label_to_class: dict[str, str],
                 record: dict, path: Path) -> None:
    """Image | expert labels | prediction, one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap, to_rgb
    from matplotlib.patches import Patch

    colors = {"outside": "#d9d9d9", **rmap.colors}
    names = ["outside", *rmap.classes]
    h, w = section.image.shape[:2]
    dot = max(4.0, float(section.spots["diameter_px"].median()) * 300 / max(h, w)) ** 2
    fig, axes = plt.subplots(1, 3, figsize=(16, 5.8))
    for ax in axes:
        ax.imshow(section.image)
        ax.set_axis_off()
    axes[0].set_title(f"{section.set_name} {section.name} ({section.pixel_size_um:.2f} µm/px)")
    truth_cls = section.spots["label"].map(label_to_class).fillna("outside")
    axes[1].scatter(section.xy[:, 0], section.xy[:, 1], s=dot, c=[colors.get(c, "#000") for c in truth_cls],
                    edgecolors="k", linewidths=0.3)
    axes[1].set_title("expert labels (mapped to preset classes)")
    cmap = ListedColormap([to_rgb(colors.get(n, "#000000")) for n in names])
    axes[2].imshow(rmap.labels, cmap=cmap, vmin=-0.5, vmax=len(names) - 0.5, alpha=0.55,
                   extent=(0, rmap.labels.shape[1] * rmap.downsample, rmap.labels.shape[0] * rmap.downsample, 0),
                   interpolation="nearest")
    axes[2].scatter(section.xy[:, 0], section.xy[:, 1], s=dot, c=[colors[n] for n in predicted],
                    edgecolors="k", linewidths=0.3)
    axes[2].set_xlim(0, w)
    axes[2].set_ylim(h, 0)
    axes[2].set_title(f"prediction: ARI {record['ari']:.3f} (k-means {record['kmeans_ari']:.3f})")
    fig.legend(handles=[Patch(color=colors.get(n, "#000"), label=n) for n in names], loc="lower center",
               ncol=min(len(names), 8), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def summarise(records: list[dict]) -> pd.DataFrame:
    """One row per section plus a mean row per set."""
    df = pd.DataFrame([{k: r[k] for k in ("set", "section", "ari", "kmeans_ari", "kmeans_smoothed_ari",
                                          "outside_fraction")} for r in records])
    means = df.groupby("set", as_index=False).mean(numeric_only=True).assign(section="mean")
    return pd.concat([df, means], ignore_index=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=default_data_dir(), help="the real_dev folder")
    ap.add_argument("--sets", nargs="+", default=None, help="sets to score (default: all in label_map.json)")
    ap.add_argument("--model", default=None,
                    help="shipped model name or checkpoint path (default: each set's preset)")
    ap.add_argument("--sections", nargs="+", default=None, help="only these section names")
    ap.add_argument("--tta", choices=("on", "off"), default="on")
    ap.add_argument("--adapt", choices=("auto", "pseudo_label", "adabn", "off"), default="auto",
                    help="td.seg.adapt the model to all the set's images first (unlabelled); default auto: "
                         "pseudo_label unless the model is adapted already")
    ap.add_argument("--adapt-norm", choices=("on", "off"), default="off",
                    help="AdaBN on each section's own image when segmenting (unlabelled; default off)")
    ap.add_argument("--layer-prior", choices=("auto", "off"), default="auto",
                    help="enforce the preset's laminar order (default auto)")
    ap.add_argument("--orientation", choices=("ensemble", "auto", "as-is"), default="ensemble",
                    help="upright models: combine the four quarter turns (default ensemble) or pick the one "
                         "the network is most confident of (auto)")
    ap.add_argument("--spot-scale", choices=("on", "off"), default="on", dest="spot_scale",
                    help="with the layer prior, draw the map for the set's spots (td.seg.segment's "
                         "spot_diameter_um, from spots.csv's diameter_px: the array's geometry, not its "
                         "labels): layers too thin to cover half a spot take the spots that reach them "
                         "(default: on; off: the anatomical map)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, default=REPO / "out" / "real_regions")
    args = ap.parse_args(argv)

    import topdown as td

    if not (args.data / "label_map.json").is_file():
        print(f"no label_map.json under '{args.data}'; pass --data or set TOPDOWN_REAL_DEV.", file=sys.stderr)
        return 2
    label_map = json.loads((args.data / "label_map.json").read_text())
    records = []
    for set_name in args.sets or sorted(label_map):
        if set_name not in label_map:
            print(f"unknown set '{set_name}'; label_map.json has {sorted(label_map)}.", file=sys.stderr)
            return 2
        label_to_class = label_map[set_name]["labels"]
        model = td.seg.load(args.model or label_map[set_name]["preset"])
        sections = [s for s in load_sections(args.data, set_name) if not args.sections or s.name in args.sections]
        method = adapt_method(args.adapt, model)
        if method != "off":  # as a user adapts to a batch of sections: all of the set's images, no labels
            model = td.seg.adapt(model, [s.image for s in sections], pixel_size_um=[s.pixel_size_um for s in sections],
                                 method=method, seed=0, device=args.device, progress=False)
        for section in sections:
            record, rmap, predicted = score_section(
                section, model, label_to_class, tta=args.tta == "on", device=args.device,
                adapt_norm=args.adapt_norm == "on", layer_prior=None if args.layer_prior == "off" else "auto",
                orientation=None if args.orientation == "as-is" else args.orientation,
                spot_scale=args.spot_scale == "on")
            record["model"] = str(args.model or label_map[set_name]["preset"])
            record["adapt"] = method
            plot_section(section, rmap, predicted, label_to_class, record,
                         args.out / f"{set_name}_{section.name}.png")
            records.append(record)
            acc = " ".join(f"{k}={v:.2f}" for k, v in record["accuracy"].items())
            print(f"{set_name} {section.name}: ARI {record['ari']:.3f} | k-means {record['kmeans_ari']:.3f} "
                  f"(smoothed {record['kmeans_smoothed_ari']:.3f}) | outside {record['outside_fraction']:.2f} "
                  f"| {acc}", flush=True)
    table = summarise(records)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "real_regions.json").write_text(json.dumps(records, indent=1))
    print(f"wrote {len(records)} PNGs and real_regions.json to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
