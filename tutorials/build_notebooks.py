"""Build the tutorial notebooks from the cell lists below (the source of truth).

Run ``python tutorials/build_notebooks.py`` after editing; tests/test_tutorials.py executes
every notebook with ``TOPDOWN_TUTORIAL_QUICK=1`` (small settings) and the asserts inside
the notebooks check that the outputs make sense.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent

SETUP = '''import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import topdown as td

QUICK = os.environ.get("TOPDOWN_TUTORIAL_QUICK", "0") == "1"  # small settings (CI)
WORK = Path(os.environ.get("TOPDOWN_TUTORIAL_WORK", "tutorial_work"))
WORK.mkdir(parents=True, exist_ok=True)'''

SHARED = '''# the real data that comes with the topdown repository checkout (../shared/data);
# with your own data, point this at your Space Ranger "outs" folder instead
DATA = Path(os.environ.get("TOPDOWN_SHARED_DATA", Path.cwd().parent.parent / "shared" / "data"))
if not DATA.exists():
    DATA = Path.cwd().parent / "shared" / "data"
print(DATA, DATA.exists())'''

NOTEBOOKS: dict[str, list[tuple[str, str]]] = {
    "01_simulate_your_tissue.ipynb": [
        ("md", """# 1. Describe and simulate your own tissue

topdown never asks you to label images: it **simulates** them. A tissue is described
declaratively in YAML (regions, their geometry, cell populations with density, nucleus
size, shape and stain, background texture, imaging and artefact ranges). Each frame is
laid out from a seed, rendered through **Blender Cycles** (nuclei are instanced
ellipsoids, the stroma a textured slab under a microscope-like camera), and comes with
pixel-exact region and nucleus masks."""),
        ("code", SETUP),
        ("md", "## Start from a built-in tissue"),
        ("code", '''print(td.sim.presets())
spec = td.sim.load_preset("olfactory_bulb")
print(spec.classes)
spec.to_yaml(WORK / "my_bulb.yaml")
print((WORK / "my_bulb.yaml").read_text()[:1500])'''),
        ("md", """## Edit the YAML

Here we make the granule cell layer twice as dense, programmatically (you would normally
edit the file in a text editor), and load it back; validation errors name the bad field."""),
        ("code", '''import yaml

doc = yaml.safe_load((WORK / "my_bulb.yaml").read_text())
for region in doc["regions"]:
    if region["name"] == "granule_cell_layer":
        for pop in region.get("populations", []):  # density: cells/mm², a value or a [low, high] range
            d = pop["density"]
            pop["density"] = [2 * v for v in d] if isinstance(d, list) else 2 * d
(WORK / "my_bulb.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
my_spec = td.sim.TissueSpec.from_yaml(WORK / "my_bulb.yaml")

try:  # a typo in a field value is rejected with the allowed values
    td.sim.TissueSpec.from_dict({**doc, "imaging": {**doc["imaging"], "modality": "xray"}})
except td.TopdownError as err:
    print("rejected:", err)'''),
        ("md", "## Lay out one section (no Blender) and look at its exact masks"),
        ("code", '''section = td.sim.layout(my_spec, seed=1, size=128)
labels = td.sim.region_mask(section)
nuclei = td.sim.nuclei_mask(section)
print(section.n_cells(), "nuclei;", np.unique(labels))
fig, ax = plt.subplots(1, 2, figsize=(8, 4))
ax[0].imshow(labels, cmap="tab10", interpolation="nearest"); ax[0].set_title("regions")
ax[1].imshow(nuclei > 0, cmap="gray", interpolation="nearest"); ax[1].set_title("nuclei")
plt.show()'''),
        ("md", """## Render a small dataset with Blender

`simulate` writes a **SimDataset** folder (images/, masks/, nuclei/, spec.yaml and a
manifest with every sampled parameter). It resumes where it stopped and can use several
worker processes (`workers=`) or a dask cluster (`scheduler=`)."""),
        ("code", '''n = 4 if QUICK else 16
ds = td.sim.simulate(my_spec, n=n, out=WORK / "sims_bulb", size=128, seed=7, workers=1)
image, regions, nuclei, meta = ds[0]
print(len(ds), ds.classes, meta["renderer"], meta["blender_version"])
fig, axes = plt.subplots(2, n, figsize=(2.5 * n, 5), squeeze=False)
for i in range(n):
    img, reg, _, _ = ds[i]
    axes[0, i].imshow(img); axes[1, i].imshow(reg, cmap="tab10", vmin=0, vmax=9, interpolation="nearest")
    axes[0, i].axis("off"); axes[1, i].axis("off")
plt.show()'''),
        ("md", "## The same tissue as DAPI fluorescence"),
        ("code", '''ds_dapi = td.sim.simulate(my_spec, n=2, out=WORK / "sims_bulb_dapi", size=128, modality="dapi", seed=7)
plt.imshow(ds_dapi[0][0]); plt.axis("off"); plt.show()'''),
        ("code", '''# sanity checks (run in CI)
assert len(ds) == n and ds[0][0].shape == (128, 128, 3)
assert "blender" in meta["renderer"].lower()
assert len(np.unique(ds[0][1])) >= 2
assert ds_dapi[0][0].mean() < ds[0][0].mean()  # fluorescence: dark background'''),
    ],
    "02_train_and_evaluate.ipynb": [
        ("md", """# 2. Train and evaluate a segmentation model

A compact U-Net learns the regions from simulated frames only, with augmentation aimed at
the simulation-to-real gap (stain jitter, blur, noise, gamma, elastic, flips, scale,
JPEG). Checkpoints are safetensors + JSON metadata (classes, colours, training pixel
size, spec hash, metrics), never pickle."""),
        ("code", SETUP),
        ("code", '''spec = td.sim.load_preset("olfactory_bulb")
n_train = 12 if QUICK else 200
train_ds = td.sim.simulate(spec, n=n_train, out=WORK / "sims_train", size=128, seed=0)
test_ds = td.sim.simulate(spec, n=4 if QUICK else 40, out=WORK / "sims_test", size=128, seed=999)
print(len(train_ds), len(test_ds))'''),
        ("code", '''model = td.seg.train(train_ds, out=WORK / "bulb.safetensors", epochs=2 if QUICK else 30, seed=0)
history = model.metrics.get("history", [])
print(model)
print(history[-1] if history else model.metrics)'''),
        ("md", """## Evaluate on frames with new seeds

`evaluate` scores every pixel against the exact simulated masks (IoU and Dice per region,
mIoU, pixel accuracy) and says where the errors are: the share of wrong pixels within one
pixel of a true region boundary, and the scores of the region interiors without those
bands. Mostly-boundary errors mean the regions are found and their borders are off by about
a pixel; interior errors mean whole regions are mistaken for others."""),
        ("code", '''scores = td.seg.evaluate(model, test_ds)
print("mIoU", round(scores["miou"], 3), "| pixel accuracy", round(scores["pixel_accuracy"], 3))
print("wrong pixels within 1 px of a boundary:", round(scores["errors_near_boundary"], 2),
      "| mIoU of the region interiors:", round(scores["interior"]["miou"], 3))
assert 0 <= scores["errors_near_boundary"] <= 1
scores["iou"]'''),
        ("md", """## The shipped model

Pretrained weights for every built-in tissue ship with topdown (trained with the commands
in `topdown/seg/weights/README.md`). For the olfactory bulb and the cortex, the shipped
model is the simulation-trained one adapted, without labels, to real sections; the
simulation-only model, the one to compare on simulations, ships as `kind="sim"`."""),
        ("code", '''print(td.seg.available_models(), td.seg.available_models("sim"))
if "olfactory_bulb" in td.seg.available_models("sim"):
    shipped = td.seg.load("olfactory_bulb", kind="sim")
    shipped_scores = td.seg.evaluate(shipped, test_ds)
    print("shipped simulation-only model mIoU on new frames:", round(shipped_scores["miou"], 3))'''),
        ("md", "## Segment an image and get polygons"),
        ("code", '''image, truth, _, meta = test_ds[0]
rmap = td.seg.segment(image, model, pixel_size_um=meta["pixel_size_um"])
gdf = rmap.to_geodataframe()
fig, ax = plt.subplots(1, 3, figsize=(12, 4))
ax[0].imshow(image); ax[1].imshow(truth, cmap="tab10", vmin=0, vmax=9, interpolation="nearest")
ax[2].imshow(image); gdf.boundary.plot(ax=ax[2], color=gdf["color"], linewidth=1)
for a, t in zip(ax, ["image", "truth", "segmented polygons"]):
    a.set_title(t); a.axis("off")
plt.show()
gdf[["region", "area_px"]]'''),
        ("code", '''# sanity checks (run in CI)
assert 0.0 <= scores["miou"] <= 1.0
assert rmap.labels.shape[0] > 0 and set(gdf["region"]) <= set(model.classes)
if not QUICK:
    assert scores["miou"] > 0.5'''),
    ],
    "03_annotate_visium.ipynb": [
        ("md", """# 3. Annotate a real Visium section and explore its regions

The 10x Visium adult mouse brain section (coronal, H&E) is segmented with the shipped
`mouse_brain_coronal` model, trained on Blender simulations only. Every spot gets the
region its 55 µm disk overlaps most (`obs['region']`), the area fractions
(`obsm['region_fractions']`) and a confidence.

What the shipped (CPU-trained) model gives on this section, saved by
`topdown annotate ... --overlay`:

![Visium mouse brain, regions](figures/visium_mouse_brain_overlay.png)

The section is a right hemisphere, midline on the left, dorsal up, which is how the
model (trained `upright`) expects it. Honestly:

- Right: the cortex is the whole dorsal and lateral rim, down to the ventrolateral
  corner. hippocampus_CA is an arch over the dentate gyrus, which sits inside the
  hippocampal curve; fibre tracts (pale) run between the hippocampus and the cortex,
  medially and laterally; the thalamus is below the hippocampus and the hypothalamus at
  the ventral midline. The striatum label (which in this preset includes the
  striatum-like amygdalar nuclei) is a thin strip lateral to the hippocampus. 99.7 % of
  in-tissue spots get a region; the fiducial frame and specks on the glass stay outside.
- Wrong: the thalamus reaches out to the lateral cortex, where the striatum and amygdala
  should be (the striatum strip is too thin: 24 spots). hippocampus_CA is still wider than the
  pyramidal layer, the dentate gyrus a blob rather than two thin granule lines, and no
  spot is called ventricle. Detached pieces of "tissue" that hold no in-tissue spot are
  set to outside (`drop_empty_tissue=True`, the default).
- A check that needs no expert: the spots' own expression
  (`benchmarks/visium_markers.py`). Neurogranin (`Nrgn`) is high in cortex and
  hippocampus and low in thalamus and hypothalamus; on this map it separates the spots
  called telencephalon from those called diencephalon with AUROC 0.94 (0.92-0.94 over four
  views of the section: as scanned, mirrored, white-balanced, both; mean 0.93). Myelin
  `Plp1` separates fibre tracts from cortex with AUROC 0.90 (0.70 on the white-balanced
  views). The previous model (40 µm/px)
  scored a mean of 0.86 for Nrgn over the same four views, and only 0.78-0.80 on the
  white-balanced ones; this one hardly depends on the exposure of the scan.
- The map is the mean of the model's answers for the image and its mirror image
  (test-time augmentation, `tta=True`, the default). One pass (`tta=False`) also paints a
  small patch of hypothalamus inside the dorsal cortex at the top of the section.
- `segment_regions` can first re-estimate the model's BatchNorm statistics on this image
  (AdaBN, `adapt_norm=True`, off by default). Here it raises the Nrgn AUROC to 0.97 (mean
  over the four views; 0.966-0.974) and lowers the Plp1 one to 0.71; on the previous model
  it did harm, calling much of the dorsal cortex thalamus. Try both on your data."""),
        ("code", SETUP),
        ("code", SHARED),
        ("code", '''outs = DATA / "visium_mouse_brain_v1" / "outs"
adata = td.io.read_visium(outs)
adata'''),
        ("code", '''td.tl.segment_regions(adata, "mouse_brain_coronal")
td.tl.assign_regions(adata)
adata.obs["region"].value_counts()'''),
        ("code", '''ax = td.pl.regions(adata, show=False)
ax.figure.savefig(WORK / "visium_overlay.png", dpi=150, bbox_inches="tight")
plt.show()'''),
        ("md", "## With scanpy and squidpy"),
        ("code", '''import scanpy as sc
import squidpy as sq

# this section ships only the low-resolution image (squidpy looks for "hires" by default)
sq.pl.spatial_scatter(adata, color="region", img_res_key="lowres", figsize=(5, 5))
plt.show()
# marker genes of the regions found (exploratory: spots of one section are not replicates)
counts = adata.obs["region"].value_counts()
found = [r for r, n in counts.items() if n >= 10 and r != "outside"]
markers = adata[adata.obs["region"].isin(found)].copy()
markers.obs["region"] = markers.obs["region"].cat.remove_unused_categories()
sc.pp.normalize_total(markers, target_sum=1e4)
sc.pp.log1p(markers)
if len(found) >= 2:
    sc.tl.rank_genes_groups(markers, "region", method="wilcoxon")
    sc.pl.rank_genes_groups_dotplot(markers, n_genes=3, show=False)
    plt.show()'''),
        ("code", '''td.io.write_annotated(adata, WORK / "mouse_brain_annotated.h5ad")
back = td.io.read_annotated(WORK / "mouse_brain_annotated.h5ad")
print(back)'''),
        ("code", '''# sanity checks (run in CI)
in_tissue = adata.obs["in_tissue"].astype(bool) if "in_tissue" in adata.obs else np.ones(adata.n_obs, bool)
assigned = (adata.obs.loc[in_tissue, "region"] != "outside").mean()
print(f"{assigned:.1%} of in-tissue spots got a region")
assert assigned >= 0.95
assert adata.obs["region"].nunique() >= 3
assert (back.obs["region"] == adata.obs["region"]).all()'''),
    ],
    "04_region_de.ipynb": [
        ("md", """# 4. Healthy vs. pathological, region by region, with replicates done right

Spots of one section are not independent replicates: testing per spot treats thousands
of spots from one animal as thousands of animals and floods you with false positives
(Squair et al., Nat Commun 2021). topdown sums raw counts per **sample x region**
(pseudobulk) and fits DESeq2's negative-binomial model per region (batched over regions and genes; PyDESeq2 via engine='pydeseq2')."""),
        ("code", SETUP),
        ("md", "## A simulated study with known truth: 3 vs 3 samples, planted effects in two regions"),
        ("code", '''sim = td.sim.expression_study(
    n_per_condition=3, regions=["cortex", "hippocampus_CA", "thalamus", "striatum", "fiber_tracts"],
    conditions=["healthy", "pathological"], n_spots=300 if QUICK else 1000,
    n_genes=300 if QUICK else 2000, de_regions=["cortex", "hippocampus_CA"], seed=1)
sim'''),
        ("code", '''res = td.tl.region_de(sim, condition_key="condition", sample_key="sample", reference="healthy",
                      region_key="region")
res.head()'''),
        ("code", '''called = res[res["padj"] < 0.05]
truth = {r: set(sim.var_names[sim.var[f"de_{r}"]]) for r in ["cortex", "hippocampus_CA", "thalamus"]}
for region, genes in truth.items():
    hits = set(called.loc[called["region"] == region, "gene"])
    fdr = len(hits - genes) / max(len(hits), 1)
    recall = len(hits & genes) / max(len(genes), 1)
    print(f"{region:15s} called {len(hits):4d}  recall {recall:.2f}  FDR {fdr:.2f}")'''),
        ("code", '''td.pl.region_de(res, show=False)
plt.show()
td.pl.region_de_counts(res, show=False)
plt.show()'''),
        ("md", """## One section per condition? topdown refuses, and says why

The real Visium prostate data (one normal and one cancer section) has no biological
replicates. The replicate-aware path refuses; the per-spot Wilcoxon path runs but labels
its output *exploratory*."""),
        ("code", '''pilot = sim[sim.obs["sample"].isin(["healthy_1", "pathological_1"])].copy()
try:
    td.tl.region_de(pilot, condition_key="condition", sample_key="sample", reference="healthy")
except td.TopdownError as err:
    print("refused:", err)
explore = td.tl.region_de(pilot, condition_key="condition", sample_key="sample", reference="healthy",
                          method="wilcoxon")
explore.head()'''),
        ("code", '''# sanity checks (run in CI)
assert {"region", "gene", "log2fc", "pvalue", "padj", "base_mean"} <= set(res.columns)
null_calls = called[called["region"].isin(["thalamus", "striatum", "fiber_tracts"])]
assert len(null_calls) <= 0.02 * sim.n_vars, len(null_calls)'''),
    ],
    "05_merfish_dapi.ipynb": [
        ("md", """# 5. Segment DAPI images with a fluorescence model

MERFISH, Xenium and CosMx give a DAPI (nuclear stain) image instead of H&E. topdown ships
a second model for the mouse brain, `mouse_brain_coronal_dapi`, trained only on Blender
DAPI simulations of the same preset at 16 µm/px (4 mm fields of view, held-out mIoU 0.855),
starting from the H&E brain model's weights.
At that scale single nuclei blur into nuclear density: the packed CA and dentate cell
layers shine, ventricles are dark slits, cortex is denser than thalamus. The model places a
region by what lies around it, so it wants a few mm of section, upright (dorsal up, as
`model.orientation` says): rotate a section that is not.

First a whole simulated section, whose true regions we know; then the real Vizgen MERFISH
mouse brain crop in `../shared/data` (500 x 450 µm, DAPI, 0.11 µm/px), where every
transcript gets the region under it.

MERSCOPE output folders read with `td.io.read_merscope` go through
`td.tl.segment_regions(adata, "mouse_brain_coronal_dapi")` exactly as Visium does; this
crop comes in the GiottoData "mini" layout (transcripts, cell polygons on two z planes, a
DAPI JPEG and its extent in µm, no cell-by-gene table), which `td.io.read_giotto_merscope`
reads: it counts every transcript for the cell polygon that holds it and places the image
in µm. Here we segment its image directly, to look at the map itself.

What the model gives, as saved by the code cells below (the simulated section, then the
real crop):

![Simulated DAPI section, truth and regions](figures/dapi_simulated_section.png)

![MERFISH DAPI crop, regions](figures/merfish_dapi_overlay.png)

On the whole simulated section it gets 96.8 % of the pixels right: cortex, hippocampus and
dentate gyrus, thalamus, hypothalamus, the fibre tracts around the hippocampus and most of
the striatum beside them. Its weak classes (held-out IoU) are the striatum (0.66) and the
thin fibre tracts (0.78); the rest score 0.82-0.94.

The real crop is 31 x 28 px at 16 µm/px, a tenth of the field the model learnt from. What
it says, and what we make of it:

- Right: the whole crop is tissue. A DAPI image has no glass-coloured background: glass
  and the space between sparse nuclei are both dark. When an image is large enough to
  hold a patch of glass (200 µm across) and none is found, `td.seg.segment` treats it as
  all tissue (`rmap.meta["params"]["all_tissue"]`) and gives every pixel a region, instead
  of letting the model call dark, cell-sparse tissue outside.
- Plausible: the cell-sparse top-left, left and top edges are fibre tracts (0.11 of
  0.22 mm²). Their transcripts are enriched for glial genes: Gjc3 (a connexin of
  myelinating oligodendrocytes) and Gfap (astrocytes), as white matter would be, but also
  for Myh11 (smooth muscle of vessels).
- Closer than before, name unsure: the dense vertical band of nuclei and the tissue right
  of it are cortex (0.065 mm²), with the band's upper, densest stretch hippocampus_CA
  (0.010 mm²). The cortex region now follows the band instead of spreading over the
  sparse tissue left of it. The band looks like a hippocampal cell layer: when the model
  of sessions 10-14 called it hippocampus_CA, its transcripts were enriched for Cnr1,
  Mas1, Gpr75 and Syt4, and Mas1 marks hippocampal pyramidal neurons. The CA patch here
  is enriched for interneuron genes (Gad1, Slc32a1, Erbb4, Kit, Cnr1), not pyramidal
  ones, and the cortex for receptors (Chrm4, Npy2r, Sstr1, Grm1, Grm7) that neither
  confirms nor rules out either name. We did not register the crop to an atlas, so we
  cannot say for sure.
- Probably wrong: a thalamus block in the lower middle (0.04 mm²) that holds the curved
  strand of nuclei along the bottom edge. Its transcripts are enriched for endothelial
  genes (Cldn5, Flt1, Tek, Adgrl4, Slco1a4) and the microglial C1qb: the strand is most
  likely a blood vessel, which the preset does not draw and the model names by its
  density alone.
- The models before it disagree too: session 16's (held-out 0.845) called the band and
  the sparse tissue around it cortex, with a patch of hippocampus_CA beside the band;
  session 15's (0.834) called almost all of the crop cortex, the model of sessions 10-14
  (0.735, 5-level U-Net on 2 mm crops) the band hippocampus_CA and the left half fibre
  tracts, the one before that (4 µm/px,
  512 µm fields, mIoU 0.23) the band thalamus. Five models, five readings of one 500 µm
  crop: the crop is too small for a model that places regions by what lies around them.
  On simulated whole sections the current model is right on 96.8 % of pixels, session
  16's on 96.7 %, session 15's on 96.5 %, the 5-level model on 94 %.
- With `adapt_norm=True` (re-estimate BatchNorm statistics on the image first; off by
  default) segmentation skips that here, with a warning, because a 31 x 28 px map is too
  small to estimate them from.

Use this model on whole sections or fields of several mm; on a crop this small, read its
regions as a guess from local texture."""),
        ("code", SETUP),
        ("code", SHARED),
        ("md", """## A whole simulated section

One DAPI frame of the preset, the whole section in view at exactly 16 µm/px, without
bubbles, tears or folds. Its region mask is the truth."""),
        ("code", '''model = td.seg.load("mouse_brain_coronal_dapi")
print(model)
spec = td.sim.load_preset("mouse_brain_coronal")
v = spec.variation
v.whole, v.hemisection, v.edge_cut, v.pixel_size_jitter = 1.0, 0.0, 0.0, 0.0
spec.artefacts.bubbles = spec.artefacts.tears = spec.artefacts.folds = (0.0, 0.0)
section = td.sim.simulate(spec, n=1, out=WORK / "dapi_section", size=640, pixel_size_um=16.0,
                          modality="dapi", seed=5)
image, truth, _, record = section[0]
smap = td.seg.segment(image, model, pixel_size_um=record["pixel_size_um"])
agreement = float((smap.labels == truth).mean())
print(f"{agreement:.1%} of the pixels right")

cmap = plt.matplotlib.colors.ListedColormap([model.colors[c] for c in ["outside", *model.classes]])
fig, axes = plt.subplots(1, 3, figsize=(15, 5))
axes[0].imshow(image)
axes[1].imshow(truth, cmap=cmap, vmin=0, vmax=len(model.classes), interpolation="nearest")
axes[2].imshow(smap.labels, cmap=cmap, vmin=0, vmax=len(model.classes), interpolation="nearest")
for ax, title in zip(axes, ["simulated DAPI, 16 µm/px", "true regions", "mouse_brain_coronal_dapi"]):
    ax.set_title(title)
    ax.set_axis_off()
fig.tight_layout()
fig.savefig(WORK / "dapi_simulated_section.png", dpi=80)
plt.show()
assert smap.labels.shape == truth.shape and agreement > 0.85'''),
        ("md", """## The real MERFISH crop"""),
        ("code", '''import pandas as pd

crop = DATA / "merfish_mouse_brain_mini"
adata = td.io.read_giotto_merscope(crop)  # cells x genes built from transcripts + cell polygons
lib = adata.uns["spatial"][crop.name]
dapi = lib["images"]["hires"]  # the DAPI image of z plane 0, kept whole
um_per_px = lib["scalefactors"]["microns_per_pixel"] / lib["scalefactors"]["tissue_hires_scalef"]
print(adata)
print(adata.uns["transcripts"])  # how many transcripts fall inside a cell
print(dapi.shape, f"{um_per_px:.3f} µm/px")'''),
        ("code", '''# orientation=None: segment the crop as it is (the reading discussed above). By default an upright
# model first tries the four quarter turns and keeps the one it is most confident of
# (orientation="auto"); here that turns the crop and calls the band dentate gyrus. On 500 µm crops
# of simulated sections, whose truth is known, neither is reliable: 42 % of pixels right as they
# are, 48 % with the search (36 crops).
rmap = td.seg.segment(dapi, model, pixel_size_um=um_per_px, orientation=None)
print(rmap.labels.shape, "map pixels")
regions = rmap.to_geodataframe()
regions[["region", "area_px"]].assign(area_mm2=regions["area_px"] * um_per_px**2 / 1e6)'''),
        ("md", """## Every transcript gets its region

Transcripts are in global µm; the reader's affine
(`uns['spatial'][library]['metadata']['transform']`, µm -> full-res pixels, taken from the
image's extent) maps them to image pixels. `td.tl.assign_points` looks every transcript up in
the region raster (millions per second) and counts each gene per region. With an AnnData
from `td.io.read_merscope` and `td.tl.segment_regions`, `td.tl.assign_points(adata, tx,
x="global_x", y="global_y", coords="um")` finds the regions and the µm -> pixel transform
in it."""),
        ("code", '''tx = pd.read_csv(crop / "vizgen_transcripts.gz")
# µm -> full-res pixels (from the reader), times the hires scale -> pixels of `dapi`
to_px = lib["metadata"]["transform"][:2] * lib["scalefactors"]["tissue_hires_scalef"]
tx["region"], counts = td.tl.assign_points(None, tx, regions=rmap, x="global_x", y="global_y",
                                           coords="um", transform=to_px)
counts  # regions x genes, sparse counts'''),
        ("code", '''# genes enriched in each region the model found (share of the region's transcripts vs. the crop's)
table = counts.to_df()  # regions x genes
share = table.T / table.sum(axis=1).clip(lower=1)
overall = table.sum(axis=0) / table.to_numpy().sum()
for region in share.columns:
    n = int(counts.obs.loc[region, "n_points"])
    if n < 2000:
        continue
    ratio = (share[region] + 1e-4) / (overall.reindex(share.index) + 1e-4)
    top = ratio[share[region] > 0.002].sort_values(ascending=False).head(8)
    print(f"{region:18s} {n:6d} transcripts  enriched: {', '.join(top.index)}")'''),
        ("code", '''from matplotlib.patches import Patch

fig, axes = plt.subplots(1, 2, figsize=(11, 5))
for ax in axes:
    ax.imshow(dapi, cmap="gray", vmax=np.percentile(dapi, 99.5))
    ax.set_axis_off()
regions.plot(ax=axes[1], color=regions["color"], alpha=0.35, edgecolor="white", linewidth=0.8)
axes[1].legend(handles=[Patch(color=c, label=r) for r, c in zip(regions["region"], regions["color"])],
               loc="lower left", fontsize=8)
axes[0].set_title("MERFISH DAPI, 500 x 450 µm")
axes[1].set_title("mouse_brain_coronal_dapi regions")
fig.tight_layout()
fig.savefig(WORK / "merfish_dapi_overlay.png", dpi=100)
plt.show()'''),
        ("code", '''# sanity checks (run in CI)
assert tuple(rmap.image_shape) == dapi.shape  # the map covers the image at 16 µm/px
assert adata.n_obs > 400 and adata.X.sum() == adata.uns["transcripts"]["n_in_cells"] - adata.obsm["blank_counts"].sum()
assert abs(rmap.labels.shape[0] - dapi.shape[0] * um_per_px / model.pixel_size_um) <= 1
assert rmap.meta["params"]["all_tissue"]     # no glass found in a field with room for it
assert rmap.tissue_fraction() > 0.9          # so the whole crop is tissue
assert (tx["region"] != "outside").mean() > 0.9
assert counts.X.sum() == len(tx) and (counts.obs["n_points"] == tx["region"].value_counts()[counts.obs_names]).all()
assert set(regions["region"]) <= set(model.classes)'''),
        ("md", """## Nuclei, counted per region

The image resolves single nuclei (0.11 µm/px), so the shipped nucleus model `nuclei_dapi`
can find them. Like the region model it learnt from simulated DAPI frames only (0.4 µm/px;
the image is resampled to it, so the pixel size is required); it predicts the distance to
each nucleus's edge and separates touching nuclei with a seeded watershed.

How good it is here (`benchmarks/nuclei.py`, scored against Vizgen's cell polygons, which
the model never saw: a cell counts as found when exactly one nucleus centre lies in it):
F1 0.63 on this plane (precision 0.61, recall 0.64), against 0.43 for Otsu + watershed and
0.05 for squidpy's watershed with defaults. Part of the gap is the scoring: many polygons
hold no nucleus in this focal plane, and many nuclei have no polygon.

![MERFISH DAPI crop, nuclei](figures/merfish_nuclei_overlay.png)

In the zoom (red dots: centres) touching nuclei are cut apart along their contact, and two
of the model's mistakes show: a dim crescent and a faint patch on the out-of-focus glow,
each taken for a nucleus.

With a MERSCOPE, Xenium or Visium AnnData, `td.tl.segment_nuclei(adata)` does the same from
the stored image and, after `td.tl.segment_regions`, stores the counts per region
(`td.get.nuclei_per_region(adata)`). It also counts the nuclei of every observation in
`obs['n_nuclei']`: per Visium spot, or per cell where the reader stored cell outlines (as
here), which checks the platform's cell segmentation against the nuclei (last cells)."""),
        ("code", '''nuc = td.seg.nuclei(dapi, "nuclei_dapi", pixel_size_um=um_per_px)
print(len(nuc), "nuclei; area (µm²) quartiles:", nuc.table["area_um2"].quantile([0.25, 0.5, 0.75]).round(1).tolist())
nuc.table.head()  # one row per nucleus: label, centroid (image pixels), area'''),
        ("code", '''# each nucleus gets the region under its centre; nuclei per mm² of each region
nuc.table["region"] = np.asarray(rmap.names)[rmap.lookup(nuc.table[["x", "y"]].to_numpy())]
area_mm2 = (regions.set_index("region")["area_px"] * um_per_px**2 / 1e6).rename("area_mm2")
density = nuc.table.groupby("region").size().rename("n_nuclei").to_frame().join(area_mm2, how="inner")
density["nuclei_per_mm2"] = (density["n_nuclei"] / density["area_mm2"]).round(0)
density'''),
        ("code", '''fig, axes = plt.subplots(1, 2, figsize=(12, 6.6))
td.pl.nuclei(dapi, nuc, ax=axes[0], title=f"{len(nuc)} nuclei (nuclei_dapi)")
td.pl.nuclei(dapi, nuc, ax=axes[1], centroids=True, title="zoom: 100 x 100 µm")
zoom = int(100 / um_per_px)
axes[1].set_xlim(1500, 1500 + zoom)
axes[1].set_ylim(1500 + zoom, 1500)
fig.tight_layout()
fig.savefig(WORK / "merfish_nuclei_overlay.png", dpi=80)
plt.show()'''),
        ("code", '''# sanity checks (run in CI)
assert 300 < len(nuc) < 1000, len(nuc)                    # Vizgen drew 498 cells in this plane
assert 20 < nuc.table["area_um2"].median() < 120          # mouse brain nuclei, not fragments or clumps
assert (nuc.table["region"] != "outside").mean() > 0.9
assert density["n_nuclei"].sum() == (nuc.table["region"] != "outside").sum()'''),
        ("md", """### Vizgen's cells against the nuclei

Each of Vizgen's cells should hold one nucleus. Cells with none are pieces of cells or cells
whose nucleus lies in another focal plane; cells with two or more are cells merged by the
platform, or a nucleus the model cut in two. Of the 505 cells here, 367 hold exactly one
(`benchmarks/nuclei.py` scores the same agreement on the plane's own 498 polygons)."""),
        ("code", '''td.tl.segment_nuclei(adata)  # the stored image, the same model: obs["n_nuclei"] per cell outline
per_cell = adata.obs["n_nuclei"].clip(upper=2).map({0: "none", 1: "one", 2: "two or more"})
per_cell.value_counts()'''),
        ("code", '''# sanity checks (run in CI)
assert adata.obs["n_nuclei"].sum() <= len(td.get.nuclei(adata))   # a nucleus counts for the cell it lies in
assert (adata.obs["n_nuclei"] == 1).mean() > 0.5'''),
    ],
}


def build() -> list[Path]:
    paths = []
    for name, cells in NOTEBOOKS.items():
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.cells = [nbformat.v4.new_markdown_cell(src) if kind == "md" else nbformat.v4.new_code_cell(src)
                    for kind, src in cells]
        for i, cell in enumerate(nb.cells):  # stable ids: rebuilding changes only edited cells
            cell["id"] = hashlib.sha1(f"{name}:{i}:{cell.source}".encode()).hexdigest()[:8]
        path = HERE / name
        nbformat.write(nb, path)
        paths.append(path)
    return paths


if __name__ == "__main__":
    for p in build():
        print("wrote", p)
