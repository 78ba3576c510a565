"""Suites on the healthy tree, skipped and missing inputs, the validate command and derived tables."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shortcut_audit_validation_fixtures as fx
import yaml

from shortcut_audit import cli
from shortcut_audit.config import ParamError
from shortcut_audit.data.biased_mnist import DatasetSpec, parse_dataset_id
from shortcut_audit.validation import suites
from shortcut_audit.validation.derived import expected_linked_rate, linked_values, total_drop_steps
from shortcut_audit.validation.gx import json_safe
from shortcut_audit.validation.settings import ValidationSettings
from shortcut_audit.validation.suites import SUITES, SUMMARY_COLUMNS, read_summary, run_suites

REPO = Path(__file__).resolve().parents[2]


def test_results_hold_every_expectation_and_the_summary(healthy):
    out = healthy.root / "data" / "validation"
    summary = read_summary(out / "summary.csv")
    assert tuple(summary.columns) == SUMMARY_COLUMNS
    assert summary["suite"].tolist() == list(SUITES)
    status = summary.set_index("suite")["status"]
    # the miniature tree has no watermark audit: that suite is skipped, the others pass
    assert status.pop("watermark") == "skipped"
    assert status.eq("passed").all() and summary["failed"].eq(0).all()
    document = json.loads((out / "biased_mnist.json").read_text())
    assert document["success"] is True and document["status"] == "passed"
    tables = {t["table"]: t for t in document["tables"]}
    assert set(tables) == {"rows", "split_sizes", "linked_rates", "label_shares"}
    descriptions = [r["expectation_config"]["description"] for r in tables["linked_rates"]["results"]]
    assert descriptions == ["linked_rates: linked rate within tolerance of its expected value"]
    assert (
        document["statistics"]["evaluated_expectations"] == summary.set_index("suite").loc["biased_mnist", "evaluated"]
    )


def test_unexpected_examples_name_the_offending_rows(healthy, tree):
    path = tree / "data" / "biased_mnist" / "p0.5" / "train.parquet"
    frame = pd.read_parquet(path)
    frame.loc[[0, 1], "position"] = 9
    frame.to_parquet(path, index=False)
    outcome = run_suites(tree / "data", healthy.settings, ["biased_mnist"])[0]
    result = next(
        r
        for t in outcome.document["tables"]
        for r in t["results"]
        if r["expectation_config"]["description"].startswith("rows: position in")
    )
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
    monkeypatch.chdir(tree)
    assert suites.main(["--suite", "training"]) == 0  # what stages/validate.py runs
    summary = read_summary(tree / "data" / "validation" / "summary.csv")
    assert summary.loc[0, "status"] == "failed" and "models: val_acc in [0, 1]" in summary.loc[0, "failed_expectations"]


def test_validate_rejects_bad_params_before_any_work(tree, monkeypatch, capsys):
    params = fx.params()
    params["validation"]["tolerance"] = 2
    fx.write_params(tree, params)
    monkeypatch.chdir(tree)
    assert cli.main(["validate"]) == 2
    assert "validation.tolerance" in capsys.readouterr().err


@pytest.mark.parametrize(
    "section, key, value",
    [
        ("validation", "label_share", [0.2, 0.1]),
        ("validation", "min_morris_auroc", 1.5),
        ("validation", "linked_rate_z", -1),
        ("biased_mnist", "datasets", ["q0.5"]),
        ("biased_mnist", "biased_factors", ["texture"]),
        ("train", "architectures", []),
    ],
)
def test_settings_name_the_bad_key(section, key, value):
    params = fx.params()
    params[section][key] = value
    with pytest.raises(ParamError, match=rf"{section}\.{key}"):
        ValidationSettings.from_params(params)


def test_expected_linked_rates():
    both = ("digit_color", "bg_color", "position")
    spec = parse_dataset_id("bg_color-p0.9", both)
    assert spec == DatasetSpec(0.9, ("bg_color",))
    assert expected_linked_rate(spec, "train", "bg_color") == 0.9
    assert expected_linked_rate(spec, "test_aligned", "bg_color") == 0.9
    assert expected_linked_rate(spec, "train", "position") == pytest.approx(1 / 9)
    assert expected_linked_rate(spec, "test_unbiased", "bg_color") == pytest.approx(0.1)


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


def test_total_drop_steps_fall_only_beyond_both_intervals():
    specs = {d: parse_dataset_id(d) for d in ("p0.1", "p0.5", "p0.9", "bg_color-p0.9")}
    models = pd.DataFrame(
        [
            {
                "dataset_id": d,
                "p": specs[d].p,
                "arch": "cnn",
                "seed": 0,
                "total_drop": t,
                "total_ci_low": t - 0.05,
                "total_ci_high": t + 0.05,
            }
            for d, t in (("p0.1", 0.05), ("p0.5", 0.40), ("p0.9", 0.32), ("bg_color-p0.9", 0.0))
        ]
    )
    steps = total_drop_steps(models, specs).set_index("key")["fall_beyond_ci"]
    assert list(steps.index) == ["cnn/seed0: p0.1 -> p0.5", "cnn/seed0: p0.5 -> p0.9"]  # partial-bias sets left out
    assert steps["cnn/seed0: p0.1 -> p0.5"] == pytest.approx(0.0 - 0.45)
    assert steps["cnn/seed0: p0.5 -> p0.9"] == pytest.approx(0.35 - 0.37)  # a fall within the intervals
    models.loc[2, ["total_drop", "total_ci_low", "total_ci_high"]] = [0.1, 0.05, 0.15]
    assert total_drop_steps(models, specs).set_index("key")["fall_beyond_ci"].iloc[1] > 0


def test_json_safe_replaces_non_finite_numbers():
    assert json_safe({"a": [math.nan, math.inf, -math.inf, 1.0, np.float32(2.0)]}) == {
        "a": ["nan", "inf", "-inf", 1.0, 2.0]
    }


def test_a_factor_of_the_params_factors_section_is_a_known_factor(healthy, tree):
    """Tables naming a user's factor pass the vocabulary check only when params register it."""
    for path in (tree / "data" / "audit_summary").glob("*.csv"):
        frame = pd.read_csv(path, keep_default_na=False, dtype=str)
        if "factor" in frame.columns:
            frame["factor"] = frame["factor"].replace("position", "red_border")
            frame.to_csv(path, index=False)
    (tree / "my_factors.py").write_text("def red_border(images, values):\n    return images\n")
    params = yaml.safe_load((tree / "params.yaml").read_text())
    params["factors"] = {"red_border": {"function": "my_factors.py:red_border", "levels": ["none", "thick"]}}

    def factor_check_failures(settings: ValidationSettings) -> list[str]:
        outcome = run_suites(tree / "data", settings, ["sensitivity"])[0]
        return [
            r["expectation_config"]["description"]
            for t in outcome.document["tables"]
            for r in t["results"]
            if not r["success"] and "every factor is registered" in r["expectation_config"]["description"]
        ]

    assert factor_check_failures(healthy.settings)  # built-in registry only: red_border is unknown
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tree)  # the factor's file is relative to the repository
        settings = ValidationSettings.from_params(params)
    assert "red_border" in settings.factor_names
    assert factor_check_failures(settings) == []
