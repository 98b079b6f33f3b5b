"""Overlay plot: an image with the outlines of the nuclei found in it."""

from __future__ import annotations

import os

import numpy as np

from ..errors import InputError


def _outline_rgb(image: np.ndarray, labels: np.ndarray, color: tuple[float, float, float]) -> np.ndarray:
    """The image (stretched to its robust range, grey) with nucleus outlines painted in ``color``."""
    from skimage.segmentation import find_boundaries

    a = np.asarray(image, dtype=np.float32)
    a = a[..., :3].max(axis=2) if a.ndim == 3 else a
    lo, hi = np.percentile(a[:: max(1, a.shape[0] // 512), :: max(1, a.shape[1] // 512)], [1, 99.8])
    g = np.clip((a - lo) / max(hi - lo, 1e-6), 0, 1)
    rgb = np.repeat(g[..., None], 3, axis=2)
    edge = find_boundaries(labels, mode="inner")
    width = max(1, round(max(labels.shape) / 1200))  # outlines stay visible on a large image
    if width > 1:
        from scipy import ndimage

        edge = ndimage.binary_dilation(edge, iterations=width - 1) & (labels > 0)
    rgb[edge] = color
    return rgb


def nuclei(image, result, *, ax=None, show: bool | None = None, save: str | os.PathLike | None = None,
           color: str = "#ffd21f", centroids: bool = False, title: str | None = None, dpi: int = 150):
    """Plot an image with the outlines of its nuclei (from :func:`topdown.seg.nuclei`).

    Parameters
    ----------
    image
        The segmented image (array: greyscale or RGB).
    result
        A :class:`~topdown.seg.nuclei_infer.Nuclei` result, or an instance label image of the
        image's shape.
    ax, show, save, dpi
        Matplotlib axes; show the figure (default: when neither ``ax`` nor ``save`` is
        given); write it to a file (PNG, PDF, SVG); resolution.
    color
        Outline colour.
    centroids
        Also mark each nucleus's centroid (needs a ``Nuclei`` result).
    title
        Axes title (default: the number of nuclei).

    Returns
    -------
    ``None`` when the figure is shown, else the axes.

    Examples
    --------
    >>> import topdown as td
    >>> res = td.seg.nuclei(img, pixel_size_um=0.108)  # doctest: +SKIP
    >>> td.pl.nuclei(img, res, save="overlay.png")  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgb

    from .._files import atomic_path, output_file

    labels = np.asarray(getattr(result, "labels", result))
    image = np.asarray(image)
    if labels.shape != image.shape[:2]:
        raise InputError(f"the nuclei labels are {labels.shape} but the image is {image.shape[:2]}; "
                         "plot the image that was segmented.")
    save_path = output_file(save) if save is not None else None
    own_ax = ax is None
    if own_ax:
        h, w = labels.shape
        _, ax = plt.subplots(figsize=(8, 8 * h / max(w, 1)))
    ax.imshow(_outline_rgb(image, labels, to_rgb(color)), interpolation="nearest")
    table = getattr(result, "table", None)
    if centroids and table is not None and len(table):
        ax.plot(table["x"], table["y"], ".", color="#ff3b3b", ms=2)
    n = len(table) if table is not None else int(len(np.unique(labels)) - 1)
    ax.set_title(title if title is not None else f"{n} nuclei")
    ax.set_xticks([])
    ax.set_yticks([])
    if save_path is not None:
        with atomic_path(save_path) as tmp:
            ax.figure.savefig(tmp, dpi=dpi, bbox_inches="tight", format=save_path.suffix.lstrip(".") or "png")
    if show or (show is None and save is None and own_ax):
        plt.show()
        return None
    return ax
