"""Estimators of first-order and total Sobol indices from the A, B, AB_i design.

Notation (Saltelli et al. 2010): ``A`` and ``B`` are independent ``N x d`` sample
matrices, ``AB_i`` is ``A`` with column ``i`` taken from ``B``. ``AB_i`` shares ``x_i``
with ``B`` (first order) and every other input with ``A`` (total effect).

Every estimator works on outputs, never on inputs, and broadcasts over leading
dimensions (used for bootstrap resamples):

- ``ya``: ``(..., N, k)`` outputs on ``A``;
- ``yb``: ``(..., N, k)`` outputs on ``B`` (first order only);
- ``yab``: ``(..., d, N, k)`` outputs on ``AB_1 .. AB_d``;
- ``variance``: ``(..., k)`` output variance;

and returns ``(..., d, k)``. Outputs are expected centred by their grand mean (as
:func:`~shortcut_audit.sensitivity.sobol` does, and as SALib does), which leaves the
difference-based estimators unchanged and stabilises the product-based ones.

Public API
----------
``ESTIMATORS``: ``name -> SobolEstimator(first, total, reference)``, names
``"jansen"`` (default), ``"saltelli"``, ``"homma"``, ``"janon"``, ``"glen"``;
``get_estimator(name)`` raises ``ValueError`` listing the known names;
``output_variance(ya, yb)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = ["ESTIMATORS", "SobolEstimator", "get_estimator", "output_variance"]


def _mean(x: torch.Tensor) -> torch.Tensor:
    """Mean over the sample dimension ``N`` (second to last)."""
    return x.mean(dim=-2)


def _safe_divide(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    """``numerator / denominator`` with 0 where the denominator is 0 (never NaN)."""
    ok = denominator != 0
    return torch.where(ok, numerator / torch.where(ok, denominator, torch.ones_like(denominator)), 0.0)


def output_variance(ya: torch.Tensor, yb: torch.Tensor | None) -> torch.Tensor:
    """Variance of the output (ddof = 0) pooled over ``A`` and ``B`` (``A`` alone without ``B``)."""
    pooled = ya if yb is None else torch.cat([ya, yb], dim=-2)
    return pooled.var(dim=-2, unbiased=False)


def _per_input(variance: torch.Tensor) -> torch.Tensor:
    return variance.unsqueeze(-2)


def jansen_first(ya: torch.Tensor, yb: torch.Tensor, yab: torch.Tensor, variance: torch.Tensor) -> torch.Tensor:
    """Jansen (1999); Saltelli et al. (2010) Table 2 (c): ``V - 1/(2N) sum (f(B) - f(AB_i))^2``."""
    v = _per_input(variance)
    return _safe_divide(v - 0.5 * _mean((yb.unsqueeze(-3) - yab) ** 2), v)


def jansen_total(ya: torch.Tensor, yab: torch.Tensor, variance: torch.Tensor) -> torch.Tensor:
    """Jansen (1999); Saltelli et al. (2010) Table 2 (f): ``1/(2N) sum (f(A) - f(AB_i))^2``."""
    return _safe_divide(0.5 * _mean((ya.unsqueeze(-3) - yab) ** 2), _per_input(variance))


def saltelli_first(ya: torch.Tensor, yb: torch.Tensor, yab: torch.Tensor, variance: torch.Tensor) -> torch.Tensor:
    """Saltelli et al. (2010) Table 2 (b): ``1/N sum f(B) (f(AB_i) - f(A))``."""
    return _safe_divide(_mean(yb.unsqueeze(-3) * (yab - ya.unsqueeze(-3))), _per_input(variance))


def homma_first(ya: torch.Tensor, yb: torch.Tensor, yab: torch.Tensor, variance: torch.Tensor) -> torch.Tensor:
    """Sobol (1993) / Homma & Saltelli (1996) product form: ``1/N sum f(B) f(AB_i) - f0^2``.

    ``f0^2`` is estimated as ``mean f(B) * mean f(AB_i)``, the means of the paired samples.
    """
    f0_squared = _mean(yb).unsqueeze(-2) * _mean(yab)
    return _safe_divide(_mean(yb.unsqueeze(-3) * yab) - f0_squared, _per_input(variance))


def homma_total(ya: torch.Tensor, yab: torch.Tensor, variance: torch.Tensor) -> torch.Tensor:
    """Homma & Saltelli (1996); Saltelli et al. (2010) Table 2 (d): ``V - 1/N sum f(A) f(AB_i) + f0^2``.

    ``f0^2`` is estimated as ``mean f(A) * mean f(AB_i)``.
    """
    v = _per_input(variance)
    f0_squared = _mean(ya).unsqueeze(-2) * _mean(yab)
    return _safe_divide(v - _mean(ya.unsqueeze(-3) * yab) + f0_squared, v)


def _janon_closed_index(y: torch.Tensor, y_shared: torch.Tensor) -> torch.Tensor:
    """Janon et al. (2014), eq. (T_N): closed index of the inputs shared by ``y`` and ``y_shared``.

    ``[mean(y y') - mean((y + y')/2)^2] / [mean((y^2 + y'^2)/2) - mean((y + y')/2)^2]``;
    the variance in the denominator uses both samples, which makes it asymptotically efficient.
    """
    centre_squared = _mean((y + y_shared) / 2) ** 2
    numerator = _mean(y * y_shared) - centre_squared
    denominator = _mean((y**2 + y_shared**2) / 2) - centre_squared
    return _safe_divide(numerator, denominator)


def janon_first(ya: torch.Tensor, yb: torch.Tensor, yab: torch.Tensor, variance: torch.Tensor) -> torch.Tensor:
    """Janon et al. (2014): closed index of ``x_i`` from the pair ``(f(B), f(AB_i))``."""
    return _janon_closed_index(yb.unsqueeze(-3).expand_as(yab), yab)


def janon_total(ya: torch.Tensor, yab: torch.Tensor, variance: torch.Tensor) -> torch.Tensor:
    """Janon et al. (2014): ``1 - S_{~i}`` with ``S_{~i}`` from the pair ``(f(A), f(AB_i))``."""
    return 1.0 - _janon_closed_index(ya.unsqueeze(-3).expand_as(yab), yab)


def _correlation(y: torch.Tensor, y_shared: torch.Tensor) -> torch.Tensor:
    y_centred = y - _mean(y).unsqueeze(-2)
    shared_centred = y_shared - _mean(y_shared).unsqueeze(-2)
    covariance = _mean(y_centred * shared_centred)
    scale = torch.sqrt(_mean(y_centred**2) * _mean(shared_centred**2))
    return _safe_divide(covariance, scale)


def glen_first(ya: torch.Tensor, yb: torch.Tensor, yab: torch.Tensor, variance: torch.Tensor) -> torch.Tensor:
    """Glen & Isaacs (2012): first order as the correlation of ``f(B)`` and ``f(AB_i)``."""
    return _correlation(yb.unsqueeze(-3).expand_as(yab), yab)


def glen_total(ya: torch.Tensor, yab: torch.Tensor, variance: torch.Tensor) -> torch.Tensor:
    """Glen & Isaacs (2012): total as ``1 - corr(f(A), f(AB_i))``."""
    return 1.0 - _correlation(ya.unsqueeze(-3).expand_as(yab), yab)


FirstOrder = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
TotalOrder = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class SobolEstimator:
    """A pair of first-order and total-index estimators with its reference."""

    first: FirstOrder
    total: TotalOrder
    reference: str


ESTIMATORS: dict[str, SobolEstimator] = {
    "jansen": SobolEstimator(jansen_first, jansen_total, "Jansen (1999)"),
    # Saltelli et al. (2010) recommend their first-order form with Jansen's total (as SALib does).
    "saltelli": SobolEstimator(saltelli_first, jansen_total, "Saltelli et al. (2010)"),
    "homma": SobolEstimator(homma_first, homma_total, "Homma & Saltelli (1996)"),
    "janon": SobolEstimator(janon_first, janon_total, "Janon et al. (2014)"),
    "glen": SobolEstimator(glen_first, glen_total, "Glen & Isaacs (2012)"),
}


def get_estimator(name: str) -> SobolEstimator:
    """Return the named estimator pair, or raise ``ValueError`` listing the known names."""
    if name not in ESTIMATORS:
        raise ValueError(f"unknown Sobol estimator {name!r}; choose one of {sorted(ESTIMATORS)}")
    return ESTIMATORS[name]
