"""Segment any image: pixel-size normalisation, tissue detection, tiled inference.

The image is resampled tile by tile to the model's µm/px, run through the network in
overlapping tiles whose softmax outputs are blended with Gaussian weights (nnU-Net
style), and accumulated in a rolling band one tile high at the model's resolution,
finalised in column blocks: peak memory is the network's activations for one tile, the
band (``classes x tile x map width`` float32) and the outputs (labels, and float16
probabilities if requested), never the full-resolution image.

Each tile is also run mirrored (test-time augmentation, on by default): the softmax of the
tile and of a mirror image the model was trained to treat alike (see :func:`tta_flips`)
are averaged: the map depends less on which way round the section was mounted, and
held-out mIoU rises a little (``segment(tta=...)``).

No connected-component clean-up is done: labels are the blended argmax, vetoed to 0
(outside) where the thumbnail tissue detector sees empty glass, and a region where it sees
tissue unless the model is confident of ``outside``; in a field the detector finds all
tissue (no glass though there was room for it, e.g. a DAPI crop inside a section) every
pixel is a region.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from functools import lru_cache

import numpy as np
import torch

from ..errors import InputError
from .image import ImageSource, open_image
from .regionmap import ImageScale, RegionMap
from .resample import map_shape, pixel_size_from_scalefactors, resample_tile, visium_pixel_size_for
from .tissue import tissue_mask

#: on detected tissue, ``outside`` needs at least this probability (else the best region wins)
OUTSIDE_CONFIDENT = 0.8
#: ``adapt_norm`` needs at least this many model pixels a side: a smaller map reaches the
#: network's deepest BatchNorm layers as a few pixels, too few to estimate statistics from
ADAPT_MIN_PX = 64


@lru_cache(maxsize=8)
def _gaussian(h: int, w: int) -> np.ndarray:
    def g(n: int) -> np.ndarray:
        x = np.arange(n) - (n - 1) / 2
        return np.exp(-0.5 * (x / max(n / 8.0, 1.0)) ** 2)

    wgt = np.outer(g(h), g(w)).astype(np.float32)
    wgt /= wgt.max()
    return np.maximum(wgt, 1e-3)


def tta_flips(model) -> tuple[tuple[bool, bool], ...]:
    """The views test-time augmentation averages, as ``(flip rows, flip columns)`` pairs.

    Two passes, the image and one mirror image the model saw in training: left-right for an
    upright model (dorsal up, mirrored either way), the half turn (both axes flipped) for a
    free-orientation one; none without flips. Why two and not all four mirror images:
    ``topdown/seg/weights/README.md``.

    Examples
    --------
    >>> import topdown as td
    >>> tta_flips(td.seg.load("mouse_brain_coronal"))  # doctest: +SKIP
    ((False, False), (False, True))
    """
    augment = model.train_config.get("augment") or {}
    if not augment.get("flip", True):
        return ((False, False),)
    if model.orientation == "upright":
        return ((False, False), (False, True))
    return ((False, False), (True, True))


def class_probabilities(model, x: torch.Tensor, tta: bool = False) -> torch.Tensor:
    """Softmax ``(B, n_labels, H, W)`` of the batch ``x``; with ``tta`` the mean over :func:`tta_flips`."""
    flips = tta_flips(model) if tta else ((False, False),)
    total = None
    for flip_rows, flip_cols in flips:
        dims = [d for d, flip in ((2, flip_rows), (3, flip_cols)) if flip]
        p = torch.softmax(model(x.flip(dims) if dims else x).float(), dim=1)
        p = p.flip(dims) if dims else p
        total = p if total is None else total + p
    return total / len(flips)


#: map columns finalised at a time (bounds the temporaries of the blend, argmax and veto)
_FINALISE_COLS = 1024


def _finalise(acc: np.ndarray, wsum: np.ndarray, ldtype, tissue: np.ndarray | None, tissue_step: float,
              r0: int, c0: int, outside_min: float = OUTSIDE_CONFIDENT,
              label_map: bool = True) -> tuple[np.ndarray | None, np.ndarray]:
    """Labels and blended probabilities of one finished block of the band.

    ``acc`` ``(C, h, w)`` weighted probability sums and ``wsum`` ``(h, w)`` weights of map
    rows ``r0..`` and columns ``c0..``; glass in the ``tissue`` thumbnail is forced to 0, and
    on its tissue ``outside`` needs probability ``outside_min`` (``inf``: never). Without
    ``label_map`` (never asked for with a ``tissue`` thumbnail: :func:`predict` keeps the
    labels then) the labels are not computed (``None``), saving an argmax over every class.
    """
    band = acc / wsum[None]
    if not label_map:
        return None, band
    lab = band.argmax(axis=0).astype(ldtype)
    if tissue is not None:
        h, w = wsum.shape
        rr = np.minimum(((np.arange(r0, r0 + h) + 0.5) / tissue_step).astype(int), tissue.shape[0] - 1)
        cc = np.minimum(((np.arange(c0, c0 + w) + 0.5) / tissue_step).astype(int), tissue.shape[1] - 1)
        glass = ~tissue[rr][:, cc]
        # on detected tissue the label is the most likely *region* unless the model is
        # confident it is outside (fiducial dots, debris look like tissue to the detector)
        unsure = ~glass & (band[0] < outside_min)
        lab[unsure] = band[1:, unsure].argmax(axis=0) + 1
        lab[glass] = 0
        band[:, glass] = 0.0
        band[0, glass] = 1.0
    return lab, band


def require_flag(name: str, value) -> None:
    """Refuse anything but ``True`` / ``False`` for an on/off option (``tta=1`` is a typo, not a choice)."""
    if not isinstance(value, (bool, np.bool_)):
        raise InputError(f"{name} must be True or False, got {value!r}")


def balanced_tile(size: int, tile: int, overlap: int, multiple: int = 1) -> int:
    """The smallest tile side (a multiple of ``multiple``, at most ``tile``) that covers ``size``
    pixels with as few tiles as ``tile`` needs: tiles of ``tile`` px leave the last one mostly
    over the one before (4096 px in 1024-px tiles overlapping 32: five tiles, the last 928 px
    over the fourth), while five tiles of 848 px cover them with the same overlap and 31 %
    fewer pixels a side to compute.

    Examples
    --------
    >>> balanced_tile(4096, 1024, 32, 16)
    848
    >>> balanced_tile(900, 1024, 32, 16), balanced_tile(2048, 1024, 32, 16)  # one tile; three of 704
    (1024, 704)
    >>> balanced_tile(300, 64, 64, 16)  # overlap clamped to half a tile
    64
    """
    if size <= tile:
        return tile
    overlap = min(max(0, int(overlap)), tile // 2)  # as predict() clamps it
    n = -(-(size - overlap) // (tile - overlap))
    side = -(-(size + (n - 1) * overlap) // n)
    return min(tile, -(-side // multiple) * multiple)


def _starts(n: int, tile: int, step: int) -> list[int]:
    if n <= tile:
        return [0]
    s = list(range(0, n - tile, step))
    return [*s, n - tile]


def _image_scale(image, src: ImageSource, model, pixel_size_um, scalefactors, image_kind) -> ImageScale:
    """One image pixel in map pixels (µm per image pixel over the model's µm per map pixel;
    1 when either is unknown or ``"model"``) and in µm (``None`` when unknown)."""
    if isinstance(pixel_size_um, str):
        if pixel_size_um != "model":
            raise InputError(f"pixel_size_um must be a number or 'model', got {pixel_size_um!r}")
        return ImageScale(map=1.0, um=model.pixel_size_um)
    if pixel_size_um is None and scalefactors is not None:
        pixel_size_um = pixel_size_from_scalefactors(scalefactors, image_kind or "lowres")
    if pixel_size_um is None and isinstance(image, (str, os.PathLike)):
        pixel_size_um = visium_pixel_size_for(image)
    if model.pixel_size_um is None:
        return ImageScale(map=1.0, um=pixel_size_um)
    if pixel_size_um is None:
        raise InputError(
            f"the pixel size of {src.name} is unknown and the model works at {model.pixel_size_um:g} µm/px: "
            "pass pixel_size_um=<µm per pixel> (CLI: --pixel-size UM), or for a Visium image "
            "scalefactors='spatial/scalefactors_json.json' with image_kind='lowres'|'hires' "
            "(uses spot_diameter_fullres and tissue_lowres_scalef/tissue_hires_scalef; CLI: --scalefactors), "
            "or pixel_size_um='model' if the image already has the model's pixel size.")
    pixel_size_um = float(pixel_size_um)
    if not np.isfinite(pixel_size_um) or pixel_size_um <= 0:
        raise InputError(f"pixel_size_um must be a positive number, got {pixel_size_um}")
    if not 1e-3 <= pixel_size_um <= 1e4:  # beyond any microscope or array; tiny values overflow the maps
        raise InputError(f"pixel_size_um={pixel_size_um:g} is not a plausible pixel size; give micrometres per "
                         "pixel between 0.001 and 10000 (e.g. 0.5 for a 20x slide, 17 for a Visium lowres image).")
    return ImageScale(map=pixel_size_um / model.pixel_size_um, um=pixel_size_um)


def predict(model, src: ImageSource, factor: float, *, tile: int = 512, overlap: int = 64,
            batch_size: int = 1, device: str = "cpu", probabilities: bool = True,
            tissue: np.ndarray | None = None, tissue_step: float = 1.0, tta: bool = False,
            outside_min: float = OUTSIDE_CONFIDENT, precision: str = "fp32",
            progress_desc: str | None = None, on_band=None,
            label_map: bool = True) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Blended tiled prediction at the model's resolution.

    ``factor`` is map pixels per image pixel (:class:`~topdown.seg.regionmap.ImageScale`
    ``.map``). Returns ``labels`` (uint8/uint16, map shape) and ``probabilities`` (float16,
    ``(n_labels, h, w)``) or ``None``. ``tissue`` is an optional boolean thumbnail with
    ``tissue_step`` map pixels per thumbnail pixel (a thumbnail pixel is its stride in image
    pixels: ``ImageScale.convert(stride, "image", "map")``); map pixels it marks as glass get label 0,
    those it marks as tissue label 0 only with ``outside`` probability >= ``outside_min``.
    ``tta`` averages each tile with its mirror image (:func:`class_probabilities`).
    ``precision`` ``"bf16"`` runs the network under bfloat16 autocast (softmax in float32;
    see :func:`~topdown.seg.loop.pick_precision`).
    ``on_band(r0, band)``, if given, receives the blended probabilities (float16, ``(n_labels,
    rows, w)``) of each finished band of map rows from ``r0``, top to bottom, as soon as no
    later tile can change them: with ``probabilities=False`` a caller consumes them in memory
    bounded by a band of tiles instead of holding the whole map's. ``label_map=False`` (only
    without ``tissue``) returns ``None`` for the labels and skips computing them, for a caller
    that reads the probabilities alone.
    """
    from .._progress import progress
    from .loop import autocast

    m = model.net.multiple
    tile = max(m, int(tile) // m * m)
    overlap = min(max(0, int(overlap)), tile // 2)
    H, W = map_shape(src.shape, factor)
    th, tw = min(tile, H), min(tile, W)
    rows, cols = _starts(H, th, tile - overlap), _starts(W, tw, tile - overlap)
    C = model.n_labels
    wgt = _gaussian(th, tw)
    ldtype = np.uint8 if C < 256 else np.uint16
    label_map = bool(label_map) or tissue is not None
    labels = np.zeros((H, W), dtype=ldtype) if label_map else None
    probs = np.zeros((C, H, W), dtype=np.float16) if probabilities else None
    acc = np.zeros((C, th, W), dtype=np.float32)
    row_band = np.zeros((C, th, W), dtype=np.float16) if on_band is not None else None
    wsum = np.zeros((th, W), dtype=np.float32)
    model.eval()
    net = model.for_inference()  # BatchNorm folded, channels-last: the same probabilities, faster
    bar = progress(total=len(rows) * len(cols), desc=progress_desc or "segment",
                   disable=None if progress_desc else True)
    with torch.inference_mode(), autocast(device, precision):
        for k, r0 in enumerate(rows):
            for b in range(0, len(cols), batch_size):
                cs = cols[b:b + batch_size]
                batch = np.stack([resample_tile(src, r0, r0 + th, c0, c0 + tw, factor) for c0 in cs])
                x = torch.from_numpy(batch).permute(0, 3, 1, 2).to(device)
                p = class_probabilities(net, x, tta).cpu().numpy()
                for j, c0 in enumerate(cs):
                    p[j] *= wgt  # in place: no tile-sized temporary
                    acc[:, :, c0:c0 + tw] += p[j]
                    wsum[:, c0:c0 + tw] += wgt
                bar.update(len(cs))
            done = (rows[k + 1] - r0) if k + 1 < len(rows) else th
            for c0 in range(0, W, _FINALISE_COLS):  # column blocks keep temporaries tile-sized
                c1 = min(W, c0 + _FINALISE_COLS)
                lab, band = _finalise(acc[:, :done, c0:c1], wsum[:done, c0:c1], ldtype, tissue, tissue_step,
                                      r0, c0, outside_min, label_map)
                if labels is not None:
                    labels[r0:r0 + done, c0:c1] = lab
                if probs is not None:
                    probs[:, r0:r0 + done, c0:c1] = band
                if row_band is not None:
                    row_band[:, :done, c0:c1] = band
            if on_band is not None:
                on_band(r0, row_band[:, :done])
            # shift the band in place: rows still shared with the next tile row move up
            acc[:, :th - done] = acc[:, done:]
            wsum[:th - done] = wsum[done:]
            acc[:, th - done:] = 0.0
            wsum[th - done:] = 0.0
    bar.close()
    return labels, probs


def _apply_prior(labels: np.ndarray, probs: np.ndarray | None, model, layer_prior) -> tuple[np.ndarray, dict | None]:
    """Labels with the layer prior (resolved, or ``None``) enforced (see :func:`segment`) and its
    report (``None`` if off)."""
    from .layers import apply_layer_prior

    if layer_prior is None:
        return labels, None
    if model.pixel_size_um is None:
        return labels, {"applied": False, "reason": "the model has no pixel size: laminar depth needs micrometres"}
    return apply_layer_prior(labels, model.classes, layer_prior, float(model.pixel_size_um), probabilities=probs)


def _at_spot_scale(prior, spot_diameter_um: float | None):
    """``prior`` drawn for spots ``spot_diameter_um`` wide (unchanged when either is ``None``)."""
    if spot_diameter_um is None:
        return prior
    try:
        diameter = float(spot_diameter_um)
    except (TypeError, ValueError):
        diameter = float("nan")
    if not np.isfinite(diameter) or diameter <= 0:
        raise InputError(f"spot_diameter_um must be a number of µm > 0 (e.g. 55 for Visium, 100 for Spatial "
                         f"Transcriptomics), got {spot_diameter_um!r}")
    return None if prior is None else dataclasses.replace(prior, spot_diameter_um=diameter)


def segment(image, model, pixel_size_um: float | str | None = None, *, scalefactors=None,
            image_kind: str | None = None, tissue: bool = True, tile: int = 512, overlap: int = 64,
            batch_size: int = 1, probabilities: bool = True, device: str = "auto",
            tta: bool = True, adapt_norm: bool = False, layer_prior="auto", orientation: str | None = "auto",
            spot_diameter_um: float | None = None, progress: bool = False) -> RegionMap:
    """Segment an image into the model's anatomical regions.

    Parameters
    ----------
    image
        ``(H, W)`` greyscale, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA array (uint8, uint16
        or float; non-uint8 is rescaled by robust percentiles), a PIL image, or a path
        (PNG, JPEG; TIFF is read lazily tile by tile).
    model
        A :class:`~topdown.seg.SegModel`, a shipped model name or a checkpoint path. A
        model with ``model.orientation == "upright"`` learnt where regions lie with dorsal
        up (within +/-30°): give it the section upright (``np.rot90`` the image, and the
        spot coordinates with it, if needed).
    pixel_size_um
        Micrometres per pixel of ``image``; the image is resampled to the model's pixel
        size. ``"model"`` means "same as the model". If omitted, taken from
        ``scalefactors`` or, for ``tissue_lowres_image.png`` / ``tissue_hires_image.png``,
        from the ``scalefactors_json.json`` beside it.
    scalefactors, image_kind
        Visium ``scalefactors_json.json`` (path or dict) and which image this is
        (``"lowres"``, ``"hires"``, ``"fullres"``).
    tissue
        Combine a thumbnail Otsu tissue detector with the model: ``outside`` where it sees
        empty glass; where it sees tissue, the most likely region unless the model gives
        ``outside`` at least :data:`OUTSIDE_CONFIDENT` (fiducials, debris); where it finds
        the whole field tissue (no glass though the image has room for some, e.g. a DAPI
        crop from inside a section), a region everywhere.
        ``False`` leaves both to the model's own ``outside`` class.
    tile, overlap, batch_size
        Sliding-window tile size and overlap, in model pixels; tiles per forward pass
        (1 by default: on CPU as fast as 4 and half the peak memory; raise it on a GPU).
    probabilities
        Keep float16 class probabilities in the result (``False`` saves memory).
    device
        Torch device: ``"auto"`` (CUDA when available, else CPU), ``"cpu"`` or ``"cuda"``.
    tta
        Test-time augmentation: average the softmax of each tile and of its mirror image
        (:func:`tta_flips`: left-right for an upright model, a half turn for a
        free-orientation one). It costs twice the network time (its gain on the shipped
        models: ``topdown/seg/weights/README.md``); ``False`` for the single raw pass, e.g.
        on a whole-slide image in a hurry.
    adapt_norm
        Test-time adaptation: first re-estimate the network's BatchNorm statistics on
        random windows of this image (AdaBN, see :mod:`topdown.seg.adabn`; no labels; the
        model passed in is not changed). Try it when a real image's colours and contrast
        are far from the simulations'; its effect depends on the model and the image
        (measurements: ``topdown/seg/weights/README.md``), so it is off by default, here
        and in :func:`topdown.tl.segment_regions`. Skipped, with a warning, for images under :data:`ADAPT_MIN_PX` model pixels a side
        (e.g. a 500 µm MERFISH crop at 16 µm/px); ``meta["params"]["adapt_norm"]`` says
        whether it ran.
    layer_prior
        Enforce the laminar order of layered tissue (:mod:`topdown.seg.layers`): keep the
        network's core and surface anchors and assign the layers between them by laminar
        depth, in proportion to the preset's layer thicknesses, with the network's own call
        deciding near the layer boundaries (``LayerPrior.softness``). ``"auto"`` uses the prior
        of the preset the model was trained on when it declares one (``layers:`` in the
        YAML: olfactory_bulb, cortex_laminar), a :class:`~topdown.seg.LayerPrior` is used
        as given, ``None`` keeps the network's map. What it changed, per region, is in
        ``meta["layer_prior"]`` (large shares flag images that contradict the prior). It
        assumes whole sections (a cut face is taken for a surface; where tissue runs off the
        image the network's call is kept): use ``None`` for partial sections.
    orientation
        For a model trained ``upright`` (real sections arrive at any angle): ``"auto"``
        (default) segments the image's four quarter turns and keeps the map the network is
        most confident of, turned back (:mod:`topdown.seg.orient`; four times the time;
        ``meta["orientation"]`` says which turn won). On upright sections it keeps them as they
        are (simulated cortex and brain frames, the real Visium mouse brain: the same maps);
        on the real DLPFC sections it raised the shipped cortex model's mean ARI from 0.278 to
        0.339. ``"ensemble"``: combine the four turns' probabilities by their geometric mean
        instead of picking one: better on sections at an unknown angle where no turn is clearly
        surest (real DLPFC 0.372), worse on upright ones (simulated brain mIoU 0.72 -> 0.45).
        ``None``: segment the image as it is. Free-orientation models need no search.
    spot_diameter_um
        With a layer prior: draw the map for spots this wide (µm), to assign Visium or
        Spatial Transcriptomics spots by their centre. A layer too thin to cover half of any
        spot (the bulb's 30 µm mitral cell layer under 100 µm ST spots) is widened by the spot's
        radius on each side, never into the core or surface anchors, so the spots whose disc
        reaches it take it (:attr:`LayerPrior.spot_diameter_um`; real bulb sections, mean ARI
        0.584 -> 0.618). ``None`` (default): the anatomical map; use that one to measure areas.
        No effect without a layer prior or where every layer is thick enough (Visium's 55 µm
        spots on the cortex).
    progress
        Show a progress bar over tiles.

    Returns
    -------
    RegionMap at the model's resolution (``downsample`` image pixels per map pixel).

    Examples
    --------
    >>> import topdown as td
    >>> rmap = td.seg.segment("spatial/tissue_lowres_image.png", "mouse_brain_coronal")  # doctest: +SKIP
    >>> rmap.to_geodataframe()  # doctest: +SKIP
    """
    from .checkpoint import load
    from .layers import LayerPrior
    from .loop import pick_device
    from .nucleus_designs import refuse_nucleus_model

    require_flag("adapt_norm", adapt_norm)
    require_flag("tta", tta)
    device = pick_device(device)
    model = load(model, device=device)
    refuse_nucleus_model(model, "td.seg.segment", "Find nuclei with td.seg.nuclei (CLI: topdown nuclei).")
    prior = _at_spot_scale(LayerPrior.resolve(layer_prior, model), spot_diameter_um)  # resolved once, here
    src = open_image(image, background=model.background_value)
    scale = _image_scale(image, src, model, pixel_size_um, scalefactors, image_kind)
    if orientation not in (None, "auto", "ensemble"):
        raise InputError(f"orientation={orientation!r} is not allowed; give None (as it is), 'auto' or 'ensemble'")
    if orientation in ("auto", "ensemble") and model.orientation == "upright":
        from .orient import segment_quarter_turns, segment_turn_ensemble

        search = segment_quarter_turns if orientation == "auto" else segment_turn_ensemble
        return search(src, model, scale, dict(
            tissue=tissue, tile=tile, overlap=overlap, batch_size=batch_size, probabilities=probabilities,
            device=device, tta=tta, adapt_norm=adapt_norm, layer_prior=prior, progress=progress))
    factor, img_px = scale.per_pixel("map"), scale.um  # map pixels and µm per image pixel
    H, W = map_shape(src.shape, factor)
    if max(H, W) > 200_000 or H * W > 2_000_000_000:
        raise InputError(f"the map would be {H} x {W} pixels; check pixel_size_um={img_px} "
                         f"(image {src.shape[1]} x {src.shape[0]} px, model {model.pixel_size_um} µm/px).")
    tmask, tstep, all_tissue = None, 1.0, False
    if tissue:
        thumb, step = src.thumbnail()  # one thumbnail pixel = ``step`` image pixels
        tmask = tissue_mask(thumb, model.modality, pixel_size_um=scale.convert(step, "image", "um") if img_px else None)
        tstep = scale.convert(step, "image", "map")  # map pixels per thumbnail pixel
        all_tissue = tmask is not None and bool(tmask.all())
    if adapt_norm and min(H, W) < ADAPT_MIN_PX:
        warnings.warn(f"adapt_norm skipped: the image is only {H} x {W} px at the model's "
                      f"{model.pixel_size_um} µm/px, too small to re-estimate BatchNorm statistics "
                      f"(needs {ADAPT_MIN_PX} px a side); segmenting with the training statistics",
                      UserWarning, stacklevel=2)
        adapt_norm = False
    if adapt_norm:
        from .adabn import adapt_to_image

        model = adapt_to_image(model, src, factor, device=device)
    labels, probs = predict(model, src, factor, tile=tile, overlap=overlap, batch_size=batch_size,
                            device=device, probabilities=probabilities or prior is not None, tissue=tmask,
                            tissue_step=tstep, tta=bool(tta), outside_min=np.inf if all_tissue else OUTSIDE_CONFIDENT,
                            progress_desc="segment" if progress else None)
    labels, prior_report = _apply_prior(labels, probs, model, prior)
    if not probabilities:
        probs = None
    meta = {"model": model.name, "model_source": getattr(model, "source", None),
            "weights_sha256": model.weights_sha256, "spec_hash": model.spec_hash,
            "image_pixel_size_um": img_px, "model_pixel_size_um": model.pixel_size_um,
            "params": {"tile": tile, "overlap": overlap, "tissue": bool(tissue), "all_tissue": all_tissue,
                       "factor": factor, "tta": bool(tta), "adapt_norm": bool(adapt_norm)},
            "layer_prior": prior_report,
            "image": str(image) if isinstance(image, (str, os.PathLike)) else None}
    return RegionMap(labels=labels, classes=model.classes, pixel_size_um=model.pixel_size_um if
                     model.pixel_size_um is not None else img_px, downsample=scale.size("image", of="map"),
                     probabilities=probs, image_shape=src.shape, colors=dict(model.colors), meta=meta)
