"""Verdict table, the interaction-versus-non-linearity reading, and the Morris screen's quality."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from shortcut_audit.audit.factor_morris import factor_morris
from shortcut_audit.audit.interaction import interaction_table
from shortcut_audit.audit.interventions import Budget, InterventionResult, ItemBootstrap, run_interventions
from shortcut_audit.audit.screening import auroc, cross_validate, fit_threshold, screen_agreement, spearman
from shortcut_audit.audit.verdicts import VERDICT_COLUMNS, VerdictRule, verdict_table
from shortcut_audit.config import ParamError
from shortcut_audit.factors.scene import ProbabilityReader

FACTORS = ("digit_color", "bg_color", "position")


def test_verdict_table_reads_states_and_explanations(bg_model, heldout, aligned):
    reader = ProbabilityReader(bg_model)
    morris = factor_morris(reader, heldout, n_trajectories=12, levels=20)
    result = run_interventions(reader, aligned, budget=Budget(64, 6))
    table = verdict_table(
        morris.table,
        result.shapley_drop,
        result.single_drop,
        "global",
        result.n_items,
        result.repetitions,
        result.first_states,
    )
    assert tuple(table.columns) == VERDICT_COLUMNS
    table = table.set_index("factor")
    assert table.loc["bg_color", "state"] == "relied_on"
    assert table.loc["bg_color", "mu_star"] > table.loc["digit_color", "mu_star"]
    assert (table.loc[["digit_color", "position"], "state"] == "not_relied_on").all()


def test_verdict_table_refuses_mismatched_factors(bg_model, heldout, aligned):
    reader = ProbabilityReader(bg_model)
    morris = factor_morris(reader, heldout, factors=["bg_color"], n_trajectories=4)
    result = run_interventions(reader, aligned, budget=Budget(16, 2))
    with pytest.raises(ValueError, match="different factors"):
        verdict_table(morris.table, result.shapley_drop, result.single_drop, "global", 16, 2)


@pytest.mark.parametrize("value", [0.0, 1.5, "high", True])
def test_rule_from_params_names_the_bad_key(value):
    with pytest.raises(ParamError, match="audit.verdicts.drop_threshold"):
        VerdictRule.from_params({"audit": {"verdicts": {"drop_threshold": value}}})


def _result(
    cells: dict[tuple[str, ...], float], n: int = 40, repetitions: int = 5, noise: float = 0.0, factors=FACTORS
) -> InterventionResult:
    """An InterventionResult whose per-cell accuracies are the given subset accuracies (plus noise)."""
    rng = np.random.default_rng(0)
    full = {(): np.ones((n, repetitions))}
    for subset, value in cells.items():
        full[subset] = np.clip(value + noise * rng.standard_normal((n, repetitions)), 0.0, 1.0)
    empty = pd.DataFrame()
    return InterventionResult(
        empty, empty, (0.0, 0.0, 0.0), full, ItemBootstrap(n, 500), tuple(factors), 1, {}, n, n, 0.1
    )


def _morris_rows(mu_star: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"factor": f, "mu_star": m, "sigma": m / 2, "sigma_over_mu_star": 0.5 if m else 0.0}
            for f, m in mu_star.items()
        ]
    )


def test_additive_factors_read_as_non_linearity():
    drop = {"digit_color": 0.3, "bg_color": 0.2, "position": 0.0}
    cells = {s: 1.0 - sum(drop[f] for f in s) for r in range(1, 4) for s in itertools.combinations(FACTORS, r)}
    table = interaction_table(
        _morris_rows({"digit_color": 0.4, "bg_color": 0.3, "position": 0.0}), _result(cells, noise=0.01), 0.1, 0.1
    )
    assert not table["order_dependent"].any()
    assert (table["reading"] == "non_linearity").all()
    assert table.set_index("factor").loc["digit_color", "order_gap"] == pytest.approx(0.0, abs=0.03)


def test_redundant_colours_read_as_interaction():
    cells = {
        ("digit_color",): 1.0,
        ("bg_color",): 1.0,
        ("position",): 1.0,
        ("digit_color", "bg_color"): 0.1,
        ("digit_color", "position"): 1.0,
        ("bg_color", "position"): 1.0,
        ("digit_color", "bg_color", "position"): 0.1,
    }
    table = interaction_table(
        _morris_rows({"digit_color": 0.2, "bg_color": 0.2, "position": 0.0}), _result(cells, noise=0.01), 0.1, 0.1
    ).set_index("factor")
    assert table.loc["bg_color", "order_dependent"] and table.loc["digit_color", "order_dependent"]
    assert table.loc["bg_color", "drop_alone"] == pytest.approx(0.0, abs=0.03)
    assert table.loc["bg_color", "drop_last"] == pytest.approx(0.9, abs=0.03)
    assert table.loc["bg_color", "order_gap"] < 0 and table.loc["bg_color", "gap_ci_high"] < 0
    assert not table.loc["position", "order_dependent"]
    assert (table["reading"] == "interaction").all()


def test_constant_model_reads_none(constant_model, heldout, aligned):
    reader = ProbabilityReader(constant_model)
    with pytest.warns(RuntimeWarning):
        morris = factor_morris(reader, heldout, n_trajectories=4)
    result = run_interventions(reader, aligned.select(aligned.labels == 9), budget=Budget(8, 3))
    table = interaction_table(morris.table[morris.table["output"] == "true_class_prob"], result, 0.1, 0.1)
    assert (table["reading"] == "none").all()
    assert np.isfinite(table.select_dtypes("number").to_numpy()).all()


# --------------------------------------------------------------------------- the screen


def test_auroc_equals_the_share_of_correctly_ordered_pairs():
    rng = np.random.default_rng(2)
    scores = rng.integers(0, 6, 40).astype(float)  # many ties
    positive = rng.random(40) < 0.4
    pairs = [(p, n) for p in scores[positive] for n in scores[~positive]]
    expected = np.mean([1.0 if p > n else 0.5 if p == n else 0.0 for p, n in pairs])
    assert auroc(scores, positive) == pytest.approx(expected)
    assert auroc(scores, np.ones(40, bool)) is None


def test_fitted_threshold_maximises_agreement_and_sits_between_the_data():
    scores = np.array([0.01, 0.02, 0.05, 0.2, 0.3, 0.04])
    positive = np.array([False, False, False, True, True, True])
    fit = fit_threshold(scores, positive)
    best = max(screen_agreement(scores, positive, t) for t in np.linspace(0, 0.4, 4001))
    assert fit.agreement == pytest.approx(best)
    assert screen_agreement(scores, positive, fit.threshold) == pytest.approx(best)
    assert fit.threshold not in scores


def test_leave_one_level_out_fits_on_the_other_levels_only():
    cells = pd.DataFrame(
        {
            "dataset_id": ["a", "a", "b", "b", "c", "c"],
            "mu": [0.1, 0.3, 0.1, 0.3, 0.25, 0.35],
            "relied_on": [False, True, False, True, False, True],
        }
    )
    per_level, agreement = cross_validate(cells, "mu")
    held_c = per_level.set_index("dataset_id").loc["c"]
    assert held_c["threshold"] == pytest.approx(
        fit_threshold(np.array([0.1, 0.3, 0.1, 0.3]), np.array([False, True, False, True])).threshold
    )
    assert held_c["n_agree"] == 1  # 0.25 lies above the threshold fitted on a and b
    assert agreement == pytest.approx(per_level["n_agree"].sum() / 6)


def test_spearman_is_undefined_for_constant_series():
    assert spearman(np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 9.0])) == pytest.approx(1.0)
    assert spearman(np.array([1.0, 1.0, 1.0]), np.array([2.0, 4.0, 9.0])) is None
