"""Verdict rules and the interaction-versus-non-linearity reading."""
from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
import pytest

from shortcut_audit.audit.factor_morris import factor_morris
from shortcut_audit.audit.interaction import interaction_table
from shortcut_audit.audit.interventions import run_interventions
from shortcut_audit.factors.scene import ProbabilityReader
from shortcut_audit.audit.verdicts import VerdictRule, verdict_table
from shortcut_audit.config import ParamError

RULE = VerdictRule(mu_star_share_threshold=0.1, min_mu_star=0.1, drop_threshold=0.1)
FACTORS = ("digit_color", "bg_color", "position")


def _morris_rows(mu_star: dict[str, float], sigma: dict[str, float] | None = None) -> pd.DataFrame:
    total = sum(mu_star.values())
    sigma = sigma or {f: 0.0 for f in mu_star}
    return pd.DataFrame(
        [
            {
                "factor": f,
                "output": "true_class_prob",
                "mu": 0.0,
                "mu_star": m,
                "sigma": sigma[f],
                "mu_star_conf": 0.0,
                "mu_star_share": m / total if total else 0.0,
                "sigma_over_mu_star": sigma[f] / m if m else 0.0,
            }
            for f, m in mu_star.items()
        ]
    )


def test_background_model_is_judged_to_rely_on_background_by_both_methods(bg_model, heldout, aligned):
    reader = ProbabilityReader(bg_model)
    morris = factor_morris(reader, heldout, n_trajectories=12, levels=20)
    interventions = run_interventions(reader, aligned, morris.mu_star(), repetitions=8)
    table = verdict_table(morris.table, interventions.shapley_drop, RULE, interventions.single_drop).set_index("factor")
    assert list(table.columns) == [
        "mu_star_share", "morris_relied_on", "drop", "single_drop", "intervention_relied_on", "agree"
    ]
    assert table.loc["bg_color", "morris_relied_on"] and table.loc["bg_color", "intervention_relied_on"]
    for factor in ("digit_color", "position"):
        assert not table.loc[factor, "morris_relied_on"] and not table.loc[factor, "intervention_relied_on"]
    assert table["agree"].all()


def test_morris_rule_needs_both_share_and_size():
    assert RULE.morris_relied_on(mu_star=0.3, mu_star_share=0.5)
    assert not RULE.morris_relied_on(mu_star=0.05, mu_star_share=1.0)  # a tiny effect, however dominant
    assert not RULE.morris_relied_on(mu_star=0.3, mu_star_share=0.05)  # dwarfed by the other factors
    assert RULE.intervention_relied_on(0.1) and not RULE.intervention_relied_on(0.09)


@pytest.mark.parametrize(
    "key, value",
    [
        ("mu_star_share_threshold", 0.0),
        ("mu_star_share_threshold", 1.5),
        ("min_mu_star", -0.1),
        ("drop_threshold", "high"),
        ("drop_threshold", True),
    ],
)
def test_rule_from_params_names_the_bad_key(key, value):
    params = {"audit": {"verdicts": {"mu_star_share_threshold": 0.1, "min_mu_star": 0.1, "drop_threshold": 0.1}}}
    params["audit"]["verdicts"][key] = value
    with pytest.raises(ParamError, match=f"audit.verdicts.{key}"):
        VerdictRule.from_params(params)


def test_verdict_table_refuses_mismatched_factors():
    drops = pd.DataFrame({"factor": ["bg_color"], "accuracy": [0.1], "drop": [0.9], "ci_low": [0.0], "ci_high": [0.2]})
    with pytest.raises(ValueError, match="different factors"):
        verdict_table(_morris_rows({"bg_color": 0.3, "position": 0.0}), drops, RULE)


def _accuracies(table: dict[tuple[str, ...], float], repetitions: int = 6, noise: float = 0.01) -> dict:
    rng = np.random.default_rng(0)
    out = {(): np.ones(repetitions)}
    for subset, value in table.items():
        out[subset] = np.clip(value + noise * rng.standard_normal(repetitions), 0, 1)
    return out


def test_additive_factors_read_as_non_linearity():
    # each factor costs the same whatever was re-drawn before: no order dependence
    drop = {"digit_color": 0.3, "bg_color": 0.2, "position": 0.0}
    accuracy = {}
    for r in range(1, 4):
        for subset in combinations(FACTORS, r):
            accuracy[subset] = 1.0 - sum(drop[f] for f in subset)
    table = interaction_table(_morris_rows({"digit_color": 0.4, "bg_color": 0.3, "position": 0.0}),
                              _accuracies(accuracy), RULE)
    assert not table["order_dependent"].any()
    assert (table["reading"] == "non_linearity").all()
    assert table.set_index("factor").loc["digit_color", "order_gap"] == pytest.approx(0.0, abs=0.03)


def test_redundant_colours_read_as_interaction():
    # the model reads either colour: one alone costs nothing, both together everything
    accuracy = {
        ("digit_color",): 1.0, ("bg_color",): 1.0, ("position",): 1.0,
        ("digit_color", "bg_color"): 0.1, ("digit_color", "position"): 1.0, ("bg_color", "position"): 1.0,
        ("digit_color", "bg_color", "position"): 0.1,
    }
    table = interaction_table(_morris_rows({"digit_color": 0.2, "bg_color": 0.2, "position": 0.0}),
                              _accuracies(accuracy), RULE).set_index("factor")
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
    interventions = run_interventions(reader, aligned, morris.mu_star(), repetitions=3)
    table = interaction_table(morris.table, interventions.subset_accuracy, RULE)
    assert (table["reading"] == "none").all()
    assert np.isfinite(table.select_dtypes("number").to_numpy()).all()


def _one_repetition(values):
    return {k: np.array([v]) for k, v in values.items()}


def test_shapley_drop_of_a_single_decisive_factor():
    from shortcut_audit.audit.interventions import shapley_drop_table

    # only bg_color matters: re-drawing it costs 0.6 whatever else is re-drawn
    acc = _one_repetition({
        (): 1.0, ("digit_color",): 1.0, ("bg_color",): 0.4, ("position",): 1.0,
        ("digit_color", "bg_color"): 0.4, ("digit_color", "position"): 1.0,
        ("bg_color", "position"): 0.4, ("digit_color", "bg_color", "position"): 0.4,
    })
    table = shapley_drop_table(acc, ["digit_color", "bg_color", "position"]).set_index("factor")
    assert table.loc["bg_color", "drop"] == pytest.approx(0.6)
    assert table.loc["digit_color", "drop"] == pytest.approx(0.0)
    assert table.loc["position", "drop"] == pytest.approx(0.0)


def test_shapley_drop_splits_redundant_cues_and_sums_to_the_total_drop():
    from shortcut_audit.audit.interventions import shapley_drop_table

    # two redundant cues: either one still aligned keeps the decision right
    acc = _one_repetition({
        (): 1.0, ("digit_color",): 1.0, ("bg_color",): 1.0, ("position",): 1.0,
        ("digit_color", "bg_color"): 0.2, ("digit_color", "position"): 1.0,
        ("bg_color", "position"): 1.0, ("digit_color", "bg_color", "position"): 0.2,
    })
    table = shapley_drop_table(acc, ["digit_color", "bg_color", "position"]).set_index("factor")
    assert table.loc["digit_color", "drop"] == pytest.approx(0.4)
    assert table.loc["bg_color", "drop"] == pytest.approx(0.4)
    assert table.loc["position", "drop"] == pytest.approx(0.0)
    assert table["drop"].sum() == pytest.approx(1.0 - 0.2)
