"""Aggregation of a stack of attribution maps into one map per image (Mahlau & Nolde 2022, Sec. 3.2).

Notation of the paper: an ensemble ``E = {e^1, ..., e^K}`` of (normalised, Sec. 3.1)
base maps; per pixel ``(i, j)`` the mean ``mu(E_ij)`` (Eq. 6) and the *population*
standard deviation ``sigma(E_ij)`` (Eq. 7) over the K maps; per image the
"approximate attribution value of the most important pixel" ``E+ = max_ij mu(E_ij)``
(text under Eq. 10). The aggregations, each with its equation:

- ``mean`` (Eq. 5): ``mu``;
- ``percentile`` (Sec. 3.2, ``g_k``): the k-th percentile of the K values, linear
  interpolation between data points;
- ``ucb`` (Eq. 8): ``mu + eps * sigma``;
- ``pi`` (Eq. 9): ``Phi(Z)`` with ``Z = (mu - E+ - eps) / sigma``;
- ``ei`` (Eq. 10): ``Phi(Z) (mu - E+ - eps) + sigma phi(Z)``;
- ``ci`` (Eq. 11, Contextual Improvement of Jasrasaria & Pyzer-Knapp, the paper's ref. [14]):
  EI (Eq. 10, "in Equation 10") with ``eps = sum_ij sigma_ij^2 / (m n E+)``, the image's mean
  ensemble variance divided by ``E+``;
- ``api`` / ``aei`` (Eqs. 12-13, approximated by Eqs. 14-15): PI / EI averaged over ``N``
  exploration rates ``eps_k = a + k (b - a) / (N - 1)``, ``k = 0 .. N - 1``;
- ``var`` (Eq. 16, Variance-Aggregation after Rieger & Hansen, ref. [28], extended by eps):
  ``(1/|E|) sum_e e_ij / (eps sigma_ij + delta)``, which is ``mu / (eps sigma + delta)``
  because the denominator does not depend on ``e``;
- ``rbm`` (Sec. 3.2, Borisov et al. 2021, ref. [5]): see :mod:`.rbm`.

``phi`` and ``Phi`` are the standard normal density and distribution function. Where
``sigma = 0`` (every base map agrees) ``Z`` is the limit of ``gap / sigma`` with
``gap = mu - E+ - eps``: PI is 1 above the threshold, 1/2 on it and 0 below, EI is
``max(gap, 0)``. No result is NaN.

Settings. :class:`AggregationSettings` holds one value per hyperparameter; its
defaults are the paper's Table 1 (tuned on ImageNet with z-score normalisation):
percentile ``k = 25``, UCB ``eps = -0.5``, PI ``eps = -4``, EI ``eps = -6``, API
``[a, b] = [-7, 2]``, AEI ``[a, b] = [-10, 5]``, VAR ``eps = 1e-7``, RBM ``alpha = 1e-4``,
``k = 100``. In the extracted text of Table 1 the minus signs and exponents are lost in
the rendered cells ("UCB (eps=0.5)", "PI (eps=4)", "API [7,2]", "VAR (eps=107)", "RBM
(alpha=104 ...)"); the LaTeX source kept beside each cell has them (``\\epsilon=-0.5``,
``[-7,2]``, ``10^{-7}``, ``10^{-4}``), and Sec. 4.2.2 explains why UCB's eps is
negative ("subtracting the standard deviation").

Two numbers the paper does not give:

- ``N`` of Eqs. 14-15 (``n_eps``): default 64 points, i.e. a spacing of at most
  ``15 / 63 = 0.24`` on the paper's widest interval. PI and EI change with eps on the
  scale of ``sigma``, which for z-scored base maps (unit spread per map) is of order 1
  where methods disagree, so a quarter-unit grid resolves them; chosen before any run.
- ``delta`` of Eq. 16: the paper calls it part of VAR but gives no value. The ranking of
  ``mu / (eps sigma + delta)`` depends only on ``eps / delta``, and the paper observes that
  VAR at its setting ``eps = 1e-7`` is "intrinsically close to the average aggregation"
  (Sec. 3.2, Fig. 3) and that for small eps the scores approach the average (Sec. 4.2.5).
  The default ``delta = 1`` is the unit of z-scored attributions: the denominator is
  ``1 + eps sigma``, so eps reads as "how much one unit of disagreement discounts a pixel"
  and at ``eps = 1e-7`` VAR is the average up to a relative 1e-7, as the paper observes.
  (Were ``delta`` a numerical guard of order 1e-7, VAR at ``eps = 1e-7`` would be
  ``mu / (1 + sigma)`` up to scale: no longer close to the average.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from shortcut_audit.attribution.ensemble.normalise import normalise
from shortcut_audit.attribution.ensemble.rbm import rbm_aggregate

AGGREGATIONS = ("mean", "percentile", "ucb", "pi", "ei", "ci", "api", "aei", "var", "rbm")

_SQRT2 = math.sqrt(2.0)


@dataclass(frozen=True)
class AggregationSettings:
    """Hyperparameters of the aggregations; defaults are Mahlau & Nolde (2022) Table 1.

    Attributes
    ----------
    percentile : float
        ``k`` of ``g_k`` in [0, 100] (Table 1: 25, the lower quartile).
    ucb_epsilon, pi_epsilon, ei_epsilon : float
        Exploration rates of Eqs. 8, 9, 10 (Table 1: -0.5, -4, -6).
    api_range, aei_range : (float, float)
        ``[a, b]`` of Eqs. 12-15 (Table 1: [-7, 2] and [-10, 5]).
    n_eps : int
        ``N`` of Eqs. 14-15 (not given in the paper; see the module docstring).
    var_epsilon, var_delta : float
        ``eps`` and ``delta`` of Eq. 16 (Table 1: eps = 1e-7; delta not given, default 1).
    rbm_learning_rate, rbm_iterations, rbm_batch_size : float, int, int
        ``alpha`` and ``k`` of ``g_rbm`` (Table 1: 1e-4 and 100) and the mini-batch size of
        the training sweeps (not given; 10, see :mod:`.rbm`).
    """

    percentile: float = 25.0
    ucb_epsilon: float = -0.5
    pi_epsilon: float = -4.0
    ei_epsilon: float = -6.0
    api_range: tuple[float, float] = (-7.0, 2.0)
    aei_range: tuple[float, float] = (-10.0, 5.0)
    n_eps: int = 64
    var_epsilon: float = 1e-7
    var_delta: float = 1.0
    rbm_learning_rate: float = 1e-4
    rbm_iterations: int = 100
    rbm_batch_size: int = 10

    def __post_init__(self):
        problems = []
        if not 0.0 <= self.percentile <= 100.0:
            problems.append(f"percentile must lie in [0, 100], got {self.percentile!r}")
        for name in ("api_range", "aei_range"):
            low, high = getattr(self, name)
            if not low < high:
                problems.append(f"{name} must be (a, b) with a < b, got {getattr(self, name)!r}")
        if self.n_eps < 2:
            problems.append(f"n_eps must be >= 2 (Eqs. 14-15 divide by N - 1), got {self.n_eps!r}")
        if not self.var_delta > 0 or not self.var_epsilon >= 0:
            problems.append(
                f"var_epsilon must be >= 0 and var_delta > 0 so that eps sigma + delta > 0 (Eq. 16), "
                f"got {self.var_epsilon!r}, {self.var_delta!r}"
            )
        if not self.rbm_learning_rate > 0 or self.rbm_iterations < 1 or self.rbm_batch_size < 1:
            problems.append(
                "rbm_learning_rate must be > 0, rbm_iterations and rbm_batch_size >= 1, got "
                f"{self.rbm_learning_rate!r}, {self.rbm_iterations!r}, {self.rbm_batch_size!r}"
            )
        if problems:
            raise ValueError("; ".join(problems))

    def describe(self, method: str) -> str:
        """The setting of ``method`` as written in Table 1, e.g. ``"eps=-0.5"`` ("" if none)."""
        return {
            "percentile": f"k={self.percentile:g}",
            "ucb": f"eps={self.ucb_epsilon:g}",
            "pi": f"eps={self.pi_epsilon:g}",
            "ei": f"eps={self.ei_epsilon:g}",
            "ci": "eps=Eq. 11",
            "api": f"[a,b]=[{self.api_range[0]:g},{self.api_range[1]:g}], N={self.n_eps}",
            "aei": f"[a,b]=[{self.aei_range[0]:g},{self.aei_range[1]:g}], N={self.n_eps}",
            "var": f"eps={self.var_epsilon:g}, delta={self.var_delta:g}",
            "rbm": f"alpha={self.rbm_learning_rate:g}, k={self.rbm_iterations}, batch={self.rbm_batch_size}",
        }.get(method, "")


TABLE_1 = AggregationSettings()


def _normal_cdf(z: torch.Tensor) -> torch.Tensor:
    return 0.5 * (1.0 + torch.erf(z / _SQRT2))


def _normal_pdf(z: torch.Tensor) -> torch.Tensor:
    return torch.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)


def moments(stack: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eqs. 6-7: mean and population standard deviation over the method axis of (K, N, H, W)."""
    mu = stack.mean(dim=0)
    return mu, (stack - mu).pow(2).mean(dim=0).sqrt()


def best_mean(mu: torch.Tensor) -> torch.Tensor:
    """``E+ = max_ij mu(E_ij)`` of every image (text under Eq. 10), shaped (N, 1, 1) to broadcast."""
    return mu.flatten(1).amax(dim=1).view(-1, 1, 1)


def upper_confidence_bound(mu, sigma, epsilon: float) -> torch.Tensor:
    """Eq. 8: ``mu + eps * sigma``."""
    return mu + epsilon * sigma


def _improvement(mu, sigma, epsilon, best):
    """``gap = mu - E+ - eps`` and ``Z = gap / sigma`` (0 where sigma = 0; the callers take the limit)."""
    gap = mu - best - epsilon
    safe = torch.where(sigma > 0, sigma, torch.ones_like(sigma))
    return gap, gap / safe


def probability_of_improvement(mu, sigma, epsilon, best) -> torch.Tensor:
    """Eq. 9: ``Phi(Z)``, ``Z = (mu - E+ - eps) / sigma``; the step function of the gap where sigma = 0.

    Parameters
    ----------
    mu, sigma : Tensor (N, H, W)
        Eqs. 6-7.
    epsilon : float or Tensor broadcastable to (N, H, W)
        Exploration rate.
    best : Tensor (N, 1, 1)
        ``E+`` of each image (:func:`best_mean`).
    """
    gap, z = _improvement(mu, sigma, epsilon, best)
    return torch.where(sigma > 0, _normal_cdf(z), 0.5 * (1.0 + torch.sign(gap)))


def expected_improvement(mu, sigma, epsilon, best) -> torch.Tensor:
    """Eq. 10: ``Phi(Z) (mu - E+ - eps) + sigma phi(Z)``; ``max(mu - E+ - eps, 0)`` where sigma = 0.

    Parameters as in :func:`probability_of_improvement`.
    """
    gap, z = _improvement(mu, sigma, epsilon, best)
    return torch.where(sigma > 0, gap * _normal_cdf(z) + sigma * _normal_pdf(z), gap.clamp(min=0))


def contextual_epsilon(sigma: torch.Tensor, best: torch.Tensor) -> torch.Tensor:
    """Eq. 11: ``eps = sum_ij sigma_ij^2 / (m n E+)`` per image, (N, 1, 1).

    Eq. 11 divides by ``E+``, so it needs ``E+ > 0``; that always holds for linear- and
    z-normalised ensembles unless the mean map is constant. An ensemble in which no base
    map varies across the methods (all ``sigma = 0``) gets eps = 0 (EI is then the plain
    gap, whatever eps). Any other image with ``E+ <= 0`` raises ``ValueError``.
    """
    variance = sigma.pow(2).flatten(1).mean(dim=1).view(-1, 1, 1)
    undefined = (best <= 0) & (variance > 0)
    if undefined.any():
        images = torch.nonzero(undefined.flatten()).flatten().tolist()
        raise ValueError(
            f"ci: Eq. 11 divides by E+ (the largest mean attribution), which is <= 0 for image(s) "
            f"{images}; use linear or z normalisation, whose mean maps have E+ > 0"
        )
    safe = torch.where(best > 0, best, torch.ones_like(best))
    return torch.where(best > 0, variance / safe, torch.zeros_like(variance))


def exploration_grid(interval: tuple[float, float], n: int) -> list[float]:
    """Eqs. 14-15: ``eps_k = k (b - a) / (N - 1) + a`` for ``k = 0 .. N - 1``."""
    low, high = interval
    return [k * (high - low) / (n - 1) + low for k in range(n)]


def variance_aggregation(mu, sigma, epsilon: float, delta: float) -> torch.Tensor:
    """Eq. 16: ``mean_e e / (eps sigma + delta) = mu / (eps sigma + delta)``."""
    denominator = epsilon * sigma + delta
    if not bool((denominator > 0).all()):
        raise ValueError(f"var: eps sigma + delta must be > 0 (Eq. 16), got eps={epsilon!r}, delta={delta!r}")
    return mu / denominator


def aggregate(
    stack,
    normalization: str = "z",
    method: str = "ucb",
    settings: AggregationSettings = TABLE_1,
    seed: int | Sequence[int] = 0,
) -> torch.Tensor:
    """Aggregate ``stack`` (K, N, H, W) of K methods' maps into (N, H, W) float32.

    Parameters
    ----------
    stack
        Attribution maps of K methods for N images.
    normalization
        ``"linear"``, ``"z"`` (default, the paper's choice, Sec. 4.3), ``"l1"``, ``"l2"``
        (Eqs. 1-4) or ``"none"``, applied per map first.
    method
        One of ``AGGREGATIONS`` (see the module docstring for the equations).
    settings
        Hyperparameters; the default is the paper's Table 1.
    seed
        Seed of the ``rbm`` training (the other aggregations are deterministic): one int,
        or one per image (each image's RBM then has its own random stream).
    """
    maps = torch.as_tensor(stack, dtype=torch.float32)
    if maps.ndim != 4:
        raise ValueError(f"stack must have shape (K, N, H, W), got {tuple(maps.shape)}")
    if method not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {method!r}; choose one of {', '.join(AGGREGATIONS)}")
    maps = normalise(maps, normalization).double()
    if method == "rbm":
        return rbm_aggregate(
            normalise(maps, "linear"),
            iterations=settings.rbm_iterations,
            learning_rate=settings.rbm_learning_rate,
            batch_size=settings.rbm_batch_size,
            seed=seed,
        )
    if method == "percentile":
        return torch.quantile(maps, settings.percentile / 100.0, dim=0, interpolation="linear").float()
    mu, sigma = moments(maps)
    best = best_mean(mu)
    if method == "mean":
        out = mu
    elif method == "ucb":
        out = upper_confidence_bound(mu, sigma, settings.ucb_epsilon)
    elif method == "pi":
        out = probability_of_improvement(mu, sigma, settings.pi_epsilon, best)
    elif method == "ei":
        out = expected_improvement(mu, sigma, settings.ei_epsilon, best)
    elif method == "ci":
        out = expected_improvement(mu, sigma, contextual_epsilon(sigma, best), best)
    elif method == "api":
        grid = exploration_grid(settings.api_range, settings.n_eps)
        out = torch.stack([probability_of_improvement(mu, sigma, e, best) for e in grid]).mean(0)
    elif method == "aei":
        grid = exploration_grid(settings.aei_range, settings.n_eps)
        out = torch.stack([expected_improvement(mu, sigma, e, best) for e in grid]).mean(0)
    else:  # var
        out = variance_aggregation(mu, sigma, settings.var_epsilon, settings.var_delta)
    return out.float()


def aggregate_all(
    stack,
    normalizations: list[str],
    methods: list[str],
    settings: AggregationSettings = TABLE_1,
    seed: int | Sequence[int] = 0,
) -> dict[tuple[str, str], torch.Tensor]:
    """Every (normalisation, aggregation) of ``stack`` (K, N, H, W): ``{(norm, method): (N, H, W)}``.

    The same maps as :func:`aggregate`, except that the RBMs of all normalisations are
    trained in one vectorised run (its cost is a Python loop over mini-batches, shared
    this way). With an int ``seed`` they share one random stream, so their numbers differ
    from separate :func:`aggregate` calls with the same seed (still deterministic); with
    one seed per image, image i's RBM of every normalisation draws from seed i, exactly as
    in a separate :func:`aggregate` call.
    """
    maps = torch.as_tensor(stack, dtype=torch.float32)
    out = {
        (norm, method): aggregate(maps, norm, method, settings, seed)
        for norm in normalizations
        for method in methods
        if method != "rbm"
    }
    if "rbm" in methods and normalizations:
        if maps.ndim != 4:
            raise ValueError(f"stack must have shape (K, N, H, W), got {tuple(maps.shape)}")
        visible = torch.cat([normalise(normalise(maps, norm).double(), "linear") for norm in normalizations], dim=1)
        seeds = seed if isinstance(seed, (int, np.integer)) else list(seed) * len(normalizations)
        trained = rbm_aggregate(
            visible,
            iterations=settings.rbm_iterations,
            learning_rate=settings.rbm_learning_rate,
            batch_size=settings.rbm_batch_size,
            seed=seeds,
        )
        for norm, part in zip(normalizations, trained.split(maps.shape[1])):
            out[(norm, "rbm")] = part
    return out
