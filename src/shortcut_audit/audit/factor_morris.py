"""MoSIP factor Morris: Morris screening over the semantic factors of a scene.

MoSIP (Sec. 2-4) treats each semantic factor -- on Biased-MNIST the digit colour (10
values), background colour (10) and position (9) -- as one Morris input and maps a
sampled value back to an image through a generator (the Biased-MNIST renderer, or
any :class:`~shortcut_audit.factors.base.ImageFactor`). The model's softmax
probabilities are read for every item of a fixed sample.

Where Morris looks: ``sampling``
--------------------------------
``global`` (MoSIP Sec. 4)
    The engine's design (trajectory, Morris 1991; or radial, Campolongo et al. 2011)
    on the unit cube ``[0, 1]^d``; each factor maps its coordinate onto its domain
    (:meth:`Factor.from_unit`: ``min(floor(u * N), N - 1)`` for ``N`` levels, linear
    for a range). Every design point renders *every* item with the same factor
    values: the factor space is explored uniformly, whatever the items' own values.
``local`` (the analogue of MoSIP Sec. 5's local analysis)
    Each trajectory starts at one item's *own* values (the audit uses items of the
    training distribution) and moves the factors one at a time, in a random order, to
    a value drawn uniformly from the factor's other levels (a range: uniformly from
    the range). MoSIP's local analysis on ImageNet samples around each input's own
    lumped values; for categorical factors the item's own values are the only
    "neighbourhood", so the trajectory starts there. Trajectory ``t`` of item ``i``
    is seeded by ``(seed, t)`` and the item's position, so it does not depend on the
    batch size.

Elementary effects of categorical factors
-----------------------------------------
Colours and cells have no order, so the length of a step in ``u`` carries no meaning.
The effect of a move is the output change itself, ``y(after) - y(before)`` (the
engine's effect multiplied back by its step; the same convention for ranges). With the
trajectory design every step has the same length ``Delta = m / (2(m-1))``, so this
only rescales ``mu``, ``mu*`` and ``sigma`` by ``Delta`` (shares and normalised values
are unchanged); with the radial design it removes the arbitrary weights
``1 / (b_i - a_i)``. ``mu*`` is then in probability units: the mean absolute change of
an output probability when the factor changes value. (With MoSIP's m = 20 a global
trajectory step always changes a categorical value; a radial move may land on the
same value and contribute 0; a local move always changes it.)

Outputs
-------
Each design point yields ``n x C`` probabilities (``n`` items, ``C`` classes); Morris
statistics are taken per output (per item and class), then summarised per factor:

``normalised_mean`` (MoSIP)
    For every output ``k`` the statistics are divided by that output's largest ``mu*``
    over the factors, ``s_k = max_f mu*_{f,k}`` (``mu``, ``mu*`` and ``sigma`` share the
    divisor), then averaged over the outputs. Outputs with ``s_k <= 1e-6`` carry no
    ranking and are left out; if none remains, every value is 0.
``true_class_prob``
    ``p(y_i | x_i)``, item ``i``'s probability of its own label, averaged over the
    items with equal weights, unnormalised (probability units). Probabilities are
    *not* averaged before taking effects: a background change raises ``p(y)`` for the
    digits whose class it is linked to and lowers it for others.
``class_<k>_prob``
    The probability of one fixed class ``k`` (e.g. ImageNet's "carton", 478), averaged
    over the items.

``mu_star_conf`` is a bootstrap over trajectories of the summarised per-trajectory
absolute effects (the engine's ``analyse``). ``mu_star_share`` is ``mu*`` over the sum
of ``mu*`` across factors (0 when the sum is 0); ``sigma_over_mu_star`` is 0 when
``mu*`` is 0.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import torch

from shortcut_audit.factors.base import Categorical
from shortcut_audit.factors.scene import ProbabilityReader, Scene
from shortcut_audit.sensitivity.evaluation import evaluate_in_batches
from shortcut_audit.sensitivity.morris import DESIGNS, MorrisDesign, analyse, radial_design, trajectory_design

__all__ = [
    "OUTPUTS",
    "SAMPLINGS",
    "FactorMorris",
    "class_output",
    "factor_changes",
    "factor_morris",
    "local_trajectories",
    "morris_from_changes",
    "mu_star_by_sampling",
    "output_changes",
    "summarise",
]

OUTPUTS = ("normalised_mean", "true_class_prob")
SAMPLINGS = ("global", "local")
COLUMNS = (
    "sampling",
    "factor",
    "output",
    "mu",
    "mu_star",
    "sigma",
    "mu_star_conf",
    "mu_star_share",
    "sigma_over_mu_star",
)
# Outputs whose largest mu* over the factors is at or below this (probability
# change per move) are treated as inert by the per-output normalisation.
INERT_OUTPUT_SCALE = 1e-6


def class_output(k: int) -> str:
    """Name of the output "probability of class ``k``"."""
    return f"class_{int(k)}_prob"


def _class_of(output: str) -> int | None:
    if output.startswith("class_") and output.endswith("_prob") and output[6:-5].isdigit():
        return int(output[6:-5])
    return None


@dataclass(frozen=True)
class FactorMorris:
    """Result of :func:`factor_morris`.

    Attributes
    ----------
    table : pandas.DataFrame
        ``morris.parquet`` rows: ``sampling, factor, output, mu, mu_star, sigma,
        mu_star_conf, mu_star_share, sigma_over_mu_star``.
    changes : torch.Tensor
        Output changes ``(r, d, n, C)`` per trajectory, factor, item and class (CPU).
    n_evaluations : int
        Images rendered and classified.
    """

    table: pd.DataFrame
    changes: torch.Tensor
    n_evaluations: int

    def mu_star(self, output: str = "true_class_prob") -> dict[str, float]:
        """``factor -> mu*`` of one output."""
        rows = self.table[self.table["output"] == output]
        return dict(zip(rows["factor"], rows["mu_star"].astype(float)))


def build_design(
    design: str, n_trajectories: int, d: int, levels: int, seed: int, device: torch.device
) -> MorrisDesign:
    """The engine's trajectory or radial design for ``d`` factors."""
    if design not in DESIGNS:
        raise ValueError(f"unknown Morris design {design!r}; choose one of {list(DESIGNS)}")
    if design == "radial":
        return radial_design(n_trajectories, d, seed=seed, device=device)
    return trajectory_design(n_trajectories, d, levels=levels, seed=seed, device=device)


def factor_probabilities(reader: ProbabilityReader, scene: Scene, factors: Sequence[str]):
    """``f(u)`` for the engine: points ``(B, d)`` -> probabilities ``(B, n * C)``.

    Row ``b`` holds, item after item, the class probabilities of every item of
    ``scene`` rendered with the factor values that point ``b`` selects.
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


def _global_changes(reader, scene, factors, n_trajectories, levels, design, seed) -> tuple[torch.Tensor, int]:
    plan = build_design(design, n_trajectories, len(factors), levels, seed, scene.device)
    f = factor_probabilities(reader, scene, factors)
    points_per_call = max(1, reader.batch_size // len(scene))
    outputs, _ = evaluate_in_batches(f, plan.rows, plan.n_points, points_per_call, scene.device)
    changes = output_changes(plan, outputs)
    return changes.reshape(plan.n_trajectories, len(factors), len(scene), -1), plan.n_points * len(scene)


def local_trajectories(
    scene: Scene, factors: Sequence[str], n_trajectories: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Values ``(r, d + 1, n, D)`` along the local trajectories, and the factor moved at each step ``(r, n, d)``.

    Point 0 is each item's own values; step ``k`` moves factor ``order[t, i, k]`` to a
    uniformly drawn other level (a range: a uniform value). See the module docstring.
    """
    columns = scene.columns(factors)
    n, d = len(scene), len(factors)
    generator = torch.Generator().manual_seed(int(seed))
    own = scene.own_values.cpu()
    points = torch.empty(n_trajectories, d + 1, n, own.shape[1], dtype=torch.float64)
    orders = torch.empty(n_trajectories, n, d, dtype=torch.int64)
    for t in range(n_trajectories):
        order = torch.rand(n, d, generator=generator).argsort(dim=1)
        current = own.clone()
        points[t, 0] = current
        new = torch.empty(n, d, dtype=torch.float64)
        for j, column in enumerate(columns):
            factor = scene.factors[column]
            if isinstance(factor.domain, Categorical):
                size = factor.domain.size
                shift = torch.randint(max(size - 1, 1), (n,), generator=generator).double() + 1.0
                new[:, j] = torch.remainder(own[:, column] + shift, size) if size > 1 else own[:, column]
            else:
                new[:, j] = factor.domain.from_unit(torch.rand(n, generator=generator, dtype=torch.float64))
        rows = torch.arange(n)
        for k in range(d):
            moved = order[:, k]
            target = torch.tensor(columns)[moved]
            current[rows, target] = new[rows, moved]
            points[t, k + 1] = current
        orders[t] = order
    return points.to(scene.device), orders


def _local_changes(reader, scene, factors, n_trajectories, seed, items=None) -> tuple[torch.Tensor, int]:
    # the trajectories of every item are drawn (no forward pass), then those of ``items`` are evaluated
    points, orders = local_trajectories(scene, factors, n_trajectories, seed)
    if items is not None:
        points, orders, scene = points[:, :, items.to(points.device)], orders[:, items.cpu()], scene.select(items)
    r, steps, n, width = points.shape
    items = torch.arange(n, device=scene.device)
    outputs = []
    per_call = max(1, reader.batch_size // n)  # trajectory points per forward call
    flat_points = points.reshape(r * steps, n, width)
    for start in range(0, r * steps, per_call):
        chunk = flat_points[start : start + per_call]
        images = scene.render(items.repeat(chunk.shape[0]), chunk.reshape(-1, width))
        outputs.append(reader(images).double().reshape(chunk.shape[0], n, -1).cpu())
    y = torch.cat(outputs).reshape(r, steps, n, -1)
    step_changes = y[:, 1:] - y[:, :-1]  # (r, d, n, C) in step order
    changes = torch.empty_like(step_changes)
    index = orders.permute(0, 2, 1)  # (r, d, n): factor moved at step k
    changes.scatter_(1, index[..., None].expand_as(step_changes), step_changes)
    return changes, r * steps * n


def _rows(sampling: str, factors: Sequence[str], output: str, stats: dict[str, torch.Tensor]) -> list[dict]:
    mu_star = stats["mu_star"].clamp(min=0.0)
    total = float(mu_star.sum())
    rows = []
    for i, factor in enumerate(factors):
        m_star, sigma = float(mu_star[i]), float(stats["sigma"][i])
        rows.append(
            {
                "sampling": sampling,
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


def _output_weights(output: str, flat: torch.Tensor, labels: torch.Tensor, n: int, n_classes: int) -> torch.Tensor:
    """Weights ``(n * C,)`` that turn per-output statistics into the named summary."""
    weights = torch.zeros(n * n_classes, dtype=torch.float64, device=flat.device)
    offsets = n_classes * torch.arange(n, device=flat.device)
    if output == "normalised_mean":
        scale = flat.abs().mean(dim=0).amax(dim=0)  # (k,) largest mu* over factors
        active = scale > INERT_OUTPUT_SCALE
        weights = torch.where(active, 1.0 / torch.where(active, scale, 1.0), 0.0)
        return weights / int(active.sum()) if bool(active.any()) else weights
    if output == "true_class_prob":
        weights[labels.to(flat.device).long() + offsets] = 1.0 / n
        return weights
    k = _class_of(output)
    if k is None or not 0 <= k < n_classes:
        raise ValueError(
            f"unknown Morris output {output!r}; use {', '.join(OUTPUTS)} or class_<k>_prob with k < {n_classes}"
        )
    weights[k + offsets] = 1.0 / n
    return weights


def summarise(
    changes: torch.Tensor,
    labels: torch.Tensor,
    factors: Sequence[str],
    conf_level: float = 0.95,
    n_resamples: int = 100,
    seed: int = 0,
    outputs: Sequence[str] = OUTPUTS,
    sampling: str = "global",
) -> pd.DataFrame:
    """The ``morris.parquet`` rows from output changes ``(r, d, n, C)`` (module docstring)."""
    r, d, n, n_classes = changes.shape
    flat = changes.reshape(r, d, n * n_classes).double()
    rows = []
    for output in outputs:
        weights = _output_weights(output, flat, labels, n, n_classes)
        rows += _rows(sampling, factors, output, _summary_stats(flat, weights, conf_level, n_resamples, seed))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def factor_changes(
    reader: ProbabilityReader,
    sample: Scene,
    factors: Sequence[str],
    n_trajectories: int,
    levels: int,
    design: str,
    seed: int,
    sampling: str,
    items: torch.Tensor | None = None,
) -> tuple[torch.Tensor, int]:
    """The output changes ``(r, d, n, C)`` of :func:`factor_morris` (on the CPU) and the images evaluated.

    ``items`` (positions in ``sample``; default all) evaluates some items only, e.g. a
    process's share: every item's draws (the design, the local trajectories) are those
    of the full sample, so the changes of an item do not depend on which items are
    evaluated with it.
    """
    if sampling not in SAMPLINGS:
        raise ValueError(f"unknown Morris sampling {sampling!r}; choose one of {list(SAMPLINGS)}")
    if isinstance(n_trajectories, bool) or int(n_trajectories) < 2:
        raise ValueError(f"n_trajectories must be >= 2 (sigma uses ddof = 1), got {n_trajectories!r}")
    if sampling == "global":
        scene = sample if items is None else sample.select(items)
        changes, n_images = _global_changes(reader, scene, factors, int(n_trajectories), levels, design, seed)
    else:
        changes, n_images = _local_changes(reader, sample, factors, int(n_trajectories), seed, items)
    return changes.cpu(), n_images


def morris_from_changes(
    changes: torch.Tensor,
    labels: torch.Tensor,
    factors: Sequence[str],
    n_images: int,
    conf_level: float = 0.95,
    n_resamples: int = 100,
    seed: int = 0,
    sampling: str = "global",
    outputs: Sequence[str] = OUTPUTS,
) -> FactorMorris:
    """:class:`FactorMorris` from the output changes ``(r, d, n, C)`` of every item and their ``labels``."""
    if not bool(changes.any()):
        warnings.warn(
            f"the model's outputs do not change with any of the factors {list(factors)} over "
            f"{n_images} images ({sampling} sampling; constant model?); all Morris indices are 0",
            RuntimeWarning,
            stacklevel=3,
        )
    table = summarise(changes, labels.cpu(), factors, conf_level, n_resamples, seed, outputs, sampling)
    return FactorMorris(table=table, changes=changes, n_evaluations=n_images)


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
    sampling: str = "global",
    outputs: Sequence[str] = OUTPUTS,
) -> FactorMorris:
    """Morris screening of a model over the factors of a scene (MoSIP).

    Parameters
    ----------
    reader : ProbabilityReader
        The model; its ``batch_size`` bounds the images per forward pass.
    sample : Scene
        Items: held-out ones with uniform factors for ``global`` (the Biased-MNIST audit
        uses ``test_unbiased``), items of the training distribution for ``local``.
        Factors not audited keep the items' own values.
    factors : sequence of str, optional
        Factors varied (``d = len(factors)``; default: every factor of the scene);
        unknown names raise :class:`~shortcut_audit.factors.base.FactorError`.
    n_trajectories : int
        Global: trajectories of the design (MoSIP: 100); local: trajectories per item.
    levels, design
        Global design settings (MoSIP: 20 levels, trajectory design); unused by ``local``.
    seed : int
    conf_level, n_resamples
        Bootstrap confidence of ``mu*``.
    sampling : {"global", "local"}
    outputs : sequence of str
        Summaries to report (module docstring).

    Returns
    -------
    FactorMorris
        Costs ``n_trajectories * (d + 1) * len(sample)`` images in both samplings.
    """
    factors = sample.check(sample.names if factors is None else factors)
    changes, n_images = factor_changes(reader, sample, factors, n_trajectories, levels, design, seed, sampling)
    return morris_from_changes(
        changes, sample.labels, factors, n_images, conf_level, n_resamples, seed, sampling, outputs
    )


def mu_star_by_sampling(table: pd.DataFrame, output: str = "true_class_prob") -> dict[str, dict[str, float]]:
    """``sampling -> factor -> mu*`` of one output from a ``morris.parquet`` table."""
    rows = table[table["output"] == output]
    return {str(s): dict(zip(g["factor"], g["mu_star"].astype(float))) for s, g in rows.groupby("sampling", sort=False)}
