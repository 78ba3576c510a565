"""Is a large Morris ``sigma`` due to interactions between factors or to non-linearity?

Morris' ``sigma`` mixes two causes: the output may be a non-linear function of one
factor (its elementary effects differ along the factor's own range), or the
factor's effect may depend on the values of the other factors (interaction).
MoSIP separates them with the sequential interventions: if the factors acted
without interaction -- each non-linear on its own but additive -- re-drawing a
factor would cost the same accuracy whether it is re-drawn first or after the
others, so the drops would follow each factor's own effect (and ``sigma``)
regardless of order. A drop that depends on the order reveals an interaction.

Reading used here, per factor ``f`` of a model, on the per-item accuracies of
:class:`.interventions.InterventionResult` (common random numbers, so the comparison
is paired item by item):

* ``drop_alone = acc(nothing re-drawn) - acc(f re-drawn)``: ``f`` re-drawn first;
* ``drop_last = acc(all others re-drawn) - acc(all re-drawn)``: ``f`` re-drawn last;
* ``order_gap = drop_alone - drop_last`` with the model's item-bootstrap interval.
  ``f`` is *order dependent* when ``|order_gap|`` reaches the interventional
  ``drop_threshold`` and its interval excludes 0. A positive gap means redundancy of
  the AND kind (once another factor is gone, ``f`` no longer matters, e.g. both
  colours had to agree); a negative gap means the model falls back on ``f`` only
  when the others are gone (OR kind).

Per model: ``interaction`` when some factor is order dependent; otherwise
``non_linearity`` when some factor has ``mu*`` of at least ``min_mu_star`` (it moves
the output, and whatever ``sigma`` it has is not explained by the other factors);
otherwise ``none``. Accuracy saturates at chance, so a factor re-drawn after a
decisive one can only lose what is left: that saturation is itself a
non-additivity of accuracy and reads as an interaction.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from shortcut_audit.audit.interventions import InterventionResult

__all__ = ["READINGS", "interaction_table", "model_reading"]

READINGS = ("interaction", "non_linearity", "none")


def interaction_table(
    morris: pd.DataFrame,
    result: InterventionResult,
    drop_threshold: float,
    min_mu_star: float,
) -> pd.DataFrame:
    """Order dependence of every factor's drop, next to its Morris ``mu*`` and ``sigma``.

    Parameters
    ----------
    morris : pandas.DataFrame
        ``morris.parquet`` rows of one sampling and output ``true_class_prob``.
    result : InterventionResult
        The model's interventions.
    drop_threshold : float
        Smallest ``|order_gap|`` that counts (the verdict threshold).
    min_mu_star : float
        ``mu*`` from which a factor with no order dependence reads as non-linear.

    Returns
    -------
    pandas.DataFrame
        ``factor, mu_star, sigma, sigma_over_mu_star, drop_alone, drop_last,
        order_gap, gap_ci_low, gap_ci_high, order_dependent, reading`` (the model
        reading repeated on every row).
    """
    screened = morris.set_index("factor")
    factors: Sequence[str] = result.factors
    rows = []
    for factor in factors:
        others = [f for f in factors if f != factor]
        alone = result.per_item(()) - result.per_item((factor,))
        last = result.per_item(others) - result.per_item(factors)
        gap, gap_low, gap_high = result.interval(alone - last)
        significant = gap_low > 0.0 or gap_high < 0.0
        rows.append(
            {
                "factor": factor,
                "mu_star": float(screened.at[factor, "mu_star"]),
                "sigma": float(screened.at[factor, "sigma"]),
                "sigma_over_mu_star": float(screened.at[factor, "sigma_over_mu_star"]),
                "drop_alone": float(alone.mean()),
                "drop_last": float(last.mean()),
                "order_gap": gap,
                "gap_ci_low": gap_low,
                "gap_ci_high": gap_high,
                "order_dependent": bool(len(factors) > 1 and significant and abs(gap) >= drop_threshold),
            }
        )
    table = pd.DataFrame(rows)
    table["reading"] = model_reading(table, min_mu_star)
    return table


def model_reading(table: pd.DataFrame, min_mu_star: float) -> str:
    """``interaction``, ``non_linearity`` or ``none`` for one model (module docstring)."""
    if bool(table["order_dependent"].any()):
        return "interaction"
    if bool((table["mu_star"] >= min_mu_star).any() and (table["mu_star"] > 0).any()):
        return "non_linearity"
    return "none"
