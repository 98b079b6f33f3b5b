"""Checksummed downloads of public datasets described in ``data_manifests/``.

Each dataset is one YAML manifest (name, files with URL / sha256 / size, licence,
citation, suggested preset, reader). :func:`fetch` downloads with :mod:`pooch`, unpacks
archives and caches everything, so a second call downloads nothing. Every file is
verified on every call: against the manifest's ``sha256`` where it is pinned, otherwise
against the sha256 recorded in the dataset folder (:data:`HASH_RECORD`) when the file was
first downloaded (trust on first use: a file changed in the cache afterwards is refused).
"""

from __future__ import annotations

import builtins
import hashlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import yaml

from ..errors import DataFileError, InputError

log = logging.getLogger(__name__)

MANIFEST_DIR = Path(__file__).with_name("manifests")
REQUIRED_KEYS = ("name", "title", "technology", "tissue", "modality", "suggested_preset",
                 "reader", "license", "citation", "files")
UNPACKERS = ("tar", "zip")
#: sha256 of unpinned files, recorded at first download (trust on first use), in each dataset folder
HASH_RECORD = ".topdown-sha256.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _manifest_dir(manifest_dir: str | os.PathLike | None) -> Path:
    return Path(manifest_dir) if manifest_dir is not None else MANIFEST_DIR


def _load_manifest(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise DataFileError(f"manifest '{path}' is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise DataFileError(f"manifest '{path}' must be a YAML mapping")
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise DataFileError(f"manifest '{path}' lacks keys {missing}")
    if not isinstance(data["name"], str) or not _NAME.match(data["name"]) or ".." in data["name"]:
        raise DataFileError(f"manifest '{path}': name {data['name']!r} must be a plain folder name (letters, digits, "
                            "'_', '-', '.'; no path separators or '..'): it becomes the cache folder.")
    for f in data["files"]:
        if "name" not in f or "url" not in f:
            raise DataFileError(f"manifest '{path}': every file needs 'name' and 'url'")
        if f.get("unpack") not in (None, *UNPACKERS):
            raise DataFileError(f"manifest '{path}': unpack must be one of {UNPACKERS}, got {f['unpack']!r}")
        if Path(f["name"]).is_absolute() or ".." in Path(f["name"]).parts:
            raise DataFileError(f"manifest '{path}': file name {f['name']!r} must stay inside the dataset folder")
    return data


def _all_manifests(manifest_dir: Path) -> dict[str, dict[str, Any]]:
    out = {}
    for path in sorted(manifest_dir.glob("*.yaml")):
        data = _load_manifest(path)
        out[data["name"]] = data
    return out


def list(details: bool = False, *, manifest_dir: str | os.PathLike | None = None):  # noqa: A001
    """Names of the datasets topdown knows how to fetch.

    Parameters
    ----------
    details
        Return a :class:`pandas.DataFrame` (name, title, technology, modality,
        suggested_preset, license, access) instead of a list of names.
    manifest_dir
        Folder of manifests (default: the ones shipped with topdown).

    Examples
    --------
    >>> import topdown as td
    >>> "visium_mouse_brain_he" in td.datasets.list()
    True
    """
    manifests = _all_manifests(_manifest_dir(manifest_dir))
    if not details:
        return builtins.list(manifests)
    import pandas as pd

    cols = ["name", "title", "technology", "modality", "suggested_preset", "license"]
    rows = [{**{c: m.get(c) for c in cols}, "access": m.get("access", "download")} for m in manifests.values()]
    return pd.DataFrame(rows).set_index("name")


def manifest(name: str, *, manifest_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """The manifest (a dict) of dataset ``name``."""
    manifests = _all_manifests(_manifest_dir(manifest_dir))
    if name not in manifests:
        raise InputError(f"unknown dataset {name!r}; available: {', '.join(sorted(manifests))}")
    return manifests[name]


def default_cache() -> Path:
    """Where datasets are cached: ``$TOPDOWN_DATA_DIR`` or the OS cache folder."""
    import pooch

    return Path(os.environ.get("TOPDOWN_DATA_DIR") or pooch.os_cache("topdown"))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch(name: str, path: str | os.PathLike | None = None, *, progressbar: bool = False,
          manifest_dir: str | os.PathLike | None = None) -> Path:
    """Download (once) and verify the files of dataset ``name``; return its folder.

    Parameters
    ----------
    name
        A name from :func:`list`.
    path
        Folder to put the dataset in (default ``<cache>/<name>``, see :func:`default_cache`).
    progressbar
        Show a download progress bar.
    manifest_dir
        Folder of manifests (default: the ones shipped with topdown).

    Returns
    -------
    The dataset folder, with every file of the manifest (archives unpacked next to them).

    Raises
    ------
    DataFileError
        The download failed, a checksum did not match (the bad file is removed), or the
        dataset needs a manual download (the message says what to put where).

    Examples
    --------
    >>> import topdown as td
    >>> outs = td.datasets.fetch("visium_mouse_brain_he")  # doctest: +SKIP
    >>> adata = td.io.read_visium(outs)  # doctest: +SKIP
    """
    import pooch

    info = manifest(name, manifest_dir=manifest_dir)
    folder = Path(path) if path is not None else default_cache() / info["name"]
    folder.mkdir(parents=True, exist_ok=True)
    if info.get("access") == "manual":
        missing = [f["name"] for f in info["files"] if not (folder / f["name"]).exists()]
        if missing:
            raise DataFileError(
                f"dataset {name!r} cannot be downloaded automatically ({info.get('homepage', 'see manifest')}); "
                f"put {', '.join(missing)} into '{folder}' and call fetch again."
            )
        for entry in info["files"]:
            _verify(folder, entry, name)
        return folder
    for entry in info["files"]:
        target = folder / entry["name"]
        known = entry.get("sha256")
        try:
            pooch.retrieve(
                url=entry["url"],
                known_hash=f"sha256:{known}" if known else None,
                fname=target.name,
                path=target.parent,
                progressbar=progressbar,
            )
        except ValueError as exc:  # pooch: hash mismatch (it deletes the bad download)
            raise DataFileError(
                f"checksum mismatch for {entry['name']} of dataset {name!r}: the download is corrupt or the "
                f"file changed upstream; nothing was kept. Retry, or update sha256 in the manifest. ({exc})"
            ) from exc
        except Exception as exc:  # network errors from requests / urllib
            raise DataFileError(
                f"could not download {entry['url']} ({type(exc).__name__}: {exc}). Check the connection, or "
                f"download it by hand to '{target}' and call fetch again."
            ) from exc
        _verify(folder, entry, name)
        if entry.get("unpack"):
            _unpack(target, entry["unpack"])
    return folder


def _verify(folder: Path, entry: dict[str, Any], dataset: str) -> None:
    """Check a cached file against its pinned sha256, or its sha256 recorded at first download.

    An unpinned file seen for the first time has its sha256 recorded in ``folder/HASH_RECORD``.
    """
    from .._files import atomic_write_text

    target = folder / entry["name"]
    digest = _sha256(target)
    record_path = folder / HASH_RECORD
    try:
        record = json.loads(record_path.read_text()) if record_path.exists() else {}
    except ValueError:
        record = None
    if not isinstance(record, dict):
        raise DataFileError(f"the checksum record '{record_path}' is corrupt; delete the folder '{folder}' to "
                            f"download dataset {dataset!r} again.")
    expected, source = entry.get("sha256"), "pinned in the manifest"
    if not expected:
        expected, source = record.get(entry["name"]), f"recorded at its first download in '{record_path}'"
    if expected is None:
        record[entry["name"]] = digest
        atomic_write_text(record_path, json.dumps(record, indent=2, sort_keys=True) + "\n")
        log.info("%s: sha256 %s recorded (not pinned in the manifest; later calls verify it)", entry["name"], digest)
    elif digest != expected:
        raise DataFileError(
            f"'{target}' of dataset {dataset!r} has sha256 {digest[:16]}..., not the {expected[:16]}... {source}: "
            f"the cached file was changed or corrupted and is not used. Delete it to download it again.")


def _unpack(archive: Path, kind: str) -> None:
    """Unpack ``archive`` next to itself once (a marker file records that it was done)."""
    import tarfile
    import zipfile

    marker = archive.with_name(f".{archive.name}.unpacked")
    if marker.exists():
        return
    dest = archive.parent
    if kind == "tar":
        try:
            with tarfile.open(archive) as tar:
                for member in tar.getmembers():  # all checked before anything is extracted
                    if Path(member.name).is_absolute() or ".." in Path(member.name).parts:
                        raise tarfile.FilterError(f"{member.name!r} would be written outside '{dest}'")
                    tarfile.data_filter(member, str(dest))  # links out, device files, odd modes
                tar.extractall(dest, filter="data")
        except tarfile.FilterError as exc:
            raise DataFileError(f"archive '{archive}' has an unsafe member ({exc}); nothing was extracted.") from exc
        except tarfile.TarError as exc:
            raise DataFileError(f"archive '{archive}' is not a readable tar file ({exc}); delete it to download "
                                "it again.") from exc
    else:
        with zipfile.ZipFile(archive) as zf:
            for member in zf.namelist():
                if Path(member).is_absolute() or ".." in Path(member).parts:
                    raise DataFileError(f"archive '{archive}' has an unsafe member {member!r}")
            zf.extractall(dest)
    marker.touch()
