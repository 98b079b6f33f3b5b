"""Reading the scanpy/squidpy spatial layout of an AnnData: libraries, images, scales.

``adata.uns['spatial'][library_id]`` holds ``images`` (``hires``/``lowres`` arrays),
``scalefactors`` (``tissue_hires_scalef``, ``tissue_lowres_scalef``,
``spot_diameter_fullres``; topdown readers add ``microns_per_pixel`` = µm per full-res
pixel) and ``metadata``. ``obsm['spatial']`` is in full-resolution pixels (x, y).
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from ..errors import InputError
from ..seg.regionmap import FullresScale

#: diameter of a Visium (v1/v2) capture spot in micrometres
VISIUM_SPOT_UM = 55.0
IMAGE_PREFERENCE = ("hires", "lowres")


class SpatialLayout:
    """The spatial layout of an AnnData, read at the door of a tool and checked once.

    ``libraries`` is ``uns['spatial']`` (empty when it is missing or not a dict); the
    coordinates (:attr:`xy`) and each library's scalefactors are validated the first time
    they are asked for, with an :class:`~topdown.errors.InputError` that says how to fix
    them, and kept: a tool reads them once, whatever its helpers ask.

    Examples
    --------
    >>> import topdown as td
    >>> layout = td.get.SpatialLayout(adata)  # doctest: +SKIP
    >>> layout.scalefactors("V1")["spot_diameter_fullres"]  # doctest: +SKIP
    """

    def __init__(self, adata) -> None:
        self.adata = adata
        sp = adata.uns.get("spatial")
        self.libraries: dict = sp if isinstance(sp, dict) else {}
        self._scalefactors: dict[str, dict] = {}

    @cached_property
    def xy(self) -> np.ndarray:
        """``obsm['spatial']`` as float64 ``(n, 2)`` full-resolution pixels, validated."""
        adata = self.adata
        if "spatial" not in adata.obsm:
            raise InputError("adata.obsm['spatial'] is missing: the spot/cell coordinates are needed. "
                             "Read the data with td.io.read_visium / read_merscope / read_cells, or set "
                             "adata.obsm['spatial'] to an (n_obs, 2) array of full-resolution pixel x, y.")
        xy = np.asarray(adata.obsm["spatial"], dtype=np.float64)
        if xy.ndim != 2 or xy.shape[1] < 2:
            raise InputError(f"adata.obsm['spatial'] must be (n_obs, 2), got shape {xy.shape}.")
        xy = xy[:, :2]
        if not np.isfinite(xy).all():
            raise InputError("adata.obsm['spatial'] contains NaN or infinite coordinates; drop those "
                             "observations first (adata = adata[np.isfinite(adata.obsm['spatial']).all(1)]).")
        return xy

    def require(self) -> dict:
        """``uns['spatial']``: library id -> images, scalefactors, metadata (must be non-empty)."""
        if not self.libraries:
            raise InputError("adata.uns['spatial'] is missing or empty: no image or scalefactors. "
                             "Read the data with td.io.read_visium (Space Ranger outs) or td.io.read_cells "
                             "with an image, so that uns['spatial'][library_id] holds images and scalefactors.")
        return self.libraries

    def resolve(self, library_id: str | None) -> list[str]:
        """The library ids to work on (``library_id`` or all of them)."""
        sp = self.require()
        if library_id is None:
            return [str(k) for k in sp]
        if str(library_id) not in sp:
            raise InputError(f"library_id '{library_id}' is not in adata.uns['spatial'] "
                             f"(available: {sorted(map(str, sp))}); pass one of those.")
        return [str(library_id)]

    def scalefactors(self, library_id: str) -> dict:
        """The library's scalefactors, numbers as floats."""
        if library_id not in self._scalefactors:
            sf = self.require()[library_id].get("scalefactors")
            if not isinstance(sf, dict) or not sf:
                raise InputError(f"adata.uns['spatial']['{library_id}']['scalefactors'] is missing; it must hold "
                                 "'tissue_hires_scalef' / 'tissue_lowres_scalef' and 'spot_diameter_fullres' "
                                 "(Space Ranger's spatial/scalefactors_json.json).")
            self._scalefactors[library_id] = {
                k: (float(v) if np.isscalar(v) and not isinstance(v, str) else v) for k, v in sf.items()}
        return dict(self._scalefactors[library_id])

    def image(self, library_id: str, image_key: str | None = None) -> tuple[str, np.ndarray, float]:
        """``(key, image, scalef)``: the image (hires > lowres) and ``tissue_<key>_scalef``, image
        pixels per full-res pixel (full-res -> image: multiply; :meth:`fullres_scale` carries it)."""
        lib = self.require()[library_id]
        images = lib.get("images") or {}
        keys = [image_key] if image_key else [k for k in IMAGE_PREFERENCE if k in images] + \
            [k for k in images if k not in IMAGE_PREFERENCE]
        keys = [k for k in keys if k in images]
        if not keys:
            raise InputError(f"adata.uns['spatial']['{library_id}']['images'] has "
                             f"{'no ' + image_key + ' image' if image_key else 'no image'} "
                             f"(available: {sorted(images)}); the tissue image is needed for segmentation.")
        key = keys[0]
        scalef = self.scalefactors(library_id).get(f"tissue_{key}_scalef")
        if scalef is None:
            raise InputError(f"scalefactors of library '{library_id}' lack 'tissue_{key}_scalef', so the "
                             f"'{key}' image cannot be placed on the spot coordinates; add it.")
        return key, np.asarray(images[key]), float(scalef)

    def fullres_scale(self, library_id: str, image_key: str | None = None) -> FullresScale:
        """One full-res pixel in pixels of the image :meth:`image` picks (``tissue_<key>_scalef``)
        and in µm (:meth:`fullres_um_per_px`, ``None`` when unknown)."""
        _, _, scalef = self.image(library_id, image_key)
        return FullresScale(image=scalef, um=self.fullres_um_per_px(library_id))

    def fullres_um_per_px(self, library_id: str) -> float | None:
        """Micrometres per full-resolution pixel (``microns_per_pixel`` or the 55 µm Visium spot)."""
        sf = self.scalefactors(library_id)
        if sf.get("microns_per_pixel"):
            return float(sf["microns_per_pixel"])
        if sf.get("spot_diameter_fullres"):
            return VISIUM_SPOT_UM / float(sf["spot_diameter_fullres"])
        return None

    def technology(self, library_id: str) -> str:
        """``metadata['technology']``, else ``"visium"`` when spots have a diameter, else ``"cells"``."""
        lib = self.require()[library_id]
        meta = lib.get("metadata") or {}
        return str(meta.get("technology", "visium" if "spot_diameter_fullres" in
                            (lib.get("scalefactors") or {}) else "cells"))


def spatial_coords(adata) -> np.ndarray:
    """``obsm['spatial']`` as float64 (n, 2), validated."""
    return SpatialLayout(adata).xy


def library_column(adata, library_key: str) -> np.ndarray:
    """``obs[library_key]`` as strings: the library of each observation (checked to exist)."""
    if library_key not in adata.obs:
        raise InputError(f"library_key '{library_key}' is not a column of adata.obs "
                         f"(columns: {list(adata.obs.columns)[:20]}).")
    return adata.obs[library_key].astype(str).to_numpy()


def spatial_libraries(adata) -> dict:
    """``uns['spatial']`` (checked to be a non-empty dict)."""
    return SpatialLayout(adata).require()


def resolve_libraries(adata, library_id: str | None) -> list[str]:
    """The library ids to work on (``library_id`` or all of them)."""
    return SpatialLayout(adata).resolve(library_id)


def scalefactors(adata, library_id: str) -> dict:
    """The library's scalefactors, numbers as floats."""
    return SpatialLayout(adata).scalefactors(library_id)


def pick_image(adata, library_id: str, image_key: str | None = None) -> tuple[str, np.ndarray, float]:
    """``(key, image, scalef)``: the image (hires > lowres) and ``tissue_<key>_scalef``, image pixels
    per full-res pixel (full-res -> image: multiply; ``SpatialLayout.fullres_scale`` carries it)."""
    return SpatialLayout(adata).image(library_id, image_key)


def fullres_um_per_px(adata, library_id: str) -> float | None:
    """Micrometres per full-resolution pixel (from ``microns_per_pixel`` or the 55 µm Visium spot)."""
    return SpatialLayout(adata).fullres_um_per_px(library_id)


def technology(adata, library_id: str) -> str:
    """The library's technology (``metadata['technology']``, else guessed from the scalefactors)."""
    return SpatialLayout(adata).technology(library_id)
