"""The `topdown` command: help for every sub-command, version, python -m, user errors exit 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from topdown.cli import COMMANDS, build_parser, main


def _sub_actions():
    parser = build_parser()
    return next(a for a in parser._actions if a.dest == "command").choices


def test_every_api_command_is_registered():
    assert set(_sub_actions()) == set(COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_subcommand_help_has_example(name, capsys):
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert f"topdown {name}" in out and "xample" in out, out


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_python_dash_m_and_version():
    res = subprocess.run([sys.executable, "-m", "topdown", "--version"], capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.startswith("topdown ")


def test_output_file_refuses_to_overwrite_an_input(tmp_path):
    from topdown._files import output_file
    from topdown.errors import OutputError

    src = tmp_path / "in.h5ad"
    src.write_bytes(b"data")
    with pytest.raises(OutputError, match="refusing to overwrite the input"):
        output_file(tmp_path / "." / "in.h5ad", inputs=(src,))
    assert src.read_bytes() == b"data"
    assert output_file(tmp_path / "out.h5ad", inputs=(src,)).name == "out.h5ad"


def test_atomic_outputs_get_the_usual_permissions(tmp_path):
    """Outputs are not left 0600 by mkstemp, even when the writer recreates the file."""
    import os
    import stat

    import torch

    import topdown as td
    from topdown._files import _UMASK, atomic_write_bytes
    from topdown.seg.checkpoint import save

    atomic_write_bytes(tmp_path / "a.bin", b"x")
    torch.manual_seed(0)
    save(td.seg.SegModel(["a"], pixel_size_um=2.0, widths=(8, 16)), tmp_path / "m.safetensors")
    for name in ("a.bin", "m.safetensors"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o666 & ~_UMASK, name
