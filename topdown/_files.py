"""Safe file handling: checked output paths and atomic writes.

Outputs are written to a temporary sibling and renamed into place, so a crash or a full
disk never leaves a half-written file under the final name, and a user's input is never
overwritten.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from .errors import DataFileError, OutputConflictError, OutputError


def existing_path(path: str | os.PathLike, what: str = "file") -> Path:
    """Return ``path`` as a :class:`~pathlib.Path`, or raise a clear error if it is missing.

    Parameters
    ----------
    path
        The path the user gave.
    what
        What the path should be, used in the error message (e.g. ``"Visium outs folder"``).
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise DataFileError(f"{what} not found: '{p}'. Check the path (it is resolved from '{Path.cwd()}').")
    return p


def writable_dir(path: str | os.PathLike, *, create: bool = True) -> Path:
    """Check that ``path`` is (or can be created as) a writable directory, before any work starts."""
    p = Path(path).expanduser()
    if p.exists() and not p.is_dir():
        raise OutputError(f"output folder '{p}' exists and is not a folder; choose another --out.")
    if not p.exists():
        if not create:
            raise OutputError(f"output folder '{p}' does not exist.")
        parent = next((q for q in [p, *p.parents] if q.exists()), Path("."))
        if not parent.is_dir():
            raise OutputError(f"cannot create output folder '{p}': '{parent}' is a file; choose another --out.")
        if not os.access(parent, os.W_OK):
            raise OutputError(f"cannot create output folder '{p}': '{parent}' is not writable.")
        p.mkdir(parents=True, exist_ok=True)
    if not os.access(p, os.W_OK):
        raise OutputError(f"output folder '{p}' is not writable; choose another --out.")
    return p


#: what a command writes, as (description, allowed suffixes); see :func:`output_file` ``kind=``
KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "h5ad": ("an AnnData .h5ad file", (".h5ad",)),
    "figure": ("a figure", (".png", ".pdf", ".svg", ".jpg", ".jpeg", ".tif", ".tiff")),
    "png": ("a PNG image", (".png",)),
    "geojson": ("GeoJSON", (".geojson", ".json")),
    "csv": ("a CSV table", (".csv", ".txt")),
    "checkpoint": ("a safetensors checkpoint", (".pt", ".pth", ".safetensors", ".ckpt", ".bin")),
}

#: more files than this inside one input folder are not all indexed (a guard, not a limit users meet)
_MAX_INDEXED = 1_000_000


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()  # follows links: a link to an input is that input
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def input_files(inputs: Iterable) -> dict[tuple[int, int], Path]:
    """Every file the ``inputs`` consist of, keyed by (device, inode).

    A file stands for itself; a folder (a Space Ranger outs folder, a SimDataset folder)
    for every file below it. Entries that are not existing paths (a model name, an
    in-memory object, ``None``) are skipped. Keys by inode, so links and other spellings
    of the same file are recognised.
    """
    found: dict[tuple[int, int], Path] = {}
    for src in inputs:
        if not isinstance(src, str | os.PathLike):
            continue
        root = Path(src).expanduser()
        if root.is_file():
            key = _identity(root)
            if key is not None:
                found[key] = root
            continue
        if not root.is_dir():
            continue
        for folder, _, names in os.walk(root):
            for name in names:
                f = Path(folder) / name
                key = _identity(f)
                if key is not None:
                    found.setdefault(key, f)
                if len(found) > _MAX_INDEXED:
                    return found
    return found


def _refuse_inputs(p: Path, label: str, inputs: tuple, index: dict[tuple[int, int], Path] | None) -> None:
    """Raise if ``p`` lies inside an input folder, or is (as an existing file) one of the inputs' files.

    By path first (``p`` resolves to an input file or to a place inside an input folder,
    existing or not: a second run must not be refused where the first was allowed), then,
    for an existing ``p``, by inode over every file of the inputs (links from inside an
    input folder to elsewhere, hard links).
    """
    never = "topdown never writes over or into its inputs"
    where = p.resolve()
    for src in inputs:
        if isinstance(src, str | os.PathLike) and Path(src).expanduser().exists():
            root = Path(src).expanduser().resolve()
            if where == root:
                raise OutputConflictError(f"refusing to overwrite the input '{src}' with {label} '{p}'; give a "
                                          f"different output path ({never}).")
            if root.is_dir() and where.is_relative_to(root):
                raise OutputConflictError(f"refusing to write {label} '{p}' into the input folder '{src}'; give a "
                                          f"path outside it ({never}).")
    if p.is_file():
        src = (input_files(inputs) if index is None else index).get(_identity(p))
        if src is not None:
            raise OutputConflictError(f"refusing to overwrite the input '{src}' with {label} '{p}' (the same file); "
                                      f"give a different output path ({never}).")


def _check_kind(p: Path, kind: str | None, label: str) -> None:
    if kind is None:
        return
    what, suffixes = KINDS[kind]
    if p.suffix.lower() not in suffixes:
        raise OutputConflictError(f"{label} '{p}' does not fit what is written there ({what}); give a name "
                                  f"ending in {' or '.join(suffixes)}.")


def _check_replaceable(p: Path) -> None:
    if p.exists() and not stat.S_IMODE(p.stat().st_mode) & 0o222:
        raise OutputError(f"output '{p}' exists and is read-only; topdown does not replace read-only files. "
                          "Make it writable (chmod u+w) or choose another path.")


def output_file(path: str | os.PathLike, *, inputs: Iterable = (), overwrite: bool = True,
                kind: str | None = None, label: str = "output",
                _index: dict[tuple[int, int], Path] | None = None) -> Path:
    """Check an output file path before work starts; return it as a :class:`~pathlib.Path`.

    The rules (the same for every command and public writer):

    * never an input: ``path`` must not be one of ``inputs``, nor lie inside an input
      folder (a Space Ranger outs folder, a SimDataset folder), nor be any input file
      through a link;
    * the name fits the content: with ``kind`` (a key of :data:`KINDS`) the suffix must be
      one of that kind's (``train --out m.json`` is refused: the checkpoint is not JSON);
    * an existing file is replaced atomically, keeping its permissions; a read-only one
      is refused, and with ``overwrite=False`` any existing one;
    * the parent folder is created.

    Parameters
    ----------
    path
        The output path.
    inputs
        The inputs of the same command (paths; other objects are skipped).
    overwrite
        Allow replacing an existing (writable) file.
    kind
        What is written (a key of :data:`KINDS`), to check the suffix.
    label
        How the message names the output (e.g. ``"--overlay"``).

    Raises
    ------
    OutputConflictError
        The path is an input or does not fit the content.
    OutputError
        The path is a folder, read-only, or exists with ``overwrite=False``.
    """
    p = Path(path).expanduser()
    _refuse_inputs(p, label, tuple(inputs), _index)
    if p.exists() and p.is_dir():
        raise OutputError(f"output '{p}' is a folder; give a file name.")
    _check_kind(p, kind, label)
    if p.exists() and not overwrite:
        raise OutputError(f"output '{p}' exists; remove it or pass overwrite=True.")
    _check_replaceable(p)
    writable_dir(p.parent if str(p.parent) else ".")
    return p


def output_files(outputs: dict[str, tuple[str | os.PathLike | None, str | None]], *,
                 inputs: Iterable = ()) -> dict[str, Path | None]:
    """Check all outputs of one command together, before any work starts.

    Each output goes through :func:`output_file`; in addition no two outputs may be the
    same file (``segment --out X --labels X`` would keep only the second).

    Parameters
    ----------
    outputs
        label -> (path or None, kind), e.g. ``{"--out": (args.out, "h5ad"), "--overlay": (args.overlay, "figure")}``.
    inputs
        The command's inputs (files and folders).

    Returns
    -------
    label -> checked path (None where no path was given).
    """
    inputs = tuple(inputs)
    # indexing the inputs' files is needed only where an output already exists
    exists = any(path is not None and Path(path).expanduser().is_file() for path, _ in outputs.values())
    index = input_files(inputs) if exists else {}
    checked: dict[str, Path | None] = {}
    seen: dict[str, str] = {}
    for label, (path, kind) in outputs.items():
        if path is None:
            checked[label] = None
            continue
        p = output_file(path, inputs=inputs, kind=kind, label=label, _index=index)
        where = os.path.normcase(str(p.resolve()))
        if where in seen:
            raise OutputConflictError(f"{seen[where]} and {label} are the same file '{p}'; the second would replace "
                                      "the first. Give different paths.")
        seen[where] = label
        checked[label] = p
    return checked


def sidecar_file(sidecar: str | os.PathLike, owner: str | os.PathLike, *, fmt: str) -> Path:
    """Check that a sidecar written next to ``owner`` replaces only an earlier sidecar of the same kind.

    ``train --out notes.pt`` writes its metadata to ``notes.json``: an existing
    ``notes.json`` that is not such metadata (a JSON object whose ``format`` is ``fmt``)
    is refused instead of being silently replaced.
    """
    import json

    side = Path(sidecar)
    if side.exists():
        try:
            ours = json.loads(side.read_text(encoding="utf-8")).get("format") == fmt
        except (ValueError, AttributeError, OSError):
            ours = False
        if not ours:
            raise OutputConflictError(f"'{side}' exists and is not the metadata of a topdown file; writing '{owner}' "
                                      f"would replace it (its metadata goes to '{side.name}'). Move it or choose "
                                      "another name.")
        _check_replaceable(side)
    return side


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: read once at import: flipping the umask on every write would race with other threads
_UMASK = _read_umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it to ``path`` only on success.

    An existing ``path`` keeps its permissions; a read-only one is refused
    (:class:`~topdown.errors.OutputError`) rather than replaced.

    Examples
    --------
    >>> with atomic_path("out.csv") as tmp:  # doctest: +SKIP
    ...     df.to_csv(tmp)
    """
    final = Path(path)
    _check_replaceable(final)
    mode = stat.S_IMODE(final.stat().st_mode) if final.is_file() else 0o666 & ~_UMASK
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp makes 0600, and writers that recreate the file (safetensors) keep that:
        # outputs get the usual permissions, or those of the file they replace
        os.chmod(tmp, mode)
        os.replace(tmp, final)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno == errno.ENOSPC:
            raise OutputError(f"disk full while writing '{final}'; nothing was written. Free space and retry.") from exc
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))
