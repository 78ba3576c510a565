"""Deletion and Insertion curves (Petsiuk et al., RISE, BMVC 2018, Sec. 4.1), pixel- or region-wise.

Deletion removes pixels from the image, most important first, replacing them with a
baseline (black in the RISE paper); a faithful map makes the target probability fall
fast, so a *low* area under the curve is better. Insertion starts from the baseline
(a blurred image in the RISE paper) and puts the image's pixels back, most important
first; a *high* area is better. The x-axis is the fraction of pixels changed, so
the area lies in [0, 1] for probabilities ("normalised AUC").

Ties. Pixels of equal attribution are changed in a seeded *random* order, as Mahlau &
Nolde (2022, Sec. 4.1) state for the zero-attribution pixels of sparse maps ("which are in
turn inserted or deleted in random order"). Raster order (``ties="raster"``) would let a
map with large plateaus (a constant map, saturated PI/CI aggregations, region-constant
maps) score by where the object happens to sit in the frame; with random ties such a map
scores, in expectation, like a random ordering of its plateau.

Region-wise curves (:func:`region_perturbation_curve`) change whole cells of a ``g x g``
grid (:mod:`~shortcut_audit.metrics.regions`) per step, cells ranked by the map's mean
attribution inside them: a protocol that does not reward maps for scattering isolated
pixels over the image (pixel-wise deletion to black does: a random map's scattered
black pixels destroy the prediction faster than a compact region).

All (image, step) pairs are evaluated together in chunks of ``batch_size``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from shortcut_audit.metrics.info import MetricInfo
from shortcut_audit.metrics.perturbation import (
    TIES,
    Model,
    Seeds,
    check_maps,
    make_baseline,
    pixel_ranks,
    select_score,
    streamed_outputs,
    tie_keys,
)
from shortcut_audit.metrics.regions import pool_to_regions, region_index

DELETION_INFO = MetricInfo(
    "deletion_auc",
    "lower",
    0.0,
    1.0,
    "Petsiuk et al. 2018, Sec. 4.1",
    "area under the target probability as the most important pixels are removed first",
)
INSERTION_INFO = MetricInfo(
    "insertion_auc",
    "higher",
    0.0,
    1.0,
    "Petsiuk et al. 2018, Sec. 4.1",
    "area under the target probability as the most important pixels are inserted first",
)
MODES = ("deletion", "insertion")


@dataclass
class PerturbationCurve:
    """Scores along a deletion or insertion path.

    Attributes
    ----------
    fractions : Tensor (S + 1,) or (N, S + 1)
        Fraction of pixels changed at each step, from 0 to 1 (per image for region-wise
        curves, whose cells may differ in size by a pixel row).
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

    @property
    def mean_fractions(self) -> torch.Tensor:
        """Fractions averaged over images, (S + 1,)."""
        return self.fractions if self.fractions.ndim == 1 else self.fractions.mean(dim=0)


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


def _prepare(images, maps, targets, mode, baseline, seed, ties):
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if ties not in TIES:
        raise ValueError(f"ties must be one of {TIES}, got {ties!r}")
    targets = torch.as_tensor(targets, device=images.device).long().reshape(-1)
    maps = maps.to(images.device).float()
    check_maps(images, maps, targets)
    baseline = make_baseline(images, baseline or ("zero" if mode == "deletion" else "blur"), seed=seed)
    start, end = (images, baseline) if mode == "deletion" else (baseline, images)
    return targets, maps, start, end


def _ranks(values: torch.Tensor, ties: str, seed: Seeds) -> torch.Tensor:
    keys = tie_keys(values.shape, seed, values.device) if ties == "random" else None
    return pixel_ranks(values, keys)


def _scored_path(model, start, end, targets, levels, thresholds, score, batch_size) -> torch.Tensor:
    """Scores (N, S + 1) along the path where, at step s, pixels with ``level < thresholds[s]`` are changed.

    ``levels`` (N, H*W) orders the pixels of each image; ``thresholds`` is (S + 1,).
    """
    n, _, h, w = start.shape
    n_points = thresholds.numel()
    thresholds = thresholds.to(start.device)

    def build(idx: torch.Tensor):
        idx = idx.to(start.device)
        image, step = idx // n_points, idx % n_points
        changed = (levels[image] < thresholds[step, None]).view(-1, 1, h, w).to(start.dtype)
        return start[image] * (1 - changed) + end[image] * changed, targets[image]

    _, values = streamed_outputs(model, n * n_points, build, batch_size, start.device)
    return select_score(values, score).view(n, n_points)


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
    seed: Seeds = 0,
    ties: str = "random",
) -> PerturbationCurve:
    """Pixel-wise deletion or insertion curve of every image, batched over images and steps.

    Parameters
    ----------
    model : callable
        ``images (n, C, H, W) -> outputs (n, classes)``.
    images : Tensor (N, C, H, W)
    maps : Tensor (N, H, W)
        Attributions; larger = more important.
    targets : Tensor (N,)
    mode : {"deletion", "insertion"}
    steps : int
        Number of equal steps from 0 to all pixels (the RISE paper uses one step per
        224 pixels on 224 x 224 images, 224 steps; Mahlau & Nolde 1000, Sec. 4).
    baseline : str or Tensor, optional
        See :func:`~shortcut_audit.metrics.perturbation.make_baseline`; defaults to
        ``"zero"`` for deletion and ``"blur"`` for insertion (the RISE paper's choices).
    score : {"probability", "output"}
    seed : int or sequence of int
        Seeds the ``random_normal`` baseline and, from a separate stream, the tie order:
        one int for the batch, or one per image, so that an image's curve does not depend
        on the images it is batched with (:func:`~shortcut_audit.metrics.perturbation.seeded_draws`).
    ties : {"random", "raster"}
        Order of pixels with equal attribution (see the module docstring).
    """
    targets, maps, start, end = _prepare(images, maps, targets, mode, baseline, seed, ties)
    h, w = images.shape[-2:]
    counts = step_counts(h * w, steps)
    scores = _scored_path(model, start, end, targets, _ranks(maps, ties, seed), counts, score, batch_size)
    return PerturbationCurve(mode, counts.float() / (h * w), scores)


def region_perturbation_curve(
    model: Model,
    images: torch.Tensor,
    maps: torch.Tensor,
    targets: torch.Tensor,
    mode: str,
    grid: int,
    baseline: str | torch.Tensor | None = None,
    score: str = "probability",
    batch_size: int = 64,
    seed: Seeds = 0,
    ties: str = "random",
) -> PerturbationCurve:
    """Region-wise deletion or insertion: one cell of a ``grid x grid`` partition per step.

    Cells are ranked by the mean attribution of their pixels
    (:func:`~shortcut_audit.metrics.regions.pool_to_regions`), ties in seeded random order;
    step ``s`` has changed the ``s`` top cells, so the curve has ``grid**2 + 1`` points and
    its x-axis is the fraction of pixels changed (per image).

    Parameters as in :func:`perturbation_curve`, with ``grid`` in place of ``steps``.
    """
    targets, maps, start, end = _prepare(images, maps, targets, mode, baseline, seed, ties)
    h, w = images.shape[-2:]
    cells = region_index(h, w, grid, images.device).reshape(-1)
    cell_ranks = _ranks(pool_to_regions(maps, grid), ties, seed)  # (N, g*g)
    levels = cell_ranks[:, cells]  # (N, H*W): the rank of each pixel's cell
    thresholds = torch.arange(grid * grid + 1)
    scores = _scored_path(model, start, end, targets, levels, thresholds, score, batch_size)
    sizes = torch.bincount(cells.cpu(), minlength=grid * grid).float()
    ordered_sizes = torch.zeros_like(cell_ranks, dtype=torch.float32, device="cpu")
    ordered_sizes.scatter_(1, cell_ranks.cpu(), sizes.expand(cell_ranks.shape[0], -1))
    fractions = torch.cat([torch.zeros(len(maps), 1), ordered_sizes.cumsum(dim=1)], dim=1) / (h * w)
    return PerturbationCurve(mode, fractions, scores)


def deletion_curve(model, images, maps, targets, **kwargs) -> PerturbationCurve:
    """:func:`perturbation_curve` with ``mode="deletion"`` (lower AUC is better)."""
    return perturbation_curve(model, images, maps, targets, "deletion", **kwargs)


def insertion_curve(model, images, maps, targets, **kwargs) -> PerturbationCurve:
    """:func:`perturbation_curve` with ``mode="insertion"`` (higher AUC is better)."""
    return perturbation_curve(model, images, maps, targets, "insertion", **kwargs)
