"""Cross-architecture analyses of MoSIP Section 5 on per-region Morris statistics.

Inputs are mu* and sigma per region, ``(N, w, w)``, of the same images under each
architecture (from :func:`~shortcut_audit.imagenet.explain.morris_statistics`).

- :func:`overlap_rows`: share of a model's top-20% regions (by mu*) that are, or
  immediately neighbour, a top-20% region of the reference architecture, with the
  mean normalised mu* and sigma of overlapping vs differing regions.
- :func:`ratio_rows`: mu*/sigma over relevant regions, those whose normalised mu*
  or sigma (divided by the image's maximum) exceeds 0.6. A large ratio means the
  region acts mostly additively; a small one, through interactions or non-linearly.
- :func:`interaction_rows`: the top-K pairwise masking heuristic. For the K regions
  of largest mu*, mask each region alone and each pair together; the pair
  interacts when the joint drop of the target probability departs from the sum of the single drops by
  more than ``threshold`` times the clean score:
  ``|D_ij - D_i - D_j| > threshold * f(x)`` with ``D = f(x) - f(x masked)``.
"""
from __future__ import annotations

import itertools

import torch

from shortcut_audit.metrics import region_masking
from shortcut_audit.metrics.overlap import region_overlap
from shortcut_audit.metrics.perturbation import make_baseline, target_scores
from shortcut_audit.metrics.regions import expand_regions


def normalise_by_max(values: torch.Tensor) -> torch.Tensor:
    """Divide each image's region values (N, w, w) by their maximum (0 stays 0)."""
    peak = values.flatten(1).amax(dim=1).view(-1, 1, 1)
    return torch.where(peak > 0, values / peak.clamp_min(torch.finfo(values.dtype).tiny), torch.zeros_like(values))


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> tuple[float, int]:
    count = int(mask.sum())
    return (float(values[mask].mean()) if count else 0.0), count


def overlap_rows(model: str, reference: str, image_ids: list[str], mu_star: torch.Tensor, sigma: torch.Tensor,
                 reference_mu_star: torch.Tensor, fraction: float, radius: int) -> list[dict]:
    """One row per image: overlap share and statistics of overlapping vs differing regions.

    Means of overlapping/differing regions are 0 when the set is empty (see the counts).
    """
    result = region_overlap(mu_star, reference_mu_star, fraction=fraction, radius=radius)
    mu_n, sigma_n = normalise_by_max(mu_star), normalise_by_max(sigma)
    rows = []
    for i, image_id in enumerate(image_ids):
        over, diff = result.overlapping[i], result.differing[i]
        mu_over, n_over = _masked_mean(mu_n[i], over)
        mu_diff, n_diff = _masked_mean(mu_n[i], diff)
        rows.append({
            "model": model, "reference": reference, "image_id": image_id, "top_fraction": fraction,
            "radius": radius, "overlap_share": float(result.share[i]),
            "n_overlapping": n_over, "n_differing": n_diff,
            "mu_star_overlapping": mu_over, "mu_star_differing": mu_diff,
            "sigma_overlapping": _masked_mean(sigma_n[i], over)[0],
            "sigma_differing": _masked_mean(sigma_n[i], diff)[0],
        })
    return rows


def ratio_rows(model: str, image_ids: list[str], mu_star: torch.Tensor, sigma: torch.Tensor,
               threshold: float) -> list[dict]:
    """One row per image: mu*/sigma over relevant regions (normalised mu* or sigma > threshold).

    Regions with sigma = 0 are left out of the ratio (it is unbounded there).
    """
    relevant = (normalise_by_max(mu_star) > threshold) | (normalise_by_max(sigma) > threshold)
    rows = []
    for i, image_id in enumerate(image_ids):
        usable = relevant[i] & (sigma[i] > 0)
        ratios = mu_star[i][usable] / sigma[i][usable]
        rows.append({
            "model": model, "image_id": image_id, "threshold": threshold,
            "n_relevant": int(relevant[i].sum()), "n_ratio": int(usable.sum()),
            "mean_ratio": float(ratios.mean()) if len(ratios) else 0.0,
            "median_ratio": float(ratios.median()) if len(ratios) else 0.0,
        })
    return rows


def interaction_rows(model: str, scorer, images: torch.Tensor, targets: torch.Tensor, image_ids: list[str],
                     mu_star: torch.Tensor, top_k: int, threshold: float, baseline: str,
                     batch_size: int, score: str = "probability") -> list[dict]:
    """One row per (image, pair of top-K regions) with the single and joint score drops.

    ``score`` is ``"probability"`` (softmax of the scorer's logits) or ``"output"`` (as returned).
    """
    n, _, h, w = images.shape
    grid = mu_star.shape[-1]
    k = min(top_k, grid * grid)
    top = torch.argsort(mu_star.flatten(1), dim=1, descending=True, stable=True)[:, :k]
    pairs = list(itertools.combinations(range(k), 2))
    # masks over regions: clean, each single region, each pair -> (1 + k + pairs) per image
    subsets = [()] + [(a,) for a in range(k)] + pairs
    selections = torch.zeros(n, len(subsets), grid * grid)
    for s, subset in enumerate(subsets):
        for position in subset:
            selections[torch.arange(n), s, top[:, position]] = 1.0
    base = make_baseline(images, baseline)
    scores = torch.empty(n, len(subsets))
    for s in range(len(subsets)):
        mask = expand_regions(selections[:, s].view(n, grid, grid), h, w)[:, None].to(images)
        masked = images * (1 - mask) + base * mask
        with torch.no_grad():
            out = torch.cat([scorer(masked[i:i + batch_size]).cpu() for i in range(0, n, batch_size)])
        scores[:, s] = target_scores(out, targets.cpu(), score)
    clean = scores[:, 0]
    rows = []
    for i, image_id in enumerate(image_ids):
        for p, (a, b) in enumerate(pairs):
            d_a, d_b = clean[i] - scores[i, 1 + a], clean[i] - scores[i, 1 + b]
            d_ab = clean[i] - scores[i, 1 + k + p]
            strength = float(d_ab - d_a - d_b)
            rows.append({
                "model": model, "image_id": image_id,
                "region_a": int(top[i, a]), "region_b": int(top[i, b]),
                "drop_a": float(d_a), "drop_b": float(d_b), "drop_ab": float(d_ab),
                "interaction": strength, "interacts": abs(strength) > threshold * float(clean[i]),
            })
    return rows


def masking_rows(model: str, scorer, images: torch.Tensor, targets: torch.Tensor, mu_star: torch.Tensor,
                 fraction: float, baseline: str, batch_size: int) -> list[dict]:
    """MoSIP validation by masking (Figs. 4, 10): most/least x local/global, one row each."""
    rows = []
    for which in ("most", "least"):
        for scope in ("local", "global"):
            result = region_masking(scorer, images, mu_star, targets, fraction=fraction, which=which,
                                    scope=scope, baseline=baseline, score="probability", batch_size=batch_size)
            rows.append({
                "model": model, "which": which, "scope": scope, "fraction": fraction,
                "accuracy": result.accuracy, "clean_accuracy": float(result.clean_correct.float().mean()),
                "score_change": float(result.score_change.mean()),
            })
    return rows


__all__ = ["overlap_rows", "ratio_rows", "interaction_rows", "masking_rows", "normalise_by_max"]
