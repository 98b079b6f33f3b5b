"""SegModel: a compact U-Net (pure torch) plus the metadata that makes it usable.

The network maps an RGB image to per-pixel logits for ``len(classes) + 1`` labels
(label 0 = outside tissue). Input normalisation lives inside the model: ``forward`` takes
uint8 RGB (0..255) or float RGB in [0, 1], shape ``(B, 3, H, W)``, any ``H, W`` (padded
internally to a multiple of ``2 ** (levels - 1)`` and cropped back).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .._limits import check_widths
from .._modalities import MODALITIES
from .._version import __version__
from ..errors import InputError

DEFAULT_WIDTHS = (16, 32, 64, 128, 192)


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        groups = next(g for g in (8, 4, 2, 1) if channels % g == 0)
        return nn.GroupNorm(groups, channels)
    raise InputError(f"norm must be 'group' or 'batch', got {kind!r}")


class _DoubleConv(nn.Sequential):
    def __init__(self, cin: int, cout: int, norm: str) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False), _norm(norm, cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), _norm(norm, cout), nn.ReLU(inplace=True),
        )


class UNet(nn.Module):
    """Plain U-Net: ``len(widths)`` levels, max-pool down, bilinear up + skip concat.

    Parameters
    ----------
    in_channels, n_classes
        Input channels (3, RGB) and output labels (classes + outside).
    widths
        Channels per level, finest first; the last is the bottleneck.
    norm
        ``"batch"`` (BatchNorm, default: in eval mode its statistics are fixed, so a tile
        is predicted the same whatever tiles surround it) or ``"group"`` (GroupNorm).
    """

    def __init__(self, in_channels: int = 3, n_classes: int = 2,
                 widths: tuple[int, ...] = DEFAULT_WIDTHS, norm: str = "batch") -> None:
        super().__init__()
        self.widths = check_widths(widths, in_channels, n_classes)  # before anything is allocated
        self.down = nn.ModuleList()
        cin = in_channels
        for w in self.widths:
            self.down.append(_DoubleConv(cin, w, norm))
            cin = w
        self.up = nn.ModuleList()
        for i in range(len(self.widths) - 2, -1, -1):
            self.up.append(_DoubleConv(self.widths[i + 1] + self.widths[i], self.widths[i], norm))
        self.head = nn.Conv2d(self.widths[0], n_classes, 1)

    @property
    def multiple(self) -> int:
        """Input sizes are padded to a multiple of this."""
        return 2 ** (len(self.widths) - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.down):
            if i:
                x = F.max_pool2d(x, 2)
            x = block(x)
            skips.append(x)
        x = skips.pop()
        for block in self.up:
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        return self.head(x)


class SegModel(nn.Module):
    """A region-segmentation U-Net with its classes, colours and training pixel size.

    Parameters
    ----------
    classes
        Region names in label order (label ``k`` = ``classes[k - 1]``; 0 = outside).
    colors
        Name -> hex colour (defaults from :func:`topdown.seg.regionmap.default_colors`).
    pixel_size_um
        Micrometres per pixel of the training images; inference resamples to it.
    modality
        ``"he"`` or ``"dapi"`` (sets the padding colour and tissue detection).
    widths, norm
        Architecture (see :class:`UNet`).
    spec_hash, name, seed, train_config, metrics
        Provenance, stored in checkpoints.

    Examples
    --------
    >>> import topdown as td
    >>> model = td.seg.SegModel(["cortex", "white_matter"], pixel_size_um=4.0)
    >>> model.n_labels
    3
    """

    def __init__(self, classes, colors: dict[str, str] | None = None, pixel_size_um: float | None = None,
                 modality: str = "he", in_channels: int = 3, widths: tuple[int, ...] = DEFAULT_WIDTHS,
                 norm: str = "batch", spec_hash: str | None = None, name: str | None = None,
                 seed: int | None = None, train_config: dict | None = None,
                 metrics: dict | None = None) -> None:
        super().__init__()
        from .regionmap import OUTSIDE, default_colors

        classes = [str(c) for c in classes]
        if not classes:
            raise InputError("a SegModel needs at least one region class")
        if OUTSIDE in classes:
            raise InputError(f"'{OUTSIDE}' is reserved for label 0; remove it from classes")
        if len(set(classes)) != len(classes):
            raise InputError(f"duplicate class names in {classes}")
        if modality not in MODALITIES:
            raise InputError(f"modality must be {' or '.join(map(repr, MODALITIES))}, got {modality!r}")
        self.classes = tuple(classes)
        base = default_colors(self.classes)
        self.colors = {**base, **(colors or {})}
        self.pixel_size_um = None if pixel_size_um is None else float(pixel_size_um)
        self.modality = modality
        self.in_channels = int(in_channels)
        self.norm = norm
        self.spec_hash = spec_hash
        self.name = name
        self.seed = seed
        self.train_config = dict(train_config or {})
        self.metrics = dict(metrics or {})
        self.weights_sha256: str | None = None
        self.net = UNet(self.in_channels, len(self.classes) + 1, widths, norm)
        self.register_buffer("mean", torch.tensor([0.5] * self.in_channels).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.25] * self.in_channels).view(1, -1, 1, 1), persistent=False)

    @property
    def n_labels(self) -> int:
        """Number of output labels (classes + outside)."""
        return len(self.classes) + 1

    @property
    def names(self) -> list[str]:
        """Label index -> name, with ``outside`` at 0."""
        from .regionmap import OUTSIDE

        return [OUTSIDE, *self.classes]

    @property
    def orientation(self) -> str:
        """``"upright"`` if trained dorsal-up only (give it upright images), else ``"free"``."""
        augment = self.train_config.get("augment") or {}
        return "free" if augment.get("any_orientation", True) else "upright"

    @property
    def background_value(self) -> int:
        """Grey value of empty slide: white for H&E, black for DAPI."""
        return 0 if self.modality == "dapi" else 255

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, n_labels, H, W)`` for RGB ``x`` (uint8 0..255 or float 0..1)."""
        if x.dtype == torch.uint8:
            x = x.float() / 255.0
        x = (x - self.mean) / self.std
        h, w = x.shape[-2:]
        m = self.net.multiple
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        out = self.net(x)
        return out[..., :h, :w]

    def for_inference(self) -> SegModel:
        """A copy of this model for prediction only: the same outputs, about 1.5x faster on a CPU.

        Each BatchNorm (eval statistics) is folded into the convolution before it, and the
        weights are stored channels-last, the layout oneDNN convolves fastest; an input
        built from ``(B, H, W, 3)`` pixels by ``permute(0, 3, 1, 2)`` is already in it.
        Logits agree with this model's to float rounding (about 1e-5). The copy is frozen:
        build it again after the weights change (:func:`topdown.seg.infer.predict` makes
        one per call).

        Examples
        --------
        >>> import topdown as td, torch
        >>> m = td.seg.load("nuclei_dapi", kind="nuclei")  # doctest: +SKIP
        >>> x = torch.rand(1, 3, 64, 64)  # doctest: +SKIP
        >>> torch.allclose(m.eval()(x), m.for_inference()(x), atol=1e-4)  # doctest: +SKIP
        True
        """
        from torch.nn.utils.fusion import fuse_conv_bn_eval

        fast = copy.deepcopy(self).eval()
        for block in fast.net.modules():
            if not isinstance(block, _DoubleConv):
                continue
            for i in range(len(block) - 1):
                if isinstance(block[i], nn.Conv2d) and isinstance(block[i + 1], nn.BatchNorm2d):
                    block[i] = fuse_conv_bn_eval(block[i], block[i + 1])
                    block[i + 1] = nn.Identity()
        for param in fast.parameters():
            param.requires_grad_(False)
        return fast.to(memory_format=torch.channels_last)

    def config(self) -> dict[str, Any]:
        """Everything needed to rebuild the model (JSON-able)."""
        return {"classes": list(self.classes), "colors": dict(self.colors),
                "pixel_size_um": self.pixel_size_um, "modality": self.modality,
                "in_channels": self.in_channels, "widths": list(self.net.widths), "norm": self.norm,
                "spec_hash": self.spec_hash, "name": self.name, "seed": self.seed,
                "train_config": self.train_config, "metrics": self.metrics,
                "topdown_version": __version__, "format": "topdown.segmodel", "version": 1}

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> SegModel:
        """Rebuild an (untrained) model from :meth:`config` output."""
        return cls(cfg["classes"], colors=cfg.get("colors"), pixel_size_um=cfg.get("pixel_size_um"),
                   modality=cfg.get("modality", "he"), in_channels=cfg.get("in_channels", 3),
                   widths=tuple(cfg.get("widths", DEFAULT_WIDTHS)), norm=cfg.get("norm", "batch"),
                   spec_hash=cfg.get("spec_hash"), name=cfg.get("name"), seed=cfg.get("seed"),
                   train_config=cfg.get("train_config"), metrics=cfg.get("metrics"))

    def n_params(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters())

    def __repr__(self) -> str:  # short: the nn.Module repr is pages long
        return (f"SegModel(name={self.name!r}, classes={list(self.classes)}, "
                f"pixel_size_um={self.pixel_size_um}, modality={self.modality!r}, "
                f"orientation={self.orientation!r}, params={self.n_params():,})")
