"""The simulated-dataset folder: reading (:class:`SimDataset`) and writing (:class:`DatasetWriter`).

Layout of a dataset folder (see the seams contract)::

    DIR/
      spec.yaml          the TissueSpec
      dataset.json       format, classes, colours, modality, size, pixel size, spec hash, seed
      manifest.jsonl     one JSON record per COMPLETED frame (appended last, fsynced)
      images/frame_000007.png   RGB uint8
      masks/frame_000007.png    uint8 region labels (0 = outside, k = classes[k-1])
      nuclei/frame_000007.tif   uint32 nucleus instance ids (0 = none)

A frame's files are written to temporary names and renamed into place before its record is
appended to the manifest, so an interrupted run never lists a half-written frame, and a
resumed run skips exactly the frames that are listed.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .._files import atomic_path, atomic_write_text, writable_dir
from ..errors import DataFileError, OutputError

FORMAT = "topdown.simdataset"
VERSION = 1
MANIFEST = "manifest.jsonl"
INFO = "dataset.json"
SPEC = "spec.yaml"


def frame_id(index: int) -> str:
    """File stem of frame ``index`` (``frame_000007``)."""
    return f"frame_{int(index):06d}"


def frame_seed(base_seed: int, index: int) -> int:
    """Seed of frame ``index``: a deterministic function of the base seed and the index.

    Resuming or appending therefore reproduces exactly the frames a single run would make.
    """
    return int((int(base_seed) * 1_000_003 + int(index)) % (2**31 - 1))


def _read_manifest(path: Path) -> list[dict[str, Any]]:
    records: dict[int, dict[str, Any]] = {}
    if not path.exists():
        return []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                # a torn last line from a crash mid-append: the frame is not complete
                continue
            records[int(rec["index"])] = rec
    return [records[i] for i in sorted(records)]


class SimDataset:
    """A simulated dataset folder (images, region masks, nucleus masks, manifest).

    Parameters
    ----------
    path
        Folder written by :func:`topdown.sim.simulate`.

    Attributes
    ----------
    path, classes, colors, modality, pixel_size_um, size, spec_hash, seed, records

    Examples
    --------
    >>> import topdown as td
    >>> ds = td.sim.SimDataset("sims/ob")  # doctest: +SKIP
    >>> image, regions, nuclei, meta = ds[0]  # doctest: +SKIP
    >>> len(ds), ds.classes  # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path).expanduser()
        info_path = self.path / INFO
        if not info_path.exists():
            raise DataFileError(
                f"'{self.path}' is not a simulated dataset (no {INFO}); "
                "pass the --out folder of `topdown simulate`.")
        try:
            info = json.loads(info_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise DataFileError(f"cannot read '{info_path}': {exc}; re-run `topdown simulate`.") from exc
        if info.get("format") != FORMAT:
            raise DataFileError(f"'{info_path}' is not a {FORMAT} file (format={info.get('format')!r}).")
        self.info: dict[str, Any] = info
        self.name: str = info.get("name", "")
        self.classes: list[str] = list(info["classes"])
        self.colors: dict[str, str] = dict(info.get("colors", {}))
        self.modality: str = info.get("modality", "he")
        self.size: int = int(info.get("size", 0))
        self.pixel_size_um: float = float(info.get("pixel_size_um", 1.0))
        self.spec_hash: str = info.get("spec_hash", "")
        self.seed: int = int(info.get("seed", 0))
        self.records: list[dict[str, Any]] = _read_manifest(self.path / MANIFEST)
        self._spec = None

    # -- reading -------------------------------------------------------------------------
    @property
    def spec(self):
        """The :class:`~topdown.sim.TissueSpec` the frames were made from (read from spec.yaml)."""
        if self._spec is None:
            from .spec import TissueSpec

            self._spec = TissueSpec.from_yaml(self.path / SPEC)
        return self._spec

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, dict]]:
        for i in range(len(self)):
            yield self[i]

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """``(image HxWx3 uint8, region mask HxW uint8, nucleus ids HxW uint32, record)``."""
        if not -len(self) <= i < len(self):
            raise IndexError(f"frame {i} out of range (dataset has {len(self)} frames)")
        rec = self.records[i]
        return (self.read_image(rec), self.read_mask(rec), self.read_nuclei(rec), dict(rec))

    def read_image(self, rec: dict[str, Any]) -> np.ndarray:
        from PIL import Image

        with Image.open(self.path / rec["image"]) as im:
            return np.asarray(im.convert("RGB"))

    def read_mask(self, rec: dict[str, Any]) -> np.ndarray:
        from PIL import Image

        with Image.open(self.path / rec["mask"]) as im:
            return np.asarray(im).astype(np.uint8, copy=False)

    def read_nuclei(self, rec: dict[str, Any]) -> np.ndarray:
        import tifffile

        return tifffile.imread(self.path / rec["nuclei"]).astype(np.uint32, copy=False)

    def done_indices(self) -> set[int]:
        """Indices of the completed frames."""
        return {int(r["index"]) for r in self.records}

    def __repr__(self) -> str:
        return (f"SimDataset('{self.path}', name={self.name!r}, n={len(self)}, modality={self.modality!r}, "
                f"size={self.size}, pixel_size_um={self.pixel_size_um}, classes={self.classes})")


# -- writing -------------------------------------------------------------------------------
def _png_bytes(array: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _tif_bytes(array: np.ndarray) -> bytes:
    import tifffile

    buf = io.BytesIO()
    tifffile.imwrite(buf, np.ascontiguousarray(array, dtype=np.uint32), compression="zlib")
    return buf.getvalue()


class DatasetWriter:
    """Creates or reopens a dataset folder and adds complete frames to it (single writer).

    Parameters
    ----------
    path
        Output folder (created if needed; checked writable before any work).
    spec
        The TissueSpec (must have ``to_yaml``, ``hash``, ``name``, ``classes``, ``colors``).
    modality, size, pixel_size_um, seed
        Dataset-wide settings recorded in dataset.json.

    Raises
    ------
    OutputError
        The folder is not writable, or it already holds a dataset made from a different
        spec or with different settings (append only to a matching dataset).

    Examples
    --------
    >>> w = DatasetWriter("sims/ob", spec, modality="he", size=128, pixel_size_um=2.0, seed=7)  # doctest: +SKIP
    >>> w.write_frame(0, image, regions, nuclei, record)  # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike, spec, *, modality: str, size: int,
                 pixel_size_um: float, seed: int) -> None:
        self.path = writable_dir(path)
        info = {
            "format": FORMAT, "version": VERSION, "name": spec.name,
            "classes": list(spec.classes), "colors": dict(spec.colors),
            "modality": modality, "size": int(size), "pixel_size_um": float(pixel_size_um),
            "spec_hash": spec.hash(), "seed": int(seed),
        }
        info_path = self.path / INFO
        if info_path.exists():
            try:
                old = json.loads(info_path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise OutputError(f"'{info_path}' is unreadable ({exc}); choose an empty --out folder.") from exc
            diffs = [k for k in ("format", "spec_hash", "modality", "size", "pixel_size_um", "seed", "classes")
                     if old.get(k) != info[k]]
            if diffs:
                what = ", ".join(f"{k}: {old.get(k)!r} -> {info[k]!r}" for k in diffs)
                raise OutputError(
                    f"'{self.path}' already holds a dataset made with different settings ({what}); "
                    "use a new --out folder, or the same spec and settings to resume/append.")
        else:
            stray = [p.name for p in self.path.iterdir() if not p.name.startswith(".")]
            if MANIFEST in stray:
                raise OutputError(f"'{self.path}' has a manifest but no {INFO}; choose an empty --out folder.")
            for sub in ("images", "masks", "nuclei"):
                (self.path / sub).mkdir(exist_ok=True)
            spec.to_yaml(self.path / SPEC)
            atomic_write_text(info_path, json.dumps(info, indent=2) + "\n")
        for sub in ("images", "masks", "nuclei"):
            (self.path / sub).mkdir(exist_ok=True)
        self.info = info
        _repair_manifest(self.path / MANIFEST)
        self._done = {int(r["index"]) for r in _read_manifest(self.path / MANIFEST)}

    @property
    def done(self) -> set[int]:
        """Indices already complete (listed in the manifest)."""
        return set(self._done)

    def write_frame(self, index: int, image: np.ndarray, region_mask: np.ndarray,
                    nuclei_mask: np.ndarray, record: dict[str, Any]) -> dict[str, Any]:
        """Write one frame's files atomically, then append its record to the manifest.

        Returns the full record as written. A crash before the manifest append leaves at most
        stray files that a resumed run overwrites; the frame is not listed.
        """
        fid = frame_id(index)
        rel = {"image": f"images/{fid}.png", "mask": f"masks/{fid}.png", "nuclei": f"nuclei/{fid}.tif"}
        payloads = {"image": _png_bytes(np.asarray(image, dtype=np.uint8)),
                    "mask": _png_bytes(np.asarray(region_mask, dtype=np.uint8)),
                    "nuclei": _tif_bytes(nuclei_mask)}
        for key, data in payloads.items():
            with atomic_path(self.path / rel[key]) as tmp:
                _write_synced(tmp, data)
        full = {"index": int(index), "id": fid, **rel, **record}
        full.update({"index": int(index), "id": fid, **rel})
        line = json.dumps(full, sort_keys=False, default=_json_default) + "\n"
        try:
            with open(self.path / MANIFEST, "a", encoding="utf-8") as fh:
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise OutputError(f"cannot append to '{self.path / MANIFEST}' ({exc}); free space and re-run "
                              "the same command to resume.") from exc
        self._done.add(int(index))
        return full


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _repair_manifest(path: Path) -> None:
    """Cut a torn last line (crash mid-append) so the next record starts on its own line."""
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        keep = data[: data.rfind(b"\n") + 1]
        with open(path, "r+b") as fh:
            fh.truncate(len(keep))
            fh.flush()
            os.fsync(fh.fileno())


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")
