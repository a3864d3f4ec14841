"""The import graph is one-way (issue 19): apps and cli -> core -> hub's folder lookup; train -> core; hub -> nothing.

Every .py of the repository is parsed (ast, nothing imported), including imports inside functions.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = {"apps", "benchmarks", "cli", "core", "docs", "hub", "tests", "train", "app"}
# package -> the packages of ours it may import (itself always allowed)
ALLOWED = {
    "apps": {"core", "hub"},
    "cli": {"core", "hub"},
    "core": {"hub"},        # and only from core/loading.py (HUB_GATE)
    "hub": set(),
    "train": {"core", "hub"},
}
HUB_GATE = "core/loading.py"  # the one module of core that asks hub for a verified folder


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, top-level package) of every absolute import in the file (relative ones stay in their package)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module.split(".")[0]))
    return out


def package_files(package: str) -> list[Path]:
    return sorted(p for p in (ROOT / package).rglob("*.py") if "__pycache__" not in p.parts)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_point_one_way(package):
    bad = []
    for path in package_files(package):
        rel = path.relative_to(ROOT).as_posix()
        for line, target in imports_of(path):
            if target not in OURS or target == package:
                continue
            if target not in ALLOWED[package] or (package == "core" and target == "hub" and rel != HUB_GATE):
                bad.append(f"{rel}:{line} imports {target}")
    assert not bad, "imports against the one-way graph:\n  " + "\n  ".join(bad)


def test_core_never_imports_gradio():
    bad = [f"{p.relative_to(ROOT)}:{line}" for p in package_files("core") for line, target in imports_of(p)
           if target in {"gradio", "gradio_client"}]
    assert not bad, bad


def test_the_checker_sees_function_level_and_from_imports(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import os\nfrom hub.store import resolve\n\ndef f():\n    import apps.common\n"
                      "    from . import sibling\n")
    assert imports_of(sample) == [(1, "os"), (2, "hub"), (5, "apps")]


MAX_FUNCTION_LINES = 60  # issue 19: no function that scrolls for pages in the product code


def long_functions(packages=("core", "apps", "hub", "cli")) -> list[str]:
    """'path:line name (N lines)' of every function or method longer than MAX_FUNCTION_LINES."""
    out = []
    for package in packages:
        for path in package_files(package):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    n = node.end_lineno - node.lineno + 1
                    if n > MAX_FUNCTION_LINES:
                        out.append(f"{path.relative_to(ROOT).as_posix()}:{node.lineno} {node.name} ({n} lines)")
    return out


def test_no_function_over_60_lines_in_core_apps_hub_cli():
    assert long_functions() == []


def test_the_length_check_counts_decorators_out_and_bodies_in(tmp_path, monkeypatch):
    (tmp_path / "core").mkdir()
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES))
    (tmp_path / "core" / "long.py").write_text(f"@decorator\ndef long():\n{body}\n\ndef short():\n    pass\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert long_functions(("core",)) == ["core/long.py:2 long (61 lines)"]
