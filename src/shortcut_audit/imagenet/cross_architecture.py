"""Cross-architecture analyses of MoSIP Section 5 on per-region Morris statistics.

Inputs are the per-region statistics of :func:`~shortcut_audit.imagenet.explain.morris_statistics`:
dicts ``{"mu_star", "sigma", "mu_star_plus_sigma"}`` of the *local* analysis, ``(N, w, w)``
per image, and of the *global* analysis averaged over the images, ``(w, w)``.

- :func:`overlap_rows` (Fig. 5, local analysis): share of a model's top-20% regions that
  are, or immediately neighbour, a top-20% region of the reference architecture (AlexNet
  in the paper), for each ranking statistic; the raw mu* and sigma of the model on its
  overlapping and differing regions, and the reference's own raw mu* and sigma on the
  same regions, so "higher sigma than AlexNet on the shared regions" can be read.
- :func:`ratio_row` (Fig. 6a, global analysis): mu*/sigma over the relevant regions,
  those whose normalised mu* or sigma exceeds 0.6.
- :func:`masking_rows` (Figs. 4, 9 local; Fig. 10 global): masking curves on the
  correctly predicted images, regions ranked by mu*, sigma and mu* + sigma.
- :func:`pair_rows` (Fig. 6b): the paper's top-K pairwise heuristic on accuracy.
- :func:`score_interaction_rows`: an extension (not in the paper), a two-sided
  per-image test on the target probability.
"""

from __future__ import annotations

import itertools

import torch

from shortcut_audit.attribution.morris_grid import STATISTICS
from shortcut_audit.metrics.overlap import region_overlap
from shortcut_audit.metrics.perturbation import Seeds, select_score
from shortcut_audit.metrics.region_masking import WHICH, MaskingCurve, masked_region_outputs, masking_curve

SCOPES = ("local", "global")
# Uninformative rankings every masking curve is compared with (as every fidelity score is
# compared with a random and a constant map): seeded uniform noise, and a constant map
# (all regions tie, so they are masked in row-major order).
REFERENCE_RANKINGS = ("random", "constant")
MASKING_RANKINGS = (*STATISTICS, *REFERENCE_RANKINGS)


def with_sum(mu_star: torch.Tensor, sigma: torch.Tensor) -> dict[str, torch.Tensor]:
    """The three MoSIP rankings from mu* and sigma: mu*, sigma and mu* + sigma."""
    return {"mu_star": mu_star, "sigma": sigma, "mu_star_plus_sigma": mu_star + sigma}


def with_reference_rankings(stats: dict[str, torch.Tensor], random: torch.Tensor) -> dict[str, torch.Tensor]:
    """``stats`` plus the :data:`REFERENCE_RANKINGS`: ``random`` (given, the shape of the statistics)
    and ``constant`` (zeros)."""
    shape = stats["mu_star"].shape
    if tuple(random.shape) != tuple(shape):
        raise ValueError(f"random ranking of shape {tuple(random.shape)} for statistics of shape {tuple(shape)}")
    device = stats["mu_star"].device
    return {**stats, "random": random.to(device), "constant": torch.zeros(shape, device=device)}


def choose_reference(requested: str, loaded: list[str]) -> tuple[str, bool]:
    """The overlap reference: ``requested`` when loaded, else the first loaded model.

    Returns ``(model used, True when it stands in for the requested one)``.
    """
    if not loaded:
        raise ValueError("no loaded model to compare against")
    if requested in loaded:
        return requested, False
    return loaded[0], True


def normalise_by_max(values: torch.Tensor) -> torch.Tensor:
    """Divide region values ``(..., w, w)`` by their maximum over the grid (0 stays 0)."""
    peak = values.flatten(-2).amax(dim=-1)[..., None, None]
    return torch.where(peak > 0, values / peak.clamp_min(torch.finfo(values.dtype).tiny), torch.zeros_like(values))


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> float:
    return float(values[mask].mean()) if bool(mask.any()) else 0.0


def overlap_rows(
    model: str,
    reference: str,
    requested_reference: str,
    image_ids: list[str],
    stats: dict[str, torch.Tensor],
    reference_stats: dict[str, torch.Tensor],
    fraction: float,
    radius: int,
) -> list[dict]:
    """One row per (ranking statistic, image): MoSIP Fig. 5 for ``model`` against ``reference``.

    For each ranking in mu*, sigma and mu* + sigma, the model's top ``fraction`` regions
    are split into overlapping (within ``radius`` of a reference top region: identical or
    immediate neighbour, Sec. 5) and differing ones. The means of the model's *raw*
    (unnormalised) mu* and sigma over each set, and of the reference's raw mu* and sigma
    over the same regions, are reported; a mean over an empty set is 0 (see the counts).
    """
    rows = []
    for statistic in STATISTICS:
        result = region_overlap(stats[statistic], reference_stats[statistic], fraction=fraction, radius=radius)
        for i, image_id in enumerate(image_ids):
            over, diff = result.overlapping[i], result.differing[i]
            row = {
                "model": model,
                "reference": reference,
                "requested_reference": requested_reference,
                "statistic": statistic,
                "image_id": image_id,
                "top_fraction": fraction,
                "radius": radius,
                "overlap_share": float(result.share[i]),
                "n_overlapping": int(over.sum()),
                "n_differing": int(diff.sum()),
            }
            for prefix, source in (("", stats), ("reference_", reference_stats)):
                for value in ("mu_star", "sigma"):
                    row[f"{prefix}{value}_overlapping"] = _masked_mean(source[value][i], over)
                    row[f"{prefix}{value}_differing"] = _masked_mean(source[value][i], diff)
            rows.append(row)
    return rows


def ratio_row(model: str, n_images: int, mu_star: torch.Tensor, sigma: torch.Tensor, threshold: float) -> dict:
    """mu*/sigma over the relevant regions of the global analysis (MoSIP Fig. 6a).

    Relevant regions: normalised mu* or normalised sigma (each divided by its maximum
    over the grid; the paper says "normalized" without the rule) above ``threshold``
    (0.6 in the paper). The paper's ratio symbol is lost in the extracted text; its
    wording ("the ratio between the mu* and sigma ... for relevant regions") is read as
    the per-region ratio, averaged (``mean_ratio``); the median is also given. Regions
    with sigma = 0 are left out of the ratio (it is unbounded there).
    """
    relevant = (normalise_by_max(mu_star) > threshold) | (normalise_by_max(sigma) > threshold)
    usable = relevant & (sigma > 0)
    ratios = mu_star[usable] / sigma[usable]
    return {
        "model": model,
        "n_images": n_images,
        "threshold": threshold,
        "n_relevant": int(relevant.sum()),
        "n_ratio": int(usable.sum()),
        "mean_ratio": float(ratios.mean()) if len(ratios) else 0.0,
        "median_ratio": float(ratios.median()) if len(ratios) else 0.0,
    }


def masking_curves(
    scorer,
    images: torch.Tensor,
    targets: torch.Tensor,
    local: dict[str, torch.Tensor],
    global_: dict[str, torch.Tensor],
    max_fraction: float,
    baseline: str,
    batch_size: int,
    seed: Seeds = 0,
) -> dict[tuple[str, str, str], MaskingCurve]:
    """The masking curves of :func:`masking_rows`, keyed ``(scope, ranking, which)``.

    One curve per ranking in ``local`` (and ``global_``, with the same keys): the MoSIP
    statistics, and the :data:`REFERENCE_RANKINGS` when given (:func:`with_reference_rankings`).
    ``seed`` seeds a random ``baseline`` (one int, or one per image).
    """
    if list(local) != list(global_):
        raise ValueError(f"local rankings {list(local)} differ from global rankings {list(global_)}")
    curves = {}
    for scope, stats in (("local", local), ("global", global_)):
        for ranking in stats:
            for which in WHICH:
                curves[(scope, ranking, which)] = masking_curve(
                    scorer,
                    images,
                    stats[ranking],
                    targets,
                    max_fraction=max_fraction,
                    which=which,
                    baseline=baseline,
                    score="probability",
                    batch_size=batch_size,
                    seed=seed,
                )
    return curves


def masking_table(model: str, target_kind: str, curves: dict[tuple[str, str, str], MaskingCurve]) -> list[dict]:
    """One row per (scope, ranking, direction, step) of :func:`masking_curves`' curves."""
    rows = []
    for (scope, ranking, which), curve in curves.items():
        accuracy, change = curve.accuracy, curve.score_change
        for s, step in enumerate(curve.steps.tolist()):
            rows.append(
                {
                    "model": model,
                    "scope": scope,
                    "ranking": ranking,
                    "which": which,
                    "target_kind": target_kind,
                    "n_images": curve.n_images,
                    "step": step,
                    "fraction": float(curve.fractions[s]),
                    "accuracy": float(accuracy[s]),
                    "score_change": float(change[s]),
                }
            )
    return rows


def masking_rows(
    model: str,
    scorer,
    images: torch.Tensor,
    targets: torch.Tensor,
    target_kind: str,
    local: dict[str, torch.Tensor],
    global_: dict[str, torch.Tensor],
    max_fraction: float,
    baseline: str,
    batch_size: int,
    seed: Seeds = 0,
) -> list[dict]:
    """MoSIP masking validation: one row per (scope, ranking, direction, step).

    ``local`` statistics ``(N, w, w)`` rank each image's own regions (Figs. 4, 9);
    ``global_`` statistics ``(w, w)`` rank the same regions for every image (Fig. 10).
    Only the images whose clean top-1 equals the target are used; with ``target_kind``
    "predicted" (no labels) the target is the clean top-1, so every image counts.
    """
    curves = masking_curves(scorer, images, targets, local, global_, max_fraction, baseline, batch_size, seed)
    return masking_table(model, target_kind, curves)


def _subsets(k: int) -> tuple[list[tuple[int, ...]], list[tuple[int, int]]]:
    """Clean, each single position and each pair of positions among ``k``."""
    pairs = list(itertools.combinations(range(k), 2))
    subsets: list[tuple[int, ...]] = [()]
    subsets += [(a,) for a in range(k)]
    subsets += pairs
    return subsets, pairs


def _top_regions(ranking: torch.Tensor, top_k: int) -> torch.Tensor:
    """The ``min(top_k, w^2)`` regions of largest ``ranking`` (row-major ids; ties in region order)."""
    k = min(top_k, ranking.shape[-1] * ranking.shape[-2])
    return torch.argsort(ranking.flatten(), descending=True, stable=True)[:k]


def pair_predictions(
    scorer,
    images: torch.Tensor,
    targets: torch.Tensor,
    ranking: torch.Tensor,
    top_k: int,
    baseline: str,
    batch_size: int,
    seed: Seeds = 0,
) -> torch.Tensor:
    """Top-1 predictions ``(S, N)`` of :func:`pair_rows`' variants: clean, each top region, each pair."""
    grid = ranking.shape[-1]
    top = _top_regions(ranking, top_k)
    subsets, _ = _subsets(len(top))
    selections = torch.zeros(len(subsets), grid * grid, dtype=torch.bool)
    for s, subset in enumerate(subsets):
        selections[s, top[list(subset)]] = True
    predictions, _ = masked_region_outputs(
        scorer, images, targets, selections.view(-1, grid, grid), baseline, batch_size, seed
    )
    return predictions


def pair_table(
    model: str, target_kind: str, ranking: torch.Tensor, top_k: int, predictions: torch.Tensor, labels: torch.Tensor
) -> list[dict]:
    """The rows of :func:`pair_rows` from its variants' ``predictions`` ``(S, N)`` and the ``labels`` ``(N,)``."""
    top = _top_regions(ranking, top_k)
    k = len(top)
    _, pairs = _subsets(k)
    labels = labels.cpu()
    kept = predictions[0] == labels
    n_kept = int(kept.sum())
    if n_kept == 0:
        return []
    accuracy = (predictions[:, kept] == labels[kept]).float().mean(dim=1)
    drop = accuracy[0] - accuracy
    rows = []
    for p, (a, b) in enumerate(pairs):
        d_x, d_y, d_xy = float(drop[1 + a]), float(drop[1 + b]), float(drop[1 + k + p])
        rows.append(
            {
                "model": model,
                "target_kind": target_kind,
                "n_images": n_kept,
                "region_x": int(top[a]),
                "region_y": int(top[b]),
                "drop_x": d_x,
                "drop_y": d_y,
                "drop_xy": d_xy,
                "interaction": d_x + d_y - d_xy,
                "interacts": d_x + d_y > d_xy,
            }
        )
    return rows


def pair_rows(
    model: str,
    scorer,
    images: torch.Tensor,
    targets: torch.Tensor,
    target_kind: str,
    ranking: torch.Tensor,
    top_k: int,
    baseline: str,
    batch_size: int,
    seed: Seeds = 0,
) -> list[dict]:
    """MoSIP's top-K pairwise heuristic (Sec. 5, Fig. 6b), one row per pair of top-K regions.

    The K regions of largest ``ranking`` (the global analysis' mu*, ``(w, w)``: the same
    regions in every image, so that masking one has *an* accuracy change) are paired.
    On the correctly predicted images, masking x changes the accuracy by ``delta1``,
    then masking y as well by ``delta2``; the reverse order gives ``gamma1`` and
    ``gamma2``. The paper declares an interaction when ``delta1 + gamma1 > delta2 + gamma2``.
    With ``D_s = A(clean) - A(s masked)`` the accuracy drop of a set s of regions
    (changes counted as drops, as "a greater change in accuracy" means):

    ``delta1 = D_x``, ``delta2 = D_xy - D_x``, ``gamma1 = D_y``, ``gamma2 = D_xy - D_y``, so
    ``delta1 + gamma1 > delta2 + gamma2  <=>  D_x + D_y > 2 D_xy - D_x - D_y  <=>  D_x + D_y > D_xy``.

    No threshold. ``interaction = D_x + D_y - D_xy`` is stored, ``interacts`` is
    ``interaction > 0``. The test is one-sided: it flags pairs where each region's
    masking already costs what the pair costs (each needs the other), not redundant
    pairs (either suffices, ``D_xy > D_x + D_y``); :func:`score_interaction_rows` is the
    two-sided extension.
    """
    predictions = pair_predictions(scorer, images, targets, ranking, top_k, baseline, batch_size, seed)
    return pair_table(model, target_kind, ranking, top_k, predictions, targets)


def score_interaction_scores(
    scorer,
    images: torch.Tensor,
    targets: torch.Tensor,
    mu_star: torch.Tensor,
    top_k: int,
    baseline: str,
    batch_size: int,
    score: str = "probability",
    seed: Seeds = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image, its K regions of largest local mu* ``(N, K)`` and the target scores ``(N, S)`` of
    :func:`score_interaction_rows`' variants (clean, each region alone, each pair)."""
    n = images.shape[0]
    grid = mu_star.shape[-1]
    k = min(top_k, grid * grid)
    top = torch.argsort(mu_star.flatten(1), dim=1, descending=True, stable=True)[:, :k]
    subsets, _ = _subsets(k)
    selections = torch.zeros(n, len(subsets), grid * grid, dtype=torch.bool)
    for s, subset in enumerate(subsets):
        for position in subset:
            selections[torch.arange(n), s, top[:, position]] = True
    _, values = masked_region_outputs(
        scorer, images, targets, selections.view(n, -1, grid, grid), baseline, batch_size, seed
    )
    return top, select_score(values.reshape(-1, 2), score).view(len(subsets), n).T


def score_interaction_table(
    model: str, image_ids: list[str], top: torch.Tensor, scores: torch.Tensor, threshold: float
) -> list[dict]:
    """The rows of :func:`score_interaction_rows` from :func:`score_interaction_scores`' ``top`` and ``scores``."""
    k = top.shape[1]
    _, pairs = _subsets(k)
    clean = scores[:, 0]
    rows = []
    for i, image_id in enumerate(image_ids):
        for p, (a, b) in enumerate(pairs):
            d_a, d_b = clean[i] - scores[i, 1 + a], clean[i] - scores[i, 1 + b]
            d_ab = clean[i] - scores[i, 1 + k + p]
            strength = float(d_ab - d_a - d_b)
            rows.append(
                {
                    "model": model,
                    "image_id": image_id,
                    "region_a": int(top[i, a]),
                    "region_b": int(top[i, b]),
                    "drop_a": float(d_a),
                    "drop_b": float(d_b),
                    "drop_ab": float(d_ab),
                    "interaction": strength,
                    "interacts": abs(strength) > threshold * float(clean[i]),
                }
            )
    return rows


def score_interaction_rows(
    model: str,
    scorer,
    images: torch.Tensor,
    targets: torch.Tensor,
    image_ids: list[str],
    mu_star: torch.Tensor,
    top_k: int,
    threshold: float,
    baseline: str,
    batch_size: int,
    score: str = "probability",
    seed: Seeds = 0,
) -> list[dict]:
    """Extension (not MoSIP's statistic): a two-sided per-image interaction test on the score.

    For the K regions of largest local mu* of each image, mask each region alone and
    each pair together; the pair interacts when the joint drop of the target score
    departs from the sum of the single drops by more than ``threshold`` times the clean
    score, in either direction: ``|D_ij - D_i - D_j| > threshold * f(x)`` with
    ``D = f(x) - f(x masked)``. ``score`` is ``"probability"`` (softmax) or ``"output"``.
    """
    top, scores = score_interaction_scores(scorer, images, targets, mu_star, top_k, baseline, batch_size, score, seed)
    return score_interaction_table(model, image_ids, top, scores, threshold)


__all__ = [
    "MASKING_RANKINGS",
    "REFERENCE_RANKINGS",
    "SCOPES",
    "with_reference_rankings",
    "with_sum",
    "choose_reference",
    "normalise_by_max",
    "overlap_rows",
    "ratio_row",
    "masking_curves",
    "masking_table",
    "masking_rows",
    "pair_predictions",
    "pair_table",
    "pair_rows",
    "score_interaction_scores",
    "score_interaction_table",
    "score_interaction_rows",
]
