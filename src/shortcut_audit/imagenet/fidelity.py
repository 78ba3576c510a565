"""Fidelity of attribution maps under named protocols, next to a random and a constant map.

One deletion and one insertion curve per (protocol, method, image) serve three scores:
deletion AUC, insertion AUC and the normalised AOPC, read off the deletion
(most-relevant-first) curve. A score means little on its own: pixel-wise deletion to
black rewards maps that scatter their top pixels (isolated black pixels destroy a
prediction faster than a compact region does), so a *random* map can beat real
explanations. Every method is therefore scored next to two maps that carry no
information, under the same protocol, seed and images:

- ``random``: i.i.d. uniform noise per pixel (the "Random" baseline row of Fel et al.
  2021, Table 2: "removing pixels at each step at random");
- ``constant``: all pixels tied, hence (ties in random order) a random ordering too;

and each method's per-image gain over the random map gets a Student-t interval over
images (:func:`summary_rows`): a method "beats random" only where that interval lies
entirely on the better side.

Protocols (:func:`build_protocols`; all change pixels in seeded random order on ties):

``rise``
    Petsiuk et al. 2018, Sec. 4.1: pixel-wise, deletion to black, insertion from a blurred
    image, ``steps`` equal steps (the paper: 224 pixels per step at 224 px). Baselines are
    the ``fidelity.deletion_baseline`` / ``insertion_baseline`` params.
``sobol``
    Fel et al. 2021, Sec. 4.2 (Table 2, Deletion) and Appendix F (Table S3, Insertion "using
    the same hyperparameters"): pixel-wise, gray baseline ("the standard approach with gray
    values") for both. The step count is not stated in the paper's text; ``steps`` is used.
``ensemble``
    Mahlau & Nolde 2022, Sec. 4: pixel-wise, random normal baseline for both (per-channel
    mean and standard deviation of the image, a new value drawn for every pixel), 1000
    increments in the paper (``steps`` here), ties in random order (Sec. 4.1).
``region``
    This library's region-wise protocol: the cells of a ``region_grid`` x ``region_grid``
    partition are removed (inserted) one per step in the order of the map's mean
    attribution per cell, baseline ``region_baseline``; it cannot reward scattering.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from shortcut_audit.metrics import METRICS, aopc_from_curve, perturbation_curve, region_perturbation_curve
from shortcut_audit.metrics.perturbation import Seeds, seeded_draws
from shortcut_audit.stats import mean_interval

PROTOCOLS = ("rise", "sobol", "ensemble", "region")
REFERENCE_MAPS = ("random", "constant")
SCORES = ("deletion_auc", "insertion_auc", "naopc")
VERDICTS = ("better", "worse", "inconclusive", "reference")
_SOURCES = {
    "rise": "Petsiuk et al. 2018, Sec. 4.1",
    "sobol": "Fel et al. 2021, Sec. 4.2, Table 2 and Table S3",
    "ensemble": "Mahlau & Nolde 2022, Sec. 4",
    "region": "region-wise, this library",
}
_RANDOM_MAP_STREAM = 11


@dataclass(frozen=True)
class FidelityProtocol:
    """How deletion and insertion are run.

    Attributes
    ----------
    name : str
        One of ``PROTOCOLS``.
    deletion_baseline, insertion_baseline : str
        Baselines of :func:`~shortcut_audit.metrics.perturbation.make_baseline`.
    steps : int
        Equal pixel steps (pixel-wise protocols) or the grid size (``region``).
    """

    name: str
    deletion_baseline: str
    insertion_baseline: str
    steps: int

    @property
    def region_wise(self) -> bool:
        return self.name == "region"

    def describe(self) -> str:
        """One line for tables and the report, e.g. "pixel-wise, 16 steps, deletion to zero, ..."."""
        unit = (
            f"region-wise, {self.steps}x{self.steps} cells one per step"
            if self.region_wise
            else f"pixel-wise, {self.steps} steps"
        )
        return (
            f"{unit}, deletion to {self.deletion_baseline}, insertion from {self.insertion_baseline}, "
            f"ties in random order ({_SOURCES[self.name]})"
        )

    def curve(self, scorer, images, maps, targets, mode: str, batch_size: int, seed: Seeds):
        baseline = self.deletion_baseline if mode == "deletion" else self.insertion_baseline
        if self.region_wise:
            return region_perturbation_curve(
                scorer,
                images,
                maps,
                targets,
                mode,
                grid=self.steps,
                baseline=baseline,
                batch_size=batch_size,
                seed=seed,
                score="probability",
            )
        return perturbation_curve(
            scorer,
            images,
            maps,
            targets,
            mode,
            steps=self.steps,
            baseline=baseline,
            batch_size=batch_size,
            seed=seed,
            score="probability",
        )


def build_protocols(
    names: list[str],
    steps: int,
    deletion_baseline: str,
    insertion_baseline: str,
    region_grid: int,
    region_baseline: str,
) -> list[FidelityProtocol]:
    """The named protocols with their papers' baselines (see the module docstring)."""
    unknown = [n for n in names if n not in PROTOCOLS]
    if unknown:
        raise ValueError(f"unknown fidelity protocol(s) {unknown}; known: {', '.join(PROTOCOLS)}")
    table = {
        "rise": FidelityProtocol("rise", deletion_baseline, insertion_baseline, steps),
        "sobol": FidelityProtocol("sobol", "gray", "gray", steps),
        "ensemble": FidelityProtocol("ensemble", "random_normal", "random_normal", steps),
        "region": FidelityProtocol("region", region_baseline, region_baseline, region_grid),
    }
    return [table[n] for n in names]


def reference_maps(shape: tuple[int, int, int], seed: Seeds) -> dict[str, torch.Tensor]:
    """The uninformative maps every method is compared with: uniform noise and a constant map.

    ``seed``: one int for the batch of ``shape[0]`` images, or one per image (then an
    image's random map depends only on its own seed).
    """
    noise = seeded_draws(lambda size, gen: torch.rand(size, generator=gen), tuple(shape), seed, _RANDOM_MAP_STREAM)
    return {"random": noise, "constant": torch.zeros(shape)}


def fidelity_scores(
    scorer,
    images: torch.Tensor,
    maps: torch.Tensor,
    targets: torch.Tensor,
    protocol: FidelityProtocol,
    batch_size: int,
    seed: Seeds = 0,
    decided: torch.Tensor | None = None,
):
    """Per-image scores and the two curves of one method's maps under ``protocol``.

    ``decided`` is the class whose deletion curve nAOPC reads (the GEEX paper tracks the
    class the model decided on the clean image); by default ``targets``. When they
    differ a third curve is scored for it.

    Returns
    -------
    scores : dict[str, Tensor (N,)]
        ``deletion_auc``, ``insertion_auc``, ``naopc``.
    curves : dict[str, PerturbationCurve]
        ``deletion`` and ``insertion``.
    """
    deletion = protocol.curve(scorer, images, maps, targets, "deletion", batch_size, seed)
    insertion = protocol.curve(scorer, images, maps, targets, "insertion", batch_size, seed)
    tracked = deletion
    if decided is not None and not torch.equal(decided.cpu(), targets.cpu()):
        tracked = protocol.curve(scorer, images, maps, decided, "deletion", batch_size, seed)
    scores = {
        "deletion_auc": deletion.auc,
        "insertion_auc": insertion.auc,
        "naopc": aopc_from_curve(tracked.scores).normalised,
    }
    return scores, {"deletion": deletion, "insertion": insertion}


def score_rows(
    model: str, method: str, image_ids: list[str], targets: torch.Tensor, scores: dict, **extra
) -> list[dict]:
    """Tidy rows ``model, method, image_id, target, metric, value, direction`` (+ ``extra``)."""
    rows = []
    for metric, values in scores.items():
        for image_id, target, value in zip(image_ids, targets.tolist(), values.tolist()):
            rows.append(
                {
                    "model": model,
                    "method": method,
                    "image_id": image_id,
                    "target": int(target),
                    "metric": metric,
                    "value": float(value),
                    "direction": METRICS[metric].direction,
                    **extra,
                }
            )
    return rows


def curve_rows(model: str, method: str, curves: dict, **extra) -> list[dict]:
    """Mean curve over images: ``model, method, mode, step, fraction, score`` (+ ``extra``)."""
    rows = []
    for mode, curve in curves.items():
        mean = curve.scores.mean(dim=0)
        for step, (fraction, score) in enumerate(zip(curve.mean_fractions.tolist(), mean.tolist())):
            rows.append(
                {
                    "model": model,
                    "method": method,
                    "mode": mode,
                    "step": step,
                    "fraction": float(fraction),
                    "score": float(score),
                    **extra,
                }
            )
    return rows


def protocol_results(
    scorer, images, maps, targets, protocols, batch_size: int, seed: Seeds, decided: torch.Tensor | None = None
) -> dict[str, tuple[dict, dict]]:
    """:func:`fidelity_scores` of one method's maps under every protocol: ``{protocol: (scores, curves)}``.

    ``seed`` is one int, or one per image (then an image's scores do not depend on the others).
    """
    return {
        protocol.name: fidelity_scores(scorer, images, maps, targets, protocol, batch_size, seed, decided)
        for protocol in protocols
    }


def result_rows(
    model: str,
    method: str,
    image_ids,
    targets: torch.Tensor,
    results: dict,
    decided: torch.Tensor | None = None,
    **extra,
) -> tuple[list[dict], list[dict]]:
    """Fidelity rows and curve rows of :func:`protocol_results`' ``results`` (column ``protocol``).

    nAOPC rows carry ``decided`` as their target (default: ``targets``).
    """
    decided = targets if decided is None else decided
    fidelity, curves = [], []
    for name, (scores, paths) in results.items():
        scores = dict(scores)
        naopc = {"naopc": scores.pop("naopc")}
        fidelity += score_rows(model, method, image_ids, targets, scores, **extra, protocol=name)
        fidelity += score_rows(model, method, image_ids, decided, naopc, **extra, protocol=name)
        curves += curve_rows(model, method, paths, protocol=name)
    return fidelity, curves


def protocol_rows(
    model: str,
    method: str,
    scorer,
    images,
    maps,
    targets,
    image_ids,
    protocols,
    batch_size: int,
    seed: Seeds,
    decided: torch.Tensor | None = None,
    **extra,
) -> tuple[list[dict], list[dict]]:
    """Fidelity rows and curve rows of one method's maps under every protocol (column ``protocol``).

    nAOPC rows carry ``decided`` as their target (default: ``targets``).
    """
    decided = targets if decided is None else decided
    results = protocol_results(scorer, images, maps, targets, protocols, batch_size, seed, decided)
    return result_rows(model, method, image_ids, targets, results, decided, **extra)


def _gain(values: pd.Series, random: pd.Series, direction: str) -> np.ndarray:
    """Per-image improvement over the random map, positive = better."""
    paired = pd.concat([values, random], axis=1, keys=["method", "random"]).dropna()
    sign = -1.0 if direction == "lower" else 1.0
    return sign * (paired["method"] - paired["random"]).to_numpy(dtype=float)


def summary_rows(fidelity: pd.DataFrame, protocols: list[FidelityProtocol], level: float) -> list[dict]:
    """Mean and interval of every (model, protocol, method, score), with its verdict against random.

    Intervals are Student-t intervals of the mean over images at ``level`` (they collapse to
    the mean with a single image), clipped to what the metric can attain (a mean AUC stays in
    [0, 1]); ``gain`` is the per-image improvement over the random map (positive = better),
    paired by image, its interval clipped to +-(the metric's span) (+-1 for an AUC; unbounded
    for the normalised AOPC, which has no lower bound). ``vs_random`` is ``better`` / ``worse`` when the
    gain's interval lies entirely above / below 0, else ``inconclusive`` (``reference`` for the
    random map itself); ``beats_random`` is ``vs_random == "better"``.
    """
    details = {p.name: p.describe() for p in protocols}
    data = fidelity[fidelity["metric"].isin(SCORES) & fidelity["protocol"].isin(list(details))]
    rows = []
    for (model, protocol, metric), part in data.groupby(["model", "protocol", "metric"], sort=False):
        by_method = {m: g.set_index("image_id")["value"] for m, g in part.groupby("method", sort=False)}
        info = METRICS[metric]
        direction = info.direction
        random = by_method.get("random")
        bounds = info.bounds
        # A gain is a difference of two scores of the metric: it cannot exceed the metric's span.
        span = bounds[1] - bounds[0]
        for method, values in by_method.items():
            mean, low, high = mean_interval(values.to_numpy(dtype=float), level, *bounds)
            row = {
                "model": model,
                "protocol": protocol,
                "method": method,
                "metric": metric,
                "direction": direction,
                "n_images": int(values.size),
                "mean": mean,
                "ci_low": low,
                "ci_high": high,
            }
            if random is None or method == "random":
                gain, gain_low, gain_high = 0.0, 0.0, 0.0
                verdict = "reference" if method == "random" else "inconclusive"
            else:
                gain, gain_low, gain_high = mean_interval(_gain(values, random, direction), level, -span, span)
                verdict = "better" if gain_low > 0 else "worse" if gain_high < 0 else "inconclusive"
            rows.append(
                {
                    **row,
                    "random_mean": float(random.mean()) if random is not None else mean,
                    "constant_mean": float(by_method["constant"].mean()) if "constant" in by_method else mean,
                    "gain_vs_random": gain,
                    "gain_ci_low": gain_low,
                    "gain_ci_high": gain_high,
                    "vs_random": verdict,
                    "beats_random": verdict == "better",
                    "protocol_detail": details[protocol],
                }
            )
    return rows


def not_beating_random(summary: pd.DataFrame) -> dict[str, list[str]]:
    """``{protocol: [methods]}``: the methods (not the reference maps) not shown to beat random on every score."""
    out: dict[str, list[str]] = {}
    if summary.empty:
        return out
    methods = summary[~summary["method"].isin(REFERENCE_MAPS) & ~summary["beats_random"].astype(bool)]
    for protocol, part in methods.groupby("protocol", sort=False):
        out[str(protocol)] = list(pd.unique(part["method"].astype(str)))
    return out
