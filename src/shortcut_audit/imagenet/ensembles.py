"""Ensembles of attribution maps scored against their base methods (Mahlau & Nolde 2022, Sec. 4).

- :func:`ensemble_rows` (Sec. 4.1, Table 1): every normalisation x aggregation of the base
  maps, with the aggregations' Table 1 settings, scored by Insertion and Deletion under the
  paper's protocol (random-normal baseline, ties in random order) next to the base
  methods and to a random and a constant map.
- :func:`size_protocol_rows` (the ensemble-size ablation, Sec. 4.4 and Fig. 11 of the paper;
  the project's issue calls it Sec. 4.3, which is the normalisation study): start with the
  best base method and add the others one by one in descending order of their own score,
  separately for insertion and for deletion, aggregating with the average and with UCB.

Every AUC is the mean over the images with a Student-t interval of that mean. The
``*_scores`` functions return the per-image AUCs behind the rows (:class:`EnsembleScore`),
so that images explained by several processes are put together before the means
(:func:`score_table`); with one seed per image every image's numbers are its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from shortcut_audit.attribution import ensemble
from shortcut_audit.attribution.ensemble import AggregationSettings
from shortcut_audit.imagenet.fidelity import reference_maps
from shortcut_audit.metrics import METRICS, deletion_curve, insertion_curve
from shortcut_audit.metrics.perturbation import Seeds
from shortcut_audit.stats import mean_interval

ORDERINGS = ("deletion_auc", "insertion_auc")


@dataclass
class EnsembleScore:
    """Per-image AUCs of one row of ``ensembles.csv`` (before the means and intervals over images)."""

    kind: str
    normalisation: str
    aggregation: str
    setting: str
    members: list[str]
    ordered_by: str
    deletion: np.ndarray
    insertion: np.ndarray


def _auc_values(scorer, images, maps, targets, steps, baseline, batch_size, seed) -> dict[str, np.ndarray]:
    """Per-image deletion and insertion AUCs ``(N,)`` under the ensemble paper's protocol."""
    kwargs = dict(steps=steps, baseline=baseline, batch_size=batch_size, seed=seed, score="probability")
    return {
        name: curve(scorer, images, maps, targets, **kwargs).auc.numpy()
        for name, curve in (("deletion", deletion_curve), ("insertion", insertion_curve))
    }


def _interval_columns(score: EnsembleScore, level: float) -> dict:
    """``deletion_auc, deletion_ci_low, deletion_ci_high`` and the same for insertion."""
    out = {}
    for name in ("deletion", "insertion"):
        mean, low, high = mean_interval(getattr(score, name), level, *METRICS[f"{name}_auc"].bounds)
        out.update({f"{name}_auc": mean, f"{name}_ci_low": low, f"{name}_ci_high": high})
    return out


def score_table(model: str, scores: list[EnsembleScore], level: float = 0.95) -> list[dict]:
    """Rows of ``ensembles.csv``: means over images with Student-t intervals at ``level``."""
    return [
        {
            "model": model,
            "kind": s.kind,
            "normalisation": s.normalisation,
            "aggregation": s.aggregation,
            "setting": s.setting,
            "members": "+".join(s.members),
            "n_members": len(s.members),
            "ordered_by": s.ordered_by,
            **_interval_columns(s, level),
        }
        for s in scores
    ]


def ensemble_scores(
    scorer,
    images: torch.Tensor,
    targets: torch.Tensor,
    base_maps: dict,
    normalisations: list[str],
    aggregations: list[str],
    settings: AggregationSettings,
    steps: int,
    baseline: str,
    batch_size: int,
    seed: Seeds,
) -> list[EnsembleScore]:
    """Per-image AUCs of :func:`ensemble_rows`' rows, in its order.

    ``seed`` (one int, or one per image) seeds the baseline, the tie order, the random
    reference map and the RBM aggregation.
    """
    scored = dict(
        scorer=scorer, images=images, targets=targets, steps=steps, baseline=baseline, batch_size=batch_size, seed=seed
    )
    names = sorted(base_maps)
    out = [
        EnsembleScore("base", "none", "none", "", [name], "", **_auc_values(maps=base_maps[name], **scored))
        for name in names
    ]
    out += [
        EnsembleScore("reference", "none", "none", "", [name], "", **_auc_values(maps=maps, **scored))
        for name, maps in reference_maps(tuple(base_maps[names[0]].shape), seed).items()
    ]
    stack = torch.stack([base_maps[n] for n in names])
    combined = ensemble.aggregate_all(stack, normalisations, aggregations, settings, seed)
    for normalisation in normalisations:
        for aggregation in aggregations:
            out.append(
                EnsembleScore(
                    "ensemble",
                    normalisation,
                    aggregation,
                    settings.describe(aggregation),
                    names,
                    "",
                    **_auc_values(maps=combined[(normalisation, aggregation)], **scored),
                )
            )
    return out


def ensemble_rows(
    model: str,
    scorer,
    images: torch.Tensor,
    targets: torch.Tensor,
    base_maps: dict,
    normalisations: list[str],
    aggregations: list[str],
    settings: AggregationSettings,
    steps: int,
    baseline: str,
    batch_size: int,
    seed: Seeds,
    level: float = 0.95,
) -> list[dict]:
    """Rows of the Table-1 experiment: ``kind`` base | reference | ensemble.

    ``base`` rows score each method alone (normalisation and aggregation "none"),
    ``reference`` rows the random and the constant map, ``ensemble`` rows every
    normalisation x aggregation of all base maps with ``settings`` (``setting`` column).
    """
    return score_table(
        model,
        ensemble_scores(
            scorer,
            images,
            targets,
            base_maps,
            normalisations,
            aggregations,
            settings,
            steps,
            baseline,
            batch_size,
            seed,
        ),
        level,
    )


def size_order(base_rows: list[dict], metric: str) -> list[str]:
    """Base methods from best to worst by ``metric`` (lowest deletion, highest insertion AUC first)."""
    sign = 1.0 if metric == "deletion_auc" else -1.0
    base = [r for r in base_rows if r["kind"] == "base"]
    return [r["members"] for r in sorted(base, key=lambda r: (sign * r[metric], r["members"]))]


def size_protocol_scores(
    scorer,
    images: torch.Tensor,
    targets: torch.Tensor,
    base_maps: dict,
    base_rows: list[dict],
    normalisation: str,
    aggregations: list[str],
    settings: AggregationSettings,
    steps: int,
    baseline: str,
    batch_size: int,
    seed: Seeds,
) -> list[EnsembleScore]:
    """Per-image AUCs of :func:`size_protocol_rows`' rows, in its order.

    ``base_rows`` are the ``base`` rows over *all* images (their means order the methods),
    even when ``images`` are some of them.
    """
    scored = dict(
        scorer=scorer, images=images, targets=targets, steps=steps, baseline=baseline, batch_size=batch_size, seed=seed
    )
    out = []
    for metric in ORDERINGS:
        order = size_order(base_rows, metric)
        for size in range(1, len(order) + 1):
            members = order[:size]
            stack = torch.stack([base_maps[n] for n in members])
            for aggregation in aggregations:
                maps = ensemble.aggregate(stack, normalisation, aggregation, settings, seed)
                out.append(
                    EnsembleScore(
                        "size_protocol",
                        normalisation,
                        aggregation,
                        settings.describe(aggregation),
                        members,
                        metric,
                        **_auc_values(maps=maps, **scored),
                    )
                )
    return out


def size_protocol_rows(
    model: str,
    scorer,
    images: torch.Tensor,
    targets: torch.Tensor,
    base_maps: dict,
    base_rows: list[dict],
    normalisation: str,
    aggregations: list[str],
    settings: AggregationSettings,
    steps: int,
    baseline: str,
    batch_size: int,
    seed: Seeds,
    level: float = 0.95,
) -> list[dict]:
    """Ensembles of the top-k base methods, k = 1 .. K, for each ordering (``ordered_by``).

    The order comes from ``base_rows`` (the ``base`` rows of :func:`ensemble_rows`, scored
    under the same protocol). Both AUCs are written for every ensemble; the paper's curve for
    an ordering reads the metric it was ordered by.
    """
    return score_table(
        model,
        size_protocol_scores(
            scorer,
            images,
            targets,
            base_maps,
            base_rows,
            normalisation,
            aggregations,
            settings,
            steps,
            baseline,
            batch_size,
            seed,
        ),
        level,
    )
