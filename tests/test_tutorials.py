"""Execute every tutorial notebook on small settings; the notebooks assert their own sanity."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((REPO / "tutorials").glob("*.ipynb"))
NEEDS_SHARED = {"03_annotate_visium.ipynb", "05_merfish_dapi.ipynb"}


@pytest.mark.slow
@pytest.mark.parametrize("path", TUTORIALS, ids=[p.name for p in TUTORIALS])
def test_tutorial_runs(path, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    from conftest import SHARED_DATA

    if path.name in NEEDS_SHARED and not SHARED_DATA.exists():
        pytest.skip(f"{path.name} needs the real data in {SHARED_DATA}")
    monkeypatch.setenv("TOPDOWN_TUTORIAL_QUICK", "1")
    monkeypatch.setenv("TOPDOWN_TUTORIAL_WORK", str(tmp_path / "work"))
    monkeypatch.setenv("TOPDOWN_SHARED_DATA", str(SHARED_DATA))
    monkeypatch.setenv("TOPDOWN_NO_PROGRESS", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors, errors
    assert os.path.exists(tmp_path / "work")
