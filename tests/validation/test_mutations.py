"""Corrupt one artefact at a time: its suite must fail naming the check, and the gate must exit 1."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from shortcut_audit.validation.suites import run_suite, write_outcomes


def _edit_csv(path: Path, edit: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    edit(pd.read_csv(path)).to_csv(path, index=False)


def _edit_parquet(path: Path, edit: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    edit(pd.read_parquet(path)).to_parquet(path, index=False)


def _rows(frame: pd.DataFrame, dataset_id: str, arch: str) -> pd.Series:
    return (frame["dataset_id"] == dataset_id) & (frame["arch"] == arch)


def _set_morris(column: str, value: float) -> Callable[[Path], None]:
    def apply(data: Path) -> None:
        def edit(frame):
            frame.loc[_rows(frame, "p0.5", "mlp") & (frame["factor"] == "position"), column] = value
            return frame

        _edit_csv(data / "audit_summary" / "morris.csv", edit)

    return apply


def first_above_total(data: Path) -> None:
    def edit(frame):
        frame.loc[3, "S1"] = frame.loc[3, "ST"] + 0.2
        return frame

    _edit_csv(data / "imagenet" / "sobol.csv", edit)


def auc_interval_below_zero(data: Path) -> None:
    def edit(frame):
        frame.loc[frame["metric"] == "deletion_auc", "ci_low"] = -0.2
        return frame

    _edit_csv(data / "imagenet" / "fidelity_summary.csv", edit)


def drop_validation_rows(data: Path) -> None:
    _edit_parquet(data / "biased_mnist" / "p0.5" / "val.parquet", lambda f: f.iloc[10:])


def unknown_factor_value(data: Path) -> None:
    def edit(frame):
        frame.loc[0, "bg_color"] = 12
        return frame

    _edit_parquet(data / "biased_mnist" / "p0.5" / "train.parquet", edit)


def shuffled_labels(data: Path) -> None:
    """Permute the labels and keep the table self-consistent: only the correlation is wrong."""

    def edit(frame):
        frame["label"] = np.random.default_rng(1).permutation(frame["label"].to_numpy())
        labels = frame["label"].to_numpy()
        for factor in ("digit_color", "bg_color", "position"):
            linked = labels % 9 if factor == "position" else labels
            frame[f"{factor}_aligned"] = frame[factor].to_numpy() == linked
        return frame

    _edit_parquet(data / "biased_mnist" / "p0.99" / "train.parquet", edit)


def missing_model(data: Path) -> None:
    _edit_csv(data / "train_summary" / "models.csv", lambda f: f[~_rows(f, "p0.5", "mlp")])


def accuracy_out_of_range(data: Path) -> None:
    def edit(frame):
        frame.loc[_rows(frame, "p0.5", "simple_cnn"), "unbiased_acc"] = 1.2
        return frame

    _edit_csv(data / "train_summary" / "models.csv", edit)


def infinite_map(data: Path) -> None:
    path = data / "audit" / "p0.5" / "mlp" / "seed0" / "maps.npz"
    with np.load(path) as npz:
        arrays = dict(npz)
    arrays["maps"][0, 0, 0] = np.inf
    np.savez(path, **arrays)


def wrong_map_shape(data: Path) -> None:
    path = data / "audit" / "p0.99" / "simple_cnn" / "seed0" / "maps.npz"
    with np.load(path) as npz:
        arrays = dict(npz)
    arrays["maps"] = arrays["maps"][:, :7, :7]
    np.savez(path, **arrays)


def truncated_mnist_labels(data: Path) -> None:
    path = data / "mnist" / "test_labels.npy"
    np.save(path, np.load(path)[:-5])


def total_drop_falls(data: Path) -> None:
    """The p = 0.99 simple_cnn suddenly loses almost nothing when every factor is re-drawn."""

    def edit(frame):
        rows = _rows(frame, "p0.99", "simple_cnn")
        frame.loc[rows, ["total_drop", "total_ci_low", "total_ci_high"]] = [0.02, 0.0, 0.05]
        return frame

    _edit_csv(data / "audit_summary" / "models.csv", edit)


def unbiased_model_uses_colour(data: Path) -> None:
    def edit(frame):
        rows = _rows(frame, "p0.1", "mlp") & (frame["factor"] == "bg_color")
        frame.loc[rows, ["state", "drop", "ci_low", "ci_high"]] = ["relied_on", 0.4, 0.35, 0.45]
        return frame

    _edit_csv(data / "audit_summary" / "verdicts.csv", edit)


def background_model_uses_position(data: Path) -> None:
    def edit(frame):
        rows = _rows(frame, "bg_color-p0.9", "mlp") & (frame["factor"] == "position")
        frame.loc[rows, ["state", "drop", "ci_low", "ci_high"]] = ["inconclusive", 0.1, 0.06, 0.14]
        return frame

    _edit_csv(data / "audit_summary" / "verdicts.csv", edit)


def screen_is_poor(data: Path) -> None:
    path = data / "audit_summary" / "screen.json"
    screen = json.loads(path.read_text())
    screen["samplings"]["global"]["auroc"] = 0.6
    path.write_text(json.dumps(screen))


def order_check_fails(data: Path) -> None:
    def edit(frame):
        rows = _rows(frame, "p0.99", "mlp") & (frame["sampling"] == "global")
        frame.loc[rows, ["area", "ci_low", "ci_high", "holds"]] = [-0.2, -0.3, -0.1, False]
        return frame

    _edit_csv(data / "audit_summary" / "order_check.csv", edit)


@dataclass(frozen=True)
class Mutation:
    name: str
    apply: Callable[[Path], None]
    suite: str
    check: str


MUTATIONS = [
    Mutation("nan_mu_star", _set_morris("mu_star", np.nan), "sensitivity", "audit_summary.morris: mu_star not NaN"),
    Mutation("negative_mu_star", _set_morris("mu_star", -0.05), "sensitivity", "audit_summary.morris: mu_star >= 0"),
    Mutation("mu_above_mu_star", _set_morris("mu", 0.5), "sensitivity", "audit_summary.morris: |mu| <= mu*"),
    Mutation("first_order_above_total", first_above_total, "sensitivity", "imagenet.sobol: S1 <= ST + 0.05"),
    Mutation(
        "auc_interval_below_zero",
        auc_interval_below_zero,
        "sensitivity",
        "imagenet.fidelity_summary: ci_low in the metric's range",
    ),
    Mutation("wrong_row_count", drop_validation_rows, "biased_mnist", "split_sizes: row count per split as in params"),
    Mutation("unknown_factor_value", unknown_factor_value, "biased_mnist", f"rows: bg_color in {list(range(10))}"),
    Mutation(
        "shuffled_labels",
        shuffled_labels,
        "biased_mnist",
        "linked_rates: linked rate within tolerance of its expected value",
    ),
    Mutation("missing_model", missing_model, "training", "sweep: every model of the sweep is present"),
    Mutation("accuracy_out_of_range", accuracy_out_of_range, "training", "models: unbiased_acc in [0, 1]"),
    Mutation("infinite_map", infinite_map, "attribution_maps", "maps: maps finite"),
    Mutation("wrong_map_shape", wrong_map_shape, "attribution_maps", "maps: maps_dim1 == 28"),
    Mutation("truncated_mnist_labels", truncated_mnist_labels, "mnist", "arrays: one label per image"),
    Mutation(
        "total_drop_falls_with_p",
        total_drop_falls,
        "findings",
        "total_drop: the total drop does not fall as p rises (beyond both intervals)",
    ),
    Mutation(
        "unbiased_model_uses_colour",
        unbiased_model_uses_colour,
        "findings",
        "unbiased: p = 0.1 models rely on no factor",
    ),
    Mutation(
        "background_model_uses_position",
        background_model_uses_position,
        "findings",
        "background_only: background-only models rely on the background only",
    ),
    Mutation("screen_is_poor", screen_is_poor, "findings", "screen: Morris AUROC >= 0.85"),
    Mutation(
        "order_check_fails",
        order_check_fails,
        "findings",
        "order_check: re-drawing in mu* order loses accuracy at least as fast",
    ),
]


@pytest.mark.parametrize("mutation", MUTATIONS, ids=[m.name for m in MUTATIONS])
def test_mutation_fails_its_suite_and_the_gate(mutation, healthy, tree, run_gate):
    data = tree / "data"
    mutation.apply(data)

    outcome = run_suite(mutation.suite, data, healthy.settings)
    assert outcome.status == "failed"
    assert mutation.check in outcome.failed_expectations
    failed = [r for t in outcome.document["tables"] for r in t["results"] if not r["success"]]
    assert any(r["expectation_config"]["description"] == mutation.check for r in failed)

    others = [o for o in healthy.outcomes if o.suite != mutation.suite]
    write_outcomes([*others, outcome], data / "validation")
    summary = pd.read_csv(data / "validation" / "summary.csv", keep_default_na=False).set_index("suite")
    assert summary.loc[mutation.suite, "status"] == "failed"
    assert mutation.check in summary.loc[mutation.suite, "failed_expectations"]

    gate = run_gate(tree)
    assert gate.code == 1
    assert gate.document["status"] == "fail" and gate.document["exit_code"] == 1
    failing = gate.checks("fail")
    assert f"suite:{mutation.suite}" in failing
    assert mutation.check in failing[f"suite:{mutation.suite}"]["detail"]
    assert f"suite:{mutation.suite}" in gate.stdout and "FAIL" in gate.stdout


def test_at_least_eight_distinct_mutations_over_every_artefact_kind():
    assert len({m.check for m in MUTATIONS}) >= 8
    assert {m.suite for m in MUTATIONS} >= {
        "mnist",
        "biased_mnist",
        "training",
        "sensitivity",
        "attribution_maps",
        "findings",
    }


def test_an_advisory_suite_warns_without_blocking(healthy, tree, run_gate):
    data = tree / "data"
    mutation = next(m for m in MUTATIONS if m.suite == "findings")
    mutation.apply(data)
    outcome = run_suite(mutation.suite, data, healthy.settings)
    others = [o for o in healthy.outcomes if o.suite != mutation.suite]
    write_outcomes([*others, outcome], data / "validation")
    values = yaml.safe_load((tree / "params.yaml").read_text())
    values["gate"]["advisory_suites"] = ["findings"]
    (tree / "params.yaml").write_text(yaml.safe_dump(values, sort_keys=False))

    gate = run_gate(tree)
    assert gate.code == 0
    warned = gate.checks("warn")
    assert mutation.check in warned["suite:findings"]["detail"]
