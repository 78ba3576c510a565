"""End to end on real MNIST: a model trained at p = 0.99 through both audit stages."""

from __future__ import annotations

import importlib
from pathlib import Path

import pandas as pd
import pytest
import yaml
from audit_synthetic import trained_workspace

import shortcut_audit  # noqa: F401
from shortcut_audit.io import read_json

DATASET = "p0.99"
SIZES = {"n_train": 3000, "n_val": 200, "n_test": 300}


def _stage(name: str):
    """The library module of a DVC stage (``stages/<name>.py`` only calls its ``main``)."""
    return importlib.import_module(f"shortcut_audit.stages.{name}")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A data folder (real MNIST, one Biased-MNIST level), a trained simple CNN and params."""
    root = tmp_path_factory.mktemp("audit_stage")
    params = trained_workspace(root, DATASET, SIZES, batch_size=128, lr=0.002)
    params["audit"]["interventions"]["n_digits"] = 128
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return root


@pytest.mark.slow
def test_both_stages_on_a_model_trained_at_high_bias(workspace):
    data, params = workspace / "data", str(workspace / "params.yaml")
    assert (
        _stage("audit_factors").main(
            [
                "--dataset",
                DATASET,
                "--arch",
                "simple_cnn",
                "--params",
                params,
                "--data",
                str(data),
                "--models",
                str(data / "models"),
                "--output",
                str(data / "audit"),
            ]
        )
        == 0
    )
    folder = data / "audit" / DATASET / "simple_cnn" / "seed0"
    metrics = read_json(folder / "metrics.json")
    assert metrics["p"] == 0.99 and metrics["biased_factors"] == "digit_color+bg_color+position"
    verdicts = pd.read_parquet(folder / "verdicts.parquet").set_index("factor")
    # at p = 0.99 the colours decide the class: at least one of them is relied on
    assert (verdicts.loc[["digit_color", "bg_color"], "state"] == "relied_on").any()
    assert (verdicts["ci_low"] <= verdicts["drop"]).all() and (verdicts["drop"] <= verdicts["ci_high"]).all()
    assert (
        _stage("audit_summary").main(
            ["--params", params, "--audit", str(data / "audit"), "--output", str(data / "audit_summary")]
        )
        == 0
    )
    summary = read_json(data / "audit_summary" / "metrics.json")
    assert sum(summary["cells"].values()) == 3
