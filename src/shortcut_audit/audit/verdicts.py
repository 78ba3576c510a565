"""Does a model rely on a factor? One verdict from Morris, one from interventions.

Both verdicts are read per (model, factor) and compared; their agreement is a
headline number of the audit (the interventions are the ground truth).

Morris rule (screening, MoSIP)
------------------------------
Read on the ``true_class_prob`` output (see :mod:`.factor_morris`): the Morris
statistics of each held-out digit's probability of its own class, averaged over
the digits, where an elementary effect is the change of that probability when the
factor changes value. A factor is relied on when **both**

* ``mu* >= min_mu_star``. For a confident classifier ``p(y | x)`` is close to 0 or
  1, so ``|change|`` is about 1 when the move flips whether the digit is classified
  correctly and about 0 otherwise: ``mu*`` is then the share of factor changes that
  flip the decision. ``min_mu_star = 0.1`` asks for one decision in ten; and
* its share of the summed ``mu*`` over the audited factors is at least
  ``mu_star_share_threshold`` -- MoSIP reads ``mu*`` relative to the other
  partitions; a factor holding less than a tenth of the model's total factor
  sensitivity is a side effect next to the others, whatever its absolute size.

Interventional rule (ground truth)
----------------------------------
A factor is relied on when its **Shapley share of the accuracy drop** is at least
``drop_threshold``: on digits the model got right on its training distribution,
every subset of factors is re-drawn (uniformly, ``repetitions`` times) and the
factor's marginal accuracy cost is averaged over all re-draw orders
(:func:`.interventions.shapley_drop_table`). ``drop_threshold = 0.1`` asks for one
decision in ten, the same effect size as ``min_mu_star``. The threshold must sit
above the floor that any re-render produces -- digits selected because they were
right once can turn wrong under any small image change, which costs about the
model's own error rate on borderline digits (a few per cent for an unbiased model)
-- and far below the cost of a factor that alone decides the class (about 0.9).

The single-factor drop (re-draw only this factor) is reported beside it. It is not
the verdict statistic because it is the marginal cost at one state only -- every
other cue still aligned -- so a model that reads several redundant cues (the
all-factors-biased datasets) loses little when any one of them is re-drawn, while
Morris, which averages elementary effects over many base points, sees each cue.
The Shapley value averages over the same kind of contexts.

Both thresholds are fixed by these effect-size arguments, not fitted to the
agreement they produce. The two statistics are not on one scale, though: Morris
takes its effects at random factor combinations, the interventions start on the
training distribution. A factor that alone decides the class (one value in ten
gives the class) flips the decision on about two moves in ten, ``mu* ~ 0.2``, while
re-drawing it costs about 0.9 accuracy; and a model that uses several cues partly
is near its decision boundary where they conflict (large ``mu*``) but safe where
they agree (small drop). The verdicts therefore disagree most at intermediate
correlation levels; the audit reports the agreement rather than hiding it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import pandas as pd

from shortcut_audit.config import ParamError, require

__all__ = ["VerdictRule", "verdict_table"]

VERDICT_OUTPUT = "true_class_prob"


@dataclass(frozen=True)
class VerdictRule:
    """Thresholds of both verdicts (see the module docstring for the rules).

    Attributes
    ----------
    mu_star_share_threshold : float in (0, 1]
    min_mu_star : float >= 0
    drop_threshold : float in (0, 1]
    """

    mu_star_share_threshold: float = 0.1
    min_mu_star: float = 0.1
    drop_threshold: float = 0.1

    def __post_init__(self) -> None:
        checks = {
            "mu_star_share_threshold": 0.0 < self.mu_star_share_threshold <= 1.0,
            "min_mu_star": self.min_mu_star >= 0.0,
            "drop_threshold": 0.0 < self.drop_threshold <= 1.0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"{name} out of range: {getattr(self, name)!r}")

    @classmethod
    def from_params(cls, params: Mapping) -> "VerdictRule":
        """Validated ``audit.verdicts`` section (ParamError names the bad key)."""
        prefix = "audit.verdicts"
        return cls(
            mu_star_share_threshold=require(
                params, f"{prefix}.mu_star_share_threshold", float, lambda v: 0.0 < v <= 1.0, "a number in (0, 1]"
            ),
            min_mu_star=require(params, f"{prefix}.min_mu_star", float, lambda v: v >= 0.0, "a number >= 0"),
            drop_threshold=require(
                params, f"{prefix}.drop_threshold", float, lambda v: 0.0 < v <= 1.0, "a number in (0, 1]"
            ),
        )

    def morris_relied_on(self, mu_star: float, mu_star_share: float) -> bool:
        """Morris verdict: share of ``mu*`` and ``mu*`` itself both above their thresholds."""
        return bool(mu_star_share >= self.mu_star_share_threshold and mu_star >= self.min_mu_star)

    def intervention_relied_on(self, drop: float) -> bool:
        """Interventional verdict: Shapley share of the accuracy drop above the threshold."""
        return bool(drop >= self.drop_threshold)


def verdict_table(
    morris: pd.DataFrame, shapley_drop: pd.DataFrame, rule: VerdictRule, single_drop: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Both verdicts per factor (``verdicts.parquet``, docs/architecture.md).

    Parameters
    ----------
    morris : pandas.DataFrame
        The model's ``morris.parquet`` table (rows of output ``true_class_prob`` are used).
    shapley_drop : pandas.DataFrame
        ``factor, drop``: Shapley shares of the accuracy drop (the verdict statistic).
    rule : VerdictRule
    single_drop : pandas.DataFrame, optional
        The model's ``single_drop.parquet`` table, reported as ``single_drop``.

    Returns
    -------
    pandas.DataFrame
        ``factor, mu_star_share, morris_relied_on, drop, single_drop,
        intervention_relied_on, agree`` (``single_drop`` only when given).
    """
    screened = morris[morris["output"] == VERDICT_OUTPUT].set_index("factor")
    drops = shapley_drop.set_index("factor")
    singles = None if single_drop is None else single_drop.set_index("factor")["drop"]
    missing = sorted(set(screened.index) ^ set(drops.index))
    if missing:
        raise ValueError(f"Morris and intervention results cover different factors: {missing}")
    rows = []
    for factor in screened.index:
        share = float(screened.at[factor, "mu_star_share"])
        drop = float(drops.at[factor, "drop"])
        by_morris = rule.morris_relied_on(float(screened.at[factor, "mu_star"]), share)
        by_intervention = rule.intervention_relied_on(drop)
        rows.append(
            {
                "factor": factor,
                "mu_star_share": share,
                "morris_relied_on": by_morris,
                "drop": drop,
                **({} if singles is None else {"single_drop": float(singles[factor])}),
                "intervention_relied_on": by_intervention,
                "agree": by_morris == by_intervention,
            }
        )
    return pd.DataFrame(rows)
