"""Does a model rely on a factor? The interventional verdict, with its interval and three states.

The audit's answer is interventional (:mod:`.interventions`): on held-out items of
the model's training distribution that it classifies correctly, re-drawing the factor
independently of the label costs accuracy. The statistic is the factor's **Shapley
share of the accuracy drop** over all re-draw orders, with a 95 % interval that covers
the sample of items and the re-draws. Against ``drop_threshold`` (0.1: one decision
in ten) the verdict takes one of three states:

``relied_on``
    the lower bound of the interval reaches the threshold;
``not_relied_on``
    the upper bound lies below it;
``inconclusive``
    the interval straddles it, even after the adaptive budget.

The threshold sits above the floor any re-render produces (digits selected because
they were right once can turn wrong under any small change: about the model's own
error rate on borderline items, a few per cent) and far below the cost of a factor
that alone decides the class (about 0.9 for ten classes).

Morris (MoSIP) is the screen and the explanation: ``mu*``, ``sigma`` and the
interaction reading are reported beside each verdict, and the screen's quality is
measured against the verdicts over the whole sweep (:mod:`.screening`), never assumed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from shortcut_audit.audit.interventions import STATES, verdict_state
from shortcut_audit.config import require

__all__ = ["STATES", "VERDICT_COLUMNS", "VERDICT_OUTPUT", "VerdictRule", "verdict_table"]

VERDICT_OUTPUT = "true_class_prob"
VERDICT_COLUMNS = (
    "factor",
    "state",
    "drop",
    "ci_low",
    "ci_high",
    "first_round_state",
    "single_drop",
    "single_ci_low",
    "single_ci_high",
    "sampling",
    "mu_star",
    "sigma",
    "mu_star_share",
    "n_items",
    "repetitions",
)


@dataclass(frozen=True)
class VerdictRule:
    """Threshold of the interventional verdict.

    Attributes
    ----------
    drop_threshold : float in (0, 1]
        Shapley share of the accuracy drop at which a factor counts as relied on.
    """

    drop_threshold: float = 0.1

    def __post_init__(self) -> None:
        if not 0.0 < self.drop_threshold <= 1.0:
            raise ValueError(f"drop_threshold out of range (0, 1]: {self.drop_threshold!r}")

    @classmethod
    def from_params(cls, params: Mapping) -> VerdictRule:
        """Validated ``audit.verdicts`` section (ParamError names the bad key)."""
        return cls(
            drop_threshold=require(
                params, "audit.verdicts.drop_threshold", float, lambda v: 0.0 < v <= 1.0, "a number in (0, 1]"
            )
        )

    def state(self, ci_low: float, ci_high: float) -> str:
        """Three-state verdict of an interval (module docstring)."""
        return verdict_state(ci_low, ci_high, self.drop_threshold)


def verdict_table(
    morris: pd.DataFrame,
    shapley_drop: pd.DataFrame,
    single_drop: pd.DataFrame,
    sampling: str,
    n_items: int,
    repetitions: int,
    first_states: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """The verdict of every factor with the Morris explanation beside it (``verdicts.parquet``).

    Parameters
    ----------
    morris : pandas.DataFrame
        The model's ``morris.parquet`` table; rows of ``sampling`` and output
        ``true_class_prob`` are used.
    shapley_drop : pandas.DataFrame
        ``factor, drop, ci_low, ci_high, state`` (:class:`.interventions.InterventionResult`).
    single_drop : pandas.DataFrame
        ``factor, drop, ci_low, ci_high``: only this factor re-drawn.
    sampling : str
        The Morris sampling shown as the explanation (the primary one).
    n_items, repetitions : int
        The intervention budget that decided the verdicts.
    first_states : mapping, optional
        ``factor -> state`` at the first-round budget (default: the final states).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`VERDICT_COLUMNS`.
    """
    screened = morris[(morris["output"] == VERDICT_OUTPUT) & (morris["sampling"] == sampling)].set_index("factor")
    drops = shapley_drop.set_index("factor")
    singles = single_drop.set_index("factor")
    mismatch = sorted(set(screened.index) ^ set(drops.index))
    if mismatch:
        raise ValueError(f"Morris ({sampling}) and intervention results cover different factors: {mismatch}")
    rows = []
    for factor in drops.index:
        rows.append(
            {
                "factor": factor,
                "state": str(drops.at[factor, "state"]),
                "drop": float(drops.at[factor, "drop"]),
                "ci_low": float(drops.at[factor, "ci_low"]),
                "ci_high": float(drops.at[factor, "ci_high"]),
                "first_round_state": str((first_states or {}).get(factor, drops.at[factor, "state"])),
                "single_drop": float(singles.at[factor, "drop"]),
                "single_ci_low": float(singles.at[factor, "ci_low"]),
                "single_ci_high": float(singles.at[factor, "ci_high"]),
                "sampling": sampling,
                "mu_star": float(screened.at[factor, "mu_star"]),
                "sigma": float(screened.at[factor, "sigma"]),
                "mu_star_share": float(screened.at[factor, "mu_star_share"]),
                "n_items": int(n_items),
                "repetitions": int(repetitions),
            }
        )
    return pd.DataFrame(rows, columns=list(VERDICT_COLUMNS))
