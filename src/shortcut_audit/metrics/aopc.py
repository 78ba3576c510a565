"""Normalised area over the perturbation curve (AOPC).

AOPC (Samek et al., IEEE TNNLS 2017, Eq. 12) averages the score drop along the
most-relevant-first (MoRF) deletion path of L steps:

``AOPC = 1 / (L + 1) * sum_{k=0}^{L} (f(x) - f(x_MoRF^(k)))``.

The GEEX paper (Cai & Wunder 2023) compares black-box and white-box methods by a
normalised AOPC so that images and models of different confidence share one
scale; here the AOPC is divided by the unperturbed score ``f(x)``, which makes it
the mean relative score drop along the path (1 would mean the score vanished at
the first step; higher is better). An image with ``f(x) = 0`` gets 0, never NaN.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from shortcut_audit.metrics.deletion_insertion import deletion_curve
from shortcut_audit.metrics.info import MetricInfo

AOPC_INFO = MetricInfo(
    "naopc", "higher", None, 1.0, "Samek et al. 2017 Eq. 12; normalised as in the GEEX evaluation",
    "mean score drop along the most-relevant-first path divided by the unperturbed score",
)


@dataclass
class AOPCResult:
    """Per-image AOPC and normalised AOPC, (N,) each."""

    aopc: torch.Tensor
    normalised: torch.Tensor


def aopc_from_curve(scores: torch.Tensor) -> AOPCResult:
    """AOPC of MoRF curves ``scores`` (N, L + 1) whose first column is the clean score."""
    clean = scores[:, :1]
    aopc = (clean - scores).mean(dim=1)
    safe = clean[:, 0].clamp_min(torch.finfo(scores.dtype).tiny)
    normalised = torch.where(clean[:, 0] > 0, aopc / safe, torch.zeros_like(aopc))
    return AOPCResult(aopc=aopc, normalised=normalised)


def normalised_aopc(model, images, maps, targets, steps: int = 100, baseline="zero", **kwargs) -> AOPCResult:
    """AOPC and normalised AOPC of ``maps`` on a MoRF deletion path of ``steps`` steps.

    Keyword arguments go to :func:`~shortcut_audit.metrics.deletion_insertion.deletion_curve`.
    """
    curve = deletion_curve(model, images, maps, targets, steps=steps, baseline=baseline, **kwargs)
    return aopc_from_curve(curve.scores)
