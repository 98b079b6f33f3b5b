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

from ..errors import InputError

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
            raise InputError(f"Section.cells lacks columns {missing}; give a table with {list(CELL_COLUMNS)}")
        unknown = set(self.regions) - set(self.classes)
        if unknown:
            raise InputError(f"Section.regions has names not in classes: {sorted(unknown)}; add them to classes "
                             "or drop those regions")

    def n_cells(self) -> int:
        return int(len(self.cells))

    def window(self, x_um: float, y_um: float, width_um: float, height_um: float,
               pixel_size_um: float | None = None) -> Section:
        """The same tissue seen through a smaller field of view, at another pixel size if given.

        Regions, nuclei, folds and the positions the renderer reads (lesion, glomeruli,
        bundles) are cut to the window and moved to its origin; styles are shared. Rendering
        the window at a fine pixel size gives the nuclei of one spot of a section rendered
        whole at a coarse one (the demo counts nuclei so).

        Parameters
        ----------
        x_um, y_um
            Top-left corner of the window in this section's micrometres.
        width_um, height_um
            Size of the window.
        pixel_size_um
            Pixel size of the window (default: this section's).

        Examples
        --------
        >>> import topdown as td
        >>> sec = td.sim.layout(td.sim.load_preset("olfactory_bulb"), seed=0, size=64)
        >>> zoom = sec.window(800.0, 800.0, 100.0, 100.0, pixel_size_um=0.5)
        >>> zoom.shape, bool((zoom.cells["x_um"].between(-10, 110)).all())
        ((200, 200), True)
        """
        import shapely
        from shapely.geometry import box

        if min(width_um, height_um) <= 0:
            raise InputError(f"window size must be positive, got {width_um} x {height_um} µm; give a width "
                             "and height above 0 µm")
        frame = box(x_um, y_um, x_um + width_um, y_um + height_um)

        def cut(g: BaseGeometry) -> BaseGeometry:
            return shapely.affinity.translate(g.intersection(frame), -x_um, -y_um)

        margin = float(self.cells["major_um"].max()) if len(self.cells) else 0.0
        c = self.cells
        inside = c["x_um"].between(x_um - margin, x_um + width_um + margin) & \
            c["y_um"].between(y_um - margin, y_um + height_um + margin)
        cells = c[inside].copy()
        cells["x_um"] -= x_um
        cells["y_um"] -= y_um
        styles = {}
        for name, st in self.region_style.items():
            st = dict(st or {})
            if st.get("lesion"):
                cx, cy = st["lesion"]["centre_um"]
                st["lesion"] = {**st["lesion"], "centre_um": [cx - x_um, cy - y_um]}
            styles[name] = st
        params = dict(self.params)
        if params.get("objects"):
            params["objects"] = {k: [[x - x_um, y - y_um, r] for x, y, r in v] for k, v in params["objects"].items()}
        params["window_um"] = [float(x_um), float(y_um), float(width_um), float(height_um)]
        return Section(classes=list(self.classes), regions={k: cut(g) for k, g in self.regions.items()},
                       cells=cells.reset_index(drop=True), width_um=float(width_um), height_um=float(height_um),
                       pixel_size_um=float(pixel_size_um or self.pixel_size_um), thickness_um=self.thickness_um,
                       folds=[cut(f) for f in self.folds], region_style=styles, cell_style=dict(self.cell_style),
                       params=params)

    def cell_arrays(self) -> dict[str, np.ndarray]:
        """Cells as plain numpy arrays (what renderers want)."""
        return {c: self.cells[c].to_numpy() for c in CELL_COLUMNS}
