"""A synthetic healthy-vs-pathological Visium study rendered with Blender.

Each sample is one simulated section of a preset (by default ``mouse_brain_coronal``):
the image is rendered through Blender Cycles, spots lie on a hexagonal Visium grid, each
spot's true region comes exactly from the section's polygons, and counts are simulated
with :func:`topdown.sim.expression` (negative binomial, sample random effects, planted
condition effects in chosen regions, cell loss in the pathological sections).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import anndata as ad
import numpy as np
import pandas as pd

from .._progress import progress
from ..sim.section import Section
from ..sim.spots import VISIUM_SPOT_DIAMETER_UM, spot_region_fractions, spot_truth, visium_grid

HEALTHY, PATHOLOGICAL = "healthy", "pathological"
#: mean cells under a 55 µm Visium spot in mouse brain (about 1-10; Visium documentation)
CELLS_PER_SPOT = 8.0


@dataclass
class StudyConfig:
    """Size of the demo study (``quick`` makes everything smaller)."""

    preset: str = "mouse_brain_coronal"
    n_per_condition: int = 3
    size: int = 320
    pixel_size_um: float | None = None
    n_genes: int = 2000
    de_regions: tuple[str, ...] = ("hippocampus_CA", "cortex")
    frac_de: float = 0.05
    seed: int = 0
    samples: int | None = None  # Cycles samples per pixel (None: renderer default)
    whole_sections: bool = True  # image whole hemisections on glass, as on a Visium slide
    # cell counts (topdown._demo.nuclei): counting frames per region, rendered at 0.4 µm/px
    nuclei_regions: tuple[str, ...] = ("hippocampus_CA", "cortex", "thalamus")
    nuclei_frames: int = 16  # frames per sample and region (a systematic random grid)
    nuclei_frame_px: int = 256  # frame side in pixels at 0.4 µm/px (102 µm)

    @classmethod
    def quick(cls, **kwargs) -> StudyConfig:
        return cls(**{"size": 256, "n_genes": 500, "nuclei_frames": 9, **kwargs})


@dataclass
class StudySample:
    """One simulated section with its image, truth and spot-level AnnData."""

    name: str
    condition: str
    section: Section
    image: np.ndarray
    truth_mask: np.ndarray
    adata: ad.AnnData
    record: dict = field(default_factory=dict)


def _sample_seed(config: StudyConfig, k: int) -> int:
    return int(config.seed) * 1000 + 17 * k + 1


def _spot_obs(section: Section, name: str, condition: str) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    xy = visium_grid(section.shape, section.pixel_size_um)
    frac = spot_region_fractions(section, xy)
    truth = spot_truth(frac)
    keep = (truth != "outside").to_numpy()  # like Space Ranger's in_tissue spots
    xy, frac, truth = xy[keep], frac[keep].reset_index(drop=True), truth[keep].reset_index(drop=True)
    lesion = section.params.get("lesion") or {}
    in_lesion = np.zeros(len(xy), dtype=bool)
    if lesion:  # spot centres inside the rendered lesion disk
        cx, cy = lesion["centre_um"]
        in_lesion = np.hypot(xy[:, 0] * section.pixel_size_um - cx,
                             xy[:, 1] * section.pixel_size_um - cy) <= lesion["radius_um"]
    obs = pd.DataFrame({
        "sample": name, "condition": condition, "region_true": truth.to_numpy(),
        "in_tissue": 1, "in_lesion": in_lesion,
    })
    obs.index = [f"{name}_spot{i:05d}" for i in range(len(obs))]
    frac.index = obs.index
    return obs, xy, frac


def build_study(config: StudyConfig | None = None) -> list[StudySample]:
    """Render the sections and simulate spot counts for every sample of the study."""
    from ..sim.expression import expression
    from ..sim.layout import layout
    from ..sim.presets import load_preset
    from ..sim.simulate import render_frame

    config = config or StudyConfig()
    spec = load_preset(config.preset)
    if config.whole_sections:  # a Visium capture area holds a whole (hemi)section, not a random crop
        spec = dataclasses.replace(spec, variation=dataclasses.replace(
            spec.variation, whole=1.0, hemisection=1.0, edge_cut=0.0, pixel_size_jitter=0.0))
    px = float(config.pixel_size_um or spec.imaging.pixel_size_um)
    plan = [(f"{cond}_{k + 1}", cond) for cond in (HEALTHY, PATHOLOGICAL) for k in range(config.n_per_condition)]
    rendered = []
    for k, (name, cond) in enumerate(progress(plan, desc="render sections (Blender)")):
        seed = _sample_seed(config, k)
        section = layout(spec, seed, size=config.size, pixel_size_um=px, modality="he", condition=cond)
        frame = render_frame(spec, section, k, seed, modality="he", samples=config.samples)
        obs, xy, frac = _spot_obs(section, name, cond)
        rendered.append((name, cond, section, frame, obs, xy, frac))

    all_obs = pd.concat([r[4] for r in rendered])
    all_obs["region_true"] = pd.Categorical(all_obs["region_true"], categories=list(spec.classes))
    # the counts carry the same anatomy change as the images: the sections' mean cell loss
    # in its region, and the focal lesion where spots overlap it
    losses = [r[2].params["cell_loss"] for r in rendered if r[2].params.get("cell_loss")]
    cell_loss = ({losses[0]["region"]: float(np.mean([c["fraction"] for c in losses]))} if losses else None)
    counts = expression(all_obs, region_key="region_true", sample_key="sample", condition_key="condition",
                        reference=HEALTHY, n_genes=config.n_genes, de_regions=list(config.de_regions),
                        frac_de=config.frac_de, cells_per_spot=CELLS_PER_SPOT, cell_loss=cell_loss,
                        lesion_key="in_lesion", seed=config.seed)
    samples = []
    for name, cond, section, frame, obs, xy, frac in rendered:
        sub = counts[counts.obs["sample"] == name].copy()
        pos = obs.index.get_indexer(sub.obs_names)
        sub.obsm["spatial"] = xy[pos]
        sub.obsm["region_fractions_true"] = frac.iloc[pos].to_numpy()
        sub.uns["region_fractions_true_columns"] = list(frac.columns)
        sub.uns["spatial"] = {name: {
            "images": {"hires": frame["image"]},
            "scalefactors": {"tissue_hires_scalef": 1.0,
                             "spot_diameter_fullres": VISIUM_SPOT_DIAMETER_UM / section.pixel_size_um,
                             "microns_per_pixel": float(section.pixel_size_um)},
            "metadata": {"source": f"topdown demo: {config.preset} simulated with Blender", "condition": cond},
        }}
        samples.append(StudySample(name, cond, section, frame["image"], frame["regions"], sub, frame["record"]))
    return samples
