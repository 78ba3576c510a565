"""The release gate: pass on a healthy p = 0.1 candidate, fail on p = 0.99, exit 2 when it cannot evaluate."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import shortcut_audit_validation_fixtures as fx
import yaml

from shortcut_audit import cli
from shortcut_audit.config import ParamError
from shortcut_audit.validation.gate import GateSettings, bound_check, format_summary, gate_document, headline_metrics


def _set_gate(root, **values) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["gate"].update(values)
    fx.write_params(root, params)


def test_healthy_tree_passes_with_the_unbiased_candidate(healthy, tree, run_gate):
    assert {o.suite: o.status for o in healthy.outcomes} == {
        "mnist": "passed",
        "biased_mnist": "passed",
        "training": "passed",
        "sensitivity": "passed",
        "attribution_maps": "passed",
        "imagenet": "passed",
        "watermark": "skipped",
        "findings": "passed",
    }
    gate = run_gate(tree)
    assert gate.code == 0
    assert gate.document["status"] == "pass" and gate.document["exit_code"] == 0
    checks = {c["name"]: c for c in gate.document["checks"]}
    assert checks["p0.1/simple_cnn/seed0: unbiased_acc"]["value"] == pytest.approx(0.96)
    assert checks["p0.1/simple_cnn/seed0: mu_star_share[bg_color]"]["value"] == pytest.approx(0.28)
    assert checks["p0.1/simple_cnn/seed0: aligned_conflicting_gap"]["value"] == pytest.approx(0.00533, abs=1e-4)
    assert all(set(c) == {"name", "value", "threshold", "status", "detail"} for c in gate.document["checks"])
    assert gate.stdout.startswith("release gate: PASS (exit 0)")
    assert len(gate.stdout.splitlines()) <= 25


def test_heavily_biased_candidate_fails_naming_its_shortcut(tree, run_gate):
    _set_gate(tree, candidates=[{"dataset_id": "p0.99", "arch": "simple_cnn"}])
    gate = run_gate(tree)
    assert gate.code == 1 and gate.document["status"] == "fail"
    failing = gate.checks("fail")
    assert failing["p0.99/simple_cnn/seed0: unbiased_acc"]["value"] == pytest.approx(0.35)
    assert failing["p0.99/simple_cnn/seed0: aligned_conflicting_gap"]["value"] == pytest.approx(0.53, abs=1e-6)
    assert failing["p0.99/simple_cnn/seed0: mu_star_share[bg_color]"]["value"] == pytest.approx(0.5556, abs=1e-3)
    assert "p0.99/simple_cnn/seed0: relies on bg_color" in failing
    assert "p0.99/simple_cnn/seed0: mu_star_share[position]" in gate.checks("pass")
    assert "p0.99/simple_cnn/seed0: mu_star_share[bg_color]" in gate.stdout


def test_exit_zero_records_the_failure_but_exits_zero(tree, run_gate):
    _set_gate(tree, candidates=[{"dataset_id": "p0.99", "arch": "simple_cnn"}])
    gate = run_gate(tree, "--exit-zero")
    assert gate.code == 0
    assert gate.document["status"] == "fail" and gate.document["exit_code"] == 1


@pytest.mark.parametrize(
    "missing",
    [
        "data/validation/summary.csv",
        "data/train_summary/models.csv",
        "data/audit_summary/morris.csv",
        "data/audit_summary/verdicts.csv",
    ],
)
def test_missing_input_cannot_be_evaluated(tree, run_gate, missing):
    (tree / missing).unlink()
    gate = run_gate(tree)
    assert gate.code == 2
    assert gate.document["status"] == "error" and gate.document["exit_code"] == 2
    assert missing in gate.stderr and "could not evaluate" in gate.stderr


def test_missing_inputs_with_exit_zero_are_still_recorded_as_error(tree, run_gate):
    (tree / "data/validation/summary.csv").unlink()
    gate = run_gate(tree, "--exit-zero")
    assert gate.code == 0 and gate.document["status"] == "error"


def test_suite_absent_from_the_summary_or_in_error_cannot_be_evaluated(tree, run_gate):
    path = tree / "data/validation/summary.csv"
    summary = pd.read_csv(path, keep_default_na=False)
    summary[summary["suite"] != "training"].to_csv(path, index=False)
    gate = run_gate(tree)
    assert (
        gate.code == 2
        and gate.checks("error")["suite:training"]["detail"] == "suite missing from the validation summary"
    )

    summary.loc[summary["suite"] == "findings", ["status", "success", "reason"]] = [
        "error",
        False,
        "verdicts.csv missing",
    ]
    summary.to_csv(path, index=False)
    gate = run_gate(tree)
    assert gate.code == 2 and "verdicts.csv missing" in gate.stderr


def test_candidate_without_a_model_cannot_be_evaluated(tree, run_gate):
    _set_gate(tree, candidates=[{"dataset_id": "p0.7", "arch": "simple_cnn"}])
    gate = run_gate(tree)
    assert gate.code == 2 and "p0.7/simple_cnn" in gate.stderr


def test_skipped_suite_does_not_block_but_is_reported(tree, run_gate):
    path = tree / "data/validation/summary.csv"
    summary = pd.read_csv(path, keep_default_na=False)
    summary.loc[summary["suite"] == "imagenet", ["status", "success", "evaluated", "reason"]] = [
        "skipped",
        False,
        0,
        "data/imagenet is absent",
    ]
    summary.to_csv(path, index=False)
    gate = run_gate(tree)
    assert gate.code == 0
    assert gate.checks("skip")["suite:imagenet"]["detail"] == "data/imagenet is absent"


def test_failing_suite_only_warns_when_not_all_suites_are_required(tree, run_gate):
    path = tree / "data/validation/summary.csv"
    summary = pd.read_csv(path, keep_default_na=False)
    summary.loc[summary["suite"] == "findings", ["status", "success", "failed", "failed_expectations"]] = [
        "failed",
        False,
        1,
        "reliance: spurious reliance does not fall as p rises (tolerance 0.1)",
    ]
    summary.to_csv(path, index=False)
    assert run_gate(tree).code == 1
    _set_gate(tree, require_all_suites=False)
    gate = run_gate(tree)
    assert gate.code == 0 and "suite:findings" in gate.checks("warn")


@pytest.mark.parametrize(
    "key, value",
    [
        ("min_unbiased_accuracy", 1.5),
        ("max_aligned_conflicting_gap", "big"),
        ("require_all_suites", "yes"),
        ("candidates", []),
        ("morris_output", "logits"),
    ],
)
def test_invalid_gate_params_exit_2_naming_the_key(tree, run_gate, key, value):
    _set_gate(tree, **{key: value})
    gate = run_gate(tree)
    assert gate.code == 2 and f"gate.{key}" in gate.stderr


def test_invalid_candidate_factor_seed_and_policy_are_named():
    params = fx.params()
    params["gate"]["candidates"] = [{"dataset_id": "p0.1"}]
    with pytest.raises(ParamError, match=r"gate\.candidates\[0\]"):
        GateSettings.from_params(params)
    params["gate"]["candidates"] = [{"dataset_id": "p0.1", "arch": "mlp", "seed": 3}]
    with pytest.raises(ParamError, match=r"gate\.candidates\[0\]\.seed: expected one of train\.seeds \[0\]"):
        GateSettings.from_params(params)
    params["gate"]["candidates"] = [{"dataset_id": "p0.1", "arch": "mlp"}]
    params["gate"]["max_mu_star_share"] = {"texture": 0.5}
    with pytest.raises(ParamError, match=r"gate\.max_mu_star_share\.texture: unknown factor 'texture'"):
        GateSettings.from_params(params)
    params["gate"]["max_mu_star_share"] = {}
    params["gate"]["forbidden_reliance"] = ["bg_colour"]
    with pytest.raises(
        ParamError, match=r"gate\.forbidden_reliance: unknown factor 'bg_colour' \(did you mean 'bg_color'"
    ):
        GateSettings.from_params(params)
    params["gate"]["forbidden_reliance"] = ["bg_color"]
    params["gate"]["inconclusive"] = "ignore"
    with pytest.raises(ParamError, match=r"gate\.inconclusive: unknown value 'ignore'; known: fail, warn"):
        GateSettings.from_params(params)


def _set_verdict(tree, dataset_id, factor, state, drop, low, high):
    path = tree / "data/audit_summary/verdicts.csv"
    frame = pd.read_csv(path, keep_default_na=False, dtype=str)
    row = (frame["dataset_id"] == dataset_id) & (frame["arch"] == "simple_cnn") & (frame["factor"] == factor)
    frame.loc[row, ["state", "drop", "ci_low", "ci_high"]] = [state, str(drop), str(low), str(high)]
    frame.to_csv(path, index=False, lineterminator="\n")


@pytest.mark.parametrize("policy, status, code", [("fail", "fail", 1), ("warn", "warn", 0)])
def test_an_inconclusive_forbidden_factor_follows_the_policy(tree, run_gate, policy, status, code):
    _set_verdict(tree, "p0.1", "bg_color", "inconclusive", 0.09, 0.07, 0.12)
    _set_gate(tree, inconclusive=policy)
    gate = run_gate(tree)
    check = {c["name"]: c for c in gate.document["checks"]}["p0.1/simple_cnn/seed0: relies on bg_color"]
    assert gate.code == code and check["status"] == status and check["value"] == "inconclusive"
    assert "[0.070, 0.120] straddles the threshold" in check["detail"]
    assert f"gate.inconclusive = {policy}" in check["detail"]


def test_the_gate_reads_the_interventional_state(tree, run_gate):
    _set_verdict(tree, "p0.1", "digit_color", "relied_on", 0.3, 0.25, 0.35)
    gate = run_gate(tree)
    check = gate.checks("fail")["p0.1/simple_cnn/seed0: relies on digit_color"]
    assert check["value"] == "relied_on" and "Shapley drop 0.300, 95% interval [0.250, 0.350]" in check["detail"]


def test_bound_check_cannot_gate_a_non_finite_value():
    assert bound_check("x", float("nan"), 0.5, upper=True).status == "error"
    assert bound_check("x", float("-inf"), 0.5, upper=True).status == "error"
    assert bound_check("x", "n/a", 0.5, upper=False).status == "error"
    assert bound_check("x", True, 0.5, upper=False).status == "error"
    assert bound_check("x", 0.5, 0.5, upper=True).status == "pass"
    assert bound_check("x", 0.49, 0.5, upper=False).status == "fail"


def test_summary_fits_one_screen():
    checks = [bound_check(f"model {i}: metric", 0.1, 0.5, upper=False) for i in range(60)]
    text = format_summary(gate_document(checks))
    assert text.splitlines()[0] == "release gate: FAIL (exit 1) - 60 fail"
    assert len(text.splitlines()) <= 24 and "more in gate.json" in text


def test_cli_dispatches_to_the_gate(tree, monkeypatch, capsys):
    monkeypatch.chdir(tree)
    assert cli.main(["gate", "--output", "out/gate.json"]) == 0
    assert json.loads((tree / "out/gate.json").read_text())["status"] == "pass"


def test_metrics_file_is_the_small_headline(tree, monkeypatch):
    monkeypatch.chdir(tree)
    assert cli.main(["gate", "--output", "out/gate.json", "--metrics", "out/gate_metrics.json"]) == 0
    assert json.loads((tree / "out/gate_metrics.json").read_text()) == {
        "status": "pass",
        "checks": {"fail": 0, "error": 0},
    }
    checks = [bound_check("a", 0.1, 0.5, upper=False), bound_check("b", 0.9, 0.5, upper=False)]
    assert headline_metrics(gate_document(checks)) == {"status": "fail", "checks": {"fail": 1, "error": 0}}
