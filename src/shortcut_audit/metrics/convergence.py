"""Convergence of a stochastic explanation with its forward-pass budget.

Protocol of Fel et al. (NeurIPS 2021, Sec. 4.3 text and Fig. 2): first an explanation
"with a high number of forward passes that is large enough to reach convergence, e.g.
10,000", then the same method's explanations "obtained with lower numbers of forward
passes" are compared with it by the Spearman rank correlation; the paper reports the
mean and the variance over 500 ImageNet validation images (EfficientNet), with Sobol
and RISE both on 7 x 7 masks. It reads about 0.8 for Sobol against 0.65 for RISE after
1,000 forwards and 0.97 against 0.73 at 7,000 (the budgets on the figure's axis are
lost from the extracted text). The text does not say whether the cheap runs share
samples with the converged one; :mod:`shortcut_audit.imagenet.convergence` offers both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import rankdata

from shortcut_audit.metrics.info import MetricInfo

SPEARMAN_INFO = MetricInfo(
    "spearman_to_converged",
    "higher",
    -1.0,
    1.0,
    "Fel et al. 2021, Fig. 2",
    "Spearman rank correlation between a map and the same method's converged map",
)


def spearman(maps: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Spearman rank correlation per image between ``maps`` and ``reference`` (N, ...).

    Ties get average ranks (region-constant maps have many). An image whose map or
    reference is constant has no ranking; its correlation is 0, never NaN.
    """
    if maps.shape != reference.shape:
        raise ValueError(f"maps {tuple(maps.shape)} and reference {tuple(reference.shape)} differ in shape")
    a = rankdata(maps.reshape(maps.shape[0], -1).double().cpu().numpy(), axis=1)
    b = rankdata(reference.reshape(reference.shape[0], -1).double().cpu().numpy(), axis=1)
    a -= a.mean(axis=1, keepdims=True)
    b -= b.mean(axis=1, keepdims=True)
    denominator = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    numerator = (a * b).sum(axis=1)
    rho = np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)
    return torch.from_numpy(rho).float()


@dataclass
class ConvergencePoint:
    """Spearman correlation (N,) of the maps computed with ``forwards`` forward passes."""

    forwards: int
    spearman: torch.Tensor

    @property
    def mean(self) -> float:
        """Mean Spearman correlation over the images."""
        return float(self.spearman.double().mean())

    @property
    def variance(self) -> float:
        """Variance (1/n) of the Spearman correlation over the images; 0 for one image."""
        return float(self.spearman.double().var(unbiased=False))


def convergence_curve(
    explain_with_budget: Callable[[int], tuple[torch.Tensor, float]],
    budgets: list[int],
    reference: torch.Tensor,
) -> list[ConvergencePoint]:
    """Spearman-to-reference of one method at increasing budgets.

    Parameters
    ----------
    explain_with_budget : callable
        ``budget -> (maps (N, H, W), forwards actually used per image)``; methods
        with a discrete design (Sobol's N(d + 1)) report the budget they really used.
    budgets : list of int
        Requested forward passes per image.
    reference : Tensor (N, H, W)
        Converged maps of the same images.
    """
    points = []
    for budget in budgets:
        maps, used = explain_with_budget(budget)
        points.append(ConvergencePoint(int(used), spearman(maps, reference)))
    return points
