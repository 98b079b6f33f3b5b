"""Style mixing: give simulated training crops the look of the user's (unlabelled) real images.

Two unsupervised ways to move a crop's image statistics towards those of a target crop,
keeping its content (and so its labels):

- :func:`fda`: Fourier domain adaptation (Yang & Soatto 2020, "FDA: Fourier Domain
  Adaptation for Semantic Segmentation"): the low-frequency amplitude spectrum of the crop
  (overall colour, illumination, stain gradients) is replaced by the target's; the phase
  (where edges and nuclei are) is kept.
- :func:`match_lab`: per-channel mean and standard deviation matched in CIELAB (Reinhard et
  al. 2001): cheaper, colour only.

:class:`StyleMixer` applies one of them, with probability ``p``, to training crops, drawing
target crops from a bank of tissue crops of the real images (:mod:`topdown.seg.target`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError

#: the ways :class:`StyleMixer` can mix styles
STYLE_METHODS = ("fda", "lab")


def _as_float(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    return image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32)


def _like(out: np.ndarray, original: np.ndarray) -> np.ndarray:
    """``out`` (float, [0, 1] scale) in the dtype of ``original``."""
    if np.asarray(original).dtype == np.uint8:
        return np.round(np.clip(out, 0, 1) * 255).astype(np.uint8)
    return out.astype(np.asarray(original).dtype, copy=False)


def fda(source: np.ndarray, target: np.ndarray, beta: float = 0.03, *, clip: bool = True) -> np.ndarray:
    """``source`` with the low-frequency amplitude spectrum of ``target`` (FDA).

    Per channel, the centred amplitude spectrum of ``source`` inside the square of half-side
    ``floor(beta * min(H, W))`` around the zero frequency is replaced by ``target``'s; the
    phase is kept, so the content stays where it was.

    Parameters
    ----------
    source, target
        ``(H, W, C)`` images of the same shape: uint8, or float in [0, 1].
    beta
        Size of the swapped band as a fraction of the side (0.01-0.05 in the paper; 0 keeps
        only the mean, ``DC``, of the target).
    clip
        Clip the result to [0, 1] (uint8: always).

    Returns
    -------
    The restyled image, with the shape and dtype of ``source``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> src = rng.uniform(0.4, 0.6, (32, 32, 3)).astype(np.float32)
    >>> out = fda(src, np.full((32, 32, 3), 0.2, np.float32), beta=0.05)
    >>> out.shape, out.dtype, round(float(out.mean()), 2)
    ((32, 32, 3), dtype('float32'), 0.2)
    """
    src, trg = _as_float(source), _as_float(target)
    if src.shape != trg.shape or src.ndim != 3:
        raise InputError(f"fda needs two (H, W, C) images of one shape, got {src.shape} and {trg.shape}")
    if not 0 <= beta <= 0.5:
        raise InputError(f"beta must be between 0 and 0.5, got {beta}")
    f_src = np.fft.fftshift(np.fft.fft2(src, axes=(0, 1)), axes=(0, 1))
    f_trg = np.fft.fftshift(np.fft.fft2(trg, axes=(0, 1)), axes=(0, 1))
    h, w = src.shape[:2]
    b, cy, cx = int(np.floor(beta * min(h, w))), h // 2, w // 2
    amp, phase = np.abs(f_src), np.angle(f_src)
    band = (slice(cy - b, cy + b + 1), slice(cx - b, cx + b + 1))
    amp[band] = np.abs(f_trg)[band]
    mixed = np.fft.ifft2(np.fft.ifftshift(amp * np.exp(1j * phase), axes=(0, 1)), axes=(0, 1)).real
    return _like(np.clip(mixed, 0, 1) if clip else mixed, source)


def lab_stats(image: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """``(2, 3)`` per-channel mean and standard deviation of ``image`` in CIELAB (over ``mask``)."""
    from skimage.color import rgb2lab

    lab = rgb2lab(np.clip(_as_float(image), 0, 1)).reshape(-1, 3)
    if mask is not None and np.asarray(mask).any():
        lab = lab[np.asarray(mask).ravel()]
    return np.stack([lab.mean(axis=0), lab.std(axis=0)])


def match_lab(source: np.ndarray, target_stats: np.ndarray) -> np.ndarray:
    """``source`` with its CIELAB per-channel mean and standard deviation set to ``target_stats``.

    Parameters
    ----------
    source
        ``(H, W, 3)`` RGB image, uint8 or float in [0, 1].
    target_stats
        :func:`lab_stats` of a target image (or tissue crop).

    Returns
    -------
    The recoloured image, in the shape and dtype of ``source``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> src = rng.uniform(0.3, 0.9, (16, 16, 3)).astype(np.float32)
    >>> trg = rng.uniform(0.5, 0.7, (16, 16, 3)).astype(np.float32)
    >>> out = match_lab(src, lab_stats(trg))
    >>> bool(np.allclose(lab_stats(out)[0], lab_stats(trg)[0], atol=1.0))
    True
    """
    from skimage.color import lab2rgb, rgb2lab

    lab = rgb2lab(np.clip(_as_float(source), 0, 1))
    mean, std = lab.reshape(-1, 3).mean(axis=0), lab.reshape(-1, 3).std(axis=0)
    target_stats = np.asarray(target_stats, dtype=np.float64)
    lab = (lab - mean) / np.maximum(std, 1e-6) * target_stats[1] + target_stats[0]
    return _like(np.clip(lab2rgb(lab), 0, 1).astype(np.float32), source)


@dataclass
class StyleMixer:
    """Restyle training crops like tissue crops of real images, with probability ``p``.

    Attributes
    ----------
    crops
        ``(n, s, s, 3)`` float32 target tissue crops in [0, 1] (``s``: the training crop side).
    method
        ``"fda"`` (:func:`fda`, ``beta`` drawn uniformly from ``beta``) or ``"lab"``
        (:func:`match_lab`).
    p
        Probability that a crop is restyled.
    beta
        Range of the FDA band size.

    Examples
    --------
    >>> bank = np.full((2, 16, 16, 3), 0.3, np.float32)
    >>> mixer = StyleMixer(bank, p=1.0)
    >>> out = mixer(np.full((16, 16, 3), 0.8, np.float32), np.random.default_rng(0))
    >>> round(float(out.mean()), 2)
    0.3
    """

    crops: np.ndarray
    method: str = "fda"
    p: float = 0.5
    beta: tuple[float, float] = (0.01, 0.05)
    _stats: list = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if self.method not in STYLE_METHODS:
            raise InputError(f"adapt method must be one of {', '.join(STYLE_METHODS)}, got {self.method!r}")
        if not 0 <= self.p <= 1:
            raise InputError(f"the style-mixing probability must be between 0 and 1, got {self.p}")
        if self.method == "lab":
            self._stats = [lab_stats(c) for c in self.crops]

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``image`` (float ``(s, s, 3)`` in [0, 1]) restyled like a random target crop, or as it is."""
        if rng.random() >= self.p:
            return image
        k = int(rng.integers(len(self.crops)))
        if self.method == "lab":
            return match_lab(image, self._stats[k])
        target = self.crops[k]
        if target.shape != image.shape:  # a crop of another size (e.g. validation): fit the bank's to it
            from .resample import resample_array

            target = resample_array(target, image.shape[0] / target.shape[0])[:image.shape[0], :image.shape[1]]
            if target.shape != image.shape:
                return image
        return fda(image, target, float(rng.uniform(*self.beta)))

    def record(self) -> dict:
        """The settings, for the training plan."""
        return {"method": self.method, "p": self.p, "beta": list(self.beta), "n_crops": len(self.crops)}
