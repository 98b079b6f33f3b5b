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


MAX_FUNCTION_LINES = 80
#: functions allowed to be longer for now, each with the issue that splits it
LONG_FOR_NOW: dict[str, str] = {}


def function_code_lines(root: Path = PACKAGE) -> dict[str, int]:
    """``{"path:function": code lines}``: lines of each function (nested ones counted in their
    parent too) that are not blank, not comment-only and not its docstring."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            doc = set()
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                doc = set(range(first.lineno, first.end_lineno + 1))
            n = sum(1 for i in range(node.lineno, node.end_lineno + 1) if i not in doc
                    and lines[i - 1].strip() and not lines[i - 1].strip().startswith("#"))
            key = f"{path.relative_to(root.parent)}:{node.name}"
            found[key] = max(n, found.get(key, 0))  # same-named functions of a file: the longest
    return found


def test_function_lines_are_counted(tmp_path):
    pkg = tmp_path / "topdown"
    pkg.mkdir()
    (pkg / "m.py").write_text('def f():\n    """Doc\n    string."""\n\n    # note\n    a = 1\n    return a\n')
    assert function_code_lines(pkg) == {"topdown/m.py:f": 3}


def test_no_function_is_longer_than_80_code_lines():
    lengths = function_code_lines()
    too_long = {k: n for k, n in lengths.items() if n > MAX_FUNCTION_LINES and k not in LONG_FOR_NOW}
    assert not too_long, f"split these functions (at most {MAX_FUNCTION_LINES} code lines): {too_long}"
    still_long = {k for k in LONG_FOR_NOW if lengths.get(k, 0) > MAX_FUNCTION_LINES}
    assert still_long == set(LONG_FOR_NOW), f"remove {set(LONG_FOR_NOW) - still_long} from LONG_FOR_NOW"


#: what each package may import (besides the shared root modules: errors, _files, _progress,
#: _version, _modalities, _limits, _image: the one image-to-uint8 rule io and seg share); no arrow points back up: sim -> seg -> get -> tl, io -> pl -> _demo -> cli
MAY_IMPORT = {
    "sim": set(),
    "seg": {"sim"},
    "get": {"seg"},
    "tl": {"get", "seg"},
    "io": {"get", "seg"},
    "pl": {"get", "seg", "tl", "io"},
    "_demo": {"sim", "seg", "get", "tl", "io", "pl"},
    "datasets": {"sim", "_demo"},
    "cli": {"sim", "seg", "get", "tl", "io", "pl", "datasets", "_demo"},
}


def package_imports(root: Path = PACKAGE) -> dict[str, set[str]]:
    """``{package: the other subpackages it imports}`` (subpackages are the folders of ``root``)."""
    found: dict[str, set[str]] = {}
    for path in sorted(root.rglob("*.py")):
        own = path.relative_to(root).parts[0]
        if not (root / own).is_dir():
            continue
        for _, name in _imported(root, path):
            if len(name) > 1 and name[1] != own and (root / name[1]).is_dir():
                found.setdefault(own, set()).add(name[1])
    return found


def test_packages_import_only_the_layers_below():
    imports = package_imports()
    assert set(imports) <= set(MAY_IMPORT), f"add {set(imports) - set(MAY_IMPORT)} to MAY_IMPORT"
    wrong = {pkg: sorted(used - MAY_IMPORT[pkg]) for pkg, used in imports.items() if used - MAY_IMPORT[pkg]}
    assert not wrong, f"imports against the layering: {wrong}"
    assert "get" in imports["tl"] and "seg" in imports["get"]  # the scan sees the real imports
