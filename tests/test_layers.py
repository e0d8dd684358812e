"""Imports run one way: infra on top; components and policies side by side; catalog at the bottom."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT_PACKAGES = {"catalog", "components", "infra", "policies"}
# Which project packages each package may import (itself always).
ALLOWED = {
    "catalog": set(),
    "components": {"catalog"},
    "policies": {"catalog"},
    "infra": {"catalog", "components", "policies"},
}


def imported(path: Path) -> list[tuple[int, str]]:
    """(line, top-level module) for every import in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def upward_imports(package: str) -> list[str]:
    problems = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for line, module in imported(path):
            if module in PROJECT_PACKAGES - {package} - ALLOWED[package]:
                problems.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
            if package == "catalog" and module.startswith("pulumi"):
                problems.append(f"{path.relative_to(ROOT)}:{line} imports {module} (the facts layer has no Pulumi)")
    return problems


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_no_import_runs_back_up(package):
    assert upward_imports(package) == []


def test_the_check_sees_an_upward_import(tmp_path, monkeypatch):
    """The walk above must catch a real arrow back up, or it proves nothing."""
    (tmp_path / "catalog").mkdir()
    (tmp_path / "catalog" / "bad.py").write_text("import pulumi\nfrom components.cluster import Cluster\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert upward_imports("catalog") == ["catalog/bad.py:1 imports pulumi (the facts layer has no Pulumi)",
                                         "catalog/bad.py:2 imports components"]


def test_the_facts_layer_loads_without_pulumi():
    modules = [f"catalog.{p.stem}" for p in (ROOT / "catalog").glob("*.py") if p.stem != "__init__"]
    code = (f"import sys; import {', '.join(sorted(modules))}; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('pulumi', 'pulumi_aws', 'pulumi_kubernetes', 'pulumi_policy', 'components', 'infra', 'policies')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
