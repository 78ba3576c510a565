"""Normalised area over the perturbation curve (AOPC).

AOPC (Samek et al., IEEE TNNLS 2017, Eq. 12) averages the score drop along the
most-relevant-first (MoRF) deletion path of L steps:

``AOPC = 1 / (L + 1) * sum_{k=0}^{L} (f(x) - f(x_MoRF^(k)))``.

The GEEX paper (Cai & Wunder, Sec. 4, "Quantitative Evaluation for Effectiveness")
summarises its deletion curves by a normalised AOPC, "the cumulative sum of
confidence drop ratios after the deletion of pixels"; its formula is lost from the
extracted text. Here the AOPC is divided by the unperturbed score ``f(x)``, which
makes it the mean relative score drop along the path (1 would mean the score
vanished at the first step; higher is better). An image with ``f(x) = 0`` gets 0,
never NaN.

Tracked class: the paper records "the prediction confidence for the class that has
been decided", i.e. the class the model predicts on the clean image, whatever the
image's label (``track="decided"``, the default of :func:`normalised_aopc`);
``track="target"`` follows given target classes instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from shortcut_audit.metrics.deletion_insertion import deletion_curve
from shortcut_audit.metrics.info import MetricInfo
from shortcut_audit.metrics.perturbation import streamed_outputs

AOPC_INFO = MetricInfo(
    "naopc",
    "higher",
    None,
    1.0,
    "Samek et al. 2017 Eq. 12; normalised as in the GEEX evaluation (Sec. 4)",
    "mean drop of the decided class's probability along the most-relevant-first path, over its clean value",
)
TRACKED = ("decided", "target")


@dataclass
class AOPCResult:
    """Per-image AOPC and normalised AOPC, (N,) each, and the class each curve tracked."""

    aopc: torch.Tensor
    normalised: torch.Tensor
    tracked: torch.Tensor | None = None


def aopc_from_curve(scores: torch.Tensor) -> AOPCResult:
    """AOPC of MoRF curves ``scores`` (N, L + 1) whose first column is the clean score."""
    clean = scores[:, :1]
    aopc = (clean - scores).mean(dim=1)
    safe = clean[:, 0].clamp_min(torch.finfo(scores.dtype).tiny)
    normalised = torch.where(clean[:, 0] > 0, aopc / safe, torch.zeros_like(aopc))
    return AOPCResult(aopc=aopc, normalised=normalised)


def decided_classes(model, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """The class the model predicts on each clean image (arg-max of its outputs), (N,)."""

    def build(idx):
        return images[idx.to(images.device)], torch.zeros_like(idx)

    predictions, _ = streamed_outputs(model, images.shape[0], build, batch_size, images.device)
    return predictions


def normalised_aopc(
    model,
    images,
    maps,
    targets=None,
    steps: int = 100,
    baseline="zero",
    track: str = "decided",
    score: str = "probability",
    batch_size: int = 64,
    **kwargs,
) -> AOPCResult:
    """AOPC and normalised AOPC of ``maps`` on a MoRF deletion path of ``steps`` steps.

    Parameters
    ----------
    targets : Tensor (N,), optional
        Classes to follow with ``track="target"``; not read with ``"decided"``.
    track : {"decided", "target"}
        ``"decided"`` (the GEEX paper's): the class the model predicts on the clean
        image; ``"target"``: ``targets``.
    score : {"probability", "output"}
        The tracked value; the paper tracks the prediction confidence (probability).

    Other keyword arguments go to :func:`~shortcut_audit.metrics.deletion_insertion.deletion_curve`.
    """
    if track not in TRACKED:
        raise ValueError(f"track must be one of {TRACKED}, got {track!r}")
    if track == "target" and targets is None:
        raise ValueError("track='target' needs the target classes")
    tracked = decided_classes(model, images, batch_size) if track == "decided" else torch.as_tensor(targets)
    curve = deletion_curve(
        model, images, maps, tracked, steps=steps, baseline=baseline, score=score, batch_size=batch_size, **kwargs
    )
    result = aopc_from_curve(curve.scores)
    result.tracked = tracked.reshape(-1).long().cpu()
    return result
