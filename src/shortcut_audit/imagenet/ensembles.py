"""Ensembles of attribution maps scored against their base methods (Mahlau & Nolde 2022, Sec. 4).

- :func:`ensemble_rows` (Sec. 4.1, Table 1): every normalisation x aggregation of the base
  maps, with the aggregations' Table 1 settings, scored by Insertion and Deletion under the
  paper's protocol (random-normal baseline, ties in random order) next to the base
  methods and to a random and a constant map.
- :func:`size_protocol_rows` (the ensemble-size ablation, Sec. 4.4 and Fig. 11 of the paper;
  the project's issue calls it Sec. 4.3, which is the normalisation study): start with the
  best base method and add the others one by one in descending order of their own score,
  separately for insertion and for deletion, aggregating with the average and with UCB.

Every AUC is the mean over the images with a Student-t interval of that mean.
"""
from __future__ import annotations

import torch

from shortcut_audit.attribution import ensemble
from shortcut_audit.attribution.ensemble import AggregationSettings
from shortcut_audit.metrics.intervals import mean_interval
from shortcut_audit.imagenet.fidelity import reference_maps
from shortcut_audit.metrics import deletion_curve, insertion_curve

ORDERINGS = ("deletion_auc", "insertion_auc")


def _auc_columns(scorer, images, maps, targets, steps, baseline, batch_size, seed, level) -> dict:
    """``deletion_auc, deletion_ci_low, deletion_ci_high`` and the same for insertion."""
    kwargs = dict(steps=steps, baseline=baseline, batch_size=batch_size, seed=seed, score="probability")
    out = {}
    for name, curve in (("deletion", deletion_curve), ("insertion", insertion_curve)):
        values = curve(scorer, images, maps, targets, **kwargs).auc.numpy()
        mean, low, high = mean_interval(values, level)
        out.update({f"{name}_auc": mean, f"{name}_ci_low": low, f"{name}_ci_high": high})
    return out


def _row(model, kind, normalisation, aggregation, setting, members, ordered_by, scores) -> dict:
    return {"model": model, "kind": kind, "normalisation": normalisation, "aggregation": aggregation,
            "setting": setting, "members": "+".join(members), "n_members": len(members),
            "ordered_by": ordered_by, **scores}


def ensemble_rows(model: str, scorer, images: torch.Tensor, targets: torch.Tensor, base_maps: dict,
                  normalisations: list[str], aggregations: list[str], settings: AggregationSettings, steps: int,
                  baseline: str, batch_size: int, seed: int, level: float = 0.95) -> list[dict]:
    """Rows of the Table-1 experiment: ``kind`` base | reference | ensemble.

    ``base`` rows score each method alone (normalisation and aggregation "none"),
    ``reference`` rows the random and the constant map, ``ensemble`` rows every
    normalisation x aggregation of all base maps with ``settings`` (``setting`` column).
    """
    scored = dict(scorer=scorer, images=images, targets=targets, steps=steps, baseline=baseline,
                  batch_size=batch_size, seed=seed, level=level)
    names = sorted(base_maps)
    rows = [_row(model, "base", "none", "none", "", [name], "", _auc_columns(maps=base_maps[name], **scored))
            for name in names]
    rows += [_row(model, "reference", "none", "none", "", [name], "", _auc_columns(maps=maps, **scored))
             for name, maps in reference_maps(tuple(base_maps[names[0]].shape), seed).items()]
    stack = torch.stack([base_maps[n] for n in names])
    combined = ensemble.aggregate_all(stack, normalisations, aggregations, settings, seed)
    for normalisation in normalisations:
        for aggregation in aggregations:
            rows.append(_row(model, "ensemble", normalisation, aggregation, settings.describe(aggregation), names,
                             "", _auc_columns(maps=combined[(normalisation, aggregation)], **scored)))
    return rows


def size_order(base_rows: list[dict], metric: str) -> list[str]:
    """Base methods from best to worst by ``metric`` (lowest deletion, highest insertion AUC first)."""
    sign = 1.0 if metric == "deletion_auc" else -1.0
    base = [r for r in base_rows if r["kind"] == "base"]
    return [r["members"] for r in sorted(base, key=lambda r: (sign * r[metric], r["members"]))]


def size_protocol_rows(model: str, scorer, images: torch.Tensor, targets: torch.Tensor, base_maps: dict,
                       base_rows: list[dict], normalisation: str, aggregations: list[str],
                       settings: AggregationSettings, steps: int, baseline: str, batch_size: int, seed: int,
                       level: float = 0.95) -> list[dict]:
    """Ensembles of the top-k base methods, k = 1 .. K, for each ordering (``ordered_by``).

    The order comes from ``base_rows`` (the ``base`` rows of :func:`ensemble_rows`, scored
    under the same protocol). Both AUCs are written for every ensemble; the paper's curve for
    an ordering reads the metric it was ordered by.
    """
    scored = dict(scorer=scorer, images=images, targets=targets, steps=steps, baseline=baseline,
                  batch_size=batch_size, seed=seed, level=level)
    rows = []
    for metric in ORDERINGS:
        order = size_order(base_rows, metric)
        for size in range(1, len(order) + 1):
            members = order[:size]
            stack = torch.stack([base_maps[n] for n in members])
            for aggregation in aggregations:
                maps = ensemble.aggregate(stack, normalisation, aggregation, settings, seed)
                rows.append(_row(model, "size_protocol", normalisation, aggregation, settings.describe(aggregation),
                                 members, metric, _auc_columns(maps=maps, **scored)))
    return rows
