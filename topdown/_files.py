"""Safe file handling: checked output paths and atomic writes.

Outputs are written to a temporary sibling and renamed into place, so a crash or a full
disk never leaves a half-written file under the final name, and a user's input is never
overwritten.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import DataFileError, OutputError


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


def output_file(path: str | os.PathLike, *, inputs: tuple = (), overwrite: bool = True) -> Path:
    """Check an output file path before work starts.

    Refuses to write over any of ``inputs`` (the user's input is never overwritten) and,
    with ``overwrite=False``, over an existing file. Creates the parent folder.
    """
    p = Path(path).expanduser()
    for src in inputs:
        if p.exists() and Path(src).exists() and os.path.samefile(p, src):
            raise OutputError(f"refusing to overwrite the input '{src}'; give a different output path.")
    if p.exists() and p.is_dir():
        raise OutputError(f"output '{p}' is a folder; give a file name.")
    if p.exists() and not overwrite:
        raise OutputError(f"output '{p}' exists; remove it or pass overwrite=True.")
    writable_dir(p.parent if str(p.parent) else ".")
    return p


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: read once at import: flipping the umask on every write would race with other threads
_UMASK = _read_umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it to ``path`` only on success.

    Examples
    --------
    >>> with atomic_path("out.csv") as tmp:  # doctest: +SKIP
    ...     df.to_csv(tmp)
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp makes 0600, and writers that recreate the file (safetensors) keep that:
        # outputs get the usual permissions
        os.chmod(tmp, 0o666 & ~_UMASK)
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
