"""Deletion and Insertion curves (Petsiuk et al., RISE, BMVC 2018, Sec. 4.1).

Deletion removes pixels from the image, most important first, replacing them with a
baseline (black in the paper); a faithful map makes the target probability fall
fast, so a *low* area under the curve is better. Insertion starts from the baseline
(a blurred image in the paper) and puts the image's pixels back, most important
first; a *high* area is better. The x-axis is the fraction of pixels changed, so
the area lies in [0, 1] for probabilities ("normalised AUC").

All (image, step) pairs are evaluated together in chunks of ``batch_size``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from shortcut_audit.metrics.info import MetricInfo
from shortcut_audit.metrics.perturbation import (
    Model,
    check_maps,
    make_baseline,
    pixel_ranks,
    select_score,
    streamed_outputs,
)

DELETION_INFO = MetricInfo(
    "deletion_auc", "lower", 0.0, 1.0, "Petsiuk et al. 2018, Sec. 4.1",
    "area under the target probability as the most important pixels are removed first",
)
INSERTION_INFO = MetricInfo(
    "insertion_auc", "higher", 0.0, 1.0, "Petsiuk et al. 2018, Sec. 4.1",
    "area under the target probability as the most important pixels are inserted first",
)
MODES = ("deletion", "insertion")


@dataclass
class PerturbationCurve:
    """Scores along a deletion or insertion path.

    Attributes
    ----------
    fractions : Tensor (S + 1,)
        Fraction of pixels changed at each step, from 0 to 1.
    scores : Tensor (N, S + 1)
        Target score of every image at every step.
    """

    mode: str
    fractions: torch.Tensor
    scores: torch.Tensor

    @property
    def auc(self) -> torch.Tensor:
        """Trapezoidal area under each image's curve over fractions in [0, 1], (N,)."""
        return curve_auc(self.scores, self.fractions)


def curve_auc(scores: torch.Tensor, fractions: torch.Tensor | None = None) -> torch.Tensor:
    """Trapezoidal area under curves ``scores`` (N, S + 1) over x in [0, 1]."""
    if fractions is None:
        fractions = torch.linspace(0, 1, scores.shape[-1])
    return torch.trapezoid(scores, fractions.to(scores), dim=-1)


def step_counts(n_pixels: int, steps: int) -> torch.Tensor:
    """Number of pixels changed after each of ``steps`` equal steps, (steps + 1,)."""
    if steps < 1:
        raise ValueError("steps must be at least 1")
    return torch.round(torch.linspace(0, n_pixels, steps + 1)).long()


def perturbation_curve(
    model: Model,
    images: torch.Tensor,
    maps: torch.Tensor,
    targets: torch.Tensor,
    mode: str,
    steps: int = 100,
    baseline: str | torch.Tensor | None = None,
    score: str = "probability",
    batch_size: int = 64,
    seed: int = 0,
) -> PerturbationCurve:
    """Deletion or insertion curve of every image, batched over images and steps.

    Parameters
    ----------
    model : callable
        ``images (n, C, H, W) -> outputs (n, classes)``.
    images : Tensor (N, C, H, W)
    maps : Tensor (N, H, W)
        Attributions; larger = more important (ties keep raster order).
    targets : Tensor (N,)
    mode : {"deletion", "insertion"}
    steps : int
        Number of equal steps from 0 to all pixels (the paper uses one step per
        224 pixels on 224 x 224 images, 224 steps).
    baseline : str or Tensor, optional
        See :func:`~shortcut_audit.metrics.perturbation.make_baseline`; defaults to
        ``"zero"`` for deletion and ``"blur"`` for insertion (the paper's choices).
    score : {"probability", "output"}
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    targets = torch.as_tensor(targets, device=images.device).long().reshape(-1)
    maps = maps.to(images.device).float()
    check_maps(images, maps, targets)
    baseline = make_baseline(images, baseline or ("zero" if mode == "deletion" else "blur"), seed=seed)
    start, end = (images, baseline) if mode == "deletion" else (baseline, images)
    n, c, h, w = images.shape
    counts = step_counts(h * w, steps).to(images.device)
    ranks = pixel_ranks(maps)
    n_points = steps + 1

    def build(idx: torch.Tensor):
        idx = idx.to(images.device)
        image, step = idx // n_points, idx % n_points
        changed = (ranks[image] < counts[step, None]).view(-1, 1, h, w).to(images.dtype)
        return start[image] * (1 - changed) + end[image] * changed, targets[image]

    _, values = streamed_outputs(model, n * n_points, build, batch_size, images.device)
    fractions = counts.float().cpu() / (h * w)
    return PerturbationCurve(mode, fractions, select_score(values, score).view(n, n_points))


def deletion_curve(model, images, maps, targets, **kwargs) -> PerturbationCurve:
    """:func:`perturbation_curve` with ``mode="deletion"`` (lower AUC is better)."""
    return perturbation_curve(model, images, maps, targets, "deletion", **kwargs)


def insertion_curve(model, images, maps, targets, **kwargs) -> PerturbationCurve:
    """:func:`perturbation_curve` with ``mode="insertion"`` (higher AUC is better)."""
    return perturbation_curve(model, images, maps, targets, "insertion", **kwargs)
