"""The renderer-free description of one simulated tissue section.

A :class:`Section` is what the layout step produces from a :class:`~topdown.sim.TissueSpec`
and a seed, and what both the Blender renderer and the mask rasteriser consume: the
image and its ground truth come from the same geometry, so the masks are exact whatever
the renderer does.

Coordinates
-----------
Micrometres, origin at the top-left corner of the field of view, ``x`` to the right,
``y`` downwards (image convention). Pixel ``(row, col)`` covers
``[col*px, (col+1)*px) x [row*px, (row+1)*px)`` with ``px = pixel_size_um``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from shapely.geometry.base import BaseGeometry

#: Columns of :attr:`Section.cells`, in order.
CELL_COLUMNS = (
    "x_um",  # nucleus centre
    "y_um",
    "z_um",  # depth inside the section, 0 (top, towards the objective) .. thickness_um
    "major_um",  # nucleus diameter along its long axis
    "minor_um",  # nucleus diameter along its short axis
    "angle_rad",  # orientation of the long axis, counter-clockwise from +x in image space
    "cell_type",  # population name from the spec
    "region",  # region (class) name the nucleus lies in
    "stain",  # relative stain density / brightness, ~1.0 typical
    "layer",  # 0 = section, 1 = folded-over flap lying on top
)


@dataclass
class Section:
    """One simulated tissue section: region geometry, nuclei and sampled parameters.

    Attributes
    ----------
    classes
        Region class names. Label ``k`` in masks means ``classes[k - 1]``; label 0 is
        outside the tissue (glass).
    regions
        Class name -> (Multi)Polygon in micrometres. Regions do not overlap; their union
        is the tissue. Tears are already cut out. Missing or empty geometry is allowed
        for classes absent from this frame.
    cells
        One row per nucleus, columns :data:`CELL_COLUMNS`.
    width_um, height_um
        Size of the field of view.
    pixel_size_um
        Micrometres per pixel of the rendered image and the masks.
    thickness_um
        Section thickness (nuclei have ``0 <= z_um <= thickness_um``).
    folds
        Areas (µm) where the tissue lies doubled (a fold); rendered with twice the stain.
    region_style
        Class name -> background (stroma / neuropil) appearance, e.g.
        ``{"eosin": 0.55, "texture": "fibres", "fibre_angle_rad": 0.3, "autofluorescence": 0.05}``.
    cell_style
        Cell type -> nucleus appearance, e.g. ``{"hematoxylin": 0.9, "dapi": 1.0, "chromatin": 0.4}``.
    params
        Every sampled parameter (JSON-serialisable), recorded in the dataset manifest.
    """

    classes: list[str]
    regions: dict[str, BaseGeometry]
    cells: pd.DataFrame
    width_um: float
    height_um: float
    pixel_size_um: float
    thickness_um: float = 5.0
    folds: list[BaseGeometry] = field(default_factory=list)
    region_style: dict[str, dict[str, Any]] = field(default_factory=dict)
    cell_style: dict[str, dict[str, Any]] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)`` in pixels of the image and masks."""
        return (int(round(self.height_um / self.pixel_size_um)),
                int(round(self.width_um / self.pixel_size_um)))

    def label_of(self, name: str) -> int:
        """Mask label of region ``name`` (1-based; 0 is outside the tissue)."""
        return self.classes.index(name) + 1

    def __post_init__(self) -> None:
        missing = [c for c in CELL_COLUMNS if c not in self.cells.columns]
        if missing:
            raise ValueError(f"Section.cells lacks columns {missing}")
        unknown = set(self.regions) - set(self.classes)
        if unknown:
            raise ValueError(f"Section.regions has names not in classes: {sorted(unknown)}")

    def n_cells(self) -> int:
        return int(len(self.cells))

    def cell_arrays(self) -> dict[str, np.ndarray]:
        """Cells as plain numpy arrays (what renderers want)."""
        return {c: self.cells[c].to_numpy() for c in CELL_COLUMNS}
