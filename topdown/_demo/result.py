"""What one run of the demo produced: the input of the report."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .study import StudyConfig, StudySample


@dataclass
class DemoResult:
    """Everything the report is made of."""

    out: Path
    config: StudyConfig
    samples: list[StudySample]
    model_info: dict
    segmentation: pd.DataFrame  # per sample: pixel accuracy, mIoU vs the true region mask
    assignment: pd.DataFrame  # per sample: spot accuracy vs the exact true region
    de: pd.DataFrame  # region_de table
    de_truth: pd.DataFrame  # per planted region: recall, FDR
    de_truth_oracle: pd.DataFrame  # the same with the true region of every spot
    nuclei_counts: pd.DataFrame | None = None  # per sample x region: nuclei in counting frames, true nuclei
    nuclei_density: pd.DataFrame | None = None  # nuclei_density_test on the counts found
    nuclei_density_true: pd.DataFrame | None = None  # the same on the true nuclei of the same frames
    nuclei_examples: dict = field(default_factory=dict)  # condition -> one counting frame, for the report
    timings: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
