"""Region masking curves: does hiding the regions an explanation ranks first hurt?

MoSIP validates its region rankings by masking (Sec. 5, "Validating the Morris Method";
Figs. 4, 9 and 10): on the images the model predicts correctly, the regions are masked
one after another, most important first (or least important first), up to 20% of the
regions, and the accuracy of that subset and the average change of the ground-truth
score are read after each region. A faithful ranking makes accuracy fall far (by more
than the masked share) when the *most* important regions go and barely move when the
*least* important ones go.

- Local validation (Figs. 4, 9): each image is masked in the order of its own ranking,
  ``region_importance`` of shape ``(N, g, g)``.
- Global validation (Fig. 10): "the same regions are masked in all inputs", one ranking
  ``(g, g)`` (the global analysis' statistics) for every image.

The paper does not say what a masked region becomes; ``baseline`` (default black,
``"zero"``) is ours. The score is the softmax probability of the target class by
default (the paper's "score of the ground truth component of the model output").
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from shortcut_audit.metrics.info import MetricInfo
from shortcut_audit.metrics.perturbation import (
    Model,
    Seeds,
    make_baseline,
    seeds_at,
    select_score,
    streamed_outputs,
)
from shortcut_audit.metrics.regions import expand_regions, n_top

MASKING_ACCURACY_MOST_INFO = MetricInfo(
    "masked_accuracy_most",
    "lower",
    0.0,
    1.0,
    "MoSIP Figs. 4 and 10",
    "accuracy after masking the top-k% most important regions",
)
MASKING_ACCURACY_LEAST_INFO = MetricInfo(
    "masked_accuracy_least",
    "higher",
    0.0,
    1.0,
    "MoSIP Figs. 4 and 10",
    "accuracy after masking the top-k% least important regions",
)
MASKING_SCORE_CHANGE_MOST_INFO = MetricInfo(
    "score_change_most",
    "lower",
    -1.0,
    1.0,
    "MoSIP Fig. 9",
    "change of the target probability after masking the most important regions",
)
MASKING_SCORE_CHANGE_LEAST_INFO = MetricInfo(
    "score_change_least",
    "higher",
    -1.0,
    1.0,
    "MoSIP Fig. 9",
    "change of the target probability after masking the least important regions",
)
WHICH = ("most", "least")
SUBSETS = ("correct", "all")


@dataclass
class MaskingCurve:
    """Per-step, per-image outcome of masking regions in ranking order.

    Attributes
    ----------
    which : str
        ``"most"`` or ``"least"`` important first.
    steps : Tensor (K + 1,)
        Number of regions masked (0 = the clean image).
    fractions : Tensor (K + 1,)
        ``steps / number of regions``.
    kept : Tensor (N,) bool
        Images the curve is measured on (the correctly predicted ones by default).
    correct : Tensor (K + 1, n_kept) bool
        Top-1 prediction equals the target after each step.
    score : Tensor (K + 1, n_kept)
        Target score after each step.
    """

    which: str
    steps: torch.Tensor
    fractions: torch.Tensor
    kept: torch.Tensor
    correct: torch.Tensor
    score: torch.Tensor

    @property
    def n_images(self) -> int:
        return int(self.kept.sum())

    @property
    def accuracy(self) -> torch.Tensor:
        """Accuracy of the kept images after each step, (K + 1,) (0 when none is kept)."""
        if self.correct.shape[1] == 0:
            return torch.zeros(len(self.steps))
        return self.correct.float().mean(dim=1)

    @property
    def score_change(self) -> torch.Tensor:
        """Mean change of the target score from the clean image after each step, (K + 1,)."""
        if self.score.shape[1] == 0:
            return torch.zeros(len(self.steps))
        return (self.score - self.score[:1]).mean(dim=1)

    def per_image(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``kept`` (N,), ``correct`` and ``score`` as ``(N, K + 1)`` (rows of images not kept: False, 0).

        One row per image, so that the curves of several batches of images can be put
        together (:meth:`from_per_image`).
        """
        n = self.kept.shape[0]
        correct = torch.zeros(n, self.correct.shape[0], dtype=torch.bool)
        score = torch.zeros(n, self.score.shape[0], dtype=self.score.dtype)
        correct[self.kept] = self.correct.T.cpu()
        score[self.kept] = self.score.T.cpu()
        return self.kept.cpu(), correct, score

    @classmethod
    def from_per_image(
        cls,
        which: str,
        steps: torch.Tensor,
        fractions: torch.Tensor,
        kept: torch.Tensor,
        correct: torch.Tensor,
        score: torch.Tensor,
    ) -> MaskingCurve:
        """The curve from :meth:`per_image`'s three tensors (of one batch, or several concatenated)."""
        return cls(
            which=which,
            steps=steps,
            fractions=fractions,
            kept=kept,
            correct=correct[kept].T.contiguous(),
            score=score[kept].T.contiguous(),
        )


def region_order(region_importance: torch.Tensor, which: str) -> torch.Tensor:
    """Region ids (row-major) from the most (``which="most"``) or least important, (N, g*g).

    Ties keep region order (stable sort), so a constant ranking masks row by row.
    """
    if which not in WHICH:
        raise ValueError(f"which must be one of {WHICH}, got {which!r}")
    flat = region_importance.reshape(region_importance.shape[0], -1)
    return torch.argsort(flat, dim=1, descending=which == "most", stable=True)


def masking_curve(
    model: Model,
    images: torch.Tensor,
    region_importance: torch.Tensor,
    targets: torch.Tensor,
    max_fraction: float = 0.2,
    which: str = "most",
    subset: str = "correct",
    baseline: str | torch.Tensor = "zero",
    score: str = "probability",
    batch_size: int = 64,
    seed: Seeds = 0,
) -> MaskingCurve:
    """Mask 0, 1, ..., K regions in ranking order (K = ``max_fraction`` of the regions) and score.

    Parameters
    ----------
    region_importance : Tensor (N, g, g) or (g, g)
        Importance per region: one ranking per image (local) or one for all images
        (global, MoSIP Fig. 10), e.g. Morris mu*, sigma or mu* + sigma.
    targets : Tensor (N,)
        Classes whose accuracy and score are measured (the true classes, or the
        model's own clean predictions when there are no labels).
    max_fraction : float
        Largest share of regions masked (MoSIP: 0.2); K = that share of the regions,
        rounded half up (at least 1).
    subset : {"correct", "all"}
        ``"correct"`` (MoSIP): only the images whose clean prediction equals the target.
    baseline : str or Tensor
        What masked pixels become (see :func:`~shortcut_audit.metrics.perturbation.make_baseline`).
    seed : int or sequence of int
        Seeds a random baseline: one int for the batch, or one per image of ``images``.
    """
    if images.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got {tuple(images.shape)}")
    if subset not in SUBSETS:
        raise ValueError(f"subset must be one of {SUBSETS}, got {subset!r}")
    n, _, h, w = images.shape
    shared = region_importance.ndim == 2
    if (
        region_importance.ndim not in (2, 3)
        or (not shared and region_importance.shape[0] != n)
        or region_importance.shape[-1] != region_importance.shape[-2]
    ):
        raise ValueError(
            f"region_importance must be (g, g) or (N, g, g) with N = {n}, got {tuple(region_importance.shape)}"
        )
    targets = torch.as_tensor(targets, device=images.device).long().reshape(-1)
    if targets.shape != (n,):
        raise ValueError(f"targets must be (N,) = ({n},), got {tuple(targets.shape)}")
    grid = region_importance.shape[-1]
    d = grid * grid
    k_max = n_top(d, max_fraction)
    importance = region_importance.to(images.device).float().reshape(-1, grid, grid)
    order = region_order(importance, which).expand(n, -1)
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(d, device=order.device).expand_as(order))

    clean_pred, clean_values = streamed_outputs(
        model, n, lambda idx: (images[idx.to(images.device)], targets[idx.to(images.device)]), batch_size, images.device
    )
    kept = clean_pred == targets.cpu() if subset == "correct" else torch.ones(n, dtype=torch.bool)
    index = kept.nonzero().flatten().to(images.device)
    steps = torch.arange(k_max + 1)
    # selections[i, s]: the regions masked at step s + 1 (the first s + 1 of the ranking)
    selections = rank[index][:, None, :] < steps[1:].to(rank.device)[None, :, None]
    predictions, values = masked_region_outputs(
        model,
        images[index],
        targets[index],
        selections.view(len(index), k_max, grid, grid),
        baseline,
        batch_size,
        seeds_at(seed, index.cpu()),
    )
    labels = targets.cpu()[kept]
    correct = torch.cat([(clean_pred[kept] == labels)[None], predictions == labels])
    scores = torch.cat(
        [select_score(clean_values, score)[kept][None], select_score(values.reshape(-1, 2), score).view(k_max, -1)]
    )
    return MaskingCurve(which=which, steps=steps, fractions=steps / d, kept=kept, correct=correct, score=scores)


def masked_region_outputs(
    model: Model,
    images: torch.Tensor,
    targets: torch.Tensor,
    selections: torch.Tensor,
    baseline: str | torch.Tensor = "zero",
    batch_size: int = 64,
    seed: Seeds = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Outputs of every image under every selection of masked regions, streamed.

    Parameters
    ----------
    images : Tensor (N, C, H, W)
    targets : Tensor (N,)
    selections : Tensor (N, S, g, g) bool, or (S, g, g) for the same selections on every image
        ``selections[i, s]`` are the regions of image ``i`` masked in its variant ``s``.
    seed : int or sequence of int
        Seeds a random ``baseline``: one int for the batch, or one per image.

    Returns
    -------
    (Tensor (S, N) long, Tensor (S, N, 2))
        Top-1 predictions and the target's (probability, raw output) of each variant
        (the columns of :func:`~shortcut_audit.metrics.perturbation.streamed_outputs`).
    """
    n, _, h, w = images.shape
    targets = torch.as_tensor(targets, device=images.device).long().reshape(-1)
    if targets.shape != (n,):
        raise ValueError(f"targets must be (N,) = ({n},), got {tuple(targets.shape)}")
    if selections.ndim == 3:
        selections = selections.unsqueeze(0).expand(n, -1, -1, -1)
    if selections.ndim != 4 or selections.shape[0] != n:
        raise ValueError(f"selections must be (S, g, g) or (N, S, g, g) with N = {n}, got {tuple(selections.shape)}")
    n_variants = selections.shape[1]
    if n == 0 or n_variants == 0:
        return torch.empty(n_variants, n, dtype=torch.long), torch.empty(n_variants, n, 2)
    selections = selections.to(images.device)
    base = make_baseline(images, baseline, seed=seed)

    def build(idx: torch.Tensor):
        idx = idx.to(images.device)
        variant, image = idx // n, idx % n
        mask = expand_regions(selections[image, variant].to(images.dtype), h, w)[:, None]
        return images[image] * (1 - mask) + base[image] * mask, targets[image]

    predictions, values = streamed_outputs(model, n_variants * n, build, batch_size, images.device)
    return predictions.view(n_variants, n), values.view(n_variants, n, 2)
