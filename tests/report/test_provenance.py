"""Provenance: report id, git state, dvc.lock stages, reproducible date."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime

import pytest
import yaml

from shortcut_audit.report.provenance import (
    GitState,
    collect,
    git_state,
    package_versions,
    parse_dvc_lock,
    report_id,
    source_date,
)


def test_report_id_changes_with_each_input():
    git, params, packages = GitState("a" * 40, False), {"seed": 0}, {"numpy": "2.4.6"}
    base = report_id(git, "lock", params, packages)
    assert len(base) == 12 and base == report_id(git, "lock", {"seed": 0}, dict(packages))
    variants = [
        report_id(GitState("b" * 40, False), "lock", params, packages),
        report_id(GitState("a" * 40, True), "lock", params, packages),
        report_id(git, "lock2", params, packages),
        report_id(git, "lock", {"seed": 1}, packages),
        report_id(git, "lock", params, {"numpy": "2.4.7"}),
    ]
    assert base not in variants and len(set(variants)) == len(variants)


def test_parse_dvc_lock_keeps_stage_order_and_hashes(fx):
    stages = parse_dvc_lock(yaml.safe_dump(fx.dvc_lock(), sort_keys=False))
    assert stages[0].name == "biased_mnist"
    assert stages[0].outs == (("data/biased_mnist", "b" * 32 + ".dir"),)
    assert stages[0].deps == (("data/mnist", "a" * 32 + ".dir"),)
    assert {s.name for s in stages} >= {"train@p0.5-mlp-0", "train@bg_color-p0.9-simple_cnn-1"}
    assert len(stages[0].digest) == 12 and stages[0].digest != stages[1].digest
    assert parse_dvc_lock("") == ()


def test_source_date_epoch():
    assert source_date({"SOURCE_DATE_EPOCH": "0"}) == datetime(1970, 1, 1, tzinfo=UTC)
    assert source_date({}) is None and source_date({"SOURCE_DATE_EPOCH": ""}) is None
    with pytest.raises(ValueError, match="SOURCE_DATE_EPOCH"):
        source_date({"SOURCE_DATE_EPOCH": "yesterday"})


def test_git_state_outside_and_inside_a_repository(tmp_path):
    assert git_state(tmp_path) == GitState("unknown", None)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "f.txt").write_text("one")
    subprocess.run([*git, "add", "f.txt"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "c"], cwd=tmp_path, check=True)
    clean = git_state(tmp_path)
    assert len(clean.commit) == 40 and clean.dirty is False
    (tmp_path / "f.txt").write_text("two")
    assert git_state(tmp_path) == GitState(clean.commit, True)


def test_collect_reads_lock_params_and_packages(report_tree, fx):
    prov = collect(report_tree, fx.PARAMS, ("cpu",), {"training": 3.0}, {"SOURCE_DATE_EPOCH": "1700000000"})
    assert prov.git.commit == "unknown"
    assert prov.created_iso == "2023-11-14T22:13:20Z"
    assert len(prov.stages) == 1 + len(fx.DATASETS) * len(fx.ARCHS) * len(fx.SEEDS)
    assert prov.packages == package_versions() and prov.packages["jinja2"] != "not installed"
    assert prov.report_id == collect(report_tree, fx.PARAMS).report_id
