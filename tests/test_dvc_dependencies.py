"""Every module a stage imports is a DVC dependency of that stage, so a code change re-runs it.

The import closure of each stage's entry point is computed from the source (every
``import`` statement, lazy ones inside functions included, and the ``__init__`` of every
package on the way) and compared with the stage's ``deps`` in ``dvc.yaml``. A module
missing from a stage's dependencies would let ``dvc repro`` keep a stale result after
that module changed.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
PACKAGE = "shortcut_audit"
#: Modules a stage may import without depending on them, and why.
EXEMPT = {
    "src/shortcut_audit/params_schema.py": "decides only whether a params file is accepted, never what a stage "
    "computes (declaring a key must not re-run the pipeline)",
}


def _module_path(name: str) -> Path | None:
    """Source file of a module or package of the project (None for other libraries)."""
    if name != PACKAGE and not name.startswith(PACKAGE + "."):
        return None
    parts = name.split(".")
    base = SRC.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported(path: Path, module: str) -> set[str]:
    """Project modules named by the import statements of one file (relative imports resolved)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # a name may be a submodule
    return {name for name in found if _module_path(name) is not None}


def import_closure(entry: Path) -> set[Path]:
    """Project source files executed by importing ``entry`` (a stage script or a module)."""
    todo = [(entry, None)]
    seen: set[Path] = set()
    while todo:
        path, module = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _imported(path, module or ""):
            parts = name.split(".")
            for depth in range(1, len(parts) + 1):  # importing a.b.c runs a and a.b first
                parent = ".".join(parts[:depth])
                todo.append((_module_path(parent), parent))
    return {p for p in seen if SRC in p.parents}


def _entry(cmd: str) -> Path:
    match = re.search(r"python (stages/\w+\.py)", cmd)
    if match:
        return REPO / match.group(1)
    if cmd.startswith("shortcut-audit "):
        command = cmd.split()[1]
        from shortcut_audit.cli import COMMANDS

        return _module_path(COMMANDS[command][0])
    raise AssertionError(f"cannot find the entry point of {cmd!r}")


def _stages() -> dict[str, dict]:
    return yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


@pytest.mark.parametrize("name", sorted(_stages()))
def test_every_imported_module_is_a_dependency(name):
    stage = _stages()[name]
    deps = [d for d in stage.get("deps", []) if "${" not in d]
    closure = import_closure(_entry(stage["cmd"]))
    missing = []
    for path in sorted(closure):
        rel = path.relative_to(REPO).as_posix()
        covered = any(rel == d or rel.startswith(d.rstrip("/") + "/") for d in deps)
        if not covered and rel not in EXEMPT:
            missing.append(rel)
    assert not missing, f"stage {name} imports {missing} but does not list them as dependencies in dvc.yaml"


def test_the_closure_follows_lazy_and_relative_imports(tmp_path):
    closure = {p.relative_to(REPO).as_posix() for p in import_closure(REPO / "stages" / "report.py")}
    assert "src/shortcut_audit/report/build.py" in closure
    assert "src/shortcut_audit/__init__.py" in closure and "src/shortcut_audit/report/__init__.py" in closure
    gate = {p.relative_to(REPO).as_posix() for p in import_closure(_module_path("shortcut_audit.validation.gate"))}
    assert "src/shortcut_audit/validation/suites.py" in gate  # imported inside a function
