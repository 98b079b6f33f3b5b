"""Overlay plot: tissue image + region polygons + spots/cells coloured by region."""

from __future__ import annotations

import os

import numpy as np

from ..errors import InputError


def regions(adata, *, key: str = "regions", region_key: str = "region", library_id: str | None = None,
            image_key: str | None = None, ax=None, show: bool | None = None,
            save: str | os.PathLike | None = None, spot_size: float | None = None,
            alpha_regions: float = 0.35, alpha_spots: float = 0.9, outline: bool = True,
            legend: bool = True, title: str | None = None, dpi: int = 150):
    """Plot the tissue image with the segmented regions and the spots coloured by region.

    Everything is drawn in full-resolution pixel coordinates (those of ``obsm['spatial']``).

    Parameters
    ----------
    adata
        AnnData after :func:`topdown.tl.segment_regions` (and optionally
        :func:`topdown.tl.assign_regions`).
    key
        ``uns`` key of the segmented regions.
    region_key
        ``obs`` column of the assigned regions (skipped when absent).
    library_id
        Library to draw (default: the only one).
    image_key
        ``"hires"`` / ``"lowres"`` (default: hires if present).
    ax
        Matplotlib axes to draw into (a new figure otherwise).
    show
        Show the figure (default: only when neither ``ax`` nor ``save`` is given).
    save
        Save the figure to this path (atomically).
    spot_size
        Marker diameter in full-res pixels (default: ``spot_diameter_fullres``).
    alpha_regions, alpha_spots
        Fill opacity of the region polygons and of the spots.
    outline
        Draw region outlines.
    legend
        Show a legend of the regions.

    Returns
    -------
    The matplotlib axes.

    Examples
    --------
    >>> import topdown as td
    >>> ax = td.pl.regions(adata, save="overlay.png")  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from .._files import atomic_path, output_file
    from ..get import SpatialLayout
    from ..get import regions as stored_regions

    layout = SpatialLayout(adata)
    sp = layout.libraries
    if library_id is None:
        libs = list(adata.uns[key]["libraries"]) if key in adata.uns else list(sp)
        if len(libs) != 1:
            raise InputError(f"several (or no) libraries {libs}: pass library_id=.")
        library_id = str(libs[0])
    gdf = stored_regions(adata, key, library_id) if key in adata.uns else None
    save_path = output_file(save) if save is not None else None
    own_ax = ax is None
    if own_ax:
        _, ax = plt.subplots(figsize=(7, 7))
    if library_id in sp and sp[library_id].get("images"):
        k, img, _ = layout.image(library_id, image_key)
        h, w = (float(v) for v in layout.fullres_scale(library_id, k).convert(np.array(img.shape[:2]), "image", "fullres"))
        ax.imshow(img, extent=(0, w, h, 0), cmap="gray" if img.ndim == 2 else None)  # image pixels on full-res
    colors: dict[str, str] = {}
    if gdf is not None and len(gdf):
        colors.update(_draw_polygons(ax, gdf, alpha_regions, outline))
    if region_key in adata.obs and "spatial" in adata.obsm:
        xy = layout.xy
        if "library_id" in adata.obs and library_id in set(adata.obs["library_id"].astype(str)):
            sel = adata.obs["library_id"].astype(str).to_numpy() == library_id
        else:
            sel = np.ones(adata.n_obs, bool)
        cats = list(adata.obs[region_key].cat.categories)
        pal = list(adata.uns.get(f"{region_key}_colors", []))
        cmap = dict(zip(cats, pal, strict=False)) if len(pal) == len(cats) else {}
        codes = adata.obs[region_key].cat.codes.to_numpy()[sel]
        spot_colors = np.array([cmap.get(c, "#808080") for c in cats] + ["#808080"])[codes]
        d = spot_size
        if d is None:
            d = float((sp.get(library_id, {}).get("scalefactors") or {}).get("spot_diameter_fullres", 20.0))
        # marker size in points^2 from a diameter in data units
        ax.figure.canvas.draw_idle()
        ax.autoscale_view()
        x0, x1 = ax.get_xlim()
        if x1 == x0 or not np.isfinite([x0, x1]).all():
            x0, x1 = xy[:, 0].min() - d, xy[:, 0].max() + d
        pts_per_unit = ax.get_window_extent().width / abs(x1 - x0) * 72.0 / ax.figure.dpi
        ax.scatter(xy[sel, 0], xy[sel, 1], s=(d * pts_per_unit) ** 2, c=spot_colors,
                   alpha=alpha_spots, linewidths=0)
        colors.update({c: cmap[c] for c in cats if c in cmap})
    ax.set_aspect("equal")
    if not ax.yaxis_inverted():
        ax.invert_yaxis()
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title if title is not None else f"{library_id}: regions")
    if legend and colors:
        ax.legend(handles=[Patch(color=c, label=n) for n, c in colors.items()], loc="center left",
                  bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize=8)
    if save_path is not None:
        with atomic_path(save_path) as tmp:
            ax.figure.savefig(tmp, dpi=dpi, bbox_inches="tight", format=save_path.suffix.lstrip(".") or "png")
    if show or (show is None and save is None and own_ax):
        plt.show()
    return ax


def _draw_polygons(ax, gdf, alpha: float, outline: bool) -> dict[str, str]:
    """Fill (and outline) the region polygons of ``gdf``; returns region -> colour."""
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import PathPatch
    from matplotlib.path import Path as MplPath

    patches, facecolors = [], []
    for geom, color in zip(gdf.geometry, gdf["color"], strict=True):
        polys = getattr(geom, "geoms", [geom])
        for poly in polys:
            rings = [poly.exterior, *poly.interiors]
            verts = np.concatenate([np.asarray(r.coords) for r in rings])
            codes = np.concatenate([[MplPath.MOVETO] + [MplPath.LINETO] * (len(r.coords) - 2)
                                    + [MplPath.CLOSEPOLY] for r in rings])
            patches.append(PathPatch(MplPath(verts, codes)))
            facecolors.append(color)
    ax.add_collection(PatchCollection(patches, facecolor=facecolors, alpha=alpha, edgecolor="none"))
    if outline:
        ax.add_collection(PatchCollection(patches, facecolor="none", edgecolor=facecolors, linewidth=0.8))
    return dict(zip(gdf["region"], gdf["color"], strict=True))
