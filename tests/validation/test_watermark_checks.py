"""The watermark audit's gate checks (fail closed) and its GX suite."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shortcut_audit import schema
from shortcut_audit.config import ParamError
from shortcut_audit.params_schema import check_known_keys
from shortcut_audit.validation.gate import GateCheck, overall_status
from shortcut_audit.validation.gx import validate_tables
from shortcut_audit.validation.inputs import MissingInput, SuiteSkipped
from shortcut_audit.validation.watermark_checks import ImagenetGateSettings, imagenet_gate_checks, watermark_suite

GATE = {
    "candidates": ["lite0"],
    "max_carton_gap": 0.05,
    "max_top1_change_rate": 0.2,
    "forbid_watermark_reliance": True,
    "inconclusive": "fail",
}


def _settings(**overrides) -> ImagenetGateSettings:
    return ImagenetGateSettings.from_params({"gate": {"imagenet": {**GATE, **overrides}}})


def _write(
    root: Path,
    gap=0.01,
    rate=0.1,
    state="not_relied_on",
    drop=0.02,
    low=0.0,
    high=0.05,
    extra_effects: list | None = None,
    extra_verdicts: list | None = None,
) -> Path:
    folder = root / "data" / "watermark"
    folder.mkdir(parents=True, exist_ok=True)
    effects = [
        {"model": "lite0", "statistic": "carton_gap", "value": gap, "ci_low": gap - 0.01, "ci_high": gap + 0.01},
        {"model": "lite0", "statistic": "top1_change_rate", "value": rate, "ci_low": 0.0, "ci_high": rate + 0.1},
    ]
    verdicts = [
        {
            "model": "lite0",
            "factor": "watermark",
            "state": state,
            "drop": drop,
            "ci_low": low,
            "ci_high": high,
            "threshold": 0.1,
        }
    ]
    effects_defaults = {"target_kind": "predicted", "n_images": 6}
    verdict_defaults = {
        "target_kind": "predicted",
        "statistic": "top1_change_rate",
        "first_round_state": state,
        "n_items": 6,
        "repetitions": 1,
        "rounds": 1,
        "n_pool": 6,
        "n_correct": 6,
    }
    for name, rows, defaults in (
        ("effects", effects + (extra_effects or []), effects_defaults),
        ("verdicts", verdicts + (extra_verdicts or []), verdict_defaults),
    ):
        frame = pd.DataFrame([{**defaults, **row} for row in rows])[schema.table(f"watermark/{name}").names]
        frame.to_csv(folder / f"{name}.csv", index=False)  # not schema.write: the tests write NaNs on purpose
    return root


def _by_name(checks: list[GateCheck]) -> dict[str, GateCheck]:
    return {c.name: c for c in checks}


def test_a_candidate_within_every_threshold_passes(tmp_path):
    checks = imagenet_gate_checks(_settings(), _write(tmp_path))
    assert [c.status for c in checks] == ["pass", "pass", "pass"] and overall_status(checks) == "pass"
    assert _by_name(checks)["lite0: carton_gap"].value == pytest.approx(0.01)


def test_reliance_a_large_gap_or_change_rate_fails(tmp_path):
    checks = _by_name(
        imagenet_gate_checks(
            _settings(), _write(tmp_path, gap=0.3, rate=0.6, state="relied_on", drop=0.6, low=0.4, high=0.8)
        )
    )
    assert checks["lite0: carton_gap"].status == "fail"
    assert checks["lite0: top1_change_rate"].status == "fail"
    assert checks["lite0: relies on the watermark"].status == "fail"
    assert "0.4" in checks["lite0: relies on the watermark"].detail


@pytest.mark.parametrize("policy", ["fail", "warn"])
def test_an_inconclusive_verdict_follows_the_policy(tmp_path, policy):
    checks = imagenet_gate_checks(
        _settings(inconclusive=policy), _write(tmp_path, state="inconclusive", drop=0.1, low=0.0, high=0.3)
    )
    assert _by_name(checks)["lite0: relies on the watermark"].status == policy


def test_reliance_is_not_checked_when_allowed(tmp_path):
    checks = imagenet_gate_checks(_settings(forbid_watermark_reliance=False), _write(tmp_path, state="relied_on"))
    assert [c.name for c in checks] == ["lite0: carton_gap", "lite0: top1_change_rate"]


@pytest.mark.parametrize(
    "case, kwargs, name, match",
    [
        ("nan", {"gap": float("nan")}, "lite0: carton_gap", "not a finite number"),
        (
            "duplicate",
            {
                "extra_effects": [
                    {"model": "lite0", "statistic": "top1_change_rate", "value": 0.0, "ci_low": 0.0, "ci_high": 0.0}
                ]
            },
            "lite0: top1_change_rate",
            "2 rows",
        ),
        ("unknown state", {"state": "maybe"}, "lite0: relies on the watermark", "unknown verdict state"),
        ("nan interval", {"low": float("nan")}, "lite0: relies on the watermark", "not a finite number"),
        (
            "duplicate verdict",
            {
                "extra_verdicts": [
                    {
                        "model": "lite0",
                        "factor": "watermark",
                        "state": "relied_on",
                        "drop": 1,
                        "ci_low": 1,
                        "ci_high": 1,
                        "threshold": 0.1,
                    }
                ]
            },
            "lite0: relies on the watermark",
            "2 rows",
        ),
    ],
)
def test_bad_values_are_errors_never_passes(tmp_path, case, kwargs, name, match):
    checks = _by_name(imagenet_gate_checks(_settings(), _write(tmp_path, **kwargs)))
    assert checks[name].status == "error" and match in checks[name].detail, case
    assert overall_status(list(checks.values())) == "error"


def test_a_candidate_without_rows_or_inputs_is_an_error(tmp_path):
    checks = imagenet_gate_checks(_settings(candidates=["lite0", "resnet50"]), _write(tmp_path))
    missing = [c for c in checks if c.name.startswith("resnet50")]
    assert len(missing) == 3 and all(c.status == "error" and "no row" in c.detail for c in missing)
    empty = imagenet_gate_checks(_settings(), tmp_path / "nothing")
    assert len(empty) == 1 and empty[0].status == "error" and "audit_watermark" in empty[0].detail


@pytest.mark.parametrize(
    "key, value",
    [("max_carton_gap", 1.5), ("inconclusive", "ignore"), ("candidates", []), ("forbid_watermark_reliance", "yes")],
)
def test_bad_gate_settings_name_their_key(key, value):
    with pytest.raises(ParamError, match=f"gate.imagenet.{key}"):
        ImagenetGateSettings.from_params({"gate": {"imagenet": {**GATE, key: value}}})


def test_an_unknown_gate_key_is_refused_with_a_suggestion():
    with pytest.raises(ParamError, match="gate.imagenet.max_gap.*max_carton_gap"):
        check_known_keys({"gate": {"imagenet": {**GATE, "max_gap": 0.1}}})


def test_no_imagenet_section_means_no_imagenet_gate():
    assert ImagenetGateSettings.from_params({"gate": {}}) is None


# --------------------------------------------------------------------------- GX suite

_spec = importlib.util.spec_from_file_location(
    "watermark_synthetic", Path(__file__).resolve().parents[1] / "watermark" / "synthetic.py"
)
synthetic = sys.modules.get("watermark_synthetic") or importlib.util.module_from_spec(_spec)
if "watermark_synthetic" not in sys.modules:
    sys.modules["watermark_synthetic"] = synthetic
    _spec.loader.exec_module(synthetic)


class _Tolerance:
    abs_tolerance = 1e-6


@pytest.fixture(scope="module")
def watermark_tree(tmp_path_factory):
    pytest.importorskip("imagenet_w")
    monkeypatch = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("watermark_tree")
    try:
        synthetic.tiny_watermark_run(root, monkeypatch)
    finally:
        monkeypatch.undo()
    return root


def _copy(tree: Path, tmp_path: Path) -> Path:
    import shutil

    shutil.copytree(tree / "data", tmp_path / "data")
    return tmp_path / "data"


def test_the_suite_passes_on_a_real_run(watermark_tree):
    result = validate_tables("watermark", watermark_suite(watermark_tree / "data", _Tolerance()))
    assert result.success, result.failed_checks


@pytest.mark.parametrize(
    "table, change, failed",
    [
        ("verdicts", lambda f: f.assign(state="relied_on", ci_low=0.0), "verdicts: state follows the interval"),
        ("explainer_summary", lambda f: f.assign(mask_share=f["mask_share"] + 2), "explainer_summary: mask_share in"),
        ("effects", lambda f: f.assign(ci_high=f["value"] - 0.5), "effects: value <= ci_high"),
        ("morris", lambda f: f.assign(mu=f["mu_star"] + 1), "morris: |mu| <= mu*"),
        ("effects", lambda f: f.assign(value=np.nan), "effects: value not NaN"),
    ],
)
def test_the_suite_names_what_breaks(watermark_tree, tmp_path, table, change, failed):
    data = _copy(watermark_tree, tmp_path)
    path = data / "watermark" / f"{table}.csv"
    change(pd.read_csv(path)).to_csv(path, index=False)
    result = validate_tables("watermark", watermark_suite(data, _Tolerance()))
    assert not result.success and any(name.startswith(failed) for name in result.failed_checks), result.failed_checks


def test_the_suite_is_skipped_without_the_stage_and_errs_on_a_missing_table(watermark_tree, tmp_path):
    with pytest.raises(SuiteSkipped):
        watermark_suite(tmp_path, _Tolerance())
    data = _copy(watermark_tree, tmp_path)
    (data / "watermark" / "morris.csv").unlink()
    with pytest.raises(MissingInput, match="morris.csv"):
        watermark_suite(data, _Tolerance())
