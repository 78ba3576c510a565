"""Regression gate against a git revision, read through DVC in a temporary git + DVC repository."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from shortcut_audit.validation.regression import compare

TRACKED = ("data/train_summary/models.csv", "data/audit_summary/morris.csv")


def _run(cwd: Path, *args: str) -> None:
    subprocess.run(args, cwd=cwd, check=True, capture_output=True, text=True)


def _commit(repo: Path, message: str) -> None:
    _run(repo, sys.executable, "-m", "dvc", "add", "-q", *TRACKED)
    _run(repo, "git", "add", "-A")
    _run(repo, "git", "commit", "-q", "-m", message)


@pytest.fixture(scope="module")
def versioned(healthy, tmp_path_factory) -> Path:
    """A git + DVC repository whose first commit holds the healthy metrics and whose
    second commit lowers the candidate's unbiased accuracy by 0.2."""
    repo = Path(shutil.copytree(healthy.root, tmp_path_factory.mktemp("versioned") / "repo"))
    _run(repo, "git", "init", "-q")
    _run(repo, "git", "config", "user.name", "Audit Test")
    _run(repo, "git", "config", "user.email", "audit-test@example.invalid")
    _run(repo, sys.executable, "-m", "dvc", "init", "-q")
    _run(repo, sys.executable, "-m", "dvc", "config", "core.analytics", "false")
    _commit(repo, "baseline")
    models = repo / TRACKED[0]
    frame = pd.read_csv(models)
    candidate = (frame["dataset_id"] == "p0.1") & (frame["arch"] == "simple_cnn")
    frame.loc[candidate, "unbiased_acc"] -= 0.2
    frame.to_csv(models, index=False)
    _commit(repo, "worse candidate")
    return repo


@pytest.mark.slow
def test_regression_beyond_tolerance_fails(versioned, run_gate):
    gate = run_gate(versioned, "--baseline", "HEAD~1")
    assert gate.code == 1
    failing = gate.checks("fail")
    check = failing["regression: p0.1/simple_cnn/seed0: unbiased_acc"]
    assert check["value"] == pytest.approx(-0.2) and check["threshold"] == 0.05
    assert failing["p0.1/simple_cnn/seed0: unbiased_acc"]["value"] == pytest.approx(0.76)
    assert "regression: p0.1/simple_cnn/seed0: mu_star_share[bg_color]" in gate.checks("pass")


@pytest.mark.slow
def test_same_revision_is_no_regression(versioned, run_gate):
    gate = run_gate(versioned, "--baseline", "HEAD")
    assert gate.code == 1  # the current candidate (unbiased_acc 0.76) is below min_unbiased_accuracy 0.8
    regression = {n: c for n, c in gate.checks("pass").items() if n.startswith("regression:")}
    assert len(regression) == 5 and all(c["value"] == 0 for c in regression.values())


@pytest.mark.slow
def test_unknown_revision_cannot_be_evaluated(versioned, run_gate):
    gate = run_gate(versioned, "--baseline", "no-such-revision")
    assert gate.code == 2
    assert "no-such-revision" in gate.stderr


def test_compare_respects_the_metric_direction():
    assert compare("a", "unbiased_acc", 0.80, 0.84, 0.05).status == "pass"
    assert compare("a", "unbiased_acc", 0.78, 0.84, 0.05).status == "fail"
    assert compare("a", "aligned_conflicting_gap", 0.20, 0.10, 0.05).status == "fail"
    assert compare("a", "mu_star_share[bg_color]", 0.10, 0.40, 0.05).status == "pass"
    assert compare("a", "mu_star_share[bg_color]", float("nan"), 0.40, 0.05).status == "error"  # never a pass
