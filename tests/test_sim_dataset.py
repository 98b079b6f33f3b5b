"""simulate() + SimDataset: every preset and modality, resume after a kill, append, dask, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import BPY_VERSION

import topdown as td
from topdown.errors import DataFileError, InputError, OutputError
from topdown.sim.dataset import MANIFEST, SimDataset, frame_seed

pytestmark = pytest.mark.blender
SIZE = 64


def _manifest_lines(path: Path) -> list[str]:
    return (path / MANIFEST).read_text().splitlines()


@pytest.mark.parametrize("modality", ["he", "dapi"])
@pytest.mark.parametrize("preset", td.sim.presets())
def test_every_preset_and_modality(tmp_path, preset, modality):
    ds = td.sim.simulate(preset, n=1, out=tmp_path / "ds", size=SIZE, modality=modality, seed=2)
    assert len(ds) == 1 and ds.modality == modality and ds.classes == td.sim.load_preset(preset).classes
    image, regions, nuclei, meta = ds[0]
    assert image.shape == (SIZE, SIZE, 3) and image.dtype == np.uint8
    assert regions.shape == (SIZE, SIZE) and regions.dtype == np.uint8
    assert nuclei.dtype == np.uint32 and nuclei.shape == (SIZE, SIZE)
    assert regions.max() <= len(ds.classes) and meta["classes_present"]
    assert meta["renderer"] == "blender-cycles" and meta["blender_version"] == BPY_VERSION
    assert meta["seed"] == frame_seed(2, 0) and meta["n_nuclei"] > 0
    assert {"layout", "render", "artefacts"} <= set(meta["params"])
    # nuclei absorb on H&E (darker than glass) and glow on DAPI (brighter than the background);
    # comparing whole tissue would fail where only pale fat is in view
    stained, glass = nuclei > 0, regions == 0
    if stained.sum() > 5 and glass.sum() > 20:
        bright = image[glass].mean() > image[stained].mean()
        assert bright == (modality == "he")
    reopened = SimDataset(tmp_path / "ds")
    assert reopened.records == ds.records and reopened.spec.name == preset


def test_append_continues_and_refuses_other_spec(tmp_path):
    out = tmp_path / "ds"
    td.sim.simulate("olfactory_bulb", n=2, out=out, size=SIZE, seed=1)
    first = _manifest_lines(out)
    ds = td.sim.simulate("olfactory_bulb", n=3, out=out, size=SIZE, seed=1)
    assert [r["index"] for r in ds.records] == [0, 1, 2]
    assert _manifest_lines(out)[:2] == first  # old frames untouched
    with pytest.raises(OutputError, match="different settings"):
        td.sim.simulate("spinal_cord", n=1, out=out, size=SIZE, seed=1)
    with pytest.raises(OutputError, match="different settings"):
        td.sim.simulate("olfactory_bulb", n=4, out=out, size=SIZE * 2, seed=1)


def _simulate_then_kill(out: Path, n: int, *, frames: int, workers: int = 1, wait_s: float = 120) -> list[int]:
    """Run ``simulate`` in a subprocess and SIGKILL it once ``frames`` frames are recorded.

    Returns the pids of its child processes just before the kill (empty where Linux's
    ``/proc/<pid>/task/<pid>/children`` is missing).
    """
    code = (f"import topdown as td; td.sim.simulate('olfactory_bulb', n={n}, out={str(out)!r}, "
            f"size={SIZE}, seed=5, workers={workers})")
    proc = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "TOPDOWN_NO_PROGRESS": "1"})
    children: list[int] = []
    try:
        deadline = time.time() + wait_s
        while time.time() < deadline and not ((out / MANIFEST).exists() and len(_manifest_lines(out)) >= frames):
            time.sleep(0.05)
        listing = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
        if listing.exists():
            children = [int(pid) for pid in listing.read_text().split()]
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    return children


def test_resume_after_killed_run(tmp_path):
    out = tmp_path / "ds"
    _simulate_then_kill(out, 40, frames=2)
    before = _manifest_lines(out)
    assert 2 <= len(before) < 40, "the run should have been killed part-way"
    # a half-written frame: files of the next frame exist but it has no record
    nxt = len(before)
    (out / "images" / f"frame_{nxt:06d}.png").write_bytes(b"garbage")
    ds = td.sim.simulate("olfactory_bulb", n=nxt + 2, out=out, size=SIZE, seed=5)
    after = _manifest_lines(out)
    assert after[:len(before)] == before  # finished frames were not redone
    assert [r["index"] for r in ds.records] == list(range(nxt + 2))
    image, *_ = ds[nxt]  # the stray file was overwritten by a real frame
    assert image.shape == (SIZE, SIZE, 3)
    # same frames as an uninterrupted run
    fresh = td.sim.simulate("olfactory_bulb", n=nxt + 2, out=tmp_path / "fresh", size=SIZE, seed=5)
    for i in (0, nxt):
        assert np.abs(fresh[i][0].astype(int) - ds[i][0]).max() <= 1
        assert (fresh[i][1] == ds[i][1]).all() and (fresh[i][2] == ds[i][2]).all()


def test_workers_end_when_the_parent_is_killed(tmp_path):
    if not Path(f"/proc/self/task/{os.getpid()}/children").exists():
        pytest.skip("needs Linux /proc/<pid>/task/<pid>/children to list the pool's workers")
    children = _simulate_then_kill(tmp_path / "ds", 200, frames=1, workers=2, wait_s=180)
    assert len(children) >= 2, "the pool's workers should have been running"
    def running(pid: int) -> bool:  # a zombie waiting for a reaper has stopped running
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except (FileNotFoundError, ProcessLookupError):
            return False

    deadline = time.time() + 30
    while time.time() < deadline and any(running(c) for c in children):
        time.sleep(0.2)
    alive = [c for c in children if running(c)]
    assert not alive, f"workers {alive} outlived their killed parent"


def test_torn_manifest_line_is_ignored_and_repaired(tmp_path):
    out = tmp_path / "ds"
    td.sim.simulate("sciatic_nerve", n=1, out=out, size=SIZE, seed=0)
    with open(out / MANIFEST, "a") as fh:
        fh.write('{"index": 1, "id": "frame_0000')  # crash mid-append
    assert len(SimDataset(out)) == 1
    ds = td.sim.simulate("sciatic_nerve", n=2, out=out, size=SIZE, seed=0)
    assert len(ds) == 2
    assert all(json.loads(line) for line in _manifest_lines(out))


def test_workers_pool_and_dask_give_the_same_frames(tmp_path):
    distributed = pytest.importorskip("distributed")
    local = td.sim.simulate("spinal_cord", n=2, out=tmp_path / "local", size=SIZE, seed=3)
    pooled = td.sim.simulate("spinal_cord", n=2, out=tmp_path / "pool", size=SIZE, seed=3, workers=2)
    with distributed.LocalCluster(n_workers=1, processes=True, threads_per_worker=1,
                                  dashboard_address=None) as cluster:
        dasked = td.sim.simulate("spinal_cord", n=2, out=tmp_path / "dask", size=SIZE, seed=3,
                                 scheduler=cluster.scheduler_address)
    for other in (pooled, dasked):
        assert len(other) == 2
        for i in range(2):
            assert np.abs(other[i][0].astype(int) - local[i][0]).max() <= 1
            assert (other[i][1] == local[i][1]).all()
            assert other[i][3]["blender_version"] == local[i][3]["blender_version"]


def test_bad_input_nothing_written(tmp_path):
    afile = tmp_path / "a_file"
    afile.write_text("x")
    with pytest.raises(OutputError):
        td.sim.simulate("olfactory_bulb", n=1, out=afile, size=SIZE)
    with pytest.raises(OutputError):
        td.sim.simulate("olfactory_bulb", n=1, out=afile / "sub", size=SIZE)
    for kwargs in ({"n": -1}, {"n": 1, "size": 4}, {"n": 1, "modality": "ihc"}, {"n": 1, "workers": 0}):
        with pytest.raises(InputError):
            td.sim.simulate("olfactory_bulb", out=tmp_path / "bad", **{"size": SIZE, **kwargs})
    assert not (tmp_path / "bad").exists()
    with pytest.raises(DataFileError):
        SimDataset(tmp_path)  # not a dataset


def test_disk_full_leaves_no_partial_frame(tmp_path, monkeypatch):
    import errno

    from topdown.sim import dataset as dsmod

    out = tmp_path / "ds"
    td.sim.simulate("olfactory_bulb", n=1, out=out, size=SIZE, seed=0)
    calls = []

    def full(path, data):
        calls.append(path)
        if len(calls) == 2:  # the second file of frame 1: half written, then the disk is full
            Path(path).write_bytes(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data)

    real = dsmod._write_synced
    monkeypatch.setattr(dsmod, "_write_synced", full)
    with pytest.raises(OutputError, match="disk full"):
        td.sim.simulate("olfactory_bulb", n=2, out=out, size=SIZE, seed=0)
    monkeypatch.setattr(dsmod, "_write_synced", real)
    assert len(SimDataset(out)) == 1
    assert not list(out.rglob("*.part"))  # no temporary left behind
    assert len(td.sim.simulate("olfactory_bulb", n=2, out=out, size=SIZE, seed=0)) == 2
