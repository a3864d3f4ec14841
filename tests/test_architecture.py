"""The import graph is one-way (issue 19): apps and cli -> core -> hub's folder lookup; train -> core; hub -> nothing.

Every .py of the repository is parsed (ast, nothing imported), including imports inside functions.
"""
from __future__ import annotations

import ast
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

