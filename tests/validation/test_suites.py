"""Suites on the healthy tree, skipped and missing inputs, the validate command and derived tables."""
from __future__ import annotations

import importlib.util
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import shortcut_audit_validation_fixtures as fx
from shortcut_audit import cli
from shortcut_audit.config import ParamError
from shortcut_audit.validation.derived import (
    DatasetSpec,
    expected_linked_rate,
    linked_values,
    parse_dataset_id,
    reliance_steps,
)
from shortcut_audit.validation.gx import json_safe
from shortcut_audit.validation.settings import ValidationSettings
from shortcut_audit.validation.suites import SUITES, SUMMARY_COLUMNS, read_summary, run_suites

REPO = Path(__file__).resolve().parents[2]


def test_results_hold_every_expectation_and_the_summary(healthy):
    out = healthy.root / "data" / "validation"
    summary = read_summary(out / "summary.csv")
    assert tuple(summary.columns) == SUMMARY_COLUMNS
    assert summary["suite"].tolist() == list(SUITES)
    assert summary["status"].eq("passed").all() and summary["failed"].eq(0).all()
    document = json.loads((out / "biased_mnist.json").read_text())
    assert document["success"] is True and document["status"] == "passed"
    tables = {t["table"]: t for t in document["tables"]}
    assert set(tables) == {"rows", "split_sizes", "linked_rates", "label_shares"}
    descriptions = [r["expectation_config"]["description"] for r in tables["linked_rates"]["results"]]
    assert descriptions == ["linked_rates: linked rate within tolerance of its expected value"]
    assert document["statistics"]["evaluated_expectations"] == summary.set_index("suite").loc["biased_mnist", "evaluated"]


def test_unexpected_examples_name_the_offending_rows(healthy, tree):
    path = tree / "data" / "biased_mnist" / "p0.5" / "train.parquet"
    frame = pd.read_parquet(path)
    frame.loc[[0, 1], "position"] = 9
    frame.to_parquet(path, index=False)
    outcome = run_suites(tree / "data", healthy.settings, ["biased_mnist"])[0]
    result = next(r for t in outcome.document["tables"] for r in t["results"]
                  if r["expectation_config"]["description"].startswith("rows: position in"))
    assert result["result"]["unexpected_count"] == 2
    assert {e["key"] for e in result["result"]["partial_unexpected_index_list"]} == {"p0.5/train"}


def test_optional_inputs_absent_are_skipped_with_a_reason(healthy, tree):
    shutil.rmtree(tree / "data" / "imagenet")
    shutil.rmtree(tree / "data" / "audit")
    outcomes = {o.suite: o for o in run_suites(tree / "data", healthy.settings, ["imagenet", "attribution_maps"])}
    for suite in ("imagenet", "attribution_maps"):
        assert outcomes[suite].status == "skipped" and not outcomes[suite].success
        assert outcomes[suite].reason


def test_required_inputs_missing_are_errors_and_validate_exits_2(tree, monkeypatch, capsys):
    shutil.rmtree(tree / "data" / "audit_summary")
    monkeypatch.chdir(tree)
    code = cli.main(["validate", "--suite", "sensitivity", "--suite", "findings"])
    assert code == 2
    assert "morris.csv is missing" in capsys.readouterr().err
    summary = read_summary(tree / "data" / "validation" / "summary.csv")
    assert summary["status"].tolist() == ["error", "error"]
    assert not summary["success"].any()
    assert json.loads((tree / "data" / "validation" / "findings.json").read_text())["status"] == "error"


def test_validate_stage_writes_results_and_exits_0_even_when_a_suite_fails(tree, monkeypatch, capsys):
    models = tree / "data" / "train_summary" / "models.csv"
    frame = pd.read_csv(models)
    frame.loc[0, "val_acc"] = -0.1
    frame.to_csv(models, index=False)
    spec = importlib.util.spec_from_file_location("validate_stage", REPO / "stages" / "validate.py")
    stage = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stage)
    monkeypatch.chdir(tree)
    assert stage.main(["--suite", "training"]) == 0
    summary = read_summary(tree / "data" / "validation" / "summary.csv")
    assert summary.loc[0, "status"] == "failed" and "models: val_acc in [0, 1]" in summary.loc[0, "failed_expectations"]


def test_validate_rejects_bad_params_before_any_work(tree, monkeypatch, capsys):
    params = fx.params()
    params["validation"]["tolerance"] = 2
    fx.write_params(tree, params)
    monkeypatch.chdir(tree)
    assert cli.main(["validate"]) == 2
    assert "validation.tolerance" in capsys.readouterr().err


@pytest.mark.parametrize("section, key, value", [
    ("validation", "label_share", [0.2, 0.1]),
    ("validation", "morris_output", "logits"),
    ("validation", "linked_rate_z", -1),
    ("biased_mnist", "datasets", ["q0.5"]),
    ("biased_mnist", "biased_factors", ["texture"]),
    ("train", "architectures", []),
])
def test_settings_name_the_bad_key(section, key, value):
    params = fx.params()
    params[section][key] = value
    with pytest.raises(ParamError, match=rf"{section}\.{key}"):
        ValidationSettings.from_params(params)


def test_dataset_ids_and_expected_linked_rates():
    both = ("digit_color", "bg_color", "position")
    assert parse_dataset_id("p0.5", both) == DatasetSpec("p0.5", 0.5, both)
    spec = parse_dataset_id("bg_color-p0.9", both)
    assert spec == DatasetSpec("bg_color-p0.9", 0.9, ("bg_color",))
    assert parse_dataset_id("digit_color+position-p0.7", both).biased == ("digit_color", "position")
    assert expected_linked_rate(spec, "train", "bg_color") == 0.9
    assert expected_linked_rate(spec, "test_aligned", "bg_color") == 0.9
    assert expected_linked_rate(spec, "train", "position") == pytest.approx(1 / 9)
    assert expected_linked_rate(spec, "test_unbiased", "bg_color") == pytest.approx(0.1)
    for bad in ("0.5", "p1.5", "texture-p0.5", "bg_colorp0.5"):
        with pytest.raises(ValueError):
            parse_dataset_id(bad, both)


def test_linked_values_follow_the_contract():
    labels = np.arange(10)
    assert linked_values("digit_color", labels).tolist() == list(range(10))
    assert linked_values("position", labels).tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 0]


def test_linked_values_agree_with_the_data_module():
    biased_mnist = pytest.importorskip("shortcut_audit.data.biased_mnist")
    torch = pytest.importorskip("torch")
    labels = torch.arange(10)
    for factor in fx.FACTORS:
        assert biased_mnist.linked_value(factor, labels).tolist() == linked_values(factor, labels.numpy()).tolist()
    assert dict(biased_mnist.N_VALUES) == fx.FACTORS


def test_reliance_steps_are_relative_to_the_series_maximum():
    specs = {d: parse_dataset_id(d, ("digit_color", "bg_color")) for d in ("p0.1", "p0.5", "p0.9")}
    morris = pd.DataFrame([
        {"dataset_id": d, "arch": "cnn", "factor": f, "output": "normalised_mean", "mu_star": m}
        for d, values in {"p0.1": (0.0, 0.1), "p0.5": (0.5, 0.3), "p0.9": (0.4, 0.2)}.items()
        for f, m in zip(("digit_color", "bg_color"), values)
    ])
    steps = reliance_steps(morris, specs, "normalised_mean").set_index("key")["drop"]
    assert steps["cnn: p0.1 -> p0.5"] == pytest.approx(-0.7 / 0.8)
    assert steps["cnn: p0.5 -> p0.9"] == pytest.approx(0.2 / 0.8)


def test_json_safe_replaces_non_finite_numbers():
    assert json_safe({"a": [math.nan, math.inf, -math.inf, 1.0, np.float32(2.0)]}) == {"a": ["nan", "inf", "-inf", 1.0, 2.0]}
