"""Structure of the library: no import cycles between its modules.

The graph is read from the source (module-level imports, ``TYPE_CHECKING`` blocks
left out), so a cycle is found before it bites at import time.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def _module_name(src: Path, file: Path) -> str:
    parts = file.relative_to(src).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(node: ast.stmt, module: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        if node.level:
            base = module.split(".") if is_package else module.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module or ""
        return [target] + [f"{target}.{alias.name}" for alias in node.names]
    return []


def import_graph(src: Path, package: str) -> dict[str, set[str]]:
    """``module -> modules of the package it imports at module level``."""
    files = {_module_name(src, f): f for f in (src / package).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, file in files.items():
        statements: list[ast.stmt] = []
        for node in ast.parse(file.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            statements.extend(node.body if isinstance(node, ast.Try) else [node])
        targets = {t for node in statements for t in _imported(node, module, file.name == "__init__.py")}
        graph[module] = {t for t in targets if t in files and t != module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_planted_cycle(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.sub import b\n")
    (package / "sub" / "b.py").write_text("from .. import c\n")
    (package / "c.py").write_text("import pkg.a\n")
    (package / "d.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.a\n")
    graph = import_graph(tmp_path, "pkg")
    assert cycles(graph) == [["pkg.a", "pkg.c", "pkg.sub.b"]]
    assert graph["pkg.d"] == set()


def test_the_library_has_no_import_cycle():
    graph = import_graph(SRC, "shortcut_audit")
    assert len(graph) > 100
    assert cycles(graph) == []


def test_the_two_former_cycles_stay_broken():
    graph = import_graph(SRC, "shortcut_audit")
    loop, evaluate = "shortcut_audit.training.loop", "shortcut_audit.training.evaluate"
    gate, regression = "shortcut_audit.validation.gate", "shortcut_audit.validation.regression"
    assert {loop, evaluate, gate, regression} <= set(graph)
    assert not (loop in graph[evaluate] and evaluate in graph[loop])
    assert not (gate in graph[regression] and regression in graph[gate])


def test_artefact_file_names_are_spelled_only_in_the_schema():
    """Stages, suites, the gate and the report reach every declared table through ``shortcut_audit.schema``."""
    from shortcut_audit import schema

    package = SRC / "shortcut_audit"
    sources = {f: f.read_text(encoding="utf-8") for f in package.rglob("*.py") if f.name != "schema.py"}
    spelled = {}
    for key, declared in schema.TABLES.items():
        name = Path(declared.path).name
        pattern = re.compile(r"[\"'/]" + re.escape(name) + r"[\"']")
        hits = sorted(str(f.relative_to(SRC)) for f, text in sources.items() if pattern.search(text))
        if hits:
            spelled[key] = hits
    assert spelled == {}


def test_the_rendered_factor_names_are_listed_only_in_the_schema():
    """No module but the schema writes out the renderer's factors as a list (per-factor attributes
    keyed by name are fine); the data module, the factor registry and the report take the names
    from there and the labels from the factor objects."""
    from shortcut_audit import schema
    from shortcut_audit.data import biased_mnist
    from shortcut_audit.factors.biased_mnist import RENDERER_FACTORS
    from shortcut_audit.report.naming import FACTOR_DESCRIPTIONS, FACTOR_LABELS

    names = set(schema.RENDERED_FACTORS)
    listed = []
    for file in (SRC / "shortcut_audit").rglob("*.py"):
        if file.name == "schema.py":
            continue
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            elements = node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else []
            constants = {e.value for e in elements if isinstance(e, ast.Constant)}
            if names <= constants:
                listed.append(f"{file.relative_to(SRC)}:{node.lineno}")
    assert listed == []
    assert biased_mnist.FACTORS is schema.RENDERED_FACTORS
    assert tuple(f.name for f in RENDERER_FACTORS) == schema.RENDERED_FACTORS
    assert list(FACTOR_LABELS) == list(FACTOR_DESCRIPTIONS) == list(schema.RENDERED_FACTORS)


def test_every_stage_script_is_a_thin_call_of_a_library_main():
    """``stages/<name>.py`` holds no logic: a docstring, imports of ``sys`` and one library ``main``,
    and ``sys.exit(main(...))`` under ``__main__``; the work (and its tests) live in the package."""
    import yaml

    stages = Path(__file__).resolve().parents[1] / "stages"
    scripts = sorted(stages.glob("*.py"))
    pipeline = yaml.safe_load((stages.parent / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    run = {Path(part).name for stage in pipeline.values() for part in stage["cmd"].split() if part.endswith(".py")}
    assert {s.name for s in scripts} >= run
    for script in scripts:
        body = ast.parse(script.read_text(encoding="utf-8")).body
        if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            body = body[1:]
        *imports, guard = body
        froms = [n for n in imports if isinstance(n, ast.ImportFrom) and n.module != "__future__"]
        assert len(froms) == 1 and froms[0].module.startswith("shortcut_audit."), script.name
        assert [a.name for a in froms[0].names] == ["main"], script.name
        assert all(isinstance(n, (ast.Import, ast.ImportFrom)) for n in imports), script.name
        assert isinstance(guard, ast.If) and ast.unparse(guard.test) == "__name__ == '__main__'", script.name
        assert len(guard.body) == 1 and ast.unparse(guard.body[0]).startswith("sys.exit(main("), script.name
