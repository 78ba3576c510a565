"""Interventional ground truth: accuracy after re-drawing factors at random.

MoSIP (Fig. 3b) validates the Morris ranking on Biased-MNIST by intervening on the
factors themselves: take digits the model classifies correctly, re-draw the
factors at random one after another -- from the most to the least important by
``mu*`` and in the reverse order -- and record the accuracy after each step over
many random repetitions. A factor the model relies on costs accuracy when it is
re-drawn; an unused one costs nothing.

Conventions used here
---------------------
* Digits: rows of a split rendered with their own factor values (the audit uses
  ``test_aligned``, i.e. the training distribution), kept only when the model
  classifies them correctly, so accuracy before any intervention is 1.
* A re-draw replaces a factor's value of every digit independently by a value
  uniform over all its ``N`` values (it may coincide with the old one with
  probability ``1 / N``): the intervention ``do(factor ~ Uniform)``.
* Common random numbers: in one repetition every factor gets one vector of new
  values and every subset of factors re-drawn in that repetition uses the same
  vectors. The two orders, the single-factor drops and the interaction analysis
  therefore differ only by *which* factors are re-drawn, not by sampling noise, and
  paired comparisons across them are exact per repetition.
* The accuracy of each subset is evaluated once per repetition for all ``2^d - 1``
  non-empty subsets; the sequential steps and single drops are read from them.
* 95 % (``conf_level``) intervals: Student-t intervals of the mean accuracy over the
  repetitions (the randomness is the re-draw; the digit sample is fixed), clipped
  to ``[0, 1]``.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from shortcut_audit.audit.scene import DigitSample, ProbabilityReader, check_factor_names, factor_columns
from shortcut_audit.data.biased_mnist import FACTORS, N_VALUES
from shortcut_audit.metrics.intervals import mean_interval

__all__ = [
    "ORDERS",
    "InterventionResult",
    "correctly_classified",
    "importance_order",
    "mean_interval",
    "run_interventions",
    "subset_accuracies",
]

ORDERS = ("most_to_least", "least_to_most")
Subset = tuple[str, ...]


def correctly_classified(reader: ProbabilityReader, sample: DigitSample) -> DigitSample:
    """The digits of ``sample`` that the model classifies correctly with their own factors.

    Raises
    ------
    ValueError
        When no digit is classified correctly: accuracy losses are then undefined.
    """
    predicted = reader.predict(sample.render_factors(sample.factors[None]))
    correct = predicted == sample.labels
    if not bool(correct.any()):
        raise ValueError(
            f"the model classifies none of the {len(sample)} digits correctly on its training "
            "distribution; interventional accuracy drops are undefined"
        )
    return sample.select(correct)


def importance_order(mu_star: Mapping[str, float], factors: Sequence[str]) -> tuple[str, ...]:
    """Factors sorted from the largest to the smallest ``mu*`` (ties keep ``factors`` order)."""
    missing = [f for f in factors if f not in mu_star]
    if missing:
        raise ValueError(f"no mu* given for factor(s) {missing}")
    return tuple(sorted(factors, key=lambda f: (-float(mu_star[f]), factors.index(f))))


def canonical(subset: Sequence[str]) -> Subset:
    """A subset of factors in ``FACTORS`` order (the key of subset accuracies)."""
    return tuple(f for f in FACTORS if f in subset)


def _redrawn(sample: DigitSample, subset: Subset, new_values: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Factor matrix ``(1, n, 3)``: the digits' own values, ``subset`` replaced by ``new_values``."""
    values = torch.stack([new_values[f] for f in subset], dim=1)[None]  # (1, n, |subset|)
    return sample.with_values(factor_columns(subset), values)


def subset_accuracies(
    reader: ProbabilityReader,
    sample: DigitSample,
    factors: Sequence[str],
    repetitions: int,
    seed: int = 0,
) -> dict[Subset, np.ndarray]:
    """Accuracy after re-drawing each non-empty subset of ``factors``, per repetition.

    Parameters
    ----------
    reader : ProbabilityReader
    sample : DigitSample
        Digits (normally the correctly classified ones) with their own factors.
    factors : sequence of str
        The factors that may be re-drawn.
    repetitions : int
        Independent re-draws (MoSIP: 100).
    seed : int
        Seed of the CPU generator of the new values (identical on every device).

    Returns
    -------
    dict
        ``{subset (FACTORS order): accuracies (repetitions,) float64}`` for every
        non-empty subset.
    """
    factors = check_factor_names(factors)
    if isinstance(repetitions, bool) or int(repetitions) < 1:
        raise ValueError(f"repetitions must be >= 1, got {repetitions!r}")
    subsets = [canonical(s) for r in range(1, len(factors) + 1) for s in itertools.combinations(factors, r)]
    generator = torch.Generator().manual_seed(int(seed))
    n = len(sample)
    # subsets rendered together per forward batch (at least one), bounding memory
    per_batch = max(1, reader.batch_size // n)
    accuracies = {s: np.empty(repetitions) for s in subsets}
    for rep in range(repetitions):
        new_values = {
            f: torch.randint(N_VALUES[f], (n,), generator=generator).to(sample.device) for f in factors
        }
        for start in range(0, len(subsets), per_batch):
            chunk = subsets[start : start + per_batch]
            settings = torch.cat([_redrawn(sample, subset, new_values) for subset in chunk])  # (chunk, n, 3)
            predicted = reader.predict(sample.render_factors(settings)).view(len(chunk), n)
            correct = (predicted == sample.labels).double().mean(dim=1).cpu().numpy()
            for subset, value in zip(chunk, correct):
                accuracies[subset][rep] = value
    return accuracies


@dataclass(frozen=True)
class InterventionResult:
    """Sequential and single-factor interventions of one model.

    Attributes
    ----------
    sequential : pandas.DataFrame
        ``order, step, factor, accuracy, ci_low, ci_high`` (docs/architecture.md).
    single_drop : pandas.DataFrame
        ``factor, accuracy, drop, ci_low, ci_high``; the interval is that of the accuracy.
    shapley_drop : pandas.DataFrame
        ``factor, drop, ci_low, ci_high``: Shapley share of the accuracy drop
        (:func:`shapley_drop_table`); the statistic of the interventional verdict.
    subset_accuracy : dict
        Per-repetition accuracies of every subset (for :mod:`.interaction`).
    order : tuple of str
        Factors from the most to the least important.
    n_digits, n_correct : int
        Digits evaluated and digits classified correctly (those intervened on).
    """

    sequential: pd.DataFrame
    single_drop: pd.DataFrame
    shapley_drop: pd.DataFrame
    subset_accuracy: dict[Subset, np.ndarray]
    order: tuple[str, ...]
    n_digits: int
    n_correct: int


def sequential_table(
    accuracy: Mapping[Subset, np.ndarray], most_to_least: Sequence[str], conf_level: float = 0.95
) -> pd.DataFrame:
    """Accuracy after each step of both re-draw orders (MoSIP Fig. 3b)."""
    rows = []
    for order_name, order in zip(ORDERS, (tuple(most_to_least), tuple(reversed(most_to_least)))):
        for step in range(len(order) + 1):
            mean, ci_low, ci_high = mean_interval(accuracy[canonical(order[:step])], conf_level)
            rows.append(
                {
                    "order": order_name,
                    "step": step,
                    "factor": order[step - 1] if step else "",
                    "accuracy": mean,
                    "ci_low": ci_low,
                    "ci_high": ci_high,
                }
            )
    return pd.DataFrame(rows)


def single_drop_table(accuracy: Mapping[Subset, np.ndarray], factors: Sequence[str], conf_level: float = 0.95) -> pd.DataFrame:
    """Accuracy and drop (``1 - accuracy``) when only one factor is re-drawn."""
    rows = []
    for factor in factors:
        mean, ci_low, ci_high = mean_interval(accuracy[(factor,)], conf_level)
        rows.append({"factor": factor, "accuracy": mean, "drop": 1.0 - mean, "ci_low": ci_low, "ci_high": ci_high})
    return pd.DataFrame(rows)


def shapley_drop_table(accuracy: Mapping[Subset, np.ndarray], factors: Sequence[str], conf_level: float = 0.95) -> pd.DataFrame:
    """Shapley value of each factor in the accuracy drop caused by re-drawing factors.

    The value of a set ``S`` of re-drawn factors is the accuracy it costs,
    ``v(S) = 1 - acc(S)``; the Shapley value (Shapley 1953) of factor ``i`` is its
    marginal cost averaged over every order in which factors can be re-drawn,

    .. math:: \\phi_i = \\sum_{S \\subseteq F \\setminus \\{i\\}}
              \\frac{|S|!\\,(n - |S| - 1)!}{n!}\\,[acc(S) - acc(S \\cup \\{i\\})].

    Unlike the single-factor drop (the marginal cost at the all-aligned state only),
    it also counts a factor whose cue is redundant with others -- re-drawing it alone
    costs little while the other cues remain -- which is the interventional
    counterpart of Morris's averaging of elementary effects over many base points.
    The values sum to the drop of re-drawing every factor (efficiency). The interval
    is over repetitions (each repetition re-draws every subset with fresh values).
    """
    factors = check_factor_names(factors)
    n = len(factors)
    rows = []
    for factor in factors:
        others = [f for f in factors if f != factor]
        per_rep = np.zeros_like(accuracy[canonical((factor,))], dtype=np.float64)
        for size in range(n):
            weight = math.factorial(size) * math.factorial(n - size - 1) / math.factorial(n)
            for subset in itertools.combinations(others, size):
                per_rep = per_rep + weight * (accuracy[canonical(subset)] - accuracy[canonical(subset + (factor,))])
        mean, ci_low, ci_high = mean_interval(per_rep, conf_level)
        rows.append({"factor": factor, "drop": mean, "ci_low": ci_low, "ci_high": ci_high})
    return pd.DataFrame(rows)


def run_interventions(
    reader: ProbabilityReader,
    sample: DigitSample,
    mu_star: Mapping[str, float],
    factors: Sequence[str] = FACTORS,
    repetitions: int = 100,
    seed: int = 0,
    conf_level: float = 0.95,
) -> InterventionResult:
    """Sequential and single-factor interventions on the correctly classified digits.

    Parameters
    ----------
    reader : ProbabilityReader
    sample : DigitSample
        Held-out digits with factors from the training distribution.
    mu_star : mapping
        ``factor -> mu*`` used to order the factors (the audit passes the
        ``true_class_prob`` mu*).
    factors, repetitions, seed, conf_level
        See :func:`subset_accuracies` and :func:`mean_interval`.
    """
    factors = check_factor_names(factors)
    order = importance_order(mu_star, factors)
    correct = correctly_classified(reader, sample)
    accuracy = subset_accuracies(reader, correct, factors, repetitions, seed)
    accuracy[()] = np.ones(repetitions)  # the digits were selected as correct
    return InterventionResult(
        sequential=sequential_table(accuracy, order, conf_level),
        single_drop=single_drop_table(accuracy, factors, conf_level),
        shapley_drop=shapley_drop_table(accuracy, factors, conf_level),
        subset_accuracy=accuracy,
        order=order,
        n_digits=len(sample),
        n_correct=len(correct),
    )
