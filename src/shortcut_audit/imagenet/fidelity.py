"""Fidelity of attribution maps: Deletion, Insertion and normalised AOPC per image.

One deletion and one insertion curve per (method, image) serve all three scores:
the normalised AOPC is read off the deletion (most-relevant-first) curve.
"""
from __future__ import annotations

import torch

from shortcut_audit.metrics import METRICS, aopc_from_curve, deletion_curve, insertion_curve


def fidelity_scores(scorer, images: torch.Tensor, maps: torch.Tensor, targets: torch.Tensor, steps: int,
                    deletion_baseline: str, insertion_baseline: str, batch_size: int, seed: int = 0):
    """Per-image scores and the two curves of one method's maps.

    Returns
    -------
    scores : dict[str, Tensor (N,)]
        ``deletion_auc``, ``insertion_auc``, ``naopc``.
    curves : dict[str, PerturbationCurve]
        ``deletion`` and ``insertion``.
    """
    kwargs = dict(steps=steps, batch_size=batch_size, seed=seed, score="probability")
    deletion = deletion_curve(scorer, images, maps, targets, baseline=deletion_baseline, **kwargs)
    insertion = insertion_curve(scorer, images, maps, targets, baseline=insertion_baseline, **kwargs)
    scores = {
        "deletion_auc": deletion.auc,
        "insertion_auc": insertion.auc,
        "naopc": aopc_from_curve(deletion.scores).normalised,
    }
    return scores, {"deletion": deletion, "insertion": insertion}


def score_rows(model: str, method: str, image_ids: list[str], targets: torch.Tensor, scores: dict,
               **extra) -> list[dict]:
    """Tidy rows ``model, method, image_id, target, metric, value, direction`` (+ ``extra``)."""
    rows = []
    for metric, values in scores.items():
        for image_id, target, value in zip(image_ids, targets.tolist(), values.tolist()):
            rows.append({"model": model, "method": method, "image_id": image_id, "target": int(target),
                         "metric": metric, "value": float(value), "direction": METRICS[metric].direction,
                         **extra})
    return rows


def curve_rows(model: str, method: str, curves: dict) -> list[dict]:
    """Mean curve over images: ``model, method, mode, step, fraction, score``."""
    rows = []
    for mode, curve in curves.items():
        mean = curve.scores.mean(dim=0)
        for step, (fraction, score) in enumerate(zip(curve.fractions.tolist(), mean.tolist())):
            rows.append({"model": model, "method": method, "mode": mode, "step": step,
                         "fraction": float(fraction), "score": float(score)})
    return rows
