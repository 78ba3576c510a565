"""Interventions: known drops, three-state verdicts with honest intervals, the adaptive budget."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from audit_synthetic import EitherColourModel, WidthGatedModel, gated_pool

from shortcut_audit.audit.interventions import (
    Budget,
    ItemBootstrap,
    correctly_classified,
    importance_order,
    run_interventions,
    verdict_state,
)
from shortcut_audit.factors.scene import ProbabilityReader


def _run(model, pool, budget=None, **kwargs):
    budget = budget or Budget(64, 4)
    return run_interventions(ProbabilityReader(model, batch_size=512), pool, budget=budget, **kwargs)


def test_background_model_relies_on_background_only_with_narrow_intervals(bg_model, aligned):
    result = _run(bg_model, aligned, Budget(64, 10))
    table = result.shapley_drop.set_index("factor")
    assert table.loc["bg_color", "state"] == "relied_on"
    assert table.loc["bg_color", "drop"] == pytest.approx(0.9, abs=0.05)
    assert table.loc["bg_color", "ci_high"] - table.loc["bg_color", "ci_low"] < 0.1
    for factor in ("digit_color", "position"):
        assert table.loc[factor, "state"] == "not_relied_on"
        assert table.loc[factor, "ci_low"] == table.loc[factor, "ci_high"] == 0.0
    assert result.rounds == 1 and result.n_correct == len(aligned)


def test_two_redundant_cues_each_get_half_the_drop(aligned):
    result = _run(EitherColourModel(), aligned, Budget(64, 20))
    drops = result.shapley_drop.set_index("factor")["drop"]
    total = result.total_drop[0]
    assert total == pytest.approx(0.9, abs=0.05)
    assert drops["digit_color"] == pytest.approx(total / 2, abs=0.04)
    assert drops["bg_color"] == pytest.approx(total / 2, abs=0.04)
    assert drops["position"] == 0.0
    assert drops.sum() == pytest.approx(total, abs=1e-12)  # efficiency of the Shapley value
    # re-drawing one colour alone costs much less than its share: the other still votes right half the time
    assert result.single_drop.set_index("factor").loc["bg_color", "drop"] < drops["bg_color"]


def test_shapley_shares_equal_an_independent_computation_from_the_cells(aligned):
    result = _run(EitherColourModel(), aligned, Budget(32, 3))
    factors = result.factors
    acc = {s: c.mean() for s, c in result.cells.items()}
    for factor in factors:
        value = 0.0
        for order in itertools.permutations(factors):  # average marginal cost over every re-draw order
            before = tuple(sorted(order[: order.index(factor)], key=factors.index))
            after = tuple(sorted(before + (factor,), key=factors.index))
            value += acc[before] - acc[after]
        assert result.shapley_drop.set_index("factor").loc[factor, "drop"] == pytest.approx(
            value / math.factorial(len(factors)), abs=1e-12
        )


def test_a_borderline_effect_is_inconclusive_at_a_tiny_budget_and_resolves_when_it_grows():
    pool = gated_pool(1200, wide_share=0.2, seed=3)  # background drop = 0.9 x 0.2 = 0.18
    tiny = _run(WidthGatedModel(), pool, Budget(8, 2, max_doublings=0))
    assert tiny.shapley_drop.set_index("factor").loc["bg_color", "state"] == "inconclusive"
    grown = _run(WidthGatedModel(), pool, Budget(8, 2, max_doublings=7))
    row = grown.shapley_drop.set_index("factor").loc["bg_color"]
    assert row["state"] == "relied_on" and grown.rounds > 1
    assert grown.first_states["bg_color"] == "inconclusive"
    assert row["drop"] == pytest.approx(0.18, abs=0.04)


def test_the_interval_covers_the_true_drop_in_about_95_percent_of_runs():
    """Coverage by simulation: a fresh sample of digits and fresh re-draws in every run."""
    truth = 0.9 * 0.3  # background drop of the width-gated model with 30 % wide digits
    runs, covered = 200, 0
    for k in range(runs):
        pool = gated_pool(40, wide_share=0.3, seed=1000 + k, canvas=28)  # small images: a fast simulation
        result = _run(
            WidthGatedModel(), pool, Budget(40, 4), factors=["digit_color", "bg_color"], seed=k, n_resamples=1000
        )
        row = result.shapley_drop.set_index("factor").loc["bg_color"]
        covered += bool(row["ci_low"] <= truth <= row["ci_high"])
    assert 0.90 <= covered / runs <= 0.99, covered / runs


def test_larger_budgets_extend_smaller_ones(bg_model, aligned):
    small = _run(bg_model, aligned, Budget(16, 3))
    large = _run(bg_model, aligned, Budget(32, 6))
    for subset, cells in small.cells.items():
        assert np.array_equal(large.cells[subset][:16, :3], cells)


def test_results_do_not_depend_on_the_batch_size(bg_model, aligned):
    first = run_interventions(ProbabilityReader(bg_model, batch_size=7), aligned, budget=Budget(20, 3), seed=5)
    second = run_interventions(ProbabilityReader(bg_model, batch_size=999), aligned, budget=Budget(20, 3), seed=5)
    assert first.shapley_drop.equals(second.shapley_drop)
    other = run_interventions(ProbabilityReader(bg_model, batch_size=999), aligned, budget=Budget(20, 3), seed=6)
    assert not np.array_equal(other.cells[("bg_color",)], second.cells[("bg_color",)])


def test_only_correct_digits_are_intervened_on(digit_colour_model, heldout):
    reader = ProbabilityReader(digit_colour_model)
    positions = correctly_classified(reader, heldout)
    assert len(positions) == int((heldout.own_values[:, 0] == heldout.labels).sum()) > 0


def test_a_model_with_no_correct_digit_is_refused(constant_model, aligned):
    never = aligned.select(aligned.labels != 9)  # the constant model always predicts class 9
    with pytest.raises(ValueError, match="classifies none of the"):
        _run(constant_model, never)


def test_sequential_curves_and_the_order_check(bg_model, aligned):
    result = _run(bg_model, aligned, Budget(64, 5))
    table = result.sequential(["bg_color", "position", "digit_color"], "global")
    most = table[table["order"] == "most_to_least"]
    least = table[table["order"] == "least_to_most"]
    assert most["factor"].tolist() == ["", "bg_color", "position", "digit_color"]
    assert most["accuracy"].iloc[0] == 1.0 and most["accuracy"].iloc[1] < 0.3
    assert least["accuracy"].iloc[2] == 1.0
    assert most["accuracy"].iloc[-1] == least["accuracy"].iloc[-1]  # the same event in both orders
    right = result.order_check(["bg_color", "position", "digit_color"])
    wrong = result.order_check(["position", "digit_color", "bg_color"])
    assert right[1] > 0.3 and wrong[2] < -0.3


def test_verdict_states_and_bootstrap_by_hand():
    assert verdict_state(0.1, 0.3, 0.1) == "relied_on"
    assert verdict_state(0.0, 0.099, 0.1) == "not_relied_on"
    assert verdict_state(0.05, 0.12, 0.1) == "inconclusive"
    values = np.random.default_rng(0).random(50)
    boot = ItemBootstrap(50, n_resamples=4000, seed=1)
    mean, low, high = boot.interval(values)
    assert mean == pytest.approx(values.mean())
    half = 1.96 * values.std(ddof=1) / math.sqrt(50)
    assert low == pytest.approx(mean - half, abs=0.02) and high == pytest.approx(mean + half, abs=0.02)


def test_importance_order_breaks_ties_by_factor_order():
    assert importance_order({"a": 1.0, "b": 2.0, "c": 1.0}, ["a", "b", "c"]) == ("b", "a", "c")
    with pytest.raises(ValueError, match="no mu"):
        importance_order({"a": 1.0}, ["a", "b"])
