"""The watermark audit of one ImageNet model: the effect of ``do(watermark)``, the verdict, Morris over its aspects.

Three questions, each answered through the factor interface
(:mod:`shortcut_audit.factors`) so that any image factor -- the watermark's aspects or a
user's own -- runs through the same code:

Effect (:mod:`.effects`)
    Every image clean and with ``do(watermark)`` (the paper's text, height and
    opacity): top-1 change rate, carton gap, carton probability and logit shifts, and
    the accuracy drop when the images carry true classes.
Verdict (:func:`watermark_verdict`)
    The interventional rule of the Biased-MNIST audit
    (:mod:`shortcut_audit.audit.interventions`, :mod:`shortcut_audit.audit.verdicts`):
    on the images the model gets right -- its true class, or without labels its own
    clean top-1 class, when the drop *is* the top-1 change rate -- ``do(watermark)``
    costs accuracy; the Shapley share of the drop (with one factor: the drop itself)
    against ``drop_threshold`` with a 95 % item-bootstrap interval gives ``relied_on``,
    ``not_relied_on`` or ``inconclusive``. Images enter in a seeded random order, so a
    budget of ``n`` images is a random sample of the correct ones, whatever the class
    order of a validation folder.
Aspects (:func:`aspect_morris`)
    MoSIP's factor Morris (global sampling) on watermarked images over the
    watermark's opacity, height and text (the paper's Chinese text against a Latin
    text of the same font and size): ``mu*`` says which aspect moves the carton
    probability (``class_478_prob``) and the probability of each image's class
    (``true_class_prob``: its true class, or its clean top-1 class without labels),
    ``sigma`` and ``sigma / mu*`` whether an aspect's effect depends on the others'
    values (interaction) or on its own value (non-linearity) -- Morris cannot tell
    the two apart (MoSIP, Sec. 2).

``do(watermark)`` sets one value (present), so repeating it draws the same images:
the only way to narrow an inconclusive interval is more images. The adaptive budget
therefore stops doubling once every correct image of the pool is used, instead of
doubling repetitions that would repeat identical forward passes.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from shortcut_audit.audit.factor_morris import class_output, factor_morris
from shortcut_audit.audit.interventions import Budget, InterventionResult, run_interventions
from shortcut_audit.data.image_sets import ImageBatch
from shortcut_audit.distributed.shards import Shard
from shortcut_audit.factors.base import Categorical, ImageFactor
from shortcut_audit.factors.scene import ProbabilityReader, Scene, image_scene
from shortcut_audit.factors.watermark import CARTON
from shortcut_audit.watermark.effects import effect_rows, image_effects, scene_logits

__all__ = [
    "MORRIS_OUTPUTS",
    "VERDICT_COLUMNS",
    "ModelResult",
    "aspect_morris",
    "audit_images",
    "capped_doublings",
    "seeded_subset",
    "watermark_scenes",
    "watermark_verdict",
]

CONF_LEVEL = 0.95
MORRIS_OUTPUTS = (class_output(CARTON), "true_class_prob")
VERDICT_COLUMNS = (
    "factor",
    "state",
    "drop",
    "ci_low",
    "ci_high",
    "threshold",
    "statistic",
    "first_round_state",
    "n_items",
    "repetitions",
    "rounds",
    "n_pool",
    "n_correct",
)


def seeded_subset(n: int, k: int | None, seed: int, ordered: bool = False) -> torch.Tensor:
    """``k`` of ``n`` positions drawn without replacement (all when ``k`` is None or >= n).

    Sorted (a sample), or with ``ordered`` in the order of a seeded permutation (a pool
    whose first ``m`` positions are a random sample of ``m``).
    """
    k = n if k is None else min(int(k), n)
    order = np.random.default_rng(np.random.SeedSequence([int(seed), 4051])).permutation(n)[:k]
    return torch.as_tensor(order if ordered else np.sort(order), dtype=torch.long)


def capped_doublings(max_doublings: int, n_items: int, n_correct: int) -> int:
    """Doublings of the image budget that still add images (module docstring)."""
    if n_items >= n_correct:
        return 0
    return min(int(max_doublings), math.ceil(math.log2(n_correct / n_items)))


def _single_value(factor) -> bool:
    """Whether ``do(factor)`` always draws the same value."""
    return isinstance(factor.domain, Categorical) and factor.intervention is not None and len(factor.intervention) == 1


def watermark_scenes(images: torch.Tensor, labels: torch.Tensor, image_factors: tuple[ImageFactor, ...]) -> Scene:
    """The photos with their labels, every factor at its neutral value (the watermark absent)."""
    return image_scene(images, labels, image_factors)


def watermark_verdict(
    reader: ProbabilityReader,
    scene: Scene,
    target_kind: str,
    threshold: float,
    n_items: int,
    repetitions: int,
    max_doublings: int,
    pool_size: int | None,
    n_resamples: int,
    seed: int,
    clean_predictions: torch.Tensor | None = None,
    shard: Shard | None = None,
) -> tuple[dict, InterventionResult]:
    """The three-state verdict "relies on the watermark" (module docstring) and the interventions behind it.

    Parameters
    ----------
    scene : Scene
        Clean photos labelled with the class each should get (true, or the clean top-1).
    target_kind : {"true", "predicted"}
        What the labels are; names the statistic (accuracy drop or top-1 change rate).
    threshold, n_items, repetitions, max_doublings
        The verdict rule and the first-round budget of :func:`run_interventions`.
    pool_size : int or None
        Photos in the seeded pool (None: all).
    clean_predictions : torch.Tensor, optional
        The model's top-1 class of every clean photo of ``scene`` when already known
        (saves a pass to count the correct ones).
    shard : Shard, optional
        A process of a sharded run (:mod:`shortcut_audit.distributed`): every process
        holds the whole ``scene``, classifies and re-draws its share of the pool
        (:func:`~shortcut_audit.audit.interventions.run_interventions`) and returns the
        same row as a single process.

    Returns
    -------
    (dict, InterventionResult)
        A row with :data:`VERDICT_COLUMNS`, and the interventions.
    """
    positions = seeded_subset(len(scene), pool_size, seed, ordered=True).to(scene.device)
    pool = scene.select(positions)
    if _single_value(pool.factor("watermark")):
        if clean_predictions is None:
            shard = shard or Shard.single()
            mine = scene_logits(reader, scene.select(shard.items(len(scene)).to(scene.device))).argmax(dim=1)
            clean_predictions = shard.gather_items(mine, len(scene))
        n_correct = int((clean_predictions.to(scene.device)[positions] == pool.labels).sum())
        max_doublings = capped_doublings(max_doublings, min(n_items, max(n_correct, 1)), n_correct)
    result = run_interventions(
        reader,
        pool,
        ["watermark"],
        Budget(n_items, repetitions, max_doublings),
        threshold=threshold,
        seed=seed,
        conf_level=CONF_LEVEL,
        n_resamples=n_resamples,
        shard=shard,
    )
    row = result.shapley_drop.set_index("factor").loc["watermark"]
    return {
        "factor": "watermark",
        "state": str(row["state"]),
        "drop": float(row["drop"]),
        "ci_low": float(row["ci_low"]),
        "ci_high": float(row["ci_high"]),
        "threshold": float(threshold),
        "statistic": "top1_change_rate" if target_kind == "predicted" else "accuracy_drop",
        "first_round_state": str(result.first_states["watermark"]),
        "n_items": result.n_items,
        "repetitions": result.repetitions,
        "rounds": result.rounds,
        "n_pool": result.n_pool,
        "n_correct": result.n_correct,
    }, result


def aspect_morris(
    reader: ProbabilityReader,
    images: torch.Tensor,
    labels: torch.Tensor,
    image_factors: tuple[ImageFactor, ...],
    factors: tuple[str, ...],
    n_trajectories: int,
    levels: int,
    seed: int,
    n_resamples: int,
) -> pd.DataFrame:
    """MoSIP factor Morris (global) over ``factors`` on watermarked ``images`` (module docstring).

    Returns the ``morris`` rows of :func:`~shortcut_audit.audit.factor_morris.factor_morris`
    for the outputs :data:`MORRIS_OUTPUTS`.
    """
    scene = image_scene(images, labels, image_factors, own={"watermark": 1})
    result = factor_morris(
        reader,
        scene,
        factors,
        n_trajectories=n_trajectories,
        levels=levels,
        design="trajectory",
        seed=seed,
        conf_level=CONF_LEVEL,
        n_resamples=n_resamples,
        sampling="global",
        outputs=MORRIS_OUTPUTS,
    )
    return result.table


@dataclass(frozen=True)
class ModelResult:
    """The watermark audit of one model (rows without the ``model`` column)."""

    target_kind: str
    images: pd.DataFrame
    effects: pd.DataFrame
    verdict: dict
    morris: pd.DataFrame
    labels: torch.Tensor
    seconds: float


def audit_images(
    reader: ProbabilityReader, batch: ImageBatch, image_factors: tuple[ImageFactor, ...], config, device: torch.device
) -> ModelResult:
    """Effect, verdict and aspects of the model behind ``reader`` on ``batch`` (module docstring).

    ``config`` is a :class:`~shortcut_audit.watermark.config.WatermarkConfig`.
    """
    start = time.perf_counter()
    images = batch.images.to(device)
    probe = watermark_scenes(images, torch.zeros(len(images), dtype=torch.long), image_factors)
    clean = scene_logits(reader, probe)
    marked = scene_logits(
        reader, probe, probe.with_values(probe.columns(["watermark"]), torch.ones(1, 1, dtype=torch.float64))[0]
    )
    if batch.has_labels:
        labels, target_kind = batch.labels.long(), "true"
    else:
        labels, target_kind = clean.argmax(dim=1), "predicted"
    table = image_effects(batch.image_ids, clean, marked, labels if target_kind == "true" else None)
    effects = effect_rows(table, config.n_bootstrap, CONF_LEVEL, config.seed)
    scene = watermark_scenes(images, labels, image_factors)
    verdict, _ = watermark_verdict(
        reader,
        scene,
        target_kind,
        config.drop_threshold,
        config.verdict_images,
        config.repetitions,
        config.max_doublings,
        config.pool_size,
        config.n_bootstrap,
        config.seed,
        clean_predictions=clean.argmax(dim=1),
    )
    chosen = seeded_subset(len(images), config.morris_images, config.seed).to(device)
    morris = aspect_morris(
        reader,
        images[chosen],
        labels.to(device)[chosen],
        image_factors,
        config.morris_factors,
        config.morris_trajectories,
        config.morris_levels,
        config.seed,
        config.n_bootstrap,
    )
    return ModelResult(target_kind, table, effects, verdict, morris, labels, time.perf_counter() - start)
