"""Step-field nucleus targets and instances: every nucleus pixel is labelled with the step to its centre.

A *step-field* nucleus model is a :class:`~topdown.seg.SegModel` whose classes are
``nucleus_centre`` (pixels within :data:`CENTRE_RADIUS` px of their nucleus's innermost pixel,
along paths inside the nucleus; a nucleus whose visible part is cut in two has a centre in each) and eight ``nucleus_step_<dir>`` classes: the 8-neighbour step
that descends the geodesic distance to that centre inside the nucleus (``e`` = +column, ``n`` =
-row, counter-clockwise). Following the steps from any pixel of a nucleus reaches its own
centre without leaving it, also for the visible crescent of a nucleus lying behind another,
so two touching or overlapping nuclei are told apart by where their pixels lead, not only by
a visible edge between them (the idea of Cellpose's flow fields, with the flow as a softmax
over eight directions so that the region model's tiled inference blends it unchanged).

Instances (:func:`step_instances`): the expected step vector of each foreground pixel gives it a
pointer to a neighbour; pointer jumping takes every pixel to the end of its path, and the
connected groups of path ends (centre pixels, the few two-pixel cycles where two steps meet)
are the nuclei.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError

#: direction names and their (row, column) steps, counter-clockwise from +column
DIRECTIONS = ("e", "ne", "n", "nw", "w", "sw", "s", "se")
STEPS = np.array([(0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1), (1, 0), (1, 1)], dtype=np.int64)
#: the classes of a step-field nucleus model (label k = STEP_CLASSES[k - 1])
STEP_CLASSES = ("nucleus_centre", *(f"nucleus_step_{d}" for d in DIRECTIONS))
#: geodesic radius (pixels) of a nucleus's centre class around its innermost pixel
CENTRE_RADIUS = 2.0


def _geodesic_from_innermost(mask: np.ndarray) -> np.ndarray:
    """Geodesic (8-connected, Euclidean steps) distance inside ``mask`` from the innermost pixel
    of the mask's connected part that holds it (a nucleus split in two by one lying over it has
    two parts, each with its own centre)."""
    from scipy import ndimage
    from skimage.graph import MCP_Geometric

    inner = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    parts, n = ndimage.label(mask, structure=np.ones((3, 3)))
    starts = [tuple(int(v) for v in p) for p in ndimage.maximum_position(inner, parts, range(1, n + 1))]
    geo, _ = MCP_Geometric(np.where(mask, 1.0, np.inf)).find_costs(starts)
    return np.where(mask, geo, np.inf)


def _descent_class(geo: np.ndarray) -> np.ndarray:
    """Index (0-7) of the 8-neighbour with the smallest value of ``geo`` at each pixel."""
    pad = np.pad(geo, 1, constant_values=np.inf)
    H, W = geo.shape
    shifted = np.stack([pad[1 + dr:1 + dr + H, 1 + dc:1 + dc + W] for dr, dc in STEPS])
    return np.argmin(shifted, axis=0)


def step_target(ids: np.ndarray, centre_radius: float = CENTRE_RADIUS) -> np.ndarray:
    """Class labels (uint8) of an instance image: 0 background, 1 centre, 2-9 the steps of :data:`DIRECTIONS`.

    Parameters
    ----------
    ids
        ``(H, W)`` integer instance image (0 = background).
    centre_radius
        Pixels within this geodesic distance of a nucleus's innermost pixel are its centre.

    Examples
    --------
    >>> ids = np.zeros((9, 9), int); ids[1:8, 1:8] = 1
    >>> t = step_target(ids)
    >>> int(t[0, 0]), int(t[4, 4]), STEP_CLASSES[t[4, 7] - 1], STEP_CLASSES[t[1, 4] - 1]
    (0, 1, 'nucleus_step_w', 'nucleus_step_s')
    """
    from scipy import ndimage

    ids = np.asarray(ids)
    if ids.ndim != 2:
        raise InputError(f"a nucleus instance image must be 2-D, got shape {ids.shape}")
    H, W = ids.shape
    out = np.zeros((H, W), np.uint8)
    for label, box in enumerate(ndimage.find_objects(ids.astype(np.int64, copy=False)), start=1):
        if box is None:
            continue
        r0, r1 = max(0, box[0].start - 1), min(H, box[0].stop + 1)
        c0, c1 = max(0, box[1].start - 1), min(W, box[1].stop + 1)
        mask = ids[r0:r1, c0:c1] == label
        geo = _geodesic_from_innermost(mask)
        cls = np.where(geo <= centre_radius, 1, _descent_class(geo) + 2).astype(np.uint8)
        out[r0:r1, c0:c1][mask] = cls[mask]
    return out


def turn_steps(target: np.ndarray, quarter_turns: int, mirror: bool) -> np.ndarray:
    """Relabel the step classes of a target turned by ``np.rot90(target, quarter_turns)`` and then,
    if ``mirror``, mirrored left-right (``[:, ::-1]``), so that every step still points to its centre.

    Examples
    --------
    >>> t = np.array([[2]], np.uint8)  # a step east
    >>> STEP_CLASSES[int(turn_steps(t, 1, False)[0, 0]) - 1], STEP_CLASSES[int(turn_steps(t, 0, True)[0, 0]) - 1]
    ('nucleus_step_n', 'nucleus_step_w')
    """
    k = np.arange(8)
    k = (k + 2 * quarter_turns) % 8
    if mirror:
        k = (4 - k) % 8
    table = np.r_[0, 1, k + 2].astype(np.uint8)
    return table[target]


def step_pointers(probs: np.ndarray, fg: np.ndarray) -> np.ndarray:
    """Flat index of the pixel each pixel steps to (itself for centres, background and dead ends).

    The step of a foreground pixel is the octant of its expected step vector (the step classes'
    probabilities times their unit vectors); a pixel whose centre probability exceeds every single
    step's, or whose step would leave the foreground or the image, stays.

    Examples
    --------
    >>> probs = np.zeros((10, 1, 3), np.float32)
    >>> probs[2, 0, 0] = 1; probs[1, 0, 1] = 1; probs[6, 0, 2] = 1  # east, centre, west
    >>> step_pointers(probs, np.ones((1, 3), bool)).tolist()
    [1, 1, 1]
    """
    H, W = fg.shape
    unit = STEPS / np.linalg.norm(STEPS, axis=1, keepdims=True)
    p_steps = np.asarray(probs[2:10], dtype=np.float32)
    vy = np.tensordot(unit[:, 0], p_steps, axes=1)
    vx = np.tensordot(unit[:, 1], p_steps, axes=1)
    octant = np.round(np.arctan2(-vy, vx) / (np.pi / 4)).astype(np.int64) % 8
    stay = ~fg | (np.asarray(probs[1], dtype=np.float32) >= p_steps.max(axis=0))
    rows, cols = np.indices((H, W))
    tr, tc = rows + STEPS[octant, 0], cols + STEPS[octant, 1]
    inside = (tr >= 0) & (tr < H) & (tc >= 0) & (tc < W)
    tr, tc = np.where(inside, tr, rows), np.where(inside, tc, cols)
    stay |= ~fg[tr, tc]
    here = rows * W + cols
    return np.where(stay, here, tr * W + tc).ravel()


def step_instances(probs: np.ndarray, *, fg_threshold: float = 0.5, min_area: int = 12,
                   max_path: int = 256) -> np.ndarray:
    """Instance labels (int32) from the class probabilities ``(10, H, W)`` of a step-field model.

    Parameters
    ----------
    probs
        Background, centre and the eight step probabilities, as the model gives them.
    fg_threshold
        A pixel is nucleus where its background probability is below this.
    min_area
        Smaller instances (pixels) are dropped.
    max_path
        Longest path followed (pixels; larger than any nucleus's radius).

    Examples
    --------
    >>> ids = np.zeros((20, 20), int); ids[2:10, 2:10] = 1; ids[10:18, 4:12] = 2
    >>> probs = np.eye(10, dtype=np.float32)[step_target(ids)].transpose(2, 0, 1)
    >>> lab = step_instances(probs)
    >>> int(lab.max()), bool((lab[ids == 1] == lab[5, 5]).all())
    (2, True)
    """
    from scipy import ndimage

    probs = np.asarray(probs)
    if probs.shape[0] != len(STEP_CLASSES) + 1:
        raise InputError(f"a step-field model gives {len(STEP_CLASSES) + 1} probabilities per pixel, "
                         f"got {probs.shape[0]}")
    H, W = probs.shape[1:]
    fg = np.asarray(probs[0], dtype=np.float32) < fg_threshold
    ptr = step_pointers(probs, fg)
    for _ in range(int(np.ceil(np.log2(max(2, max_path))))):
        ptr = ptr[ptr]
    ends = np.zeros(H * W, bool)
    ends[ptr[fg.ravel()]] = True
    groups, _ = ndimage.label(ends.reshape(H, W) & fg, structure=np.ones((3, 3)))
    lab = np.where(fg.ravel(), groups.ravel()[ptr], 0).reshape(H, W).astype(np.int32)
    return drop_small_instances(lab, min_area)


def drop_small_instances(lab: np.ndarray, min_area: int) -> np.ndarray:
    """``lab`` (int32) without its instances of fewer than ``min_area`` pixels, relabelled 1..n.

    Examples
    --------
    >>> drop_small_instances(np.array([[1, 1, 0, 2]]), 2).tolist()
    [[1, 1, 0, 0]]
    """
    from skimage.segmentation import relabel_sequential

    lab = np.asarray(lab, dtype=np.int32)
    if not lab.max():
        return lab
    small = np.bincount(lab.ravel()) < min_area
    small[0] = False
    lab = np.where(small[lab], 0, lab)
    return relabel_sequential(lab)[0].astype(np.int32)
