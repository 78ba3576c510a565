"""Fixtures of the report tests: a schema-exact artefact tree and its rendered report."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
EPOCH = "1700000000"


def _load_fixtures():
    spec = importlib.util.spec_from_file_location("report_fixtures", HERE / "fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fixtures = _load_fixtures()


@pytest.fixture(scope="session")
def fx():
    """The fixture-generator module (constants such as HOSTILE, ARCHS, DATASETS)."""
    return fixtures


@pytest.fixture(scope="session")
def report_tree(tmp_path_factory) -> Path:
    """A complete fake run: params, dvc.lock, every documented artefact."""
    return fixtures.write_tree(tmp_path_factory.mktemp("run"))


@pytest.fixture(scope="session")
def report_context(report_tree):
    from shortcut_audit.report.context import build_context

    return build_context(report_tree, {"SOURCE_DATE_EPOCH": EPOCH})


@pytest.fixture(scope="session")
def report_html(report_context) -> str:
    from shortcut_audit.report.build import render_html

    return render_html(report_context)


@pytest.fixture(scope="session")
def stage_outputs(report_tree) -> Path:
    """Run the DVC stage script in the fake run; returns the reports folder."""
    env = {**os.environ, "SOURCE_DATE_EPOCH": EPOCH, "MPLBACKEND": "Agg"}
    done = subprocess.run(
        [sys.executable, str(REPO / "stages" / "report.py")],
        cwd=report_tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return report_tree / "reports"
