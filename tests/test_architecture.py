"""The package's seams: no package reaches into another one's private modules."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "topdown"


def _is_module(root: Path, parts: list[str]) -> bool:
    """Whether ``topdown.<parts>`` is a module or package of the source tree ``root``."""
    path = root.joinpath(*parts)
    return path.is_dir() or path.with_suffix(".py").exists()


def _imported(root: Path, path: Path) -> list[tuple[int, list[str]]]:
    """``(line, dotted name split)`` of every topdown module or name imported by ``path``."""
    rel = list(path.relative_to(root.parent).with_suffix("").parts)
    package = rel[:-1]  # the package a relative import starts from (also right for __init__)
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = base + (node.module.split(".") if node.module else [])
            found += [(node.lineno, module + [alias.name]) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")) for alias in node.names]
    return [(line, name) for line, name in found if name[0] == "topdown"]


def private_cross_package_imports(root: Path = PACKAGE) -> list[str]:
    """Imports of another subpackage's private module: ``topdown.X._y`` imported outside
    ``topdown.X`` (or any module inside a private subpackage ``topdown._X``, whose face is its
    ``__init__``). The root's own helpers (``topdown._files``, ...) are shared by all."""
    bad = []
    for path in sorted(root.rglob("*.py")):
        own = path.relative_to(root).parts[0]
        for line, name in _imported(root, path):
            sub, below = name[1], name[2:]
            if sub == own or not (root / sub).is_dir():
                continue
            modules = [part for i, part in enumerate(below, start=1) if _is_module(root, name[1:i + 2])]
            if any(m.startswith("_") for m in modules) or (sub.startswith("_") and modules):
                bad.append(f"{path.relative_to(root.parent)}:{line}: {'.'.join(name)}")
    return bad


def test_the_scan_sees_private_imports(tmp_path):
    """The scan flags what it must (so that the zero below means something)."""
    pkg = tmp_path / "topdown"
    for d in ("tl", "io", "_demo"):
        (pkg / d).mkdir(parents=True)
        (pkg / d / "__init__.py").write_text("")
    (pkg / "tl" / "_library.py").write_text("")
    (pkg / "_demo" / "pipeline.py").write_text("")
    (pkg / "_files.py").write_text("")
    (pkg / "io" / "a.py").write_text(
        "from ..tl._library import x\nfrom topdown.tl import _library\nimport topdown.tl._library\n"
        "from .._demo.pipeline import run\n"
        "from ..tl import public_name\nfrom .._files import ok\nfrom .._demo import run_demo\n")
    (pkg / "tl" / "b.py").write_text("from ._library import x\nfrom ..tl._library import y\n")
    found = [s.split(": ")[1] for s in private_cross_package_imports(pkg)]
    assert found == ["topdown.tl._library.x", "topdown.tl._library", "topdown.tl._library",
                     "topdown._demo.pipeline.run"]


def test_no_private_cross_package_imports():
    assert private_cross_package_imports() == []
