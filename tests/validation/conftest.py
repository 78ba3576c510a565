"""Shared fixtures: one healthy miniature tree, validated once per test session."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

# A unique module name, so that the helper cannot clash with other test folders' helpers.
_spec = importlib.util.spec_from_file_location(
    "shortcut_audit_validation_fixtures", Path(__file__).with_name("fixtures.py")
)
fixtures = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = fixtures
_spec.loader.exec_module(fixtures)

from shortcut_audit.config import load_params  # noqa: E402
from shortcut_audit.validation.settings import ValidationSettings  # noqa: E402
from shortcut_audit.validation.suites import run_suites, write_outcomes  # noqa: E402


@dataclass(frozen=True)
class HealthyRun:
    root: Path
    settings: ValidationSettings
    outcomes: tuple


@pytest.fixture(scope="session")
def healthy(tmp_path_factory) -> HealthyRun:
    """A healthy tree with every suite run once and its results written."""
    root = fixtures.write_healthy_tree(tmp_path_factory.mktemp("healthy"))
    settings = ValidationSettings.from_params(load_params(root / "params.yaml"))
    outcomes = tuple(run_suites(root / "data", settings))
    write_outcomes(outcomes, root / "data" / "validation")
    return HealthyRun(root, settings, outcomes)


@pytest.fixture
def tree(healthy, tmp_path) -> Path:
    """A private copy of the healthy tree (results included) to corrupt."""
    return Path(shutil.copytree(healthy.root, tmp_path / "tree"))


@dataclass(frozen=True)
class GateRun:
    code: int
    document: dict | None
    stdout: str
    stderr: str

    def checks(self, status: str) -> dict[str, dict]:
        return {c["name"]: c for c in self.document["checks"] if c["status"] == status}


@pytest.fixture
def run_gate(monkeypatch, capsys):
    """Call ``shortcut-audit gate`` in ``root``; return its exit code, gate.json and output."""
    import json

    from shortcut_audit.validation.gate import main

    def run(root: Path, *args: str) -> GateRun:
        monkeypatch.chdir(root)
        output = root / "reports" / "gate.json"
        if output.exists():
            output.unlink()
        capsys.readouterr()
        code = main(["--output", str(output), *args])
        captured = capsys.readouterr()
        document = json.loads(output.read_text()) if output.exists() else None
        return GateRun(code, document, captured.out, captured.err)

    return run
