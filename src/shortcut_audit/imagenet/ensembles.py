"""Ensembles of attribution maps scored against their base methods.

Mahlau & Nolde (2022), Table 1: every normalisation x aggregation of the base
maps is scored by Insertion and Deletion (random-normal baseline) next to the
base methods themselves; an ensemble-size ablation averages random subsets of
``k`` base methods (k = 2 .. K) aggregated with UCB (eps = -0.5) after z-score
normalisation, the paper's best overall combination.
"""
from __future__ import annotations

import itertools
import random

import torch

from shortcut_audit.attribution import ensemble
from shortcut_audit.metrics import deletion_curve, insertion_curve


def _auc_pair(scorer, images, maps, targets, steps, baseline, batch_size, seed):
    kwargs = dict(steps=steps, baseline=baseline, batch_size=batch_size, seed=seed, score="probability")
    deletion = deletion_curve(scorer, images, maps, targets, **kwargs).auc.mean()
    insertion = insertion_curve(scorer, images, maps, targets, **kwargs).auc.mean()
    return float(deletion), float(insertion)


def ensemble_rows(model: str, scorer, images: torch.Tensor, targets: torch.Tensor, base_maps: dict,
                  normalisations: list[str], aggregations: list[str], steps: int, baseline: str,
                  batch_size: int, seed: int) -> list[dict]:
    """Rows ``model, kind, normalisation, aggregation, members, n_members, deletion_auc, insertion_auc``.

    ``kind`` is ``"base"`` for a single method (normalisation and aggregation "none")
    or ``"ensemble"``. AUCs are means over the images.
    """
    names = sorted(base_maps)
    rows = []
    for name in names:
        d, i = _auc_pair(scorer, images, base_maps[name], targets, steps, baseline, batch_size, seed)
        rows.append({"model": model, "kind": "base", "normalisation": "none", "aggregation": "none",
                     "members": name, "n_members": 1, "deletion_auc": d, "insertion_auc": i})
    stack = torch.stack([base_maps[n] for n in names])
    for normalisation in normalisations:
        for aggregation in aggregations:
            maps = ensemble.aggregate(stack, normalization=normalisation, method=aggregation, seed=seed)
            d, i = _auc_pair(scorer, images, maps, targets, steps, baseline, batch_size, seed)
            rows.append({"model": model, "kind": "ensemble", "normalisation": normalisation,
                         "aggregation": aggregation, "members": "+".join(names), "n_members": len(names),
                         "deletion_auc": d, "insertion_auc": i})
    return rows


def size_ablation_rows(model: str, scorer, images: torch.Tensor, targets: torch.Tensor, base_maps: dict,
                       repeats: int, steps: int, baseline: str, batch_size: int, seed: int) -> list[dict]:
    """z-score + UCB(-0.5) ensembles of ``repeats`` random member subsets per size k >= 2."""
    names = sorted(base_maps)
    rng = random.Random(seed)
    rows = []
    for size in range(2, len(names) + 1):
        subsets = list(itertools.combinations(names, size))
        for members in rng.sample(subsets, min(repeats, len(subsets))):
            stack = torch.stack([base_maps[n] for n in members])
            maps = ensemble.aggregate(stack, normalization="z", method="ucb", epsilon=-0.5)
            d, i = _auc_pair(scorer, images, maps, targets, steps, baseline, batch_size, seed)
            rows.append({"model": model, "kind": "size_ablation", "normalisation": "z", "aggregation": "ucb",
                         "members": "+".join(members), "n_members": size, "deletion_auc": d, "insertion_auc": i})
    return rows
