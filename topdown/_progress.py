"""One place for progress bars, so every long loop looks and behaves the same."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress(iterable: Iterable[T] | None = None, *, total: int | None = None, desc: str = "",
             disable: bool | None = None, **kwargs) -> tqdm:
    """A tqdm progress bar; silenced when ``TOPDOWN_NO_PROGRESS=1`` or ``disable=True``."""
    if disable is None:
        disable = os.environ.get("TOPDOWN_NO_PROGRESS", "") not in ("", "0")
    return tqdm(iterable, total=total, desc=desc, disable=disable, dynamic_ncols=True, **kwargs)
