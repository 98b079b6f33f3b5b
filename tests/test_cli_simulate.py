"""`topdown simulate` end to end (real Blender): reproducibility, provenance, bad input."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import BPY_VERSION

from topdown.cli import main
from topdown.sim.dataset import SimDataset

pytestmark = pytest.mark.blender


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TOPDOWN_NO_PROGRESS": "1"}
    return subprocess.run([sys.executable, "-m", "topdown", "simulate", *args], env=env,
                          capture_output=True, text=True, timeout=300)


def test_same_command_twice_gives_identical_frames(tmp_path):
    outs = [tmp_path / "a", tmp_path / "b"]
    for out in outs:
        res = _cli("--preset", "olfactory_bulb", "--n", "4", "--size", "128", "--seed", "7", "--out", str(out))
        assert res.returncode == 0, res.stderr
        assert "4 frames" in res.stdout
    a, b = SimDataset(outs[0]), SimDataset(outs[1])
    assert len(a) == len(b) == 4
    for i in range(4):
        ia, ra, na, ma = a[i]
        ib, rb, nb, mb = b[i]
        assert np.abs(ia.astype(int) - ib).max() <= 1
        assert (ra == rb).all() and (na == nb).all()
        assert ma["renderer"] == "blender-cycles" and ma["blender_version"] == BPY_VERSION
        assert ma["seed"] == mb["seed"] and ma["params"] == mb["params"]
        assert len(np.unique(ra[ra > 0])) >= 2, "several classes per frame"
        assert len(ma["classes_present"]) >= 2


def test_unknown_preset_exit_2_one_line_nothing_written(tmp_path):
    out = tmp_path / "never"
    res = _cli("--preset", "no_such_tissue", "--n", "2", "--out", str(out))
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "no_such_tissue" in lines[0] and "Traceback" not in res.stderr
    assert not out.exists()


def test_unwritable_output_and_missing_spec_exit_2(tmp_path, capsys):
    afile = tmp_path / "file"
    afile.write_text("x")
    assert main(["simulate", "--preset", "olfactory_bulb", "--n", "1", "--out", str(afile / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "error" in err[0]
    assert main(["simulate", "--spec", str(tmp_path / "missing.yaml"), "--n", "1",
                 "--out", str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o").exists()
    assert main(["simulate", "--preset", "olfactory_bulb", "--n", "1"]) == 2  # --out missing


def test_help_has_example(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["simulate", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "topdown simulate --preset olfactory_bulb" in out and "--scheduler" in out


def test_spec_file_dapi_pixel_size(tmp_path):
    from topdown.sim.presets import load_preset

    spec = tmp_path / "tissue.yaml"
    load_preset("sciatic_nerve").to_yaml(spec)
    out = tmp_path / "ds"
    assert main(["simulate", "--spec", str(spec), "--n", "1", "--size", "64", "--modality", "dapi",
                 "--pixel-size", "4", "--out", str(out)]) == 0
    ds = SimDataset(out)
    assert ds.modality == "dapi" and ds.pixel_size_um == 4.0 and ds.size == 64
    image = ds[0][0]
    assert (image[..., 0] == image[..., 2]).all()
