"""Segment the tissue image held in an AnnData into anatomical regions."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from .._version import __version__
from ..errors import InputError
from ..get import SpatialLayout, StoredRegions, library_column, store_entry
from ..seg.regionmap import RegionMap


def _segment_fn():
    """``topdown.seg.infer.segment`` (imported lazily: it pulls in torch)."""
    from ..seg.infer import segment

    return segment


def _model_provenance(model, rmap: RegionMap) -> dict[str, Any]:
    prov: dict[str, Any] = {}
    if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__"):
        prov["model_argument"] = str(model)
    for attr in ("name", "spec_hash", "pixel_size_um", "modality"):
        val = getattr(model, attr, None)
        if val is not None and not callable(val):
            prov[f"model_{attr}" if attr != "name" else "model_name"] = val
    for k, v in (rmap.meta or {}).items():
        prov.setdefault(str(k), v)
    if not prov.get("weights_sha256") and isinstance(model, str):  # segment_fn left it unknown
        from pathlib import Path

        p = Path(model)
        if p.is_file():
            prov["weights_sha256"] = hashlib.sha256(p.read_bytes()).hexdigest()
    prov["topdown_version"] = __version__
    return prov


def _library_points(layout: SpatialLayout, lib: str, obs_libraries: np.ndarray | None) -> np.ndarray | None:
    """Full-res ``(x, y)`` of library ``lib``'s spots under tissue / cells (``None``: cannot tell).

    ``obs_libraries`` is each observation's library (``obs[library_key]``), or ``None``:
    then every observation belongs to ``lib`` if it is the only library, else it cannot be told.
    """
    adata = layout.adata
    if "spatial" not in adata.obsm or adata.n_obs == 0:
        return None
    if obs_libraries is not None:
        mine = obs_libraries == lib
    elif len(layout.require()) == 1:
        mine = np.ones(adata.n_obs, dtype=bool)
    else:
        return None
    if "in_tissue" in adata.obs:
        mine &= adata.obs["in_tissue"].to_numpy().astype(int) == 1
    return layout.xy[mine] if mine.any() else None


def segment_regions(adata, model, library_id: str | None = None, key_added: str = "regions", *,
                    image_key: str | None = None, pixel_size_um: float | None = None,
                    adapt_norm: bool = False, drop_empty_tissue: bool = True, library_key: str | None = None,
                    copy: bool = False, **segment_kwargs):
    """Segment the tissue image of each library into anatomical regions.

    The image in ``adata.uns['spatial'][library_id]['images']`` (``hires`` preferred over
    ``lowres``) is segmented at its real pixel size: µm per full-res pixel comes from
    ``scalefactors['microns_per_pixel']`` (MERSCOPE / generic readers) or from the 55 µm
    Visium spot (``spot_diameter_fullres``), divided by ``tissue_<key>_scalef``. The image is
    handed to :func:`topdown.seg.segment` as stored, which turns it into uint8 RGB by the
    package's one rule (:func:`topdown._image.to_uint8`; transparent pixels onto the model's
    glass colour).

    Parameters
    ----------
    adata
        AnnData read by :func:`topdown.io.read_visium`, ``read_merscope`` or ``read_cells``
        (or by scanpy/squidpy).
    model
        A :class:`~topdown.seg.SegModel`, a shipped model name, a checkpoint path, or an
        already computed :class:`~topdown.seg.RegionMap` of that image.
    library_id
        Library to segment; ``None`` segments every library in ``uns['spatial']``.
    key_added
        ``uns`` key receiving the regions.
    image_key
        ``"hires"`` or ``"lowres"`` to force an image.
    pixel_size_um
        µm per *image* pixel, overriding the value derived from the scalefactors.
    adapt_norm
        Re-estimate the model's BatchNorm statistics on this image before segmenting
        (AdaBN; see :func:`topdown.seg.segment`). Off by default, as its effect depends on
        the model and the image (``topdown/seg/weights/README.md``): compare both.
    drop_empty_tissue
        Set pieces of detected tissue that hold none of the library's spots or cells to
        ``outside`` (Visium fiducial marks, debris; see
        :meth:`~topdown.seg.RegionMap.keep_tissue_at`). The points are ``obsm['spatial']``,
        only spots with ``obs['in_tissue'] == 1`` where that column exists. With several
        libraries in ``uns['spatial']`` this needs ``library_key``; without it nothing is
        dropped.
    library_key
        ``obs`` column naming each observation's library (several sections in one AnnData).
    copy
        Return a modified copy instead of changing ``adata`` in place.
    **segment_kwargs
        Passed to :func:`topdown.seg.segment`, e.g. ``tta=False`` (one network pass per
        tile instead of averaging it with its mirror image), ``tile=``, or
        ``spot_diameter_um=100`` to draw a layered tissue's map for Spatial Transcriptomics
        spots (layers too thin to cover half a spot, the bulb's mitral cell layer, take the
        spots that reach them); recorded in the provenance.

    Returns
    -------
    ``None`` (or the copy). Sets ``adata.uns[key_added]['libraries'][library_id]`` with the
    region polygons as a GeoJSON string in full-res pixel coordinates, ``classes``,
    ``colors``, the label raster and max-probability raster at map resolution with
    ``scale_to_fullres``, and ``provenance`` (model name, weights hash, topdown version,
    parameters). Nothing is changed if an error is raised.

    Examples
    --------
    >>> import topdown as td
    >>> adata = td.io.read_visium("outs")  # doctest: +SKIP
    >>> td.tl.segment_regions(adata, "mouse_brain_coronal")  # doctest: +SKIP
    >>> adata.uns["regions"]["classes"]  # doctest: +SKIP
    """
    layout = SpatialLayout(adata)  # the spatial layout, read and checked once
    libs = layout.resolve(library_id)
    obs_libraries = library_column(adata, library_key) if drop_empty_tissue and library_key is not None else None
    new_store = adata.uns.get(key_added)
    for lib in libs:
        key, image, _ = layout.image(lib, image_key)
        fullres = layout.fullres_scale(lib, key)  # one full-res pixel in image pixels and µm
        if pixel_size_um is not None:
            img_um = float(pixel_size_um)
        else:
            if fullres.um is None:
                raise InputError(f"cannot tell the pixel size of library '{lib}': its scalefactors have "
                                 "neither 'microns_per_pixel' nor 'spot_diameter_fullres'; pass "
                                 "pixel_size_um= (µm per image pixel).")
            img_um = fullres.size("um", of="image")
        if isinstance(model, RegionMap):
            rmap = model
        else:
            rmap = _segment_fn()(image, model, pixel_size_um=img_um, adapt_norm=adapt_norm,
                                 **segment_kwargs)
        if tuple(rmap.image_shape or ()) and tuple(rmap.image_shape) != tuple(image.shape[:2]):
            raise InputError(f"the region map covers an image of shape {tuple(rmap.image_shape)} but the "
                             f"'{key}' image of library '{lib}' is {tuple(image.shape[:2])}; segment that image.")
        if drop_empty_tissue:
            points = _library_points(layout, lib, obs_libraries)
            if points is not None:
                rmap = rmap.keep_tissue_at(fullres.convert(points, "fullres", "image"))
        prov = _model_provenance(model, rmap)
        prov["parameters"] = {"library_id": lib, "image_key": key, "image_pixel_size_um": img_um,
                              "scalef": fullres.image, "adapt_norm": bool(adapt_norm),
                              "drop_empty_tissue": bool(drop_empty_tissue), **{k: v for k, v in segment_kwargs.items()
                                                   if isinstance(v, (int, float, str, bool))}}
        stored = StoredRegions.from_regionmap(rmap, fullres, image_key=key, provenance=prov)
        new_store = store_entry(new_store, lib, stored)
    out = adata.copy() if copy else adata
    out.uns[key_added] = new_store
    return out if copy else None
