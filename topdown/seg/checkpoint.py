"""Checkpoint I/O: safetensors weights + JSON metadata, never pickle.

A checkpoint is one safetensors file (whatever its extension, e.g. ``brain.pt``) whose
header metadata holds the model config as JSON under the key ``"topdown"``; a readable
copy of that JSON is written next to it (``brain.json``). Shipped weights live in
``topdown/seg/weights/<name>.safetensors`` (+ ``<name>.json``).

Training state for ``--resume`` (optimizer moments, epoch, history) is a second
safetensors file, ``<checkpoint>.state.safetensors``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch

from .._files import atomic_path, atomic_write_text, output_files, sidecar_file
from ..errors import DataFileError, InputError
from .model import SegModel

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
#: shipped weights per model kind: region models at the top, nucleus models in ``nuclei/``, and in
#: ``sim/`` the region models trained on simulations only, where the shipped one was then adapted
#: (no labels) to real images (weights README, "Session 21")
KIND_DIRS = {"regions": WEIGHTS_DIR, "nuclei": WEIGHTS_DIR / "nuclei", "sim": WEIGHTS_DIR / "sim"}
_KEY = "topdown"
FORMAT = "topdown.segmodel"


def _kind_dir(kind: str) -> Path:
    if kind not in KIND_DIRS:
        raise InputError(f"kind must be one of {sorted(KIND_DIRS)}, got {kind!r}")
    return KIND_DIRS[kind]


def available_models(kind: str = "regions") -> list[str]:
    """Names of the shipped pretrained models of one kind.

    Parameters
    ----------
    kind
        ``"regions"`` (anatomical region models, :func:`topdown.seg.segment`), ``"nuclei"``
        (nucleus instance models, :func:`topdown.seg.nuclei`) or ``"sim"`` (region models as
        trained on simulations only, for the presets whose ``"regions"`` model was then adapted
        without labels to real sections: the starting point to adapt to your own images).

    Examples
    --------
    >>> import topdown as td
    >>> isinstance(td.seg.available_models(), list)
    True
    >>> "nuclei_dapi" in td.seg.available_models("nuclei")
    True
    >>> "olfactory_bulb" in td.seg.available_models("sim")
    True
    """
    folder = _kind_dir(kind)
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.safetensors") if not p.name.endswith(".state.safetensors"))


def sidecar_json(path: str | os.PathLike) -> Path:
    """The readable metadata file written next to a checkpoint."""
    p = Path(path)
    return p.with_suffix(".json") if p.suffix else p.with_name(p.name + ".json")


def state_path(path: str | os.PathLike) -> Path:
    """The resumable training-state file belonging to a checkpoint."""
    p = Path(path)
    return p.with_name(p.name + ".state.safetensors")


def files_of(model: object) -> list[Path]:
    """The existing files of a checkpoint given by path (weights, metadata, training state): inputs
    an output must not overwrite. Empty for a shipped name or an in-memory model."""
    if not isinstance(model, str | os.PathLike) or not Path(model).expanduser().is_file():
        return []
    p = Path(model).expanduser()
    return [f for f in (p, sidecar_json(p), state_path(p)) if f.is_file()]


def check_output(path: str | os.PathLike, *, inputs=()) -> Path:
    """Check a checkpoint path and its two companions (metadata JSON, training state) before work starts.

    Refuses a name that is not a checkpoint's (``m.json`` would be its own metadata), any
    of the three files being one of ``inputs`` (e.g. the training dataset's manifest), and
    an existing metadata file that is not a topdown checkpoint's (``notes.pt`` would replace
    ``notes.json``); see :func:`topdown._files.output_file` for the rules.
    """
    paths = output_files({"checkpoint": (path, "checkpoint"), "checkpoint metadata": (sidecar_json(path), None),
                          "training state": (state_path(path), None)}, inputs=inputs)
    sidecar_file(sidecar_json(path), path, fmt=FORMAT)
    return paths["checkpoint"]


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save(model: SegModel, path: str | os.PathLike, *, half: bool = True) -> Path:
    """Write ``model`` to ``path`` (safetensors) and its metadata to a JSON sidecar, atomically.

    Parameters
    ----------
    model
        The model to save.
    path
        Output file; the format is safetensors whatever the extension.
    half
        Store float weights as float16 (half the size; loaded back as float32).

    Examples
    --------
    >>> import topdown as td
    >>> model = td.seg.SegModel(["a", "b"], pixel_size_um=4.0)
    >>> td.seg.save(model, "/tmp/m.pt")  # doctest: +SKIP
    """
    from safetensors.torch import save_file

    path = check_output(path)
    tensors = {}
    for k, v in model.state_dict().items():
        v = v.detach().cpu()
        if half and v.is_floating_point():
            v = v.half()
        tensors[k] = v.contiguous()
    cfg = model.config()
    meta = {_KEY: json.dumps(cfg)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    atomic_write_text(sidecar_json(path), json.dumps(cfg, indent=2) + "\n")
    model.weights_sha256 = file_sha256(path)
    return path


def _read(path: Path) -> tuple[dict, dict]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            header = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except Exception as exc:  # safetensors raises its own error types
        raise DataFileError(
            f"'{path}' is not a readable topdown checkpoint (safetensors expected: {exc}). "
            "Give a file written by `topdown train` / td.seg.save, or a shipped model name."
        ) from exc
    if _KEY not in header and not sidecar_json(path).exists():
        raise DataFileError(f"'{path}' has no topdown metadata (and no '{sidecar_json(path).name}' next to it).")
    try:
        cfg = json.loads(header[_KEY] if _KEY in header else sidecar_json(path).read_text())
    except (ValueError, OSError) as exc:
        raise DataFileError(f"the topdown metadata of '{path}' is not valid JSON ({exc}); re-train or re-download "
                            "the checkpoint.") from exc
    if not isinstance(cfg, dict):
        raise DataFileError(f"the topdown metadata of '{path}' is not a JSON object; re-train or re-download it.")
    return cfg, tensors


def resolve(name_or_path: str | os.PathLike, kind: str = "regions") -> Path:
    """Path of a checkpoint given a shipped model name (of ``kind``) or a file path."""
    p = Path(name_or_path).expanduser()
    if p.is_file():
        return p
    if p.exists():
        raise DataFileError(f"model '{p}' is a folder; give the checkpoint file (e.g. model.pt).")
    name = str(name_or_path)
    prefix, _, rest = name.partition("/")
    prefixed = bool(rest) and prefix in KIND_DIRS and "/" not in rest  # 'sim/olfactory_bulb': another kind's name
    if prefixed:
        kind, name = prefix, rest
    shipped = _kind_dir(kind) / f"{name}.safetensors"
    if shipped.is_file():
        return shipped
    avail = [f"{kind}/{a}" if prefixed else a for a in available_models(kind)]
    other = [k for k, d in KIND_DIRS.items() if k != kind and (d / f"{name}.safetensors").is_file()]
    if other:
        raise InputError(f"'{name}' is a shipped {other[0]} model, not a {kind} model: load it with "
                         f"kind='{other[0]}'" + (" or use td.seg.nuclei(image, model=...)." if other[0] == "nuclei"
                                                 else "."))
    looks_like_path = not prefixed and (os.sep in name or "/" in name or p.suffix in (".pt", ".safetensors", ".pth"))
    if looks_like_path:
        raise DataFileError(f"model file not found: '{p}'. Check the path, or use a shipped model: "
                            f"{', '.join(avail) or '(none installed)'}.")
    raise InputError(f"unknown model '{name}': not a file and not a shipped model. "
                     f"Available: {', '.join(avail) or '(none installed yet)'}; or give a checkpoint path.")


def load(name_or_path: str | os.PathLike | SegModel, classes=None, *, device: str = "cpu",
         kind: str = "regions") -> SegModel:
    """Load a shipped model by name, or a checkpoint by path.

    Parameters
    ----------
    name_or_path
        A preset name (see :func:`available_models`), ``"<kind>/<name>"`` for a shipped
        model of another kind (``"sim/olfactory_bulb"``: as ``kind="sim"``; also on the
        command line), a checkpoint path, or a SegModel (returned as is, after the class check).
    classes
        If given, the region classes the caller needs; a model with other classes raises
        :class:`~topdown.errors.InputError` naming both lists.
    device
        Torch device to put the model on (``"auto"``: CUDA when available, else CPU).
    kind
        Where shipped names are looked up: ``"regions"``, ``"nuclei"`` or ``"sim"`` (see
        :func:`available_models`); paths are loaded whatever the kind.

    Examples
    --------
    >>> import topdown as td
    >>> model = td.seg.load("mouse_brain_coronal")  # doctest: +SKIP
    >>> model = td.seg.load("models/brain.pt", classes=["cortex", "thalamus"])  # doctest: +SKIP
    """
    if isinstance(name_or_path, SegModel):
        model = name_or_path
    else:
        path = resolve(name_or_path, kind)
        cfg, tensors = _read(path)
        if cfg.get("format") != FORMAT:
            raise DataFileError(f"'{path}' is a safetensors file but not a topdown SegModel checkpoint.")
        try:  # the widths are checked before anything is allocated (topdown._limits.check_widths)
            model = SegModel.from_config(cfg)
        except (KeyError, TypeError, ValueError) as exc:
            why = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
            raise DataFileError(f"checkpoint '{path}' has invalid topdown metadata ({why}); re-train or "
                                "re-download it.") from exc
        own = model.state_dict()
        missing = sorted(set(own) - set(tensors))
        if missing:
            raise DataFileError(f"checkpoint '{path}' lacks tensors {missing[:3]}...; it does not match its "
                                "architecture metadata (re-train or re-download it).")
        try:
            model.load_state_dict({k: tensors[k].to(own[k].dtype) for k in own})
        except RuntimeError as exc:
            raise DataFileError(f"checkpoint '{path}' does not match its architecture metadata: {exc}") from exc
        model.weights_sha256 = file_sha256(path)
        model.source = str(path)
    if classes is not None:
        want = [str(c) for c in classes]
        if list(model.classes) != want:
            raise InputError(f"model '{model.name}' segments classes {list(model.classes)}, but "
                             f"{want} were requested; use a model trained on those classes "
                             "(td.seg.train on a simulation of the matching spec).")
    from .loop import pick_device

    model.eval()
    return model.to(pick_device(device))


def save_state(path: str | os.PathLike, optimizer: torch.optim.Optimizer, info: dict,
               model: torch.nn.Module | None = None) -> None:
    """Write the resumable training state atomically.

    Optimizer tensors, full-precision model weights (the checkpoint itself may be float16)
    and the JSON ``info``.
    """
    from safetensors.torch import save_file

    sd = optimizer.state_dict()
    tensors = {}
    scalars: dict = {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"opt.{pid}.{k}"] = v.detach().cpu().contiguous()
            else:
                scalars[f"{pid}.{k}"] = v
    meta = {"info": json.dumps(info), "param_groups": json.dumps(sd["param_groups"]),
            "scalars": json.dumps(scalars)}
    if model is not None:
        for k, v in model.state_dict().items():
            tensors[f"model.{k}"] = v.detach().cpu().contiguous()
    if not tensors:  # safetensors refuses an empty file
        tensors["_empty"] = torch.zeros(1)
    with atomic_path(state_path(path)) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def load_state(path: str | os.PathLike, optimizer: torch.optim.Optimizer,
               model: torch.nn.Module | None = None) -> dict:
    """Restore optimizer (and model) state from :func:`save_state`; returns the JSON ``info``."""
    sp = state_path(path)
    if not sp.is_file():
        raise DataFileError(f"no training state '{sp}' to resume from; train without --resume first.")
    try:
        return _load_state(sp, optimizer, model)
    except DataFileError:
        raise
    except Exception as exc:  # safetensors' own errors, missing keys, a state of another network
        raise DataFileError(f"the training state '{sp}' is corrupt or belongs to another model ({type(exc).__name__}: "
                            f"{exc}); delete it and train without --resume, or with --init '{path}'.") from exc


def _load_state(sp: Path, optimizer: torch.optim.Optimizer, model: torch.nn.Module | None) -> dict:
    from safetensors import safe_open

    with safe_open(str(sp), framework="pt") as fh:
        meta = fh.metadata() or {}
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    state: dict = {}
    weights = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    if model is not None and weights:
        model.load_state_dict(weights)
    for key, v in tensors.items():
        if key == "_empty" or key.startswith("model."):
            continue
        _, pid, k = key.split(".", 2)
        state.setdefault(int(pid), {})[k] = v
    for key, v in json.loads(meta.get("scalars", "{}")).items():
        pid, k = key.split(".", 1)
        state.setdefault(int(pid), {})[k] = v
    optimizer.load_state_dict({"state": state, "param_groups": json.loads(meta["param_groups"])})
    info = json.loads(meta["info"])
    if not isinstance(info, dict) or not isinstance(info.get("epoch"), int):
        raise ValueError("its info records no finished epoch")
    return info
