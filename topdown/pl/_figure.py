"""How a ``td.pl`` figure ends: saved atomically, shown, or its axes returned (scanpy's convention)."""

from __future__ import annotations

import os

from .._files import atomic_path, output_file


def finish(fig, axes, show: bool | None, save: str | os.PathLike | None, dpi: int = 150):
    """Save ``fig`` to ``save`` (format from its suffix, PNG by default); show it when ``show``
    (default: when matplotlib is interactive) and return ``None``, else return ``axes``."""
    import matplotlib.pyplot as plt

    if save:
        path = output_file(save)
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=path.suffix.lstrip(".") or "png")
    if show if show is not None else plt.isinteractive():
        plt.show()
        return None  # scanpy's convention: a shown figure is not returned
    return axes
