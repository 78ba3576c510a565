"""Does an explainer find the shortcut a model uses? Attribution scored against the watermark's pixels.

The watermark is a shortcut whose pixels are known exactly
(:func:`~shortcut_audit.factors.watermark.watermark_mask`: the pixels the text
changes, dilated by ``dilation`` pixels so that a map blurred by its own grid or patch
still counts). Every method explains the **carton logit** (class 478) of the
watermarked photos, at an equal forward budget per image for the black-box methods
(:func:`~shortcut_audit.imagenet.explain.method_settings`, counted by
:class:`~shortcut_audit.imagenet.explain.CountingScorer`); the white-box baselines
(gradient, gradient x input, SmoothGrad, Integrated Gradients, Grad-CAM) report the
forward-and-backward passes they used; an ensemble (Mahlau & Nolde 2022) costs the
passes of all its members.

Scores per image, with a percentile bootstrap interval over images:

``mask_share``
    Share of the map's positive attribution inside the mask,
    ``sum_{p in M} max(a_p, 0) / sum_p max(a_p, 0)``: how much of the evidence *for*
    carton the map places on the watermark. Positive attribution only: a negative
    value argues against carton. A map without positive attribution locates nothing
    and scores the chance level (as a uniform map would); ``positive_mass`` records it.
``pointing``
    The pointing game (Zhang et al., ECCV 2016): whether the map's maximum lies in the
    mask. Maps with ties at the maximum (grid and patch methods give plateaus) score
    the share of their maximal pixels that lie in the mask, so a constant map scores
    the chance level rather than the luck of an ``argmax``.

The **chance level** of both scores is the mask's share of the image: what a map that
knows nothing (uniform, or random) scores on average. A method finds the shortcut
when its interval lies above the chance level.

Caveat on uncentred maps. RISE's saliency (Petsiuk et al. 2018, Eq. 6) is the
expected score given that a pixel is kept; it carries the mean score as an offset on
every pixel, so when the carton logit is positive on masked images the offset spreads
positive mass over the whole image and lowers ``mask_share`` towards chance whatever
the map's shape; ``pointing`` is unaffected by an offset. Both scores are reported so
the difference shows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import partial
from typing import TypedDict

import numpy as np
import pandas as pd
import torch
from torch import nn

from shortcut_audit import attribution
from shortcut_audit.attribution.base import key_seed, reduce_channels
from shortcut_audit.audit.interventions import ItemBootstrap
from shortcut_audit.factors.watermark import CARTON
from shortcut_audit.imagenet.explain import CountingScorer, MethodRun, method_settings, run_method

__all__ = [
    "SCORE_COLUMNS",
    "SUMMARY_COLUMNS",
    "ExplainerBenchmark",
    "PassCounter",
    "benchmark_explainers",
    "benchmark_from_scores",
    "explain_images",
    "mask_scores",
    "score_rows",
    "summary_rows",
    "white_box_run",
]

KINDS = ("black_box", "white_box", "ensemble")
SCORE_COLUMNS = ("method", "kind", "image_id", "mask_share", "pointing", "positive_mass", "forwards", "seconds")
SUMMARY_COLUMNS = (
    "method",
    "kind",
    "n_images",
    "mask_share",
    "mask_share_ci_low",
    "mask_share_ci_high",
    "pointing",
    "pointing_ci_low",
    "pointing_ci_high",
    "chance",
    "forwards",
    "seconds",
    "no_positive_mass",
)


def mask_scores(maps: torch.Tensor, mask: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``mask_share``, ``pointing`` and ``positive_mass`` per map (module docstring).

    Parameters
    ----------
    maps : torch.Tensor
        ``(N, H, W)`` attribution maps.
    mask : torch.Tensor
        ``(H, W)`` bool, the watermark's pixels.
    """
    maps = torch.as_tensor(maps, dtype=torch.float64).cpu()
    mask = torch.as_tensor(mask, dtype=torch.bool).cpu()
    if maps.dim() != 3 or tuple(maps.shape[1:]) != tuple(mask.shape):
        raise ValueError(f"maps (N, H, W) must match the mask {tuple(mask.shape)}, got {tuple(maps.shape)}")
    if not bool(torch.isfinite(maps).all()):
        raise ValueError("attribution maps contain NaN or infinite values")
    chance = float(mask.double().mean())
    positive = maps.clamp(min=0.0).flatten(1)
    inside = mask.flatten()
    mass = positive.sum(dim=1)
    share = torch.where(mass > 0, positive[:, inside].sum(dim=1) / torch.where(mass > 0, mass, 1.0), chance)
    flat = maps.flatten(1)
    top = flat == flat.amax(dim=1, keepdim=True)
    pointing = top[:, inside].sum(dim=1).double() / top.sum(dim=1).double()
    return share.numpy(), pointing.numpy(), mass.numpy()


class PassCounter(nn.Module):
    """Wraps a model and counts the images of every forward pass (gradients flow through)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.images = 0

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.images += int(images.shape[0])
        return self.model(images)


class _ExplainerArgs(TypedDict):
    """The keyword arguments every white-box explainer takes."""

    batch_size: int
    device: torch.device
    seed: int


def white_box_run(
    method: str,
    model: nn.Module,
    images: torch.Tensor,
    targets: torch.Tensor,
    config,
    batch_size: int,
    device: torch.device,
    seed: int,
) -> MethodRun:
    """A white-box map of the target logit, signed where the method is (channel sums), with its passes.

    ``gradient``: the plain gradient; ``gradient_input``; ``smoothgrad``
    (``config.smoothgrad_samples`` draws at ``config.smoothgrad_noise_level``);
    ``integrated_gradients`` (``config.ig_steps`` steps from the black image);
    ``gradcam`` (last convolution).
    """
    counter = PassCounter(model).to(device).eval()
    kwargs: _ExplainerArgs = {"batch_size": batch_size, "device": device, "seed": seed}
    images, targets = images.to(device), targets.to(device)
    settings: dict = {}
    start = time.perf_counter()
    if method == "gradient":
        maps = reduce_channels(attribution.Saliency(counter, **kwargs).gradients(images, targets), "sum").cpu()
    elif method == "gradient_input":
        maps = attribution.GradientInput(counter, **kwargs)(images, targets)
    elif method == "smoothgrad":
        settings = {"n_samples": config.smoothgrad_samples, "noise_level": config.smoothgrad_noise_level}
        maps = attribution.SmoothGrad(counter, channel_reduction="sum", **settings, **kwargs)(images, targets)
    elif method == "integrated_gradients":
        settings = {"steps": config.ig_steps, "baseline": "zero"}
        maps = attribution.IntegratedGradients(counter, **settings, **kwargs)(images, targets)
    elif method == "gradcam":
        maps = attribution.GradCAM(counter, **kwargs)(images, targets)
    else:
        raise ValueError(f"unknown white-box method {method!r}")
    seconds = time.perf_counter() - start
    return MethodRun(method, maps.float().cpu(), counter.images / images.shape[0], seconds, seconds, settings)


def score_rows(
    method: str,
    kind: str,
    image_ids: list[str],
    maps: torch.Tensor,
    mask: torch.Tensor,
    forwards: float,
    seconds: float,
) -> list[dict]:
    """One :data:`SCORE_COLUMNS` row per image."""
    share, pointing, mass = mask_scores(maps, mask)
    per_image = float(seconds) / max(len(image_ids), 1)
    return [
        {
            "method": method,
            "kind": kind,
            "image_id": str(i),
            "mask_share": float(s),
            "pointing": float(p),
            "positive_mass": float(m),
            "forwards": float(forwards),
            "seconds": per_image,
        }
        for i, s, p, m in zip(image_ids, share, pointing, mass)
    ]


def summary_rows(
    scores: pd.DataFrame, chance: float, n_resamples: int = 2000, conf_level: float = 0.95, seed: int = 0
) -> pd.DataFrame:
    """Mean ``mask_share`` and ``pointing`` per method with bootstrap intervals over images (:data:`SUMMARY_COLUMNS`).

    Every method of one model is resampled with the same images (they were explained on the same ones).
    """
    rows = []
    for (method, kind), group in scores.groupby(["method", "kind"], sort=False):
        bootstrap = ItemBootstrap(len(group), n_resamples, conf_level, seed)
        share = bootstrap.interval(group["mask_share"].to_numpy(float))
        pointing = bootstrap.interval(group["pointing"].to_numpy(float))
        rows.append(
            {
                "method": method,
                "kind": kind,
                "n_images": len(group),
                "mask_share": share[0],
                "mask_share_ci_low": share[1],
                "mask_share_ci_high": share[2],
                "pointing": pointing[0],
                "pointing_ci_low": pointing[1],
                "pointing_ci_high": pointing[2],
                "chance": float(chance),
                "forwards": float(group["forwards"].mean()),
                "seconds": float(group["seconds"].mean()),
                "no_positive_mass": int((group["positive_mass"] <= 0).sum()),
            }
        )
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


@dataclass
class ExplainerBenchmark:
    """Scores and maps of every method on one model's watermarked photos."""

    scores: pd.DataFrame
    summary: pd.DataFrame
    maps: dict[str, torch.Tensor] = field(default_factory=dict)
    chance: float = 0.0


def _one_by_one(run, images: torch.Tensor, targets: torch.Tensor, *args) -> tuple[torch.Tensor, float, float]:
    """Every image explained alone by ``run(images, targets, *args)``: maps ``(N, H, W)``, passes per image, seconds."""
    runs = [run(images[i : i + 1], targets[i : i + 1], *args) for i in range(images.shape[0])]
    maps = torch.cat([r.maps.float().cpu() for r in runs])
    return maps, float(sum(r.forwards_per_image for r in runs)) / len(runs), float(sum(r.seconds for r in runs))


def explain_images(
    model: nn.Module,
    scorer: CountingScorer,
    images: torch.Tensor,
    image_ids: list[str],
    mask: torch.Tensor,
    config,
    batch_size: int,
    seed: int,
    input_scale: float = 1.0,
    log=print,
    image_seeds: list[int] | None = None,
) -> tuple[pd.DataFrame, dict[str, torch.Tensor]]:
    """Per-image scores (:data:`SCORE_COLUMNS`) and maps of every method and every ensemble on ``images``.

    Each image's scores and maps depend on the image alone, so a process of a sharded run
    gets a single process's numbers bit for bit: every image is explained on its own (its
    perturbations fill the batches, never another image's, so no forward pass depends on
    the images explained with it), the methods' draws (masks, designs, noise) derive from
    ``seed`` and serve every image, and an ensemble's random numbers come from
    ``image_seeds`` (one per image; default :func:`~shortcut_audit.attribution.base.key_seed`
    of ``seed`` and the image id).
    """
    targets = torch.full((images.shape[0],), CARTON, dtype=torch.long)
    size = images.shape[-1]
    seeds = [key_seed(seed, i) for i in image_ids] if image_seeds is None else list(image_seeds)
    rows, maps, costs = [], {}, {}
    for method in config.methods:
        log(f"    {method}")
        settings = method_settings(method, config.forwards, size, config, input_scale=input_scale)
        maps[method], costs[method], seconds = _one_by_one(
            partial(run_method, method, scorer), images, targets, settings, batch_size, seed, config.explained_output
        )
        rows += score_rows(method, "black_box", image_ids, maps[method], mask, costs[method], seconds)
    for method in config.white_box:
        log(f"    {method}")
        maps[method], forwards, seconds = _one_by_one(
            partial(white_box_run, method, model), images, targets, config, batch_size, scorer.device, seed
        )
        rows += score_rows(method, "white_box", image_ids, maps[method], mask, forwards, seconds)
    members = list(config.methods)
    if len(members) >= 2:
        stack = torch.stack([maps[m] for m in members])
        cost = float(sum(costs[m] for m in members))
        # Every image and normalisation at once: each image's own seed keeps its maps what they
        # would be alone (every aggregation is per image), and the RBMs cost per training step,
        # not per image. The aggregation time is shared equally among the ensembles.
        start = time.perf_counter()
        combined = attribution.ensemble.aggregate_all(
            stack, config.ensemble_normalisations, config.ensemble_aggregations, seed=seeds
        )
        seconds = (time.perf_counter() - start) / max(len(combined), 1)
        for normalisation in config.ensemble_normalisations:
            for aggregation in config.ensemble_aggregations:
                name = f"{normalisation}_{aggregation}"
                maps[name] = combined[(normalisation, aggregation)]
                rows += score_rows(name, "ensemble", image_ids, maps[name], mask, cost, seconds)
    return pd.DataFrame(rows, columns=list(SCORE_COLUMNS)), maps


def benchmark_from_scores(
    scores: pd.DataFrame,
    maps: dict[str, torch.Tensor],
    mask: torch.Tensor,
    n_resamples: int = 2000,
    seed: int = 0,
) -> ExplainerBenchmark:
    """The benchmark from the per-image ``scores`` and ``maps`` of every image (:func:`explain_images`).

    Keeps the maps of every base method and of the best ensemble (by mean ``mask_share``
    over all images); the summary's intervals resample all images.
    """
    kinds = dict(zip(scores["method"], scores["kind"]))
    kept = {m: v for m, v in maps.items() if kinds.get(m) != "ensemble"}
    ensembles = scores[scores["kind"] == "ensemble"]
    if len(ensembles):
        means = ensembles.groupby("method", sort=False)["mask_share"].mean()
        best = str(means.index[int(np.argmax(means.to_numpy()))])  # the first of equal means
        kept[best] = maps[best]
    chance = float(torch.as_tensor(mask).double().mean())
    return ExplainerBenchmark(scores, summary_rows(scores, chance, n_resamples, seed=seed), kept, chance)


def benchmark_explainers(
    model: nn.Module,
    scorer: CountingScorer,
    images: torch.Tensor,
    image_ids: list[str],
    mask: torch.Tensor,
    config,
    batch_size: int,
    seed: int,
    input_scale: float = 1.0,
    n_resamples: int = 2000,
    log=print,
) -> ExplainerBenchmark:
    """Explain the carton logit of ``images`` (watermarked) with every method of ``config`` and score the maps.

    Parameters
    ----------
    model : nn.Module
        The classifier on images in [0, 1] (white-box methods differentiate it).
    scorer : CountingScorer
        The same classifier for the black-box methods (counts their forward passes).
    images : torch.Tensor
        ``(N, 3, S, S)`` watermarked photos in [0, 1].
    mask : torch.Tensor
        ``(S, S)`` bool, the watermark's (dilated) pixels.
    config : ExplainConfig
        Methods, budget and method settings.
    input_scale : float
        The model's normalisation standard deviation (GEEX's sigma is in standardised units).

    Returns
    -------
    ExplainerBenchmark
        Per-image scores, the summary with intervals and the chance level, the maps of
        every base method and of the best ensemble (by mean ``mask_share``).
    """
    scores, maps = explain_images(model, scorer, images, image_ids, mask, config, batch_size, seed, input_scale, log)
    return benchmark_from_scores(scores, maps, mask, n_resamples, seed)
