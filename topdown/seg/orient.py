"""Orientation found automatically, for models that learnt where regions lie (``upright``).

An upright model (brain, spinal cord, cortex) learnt its regions with dorsal (or the pia)
up, within +/-30°; real sections arrive at any angle. :func:`segment_quarter_turns`
segments the image in its four quarter turns and keeps the one where the network is
most sure of itself (the mean, over tissue, of its largest region probability), turned
back to the image's own orientation. It is what ``td.seg.segment`` runs by default
(``orientation="auto"``) for an upright model (four times the network time); a
free-orientation model needs no search. Upright inputs come back as they are: on 30
simulated cortex frames and 20 brain frames pooled mIoU is the same as with
``orientation=None`` (0.758, 0.722), on 20 spinal cord frames 0.826 against 0.833, and on the
real Visium mouse brain the map is unchanged (Nrgn AUROC 0.943).

``orientation="ensemble"`` (:func:`segment_turn_ensemble`) picks no turn: the four
turns' region probabilities, each turned back, are combined by their geometric mean (a
product of experts: a region wins where every turn finds it plausible), then the layer
prior runs once on the combined map.

Measured on the real DLPFC sections of ``real_dev`` (``cortex_laminar``, adapted with
``td.seg.adapt``, with its layer prior; ``benchmarks/real_regions.py``): mean ARI 0.182 as
given, 0.240 with the turn picked by confidence (0.315 with the later layer prior that
fuses depth with the network's call), 0.344 with the ensemble (0.372 with the cortex's
``surface_margin_um``). The confidences of the four
turns differ by only 0.01-0.05 there, and the surest turn is the best one in two sections
of four: the ensemble was chosen over it by the mean over the four sections.
"""

from __future__ import annotations

import numpy as np

from .image import ImageSource
from .regionmap import ImageScale, RegionMap

QUARTER_TURNS = (0, 1, 2, 3)


def confidence(rmap: RegionMap) -> float:
    """Mean over tissue pixels of the largest region probability (``nan`` without tissue)."""
    tissue = rmap.labels > 0
    if rmap.probabilities is None or not tissue.any():
        return float("nan")
    return float(rmap.probabilities[1:].max(axis=0)[tissue].astype(np.float32).mean())


def _turned_back(rmap: RegionMap, k: int, image_shape, keep_probabilities: bool, report: dict) -> RegionMap:
    probs = np.ascontiguousarray(np.rot90(rmap.probabilities, -k, axes=(1, 2))) if keep_probabilities else None
    return RegionMap(labels=np.ascontiguousarray(np.rot90(rmap.labels, -k)), classes=rmap.classes,
                     pixel_size_um=rmap.pixel_size_um, downsample=rmap.downsample, probabilities=probs,
                     image_shape=tuple(image_shape), colors=dict(rmap.colors),
                     meta={**rmap.meta, "orientation": report})


def _turn_maps(src: ImageSource, model, scale: ImageScale, segment_kwargs: dict):
    """Yield each quarter turn ``k`` and :func:`~topdown.seg.segment`'s map (with its
    probabilities) of the image turned ``k`` times counter-clockwise, not turned back."""
    from .infer import segment

    image = src.read(0, src.shape[0], 0, src.shape[1])
    kwargs = {**segment_kwargs, "probabilities": True, "orientation": None}
    pixel_size = scale.um if scale.um is not None else "model"
    for k in QUARTER_TURNS:
        yield k, segment(np.ascontiguousarray(np.rot90(image, k)), model, pixel_size_um=pixel_size, **kwargs)


def segment_quarter_turns(src: ImageSource, model, scale: ImageScale, segment_kwargs: dict) -> RegionMap:
    """Segment ``src`` in each quarter turn; the most confident map, in the image's orientation.

    ``segment_kwargs`` are :func:`~topdown.seg.segment`'s keyword arguments (not the image,
    model or pixel size). The result's ``meta["orientation"]`` holds ``quarter_turns``
    (counter-clockwise turns of the image the map was made in) and each turn's confidence.
    """
    keep_probabilities = segment_kwargs.get("probabilities", True)
    best, best_k, scores = None, 0, []
    for k, rmap in _turn_maps(src, model, scale, segment_kwargs):
        scores.append(round(confidence(rmap), 4))
        if best is None or np.nan_to_num(scores[-1], nan=-1.0) > np.nan_to_num(scores[best_k], nan=-1.0):
            best, best_k = rmap, k
    report = {"quarter_turns": best_k, "confidence": scores}
    return _turned_back(best, best_k, src.shape, keep_probabilities, report)


def _turned_back_probabilities(rmap: RegionMap, k: int) -> np.ndarray:
    return np.rot90(rmap.probabilities, -k, axes=(1, 2)).astype(np.float32)


def segment_turn_ensemble(src: ImageSource, model, scale: ImageScale, segment_kwargs: dict) -> RegionMap:
    """Segment ``src`` in each quarter turn and combine the four maps, in the image's orientation.

    Region probabilities: the renormalised geometric mean of the four turns' (turned back).
    A pixel is outside where at least half of the turns call it so; elsewhere it takes the
    region of largest combined probability. The layer prior (``segment_kwargs["layer_prior"]``)
    then runs once on the combined map. ``meta["orientation"]`` holds ``"ensemble"`` and each
    turn's confidence.
    """
    from .infer import _apply_prior
    from .layers import LayerPrior

    log_sum, outside_votes, scores, first = None, None, [], None
    for k, rmap in _turn_maps(src, model, scale, {**segment_kwargs, "layer_prior": None}):
        scores.append(round(confidence(rmap), 4))
        log_p = np.log(_turned_back_probabilities(rmap, k) + 1e-4)
        outside = np.rot90(rmap.labels, -k) == 0
        log_sum = log_p if log_sum is None else log_sum + log_p
        outside_votes = outside.astype(np.uint8) if outside_votes is None else outside_votes + outside
        if first is None:
            first = rmap
    probs = np.exp(log_sum / len(QUARTER_TURNS))
    probs /= probs.sum(axis=0, keepdims=True)
    labels = (np.argmax(probs[1:], axis=0) + 1).astype(first.labels.dtype)
    labels[outside_votes * 2 >= len(QUARTER_TURNS)] = 0
    prior = LayerPrior.resolve(segment_kwargs.get("layer_prior", "auto"), model)
    labels, prior_report = _apply_prior(labels, probs, model, prior)
    keep_probabilities = segment_kwargs.get("probabilities", True)
    meta = {**first.meta, "layer_prior": prior_report,
            "orientation": {"quarter_turns": "ensemble", "confidence": scores}}
    return RegionMap(labels=np.ascontiguousarray(labels), classes=first.classes, pixel_size_um=first.pixel_size_um,
                     downsample=first.downsample, probabilities=probs.astype(np.float16) if keep_probabilities else None,
                     image_shape=tuple(src.shape), colors=dict(first.colors), meta=meta)
