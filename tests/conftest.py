"""Shared fixtures. Tests that need ../shared/data skip with a reason when it is absent."""

from __future__ import annotations

import os
from importlib.metadata import version
from pathlib import Path

import pytest

os.environ.setdefault("TOPDOWN_NO_PROGRESS", "1")

REPO = Path(__file__).resolve().parents[1]
#: the installed bpy wheel: what renders must report (5.0.1 on Python 3.11, 5.3 on 3.13)
BPY_VERSION = version("bpy")
SHARED_DATA = Path(os.environ.get("TOPDOWN_SHARED_DATA", REPO.parent / "shared" / "data"))


def load_benchmark(name: str):
    """Import ``benchmarks/<name>.py`` (not a package) as module ``name``."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _shared(sub: str) -> Path:
    path = SHARED_DATA / sub
    if not path.exists():
        pytest.skip(f"real data '{path}' is absent (a fresh clone has no ../shared/data)")
    return path


@pytest.fixture(scope="session")
def visium_outs() -> Path:
    """Space Ranger outs of the real 10x Visium adult mouse brain section."""
    return _shared("visium_mouse_brain_v1/outs")


@pytest.fixture
def merfish_mini() -> Path:
    """The real Vizgen MERFISH mouse brain mini crop (GiottoData layout)."""
    return _shared("merfish_mouse_brain_mini")


@pytest.fixture
def prostate_visium() -> Path:
    """Real 10x Visium prostate, one normal and one cancer section (no images)."""
    return _shared("visium_prostate_normal_vs_cancer")


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread: the suite shares 2 cores; more threads only add spin-waiting."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def real_dev() -> Path:
    """Real sections with expert region labels (for scoring only; see its README)."""
    return _shared("real_dev")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A small, untrained but complete SegModel checkpoint (exercises the real inference path)."""
    import torch

    import topdown as td

    torch.manual_seed(0)
    model = td.seg.SegModel(["cortex", "hippocampus", "thalamus"], pixel_size_um=20.0,
                            name="tiny_untrained", widths=(8, 16))
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    td.seg.save(model, path)
    return path
