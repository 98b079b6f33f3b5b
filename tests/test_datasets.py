"""td.datasets: shipped manifests are complete; fetch downloads from a localhost server,
verifies checksums, unpacks and caches (never the internet)."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import tarfile
import threading
from pathlib import Path

import pytest
import yaml

import topdown as td
from topdown.errors import DataFileError, InputError

PRESETS = {"mouse_brain_coronal", "spinal_cord", "sciatic_nerve", "olfactory_bulb", "cortex_laminar"}


def test_shipped_manifests_are_complete():
    names = td.datasets.list()
    assert len(names) >= 6
    table = td.datasets.list(details=True)
    assert set(table.index) == set(names)
    for name in names:
        m = td.datasets.manifest(name)
        assert m["suggested_preset"] in PRESETS, name
        assert m["license"] and m["citation"], name
        for f in m["files"]:
            if m.get("access") != "manual":
                assert f["url"].startswith("https://"), (name, f)


def test_unknown_dataset_lists_available():
    with pytest.raises(InputError, match="available: .*visium_mouse_brain_he"):
        td.datasets.manifest("no_such_dataset")


class _Server:
    """A localhost HTTP server over a folder that counts requests."""

    def __init__(self, root: Path):
        self.requests: list[str] = []
        outer = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *a, **k):
                super().__init__(*a, directory=str(root), **k)

            def do_GET(self):  # noqa: N802
                outer.requests.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def served(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    payload = b"barcode,in_tissue\nAAAC-1,1\n"
    (root / "positions.csv").write_bytes(payload)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("spatial/scalefactors_json.json")
        data = b'{"tissue_lowres_scalef": 0.03}'
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    (root / "spatial.tar.gz").write_bytes(buf.getvalue())
    with _Server(root) as server:
        yield server, hashlib.sha256(payload).hexdigest(), hashlib.sha256(buf.getvalue()).hexdigest()


def _write_manifest(folder: Path, url: str, sha_csv: str | None, sha_tar: str | None) -> Path:
    folder.mkdir(exist_ok=True)
    manifest = {
        "name": "tiny", "title": "tiny test set", "technology": "visium", "tissue": "none",
        "modality": "he", "suggested_preset": "mouse_brain_coronal", "reader": "read_visium",
        "license": "CC0", "citation": "none",
        "files": [
            {"name": "positions.csv", "url": f"{url}/positions.csv", "sha256": sha_csv},
            {"name": "spatial.tar.gz", "url": f"{url}/spatial.tar.gz", "sha256": sha_tar, "unpack": "tar"},
        ],
    }
    (folder / "tiny.yaml").write_text(yaml.safe_dump(manifest))
    return folder


def test_fetch_downloads_verifies_unpacks_and_caches(tmp_path, served):
    server, sha_csv, sha_tar = served
    mdir = _write_manifest(tmp_path / "manifests", server.url, sha_csv, sha_tar)
    out = td.datasets.fetch("tiny", tmp_path / "data", manifest_dir=mdir)
    assert (out / "positions.csv").read_bytes().startswith(b"barcode")
    assert (out / "spatial" / "scalefactors_json.json").exists()
    assert len(server.requests) == 2
    td.datasets.fetch("tiny", tmp_path / "data", manifest_dir=mdir)
    assert len(server.requests) == 2, "second fetch must come from the cache"


def test_fetch_checksum_mismatch_keeps_nothing(tmp_path, served):
    server, _, sha_tar = served
    mdir = _write_manifest(tmp_path / "manifests", server.url, "0" * 64, sha_tar)
    with pytest.raises(DataFileError, match="checksum mismatch for positions.csv"):
        td.datasets.fetch("tiny", tmp_path / "data", manifest_dir=mdir)
    assert not (tmp_path / "data" / "positions.csv").exists()


def test_fetch_unreachable_server_names_url(tmp_path):
    mdir = _write_manifest(tmp_path / "manifests", "http://127.0.0.1:9", None, None)
    with pytest.raises(DataFileError, match="could not download http://127.0.0.1:9/positions.csv"):
        td.datasets.fetch("tiny", tmp_path / "data", manifest_dir=mdir)


def test_manual_dataset_says_what_to_put_where(tmp_path):
    with pytest.raises(DataFileError, match="cannot be downloaded automatically.*cell_by_gene.csv"):
        td.datasets.fetch("vizgen_merfish_mouse_brain", tmp_path / "vz")


def _manifest_named(mdir: Path, name, url: str, files: list[tuple[str, str | None]]) -> None:
    data = yaml.safe_load((mdir / "tiny.yaml").read_text())
    data["name"] = name
    data["files"] = [{"name": f, "url": f"{url}/{f}", "sha256": sha, **({"unpack": "tar"} if f.endswith(".tar") else {})}
                     for f, sha in files]
    (mdir / "tiny.yaml").write_text(yaml.safe_dump(data))


@pytest.mark.parametrize("name", ["/abs/evil", "../escaped", "a/b", "..", 7])
def test_manifest_name_cannot_leave_the_cache(tmp_path, served, monkeypatch, name):
    server, *_ = served
    mdir = _write_manifest(tmp_path / "manifests", server.url, None, None)
    _manifest_named(mdir, str(name).replace("/abs", str(tmp_path)) if isinstance(name, str) else name, server.url,
                    [("positions.csv", None)])
    monkeypatch.setenv("TOPDOWN_DATA_DIR", str(tmp_path / "cache" / "inner"))
    with pytest.raises(DataFileError, match="must be a plain folder name"):
        td.datasets.fetch(str(name), manifest_dir=mdir)
    assert not server.requests and not (tmp_path / "cache").exists() and not (tmp_path / "evil").exists()


def test_unpinned_files_are_verified_against_the_first_download(tmp_path, served):
    server, sha_csv, _ = served
    mdir = _write_manifest(tmp_path / "manifests", server.url, None, None)
    out = td.datasets.fetch("tiny", tmp_path / "data", manifest_dir=mdir)
    record = json.loads((out / ".topdown-sha256.json").read_text())
    assert record["positions.csv"] == sha_csv and set(record) == {"positions.csv", "spatial.tar.gz"}
    td.datasets.fetch("tiny", tmp_path / "data", manifest_dir=mdir)  # unchanged: served from the cache
    assert len(server.requests) == 2
    (out / "positions.csv").write_bytes(b"barcode,in_tissue\nEVIL-1,1\n")
    with pytest.raises(DataFileError, match="positions.csv' of dataset 'tiny' has sha256 .* recorded at its first"):
        td.datasets.fetch("tiny", tmp_path / "data", manifest_dir=mdir)
    (out / "positions.csv").unlink()  # as the message says: delete it to download it again
    td.datasets.fetch("tiny", tmp_path / "data", manifest_dir=mdir)
    assert (out / "positions.csv").read_bytes().startswith(b"barcode,in_tissue\nAAAC")


def test_manual_dataset_files_are_verified_too(tmp_path):
    folder = tmp_path / "vz"
    names = [f["name"] for f in td.datasets.manifest("vizgen_merfish_mouse_brain")["files"]]
    for n in names:
        (folder / n).parent.mkdir(parents=True, exist_ok=True)
        (folder / n).write_text(n)
    assert td.datasets.fetch("vizgen_merfish_mouse_brain", folder) == folder
    (folder / names[0]).write_text("changed")
    with pytest.raises(DataFileError, match="changed or corrupted"):
        td.datasets.fetch("vizgen_merfish_mouse_brain", folder)


@pytest.mark.parametrize("member", ["../../evil.txt", "/tmp/evil_abs.txt", "ok/../../evil.txt"])
def test_tar_traversal_is_refused_before_extracting(tmp_path, member):
    www = tmp_path / "www"
    www.mkdir()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in ("good.txt", member):
            info = tarfile.TarInfo(name)
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))
    (www / "evil.tar").write_bytes(buf.getvalue())
    with _Server(www) as server:
        mdir = _write_manifest(tmp_path / "manifests", server.url, None, None)
        _manifest_named(mdir, "tiny", server.url, [("evil.tar", None)])
        with pytest.raises(DataFileError, match="unsafe member.*nothing was extracted"):
            td.datasets.fetch("tiny", tmp_path / "a" / "b" / "data", manifest_dir=mdir)
    assert not (tmp_path / "a" / "b" / "data" / "good.txt").exists() and not list(tmp_path.rglob("evil.txt"))
