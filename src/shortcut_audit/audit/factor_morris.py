"""MoSIP factor audit: Morris screening over the semantic factors of Biased-MNIST.

MoSIP's global analysis on Biased-MNIST treats each semantic factor -- digit colour
(10 values), background colour (10) and position (9) -- as one Morris input. A
point ``u`` of the unit cube ``[0, 1]^d`` picks one value per factor through the
engine's :class:`~shortcut_audit.sensitivity.partitions.SemanticPartition`
(``level = min(floor(u * N), N - 1)``); every digit of a fixed held-out sample is
rendered with those values (:func:`~shortcut_audit.data.biased_mnist.render`) and the
model's softmax probabilities are read. Designs (trajectory, Morris 1991; radial,
Campolongo et al. 2011), their streaming evaluation and the statistics (``mu``,
``mu*``, ``sigma`` with ddof = 1, bootstrap confidence of ``mu*``) come from the
sensitivity engine; this module only decides what the outputs are and how they are
summarised.

Elementary effects of categorical factors
-----------------------------------------
Colours and cells have no order, so the length of a step in ``u`` carries no
meaning. The effect of a move is therefore the output change itself,
``y(after) - y(before)``, i.e. the engine's effect multiplied back by its step.
With the trajectory design every step has the same length ``Delta = m / (2(m-1))``,
so this only rescales ``mu``, ``mu*`` and ``sigma`` by ``Delta`` (shares and
normalised values are unchanged); with the radial design it removes the arbitrary
weights ``1 / (b_i - a_i)``, which would otherwise blow up a move that crosses a
level boundary over a tiny distance. ``mu*`` is then in probability units: the mean
absolute change of an output probability when the factor changes value. (With the
paper's m = 20 a trajectory step always changes the value; a radial move may land
on the same value and then contributes a 0 effect.)

Outputs
-------
Each design point yields ``n x C`` probabilities (``n`` digits, ``C`` classes);
Morris statistics are taken per output (per digit and class), then summarised in
two rows per factor:

``normalised_mean`` (MoSIP)
    For every output ``k`` the statistics are divided by that output's largest
    ``mu*`` over the factors, ``s_k = max_f mu*_{f,k}``, so each output's most
    influential factor scores 1 (``mu``, ``mu*`` and ``sigma`` share the divisor,
    keeping ``sigma / mu*``), and then averaged over the outputs. Outputs with
    ``s_k <= 1e-6`` -- no factor moves them by more than a millionth of probability
    -- carry no ranking and are left out; if none remains, every value is 0.
``true_class_prob``
    The outputs ``p(y_i | x_i)``, digit ``i``'s probability of its own label
    ``y_i``: the per-digit statistics are averaged over the digits with equal
    weights, unnormalised (probability units). The probabilities are *not*
    averaged before taking effects: a background change raises ``p(y)`` for the
    digits whose class it is linked to and lowers it for others, and a mean over a
    class-balanced sample would cancel exactly the effect being measured.

``mu_star_conf`` of both rows is a bootstrap over trajectories of the summarised
per-trajectory absolute effects (the trajectories are the independent units;
outputs of one trajectory are correlated), using the engine's ``analyse``.
``mu_star_share`` is ``mu*`` over the sum of ``mu*`` across factors (0 when the sum
is 0); ``sigma_over_mu_star`` is 0 when ``mu*`` is 0.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Sequence

import pandas as pd
import torch

from shortcut_audit.factors.scene import ProbabilityReader, Scene
from shortcut_audit.sensitivity.evaluation import evaluate_in_batches
from shortcut_audit.sensitivity.morris import DESIGNS, MorrisDesign, analyse, radial_design, trajectory_design

__all__ = ["OUTPUTS", "FactorMorris", "factor_morris", "output_changes", "summarise"]

OUTPUTS = ("normalised_mean", "true_class_prob")
COLUMNS = ("factor", "output", "mu", "mu_star", "sigma", "mu_star_conf", "mu_star_share", "sigma_over_mu_star")
# Outputs whose largest mu* over the factors is at or below this (probability
# change per move) are treated as inert by the per-output normalisation.
INERT_OUTPUT_SCALE = 1e-6


@dataclass(frozen=True)
class FactorMorris:
    """Result of :func:`factor_morris`.

    Attributes
    ----------
    table : pandas.DataFrame
        ``morris.parquet``: ``factor, output, mu, mu_star, sigma, mu_star_conf,
        mu_star_share, sigma_over_mu_star`` (two outputs per factor).
    changes : torch.Tensor
        Output changes ``(r, d, n, C)`` per trajectory, factor, digit and class (CPU).
    n_evaluations : int
        Design points evaluated; each renders every digit of the sample once.
    """

    table: pd.DataFrame
    changes: torch.Tensor
    n_evaluations: int

    def mu_star(self, output: str = "true_class_prob") -> dict[str, float]:
        """``factor -> mu*`` of one output."""
        rows = self.table[self.table["output"] == output]
        return dict(zip(rows["factor"], rows["mu_star"].astype(float)))


def build_design(design: str, n_trajectories: int, d: int, levels: int, seed: int, device: torch.device) -> MorrisDesign:
    """The engine's trajectory or radial design for ``d`` factors."""
    if design not in DESIGNS:
        raise ValueError(f"unknown Morris design {design!r}; choose one of {list(DESIGNS)}")
    if design == "radial":
        return radial_design(n_trajectories, d, seed=seed, device=device)
    return trajectory_design(n_trajectories, d, levels=levels, seed=seed, device=device)


def factor_probabilities(reader: ProbabilityReader, scene: Scene, factors: Sequence[str]):
    """``f(u)`` for the engine: points ``(B, d)`` -> probabilities ``(B, n * C)``.

    Row ``b`` holds, item after item, the class probabilities of every item of
    ``scene`` rendered with the factor values that point ``b`` selects (each
    factor maps its coordinate onto its domain, :meth:`Factor.from_unit`).
    """
    columns = scene.columns(factors)
    chosen = [scene.factors[c] for c in columns]

    def f(u: torch.Tensor) -> torch.Tensor:
        values = torch.stack([factor.from_unit(u[:, j]) for j, factor in enumerate(chosen)], dim=1)
        probabilities = reader(scene.render_grid(scene.with_values(columns, values)))
        return probabilities.reshape(u.shape[0], -1)

    return f


def output_changes(design: MorrisDesign, outputs: torch.Tensor) -> torch.Tensor:
    """Output change of every move, ``(r, d, k)`` in factor order (module docstring).

    The engine's effects divide by the signed step of each move; multiplying back
    gives the change itself. An unchanged output gives exactly 0.
    """
    effects = design.effects(outputs)  # (r, d, k)
    step = torch.empty_like(design.step).scatter_(1, design.moved_group, design.step)
    return effects * step.to(effects).unsqueeze(-1)


def _rows(factors: Sequence[str], output: str, stats: dict[str, torch.Tensor]) -> list[dict]:
    mu_star = stats["mu_star"].clamp(min=0.0)
    total = float(mu_star.sum())
    rows = []
    for i, factor in enumerate(factors):
        m_star, sigma = float(mu_star[i]), float(stats["sigma"][i])
        rows.append(
            {
                "factor": factor,
                "output": output,
                "mu": float(stats["mu"][i]),
                "mu_star": m_star,
                "sigma": sigma,
                "mu_star_conf": float(stats["mu_star_conf"][i]),
                "mu_star_share": m_star / total if total > 0 else 0.0,
                "sigma_over_mu_star": sigma / m_star if m_star > 0 else 0.0,
            }
        )
    return rows


def _summary_stats(
    changes: torch.Tensor, weights: torch.Tensor, conf_level: float, n_resamples: int, seed: int
) -> dict[str, torch.Tensor]:
    """Weighted average over outputs of per-output statistics, with a trajectory bootstrap.

    ``changes`` is ``(r, d, k)`` and ``weights`` ``(k,)``: the statistics of output
    ``k`` are multiplied by ``weights[k]`` and summed. The confidence comes from
    bootstrapping the per-trajectory weighted absolute changes ``(r, d)``.
    """
    per_output = analyse(changes, conf_level, n_resamples=1)
    summed = {key: (value * weights).sum(dim=-1) for key, value in per_output.items() if key != "mu_star_conf"}
    pooled = (changes.abs() * weights).sum(dim=-1)  # (r, d); its mean over r is summed mu*
    summed["mu_star_conf"] = analyse(pooled, conf_level, n_resamples, seed)["mu_star_conf"]
    return summed


def summarise(
    changes: torch.Tensor,
    labels: torch.Tensor,
    factors: Sequence[str],
    conf_level: float = 0.95,
    n_resamples: int = 100,
    seed: int = 0,
) -> pd.DataFrame:
    """The ``morris.parquet`` table from output changes ``(r, d, n, C)`` (module docstring)."""
    r, d, n, n_classes = changes.shape
    flat = changes.reshape(r, d, n * n_classes).double()
    scale = flat.abs().mean(dim=0).amax(dim=0)  # (k,) largest mu* over factors
    active = scale > INERT_OUTPUT_SCALE
    normalised_weights = torch.where(active, 1.0 / torch.where(active, scale, 1.0), 0.0)
    if bool(active.any()):
        normalised_weights = normalised_weights / int(active.sum())
    true_class = labels.to(changes.device).long() + n_classes * torch.arange(n, device=changes.device)
    true_weights = torch.zeros(n * n_classes, dtype=torch.float64, device=changes.device)
    true_weights[true_class] = 1.0 / n
    rows = []
    for output, weights in zip(OUTPUTS, (normalised_weights, true_weights)):
        rows += _rows(factors, output, _summary_stats(flat, weights, conf_level, n_resamples, seed))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def factor_morris(
    reader: ProbabilityReader,
    sample: Scene,
    factors: Sequence[str] | None = None,
    n_trajectories: int = 100,
    levels: int = 20,
    design: str = "trajectory",
    seed: int = 0,
    conf_level: float = 0.95,
    n_resamples: int = 100,
) -> FactorMorris:
    """Morris screening of a model over semantic factors (MoSIP global analysis).

    Parameters
    ----------
    reader : ProbabilityReader
        The model; its ``batch_size`` bounds the images per forward pass. Each
        design point renders all ``len(sample)`` digits, so ``max(1, batch_size //
        len(sample))`` points are evaluated per engine call.
    sample : Scene
        Held-out items (the Biased-MNIST audit uses ``test_unbiased`` digits); factors
        not audited keep the items' own values.
    factors : sequence of str
        Factors of the scene varied by the design (``d = len(factors)``; default:
        every factor of the scene); unknown names raise :class:`~shortcut_audit.factors.base.FactorError`.
    n_trajectories, levels, design, seed
        Engine design settings (MoSIP: 100 trajectories, 20 levels).
    conf_level, n_resamples
        Bootstrap confidence of ``mu*``.

    Returns
    -------
    FactorMorris
    """
    factors = sample.check(sample.names if factors is None else factors)
    plan = build_design(design, n_trajectories, len(factors), levels, seed, sample.device)
    f = factor_probabilities(reader, sample, factors)
    points_per_call = max(1, reader.batch_size // len(sample))
    outputs, _ = evaluate_in_batches(f, plan.rows, plan.n_points, points_per_call, sample.device)
    changes = output_changes(plan, outputs)
    if not bool(changes.any()):
        warnings.warn(
            f"the model's outputs do not change with any of the factors {list(factors)} over "
            f"{plan.n_points} design points (constant model?); all Morris indices are 0",
            RuntimeWarning,
            stacklevel=2,
        )
    changes = changes.reshape(plan.n_trajectories, len(factors), len(sample), -1).cpu()
    table = summarise(changes, sample.labels.cpu(), factors, conf_level, n_resamples, seed)
    return FactorMorris(table=table, changes=changes, n_evaluations=plan.n_points)
