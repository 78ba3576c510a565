"""Interventional ground truth: sequential and single-factor re-draws (MoSIP Fig. 3b)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from shortcut_audit.audit.interventions import (
    correctly_classified,
    importance_order,
    mean_interval,
    run_interventions,
)
from shortcut_audit.factors.scene import ProbabilityReader

MU_STAR = {"digit_color": 0.0, "bg_color": 0.3, "position": 0.1}


def test_background_model_loses_accuracy_only_when_the_background_is_redrawn(bg_model, aligned):
    result = run_interventions(ProbabilityReader(bg_model), aligned, MU_STAR, repetitions=10, seed=0)
    drops = result.single_drop.set_index("factor")["drop"]
    assert drops["digit_color"] == 0.0 and drops["position"] == 0.0
    # a uniform re-draw keeps the linked colour with probability 1/10
    assert drops["bg_color"] == pytest.approx(0.9, abs=0.06)
    assert result.n_correct == len(aligned)
    assert list(result.single_drop.columns) == ["factor", "accuracy", "drop", "ci_low", "ci_high"]
    assert (result.single_drop["ci_low"] <= result.single_drop["accuracy"]).all()


def test_sequential_table_follows_the_mu_star_order(bg_model, aligned):
    result = run_interventions(ProbabilityReader(bg_model), aligned, MU_STAR, repetitions=5, seed=0)
    table = result.sequential
    assert list(table.columns) == ["order", "step", "factor", "accuracy", "ci_low", "ci_high"]
    most = table[table["order"] == "most_to_least"]
    least = table[table["order"] == "least_to_most"]
    assert most["factor"].tolist() == ["", "bg_color", "position", "digit_color"]
    assert least["factor"].tolist() == ["", "digit_color", "position", "bg_color"]
    assert most["accuracy"].iloc[0] == 1.0 and least["accuracy"].iloc[0] == 1.0
    # the drop happens at the step where the background is re-drawn, in both orders
    assert most["accuracy"].iloc[1] < 0.3 and least["accuracy"].iloc[2] == 1.0
    # re-drawing everything is the same event in both orders (common random numbers)
    assert most["accuracy"].iloc[-1] == least["accuracy"].iloc[-1]


def test_interventions_are_seeded(bg_model, aligned):
    reader = ProbabilityReader(bg_model)
    first = run_interventions(reader, aligned, MU_STAR, repetitions=4, seed=7)
    again = run_interventions(reader, aligned, MU_STAR, repetitions=4, seed=7)
    other = run_interventions(reader, aligned, MU_STAR, repetitions=4, seed=8)
    pd.testing.assert_frame_equal(first.sequential, again.sequential)
    assert not first.sequential.equals(other.sequential)


def test_only_correct_digits_are_intervened_on(digit_colour_model, heldout):
    reader = ProbabilityReader(digit_colour_model)
    correct = correctly_classified(reader, heldout)
    expected = int((heldout.own_values[:, 0] == heldout.labels).sum())
    assert len(correct) == expected > 0


def test_a_model_with_no_correct_digit_is_refused(constant_model, aligned):
    never = aligned.select(aligned.labels != 9)  # the constant model always predicts class 9
    with pytest.raises(ValueError, match="classifies none of the"):
        run_interventions(ProbabilityReader(constant_model), never, MU_STAR, repetitions=3)


def test_importance_order_breaks_ties_by_factor_order():
    assert importance_order({"a": 1.0, "b": 2.0, "c": 1.0}, ["a", "b", "c"]) == ("b", "a", "c")
    with pytest.raises(ValueError, match="no mu"):
        importance_order({"a": 1.0}, ["a", "b"])


def test_mean_interval_is_the_student_t_interval():
    values = np.array([0.2, 0.4, 0.5, 0.3])
    mean, low, high = mean_interval(values, 0.95)
    expected = stats.t.interval(0.95, 3, loc=values.mean(), scale=stats.sem(values))
    assert (mean, low, high) == pytest.approx((values.mean(), *expected))
    assert mean_interval(np.array([0.99, 1.0, 1.0]), 0.95)[2] == 1.0  # clipped to [0, 1]
    assert mean_interval(np.array([0.5]), 0.95) == (0.5, 0.5, 0.5)
