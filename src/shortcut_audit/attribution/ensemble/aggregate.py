"""Aggregation of a stack of attribution maps into one map per image (Mahlau & Nolde 2022).

The ``K`` normalised maps of a pixel are read as samples of that pixel's
attribution; with their mean ``mu`` and standard deviation ``sigma`` (population,
over the K methods) the aggregations borrow the acquisition functions of Bayesian
optimisation, treating the attribution of a pixel as ``A ~ N(mu, sigma^2)``:

- ``mean``: ``mu``;
- ``percentile``: the k-th percentile of the K values (linear interpolation);
- ``ucb``: upper confidence bound ``mu + eps * sigma`` (eps < 0 penalises disagreement;
  eps = -0.5 was the best overall in the paper);
- ``pi``: probability of improvement over ``eps``, ``P(A > eps) = Phi((mu - eps) / sigma)``;
- ``ei``: expected improvement over ``eps``,
  ``E[max(A - eps, 0)] = (mu - eps) Phi(z) + sigma phi(z)``, ``z = (mu - eps) / sigma``;
- ``ci``: PI whose threshold comes from the ensemble itself: ``eps`` = the image's mean
  ensemble variance ``mean_pixels(sigma^2)`` (no free parameter);
- ``api`` / ``aei``: PI / EI averaged over ``n_eps`` thresholds evenly spaced in
  ``eps_range`` (removes the choice of a single eps);
- ``var``: value at risk of the improvement, its ``delta``-quantile,
  ``max(mu - eps + sigma Phi^-1(delta), 0)``;
- ``rbm``: single-hidden-unit restricted Boltzmann machine per image (see :mod:`.rbm`).

Where ``sigma = 0`` (all methods agree) the Gaussian limits are used: PI is 1 above
the threshold, 1/2 on it and 0 below; EI is ``max(mu - eps, 0)``. No result is NaN.

Sources. Mahlau & Nolde, "Fidelity of Ensemble Aggregation for Saliency Map
Explanations using Bayesian Optimization Techniques" (arXiv:2207.01565, 2022) state
the approach (per-pixel mean and variance of the normalised explanations fed to
Bayesian-optimisation acquisition functions; normalisation studied separately), but
their equations could not be checked here, so no equation numbers are cited. ``ucb``,
``pi`` and ``ei`` are the textbook acquisition functions (Srinivas et al. 2010;
Kushner 1964; Jones et al. 1998) with the threshold written as ``eps``. ``ci`` (the
threshold taken from the mean ensemble variance), ``api``/``aei`` (a plain average
over an even grid of thresholds) and ``var`` (a quantile of the improvement) are this
library's reading of the method names and should be checked against the paper before
their numbers are compared with it.
"""
from __future__ import annotations

import math

import torch

from shortcut_audit.attribution.ensemble.normalise import normalise
from shortcut_audit.attribution.ensemble.rbm import rbm_aggregate

AGGREGATIONS = ("mean", "percentile", "ucb", "pi", "ei", "ci", "api", "aei", "var", "rbm")

_SQRT2 = math.sqrt(2.0)


def _normal_cdf(z: torch.Tensor) -> torch.Tensor:
    return 0.5 * (1.0 + torch.erf(z / _SQRT2))


def _normal_pdf(z: torch.Tensor) -> torch.Tensor:
    return torch.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)


def moments(stack: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and population standard deviation over the method axis of (K, N, H, W)."""
    mu = stack.mean(dim=0)
    return mu, (stack - mu).pow(2).mean(dim=0).sqrt()


def upper_confidence_bound(mu, sigma, epsilon: float) -> torch.Tensor:
    """``mu + eps * sigma``."""
    return mu + epsilon * sigma


def probability_of_improvement(mu, sigma, epsilon) -> torch.Tensor:
    """``Phi((mu - eps) / sigma)``; the step function of ``mu - eps`` where sigma = 0."""
    gap = mu - epsilon
    safe = torch.where(sigma > 0, sigma, torch.ones_like(sigma))
    degenerate = 0.5 * (1.0 + torch.sign(gap))
    return torch.where(sigma > 0, _normal_cdf(gap / safe), degenerate)


def expected_improvement(mu, sigma, epsilon) -> torch.Tensor:
    """``(mu - eps) Phi(z) + sigma phi(z)``, ``z = (mu - eps) / sigma``; ``max(mu - eps, 0)`` where sigma = 0."""
    gap = mu - epsilon
    safe = torch.where(sigma > 0, sigma, torch.ones_like(sigma))
    z = gap / safe
    return torch.where(sigma > 0, gap * _normal_cdf(z) + sigma * _normal_pdf(z), gap.clamp(min=0))


def value_at_risk(mu, sigma, epsilon: float, delta: float) -> torch.Tensor:
    """``delta``-quantile of the improvement ``max(A - eps, 0)``: ``max(mu - eps + sigma Phi^-1(delta), 0)``."""
    if not 0.0 < delta < 1.0:
        raise ValueError(f"delta must lie in (0, 1), got {delta!r}")
    quantile = _SQRT2 * torch.erfinv(torch.tensor(2.0 * delta - 1.0, dtype=mu.dtype))
    return (mu - epsilon + sigma * quantile).clamp(min=0)


def _thresholds(eps_range: tuple[float, float], n_eps: int) -> torch.Tensor:
    low, high = eps_range
    if not low <= high or n_eps < 1:
        raise ValueError(f"eps_range must be (low, high) with low <= high and n_eps >= 1, got {eps_range}, {n_eps}")
    return torch.linspace(low, high, n_eps)


def aggregate(stack, normalization: str = "z", method: str = "ucb", epsilon: float = -0.5, *,
              percentile: float = 50.0, delta: float = 0.05, eps_range: tuple[float, float] = (-1.0, 1.0),
              n_eps: int = 21, rbm_epochs: int = 100, rbm_lr: float = 0.1, seed: int = 0) -> torch.Tensor:
    """Aggregate ``stack`` (K, N, H, W) of K methods' maps into (N, H, W) float32.

    Parameters
    ----------
    stack
        Attribution maps of K methods for N images.
    normalization
        ``"linear"``, ``"z"`` (default), ``"l1"``, ``"l2"`` or ``"none"``, applied per map first.
    method
        One of ``AGGREGATIONS`` (see the module docstring for the formulas).
    epsilon
        eps of ``ucb``, ``pi``, ``ei`` and ``var``.
    percentile
        k in [0, 100] of ``percentile``.
    delta
        Quantile level of ``var``, in (0, 1).
    eps_range, n_eps
        Threshold interval and its number of points for ``api`` and ``aei``.
    rbm_epochs, rbm_lr, seed
        Training of ``rbm`` (CD-1, full batch of an image's pixels per epoch).
    """
    maps = torch.as_tensor(stack, dtype=torch.float32)
    if maps.ndim != 4:
        raise ValueError(f"stack must have shape (K, N, H, W), got {tuple(maps.shape)}")
    if method not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {method!r}; choose one of {', '.join(AGGREGATIONS)}")
    maps = normalise(maps, normalization).double()
    if method == "rbm":
        return rbm_aggregate(normalise(maps, "linear"), epochs=rbm_epochs, lr=rbm_lr, seed=seed)
    if method == "percentile":
        if not 0.0 <= percentile <= 100.0:
            raise ValueError(f"percentile must lie in [0, 100], got {percentile!r}")
        return torch.quantile(maps, percentile / 100.0, dim=0).float()
    mu, sigma = moments(maps)
    if method == "mean":
        out = mu
    elif method == "ucb":
        out = upper_confidence_bound(mu, sigma, epsilon)
    elif method == "pi":
        out = probability_of_improvement(mu, sigma, epsilon)
    elif method == "ei":
        out = expected_improvement(mu, sigma, epsilon)
    elif method == "ci":
        threshold = sigma.pow(2).flatten(1).mean(1).view(-1, 1, 1)
        out = probability_of_improvement(mu, sigma, threshold)
    elif method in ("api", "aei"):
        acquisition = probability_of_improvement if method == "api" else expected_improvement
        out = torch.stack([acquisition(mu, sigma, float(e)) for e in _thresholds(eps_range, n_eps)]).mean(0)
    else:  # var
        out = value_at_risk(mu, sigma, epsilon, delta)
    return out.float()
