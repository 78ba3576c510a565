"""How good is Morris as a cheap screen for the interventional verdicts? Measured over the sweep.

Morris (MoSIP) costs ``r (d + 1)`` evaluations where exhaustive interventions cost
``2^d``; it is worth using as a screen only if its ``mu*`` separates the factors a
model relies on from those it does not. Over every (model, factor) cell of the sweep,
with the interventional verdict as the truth (inconclusive cells are left out, and
counted):

* :func:`auroc` of ``mu*`` (true-class output) for ``relied_on`` vs ``not_relied_on``:
  the probability that a relied-on cell has a larger ``mu*`` than a not-relied-on one
  (Mann-Whitney; ties count one half);
* the Spearman correlation of ``mu*`` with the Shapley drop (every cell);
* a **screening verdict** ``mu* >= t`` whose threshold is chosen by
  leave-one-correlation-level-out cross-validation (:func:`cross_validate`): for each
  dataset of the sweep, ``t`` is fitted on the cells of the other datasets
  (:func:`fit_threshold`) and judged on the held-out one. The pooled held-out
  agreement is the honest figure of the screen; the threshold fitted on every level is
  the one a user ships (``audit.screen.mu_star_threshold``), recorded with its provenance.

The threshold that maximises agreement is not unique (any value between two
consecutive ``mu*`` gives the same verdicts): among the maximisers the median
candidate is taken and placed midway between the two ``mu*`` values it separates, so
the choice is deterministic and not at the edge of the data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["ScreenFit", "auroc", "cross_validate", "fit_threshold", "screen_agreement", "spearman"]


def auroc(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """Area under the ROC curve of ``scores`` for the boolean ``positive``; None without both classes."""
    scores = np.asarray(scores, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = stats.rankdata(scores)  # average ranks: ties count one half
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    """Spearman rank correlation; None for fewer than three cells or a constant series."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    return float(stats.spearmanr(x, y).statistic)


@dataclass(frozen=True)
class ScreenFit:
    """A fitted threshold and its agreement on the cells it was fitted on."""

    threshold: float
    agreement: float
    n_cells: int


def fit_threshold(scores: np.ndarray, positive: np.ndarray) -> ScreenFit:
    """The threshold ``t`` maximising the agreement of ``scores >= t`` with ``positive`` (module docstring)."""
    scores = np.asarray(scores, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool)
    if scores.size == 0:
        raise ValueError("no conclusive cell to fit a screening threshold on")
    values = np.unique(scores)  # candidate k: positive iff score >= values[k]; k = len: nothing positive
    agreements = np.array([np.mean((scores >= v) == positive) for v in values] + [np.mean(~positive)])
    best = np.flatnonzero(agreements == agreements.max())
    k = int(best[(len(best) - 1) // 2])
    if k == len(values):
        threshold = float(values[-1]) * 1.5 if values[-1] > 0 else 1.0  # above every cell
    else:
        below = float(values[k - 1]) if k > 0 else 0.0
        threshold = (below + float(values[k])) / 2.0
    return ScreenFit(threshold, float(agreements[k]), int(scores.size))


def screen_agreement(scores: np.ndarray, positive: np.ndarray, threshold: float) -> float:
    """Share of cells where ``scores >= threshold`` agrees with ``positive``."""
    scores, positive = np.asarray(scores, dtype=np.float64), np.asarray(positive, dtype=bool)
    return float(np.mean((scores >= threshold) == positive))


def cross_validate(cells: pd.DataFrame, score: str, group: str = "dataset_id") -> tuple[pd.DataFrame, float | None]:
    """Leave-one-group-out screening: fit on the other groups, judge the held-out one.

    Parameters
    ----------
    cells : pandas.DataFrame
        Conclusive cells with the ``score`` column, a boolean ``relied_on`` and ``group``.
    score : str
    group : str
        The correlation level (dataset) each cell belongs to.

    Returns
    -------
    per_group : pandas.DataFrame
        ``group, threshold, n_cells, n_agree, agreement`` per held-out group (a group
        whose complement holds no cell gets no row).
    agreement : float or None
        Pooled held-out agreement (agreeing cells over all judged cells); None when
        no cell could be judged (fewer than two groups).
    """
    rows = []
    for held_out, test in cells.groupby(group, sort=False):
        train = cells[cells[group] != held_out]
        if train.empty:
            continue
        fit = fit_threshold(train[score].to_numpy(), train["relied_on"].to_numpy())
        agree = (test[score].to_numpy() >= fit.threshold) == test["relied_on"].to_numpy(bool)
        rows.append(
            {
                group: held_out,
                "threshold": fit.threshold,
                "n_cells": int(len(test)),
                "n_agree": int(agree.sum()),
                "agreement": float(agree.mean()),
            }
        )
    per_group = pd.DataFrame(rows, columns=[group, "threshold", "n_cells", "n_agree", "agreement"])
    total = int(per_group["n_cells"].sum())
    return per_group, (float(per_group["n_agree"].sum() / total) if total else None)
