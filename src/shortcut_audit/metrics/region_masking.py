"""Top-k% region masking: does hiding the regions an explanation ranks first hurt?

MoSIP (Figs. 4 and 10) validates Morris region rankings by masking the top-k% most
important or least important w x w regions and measuring accuracy and the change
of the class score. A faithful ranking makes accuracy fall when the *most*
important regions are masked and stay when the *least* important are masked.

- ``scope="local"``: each image masks its own top regions;
- ``scope="global"``: every image masks the same regions, the top of the
  importance averaged over all images (a dataset-level ranking).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from shortcut_audit.metrics.info import MetricInfo
from shortcut_audit.metrics.perturbation import (
    Model,
    make_baseline,
    select_score,
    streamed_outputs,
)
from shortcut_audit.metrics.regions import expand_regions, top_regions

MASKING_ACCURACY_MOST_INFO = MetricInfo(
    "masked_accuracy_most", "lower", 0.0, 1.0, "MoSIP Figs. 4 and 10",
    "accuracy after masking the top-k% most important regions",
)
MASKING_ACCURACY_LEAST_INFO = MetricInfo(
    "masked_accuracy_least", "higher", 0.0, 1.0, "MoSIP Figs. 4 and 10",
    "accuracy after masking the top-k% least important regions",
)
MASKING_SCORE_CHANGE_MOST_INFO = MetricInfo(
    "score_change_most", "lower", -1.0, 1.0, "MoSIP Figs. 4 and 10",
    "change of the target probability after masking the most important regions",
)
MASKING_SCORE_CHANGE_LEAST_INFO = MetricInfo(
    "score_change_least", "higher", -1.0, 1.0, "MoSIP Figs. 4 and 10",
    "change of the target probability after masking the least important regions",
)
WHICH = ("most", "least")
SCOPES = ("local", "global")


@dataclass
class MaskingResult:
    """Per-image outcome of one masking setting (all tensors (N,))."""

    which: str
    scope: str
    fraction: float
    correct: torch.Tensor
    clean_correct: torch.Tensor
    score: torch.Tensor
    clean_score: torch.Tensor

    @property
    def accuracy(self) -> float:
        return float(self.correct.float().mean())

    @property
    def score_change(self) -> torch.Tensor:
        return self.score - self.clean_score


def masking_selection(region_importance: torch.Tensor, fraction: float, which: str, scope: str) -> torch.Tensor:
    """Regions to mask, (N, g, g) bool, for ``which`` in {most, least} and ``scope`` in {local, global}."""
    if which not in WHICH:
        raise ValueError(f"which must be one of {WHICH}, got {which!r}")
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
    if scope == "global":
        shared = top_regions(region_importance.mean(dim=0, keepdim=True), fraction, largest=which == "most")
        return shared.expand_as(region_importance)
    return top_regions(region_importance, fraction, largest=which == "most")


def region_masking(
    model: Model,
    images: torch.Tensor,
    region_importance: torch.Tensor,
    targets: torch.Tensor,
    fraction: float = 0.2,
    which: str = "most",
    scope: str = "local",
    baseline: str | torch.Tensor = "zero",
    score: str = "probability",
    batch_size: int = 64,
    seed: int = 0,
) -> MaskingResult:
    """Mask the selected regions of every image and score the result.

    Parameters
    ----------
    region_importance : Tensor (N, g, g)
        Importance per region (e.g. Morris mu* of MoSIP's 8 x 8 regions, or a pixel
        map pooled with :func:`~shortcut_audit.metrics.regions.pool_to_regions`).
    targets : Tensor (N,)
        Classes whose accuracy is measured (true classes, or the clean predictions).
    fraction : float
        Share of regions masked (MoSIP: 0.2).
    baseline : str or Tensor
        What masked pixels become (see :func:`~shortcut_audit.metrics.perturbation.make_baseline`).
    """
    n, _, h, w = images.shape
    if region_importance.ndim != 3 or region_importance.shape[0] != n:
        raise ValueError(f"region_importance must be (N, g, g) with N = {n}, got {tuple(region_importance.shape)}")
    targets = torch.as_tensor(targets, device=images.device).long().reshape(-1)
    selection = masking_selection(region_importance.to(images.device).float(), fraction, which, scope)
    pixel_mask = expand_regions(selection.float(), h, w)[:, None]
    base = make_baseline(images, baseline, seed=seed)

    def build(idx: torch.Tensor):
        idx = idx.to(images.device)
        image, masked = idx % n, (idx // n).view(-1, 1, 1, 1).to(images.dtype)
        m = pixel_mask[image] * masked
        return images[image] * (1 - m) + base[image] * m, targets[image]

    predictions, values = streamed_outputs(model, 2 * n, build, batch_size, images.device)
    scores = select_score(values, score)
    labels = targets.cpu()
    return MaskingResult(
        which=which, scope=scope, fraction=fraction,
        correct=predictions[n:] == labels, clean_correct=predictions[:n] == labels,
        score=scores[n:], clean_score=scores[:n],
    )
