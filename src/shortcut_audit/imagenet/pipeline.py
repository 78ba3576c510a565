"""The ImageNet audit: models x images -> fidelity, convergence, cross-architecture, ensembles.

Output tables (written by :func:`write_results` into ``data/imagenet/``):

``models.csv``
    ``model, status`` ("loaded" | "skipped"), ``reason`` (why skipped, "" otherwise),
    ``source`` (package | torchvision | import), ``weights_path``, ``input_size``,
    ``n_params``, ``is_reference``, ``n_images``, ``target_kind`` ("true" | "predicted"),
    ``top1_accuracy`` (against true classes; -1 without labels), ``mean_target_probability``,
    ``forwards`` (all forward passes of the model in this run), ``seconds``, ``forward_seconds``.
``fidelity.csv``
    ``model, method, image_id, target, metric`` (deletion_auc | insertion_auc | naopc |
    l1_to_white_box), ``value, direction`` (higher | lower), ``forwards`` (per image),
    ``explain_seconds``, ``reference`` (white-box method for l1_to_white_box, else ""),
    ``protocol`` (sobol | rise | ensemble | region, see :mod:`shortcut_audit.imagenet.fidelity`;
    "" for l1_to_white_box). ``method`` also takes the reference maps ``random`` and
    ``constant`` (forwards 0), scored under every protocol like the methods.
``fidelity_summary.csv``
    One row per ``model, protocol, method, metric`` (deletion_auc | insertion_auc | naopc):
    ``direction, n_images, mean, ci_low, ci_high`` (Student-t interval of the mean over images
    at ``fidelity.interval_level``), ``random_mean, constant_mean`` (the reference maps' means),
    ``gain_vs_random, gain_ci_low, gain_ci_high`` (per-image improvement over the random map,
    positive = better, paired t-interval), ``vs_random`` (better | worse | inconclusive |
    reference), ``beats_random`` (bool, vs_random == better), ``protocol_detail`` (text).
``curves.csv``
    Mean deletion/insertion curves: ``model, method, mode, step, fraction, score, protocol``
    (region-wise curves have one step per cell; ``fraction`` is then the mean over images).
``convergence.csv``
    ``model, method, reference_kind`` (independent seed), ``image_id, budget, forwards,
    reference_forwards, spearman``.
``overlap.csv``
    ``model, reference, image_id, top_fraction, radius, overlap_share, n_overlapping,
    n_differing, mu_star_overlapping, mu_star_differing, sigma_overlapping, sigma_differing``
    (mu* and sigma normalised by the image's maximum; 0 when the set is empty).
``ratio.csv``
    ``model, image_id, threshold, n_relevant, n_ratio, mean_ratio, median_ratio``.
``interactions.csv``
    ``model, image_id, region_a, region_b, drop_a, drop_b, drop_ab, interaction, interacts``.
``masking.csv``
    ``model, which`` (most | least), ``scope`` (local | global), ``fraction, accuracy,
    clean_accuracy, score_change``.
``ensembles.csv``
    ``model, kind`` (base | reference | ensemble | size_protocol), ``normalisation,
    aggregation, setting`` (the aggregation's Table 1 setting, e.g. "eps=-0.5"), ``members``
    ("+"-joined; random | constant for reference rows), ``n_members, ordered_by``
    (size_protocol: deletion_auc | insertion_auc, the score the members were ordered by;
    "" otherwise), ``deletion_auc, deletion_ci_low, deletion_ci_high, insertion_auc,
    insertion_ci_low, insertion_ci_high`` (means over images with Student-t intervals) under the
    ensemble paper's protocol (``ensembles.steps``, ``ensembles.baseline``, ties in random order).
``maps.npz``
    ``images`` (n, 3, S, S) float16 of the reference model, ``image_ids``, ``targets``,
    ``map_<method>`` (n, S, S) float32, ``mu_star_<model>`` / ``sigma_<model>`` (n, w, w).
``metrics.json``
    Profile (resolution, budgets, images, device, interval level, ensemble protocol),
    per-method mean scores and the Sobol vs RISE/Occlusion deletion comparison under the
    headline protocol (``headline_protocol``, the first of ``fidelity.protocols``),
    ``fidelity_protocols`` (name -> description), ``not_beating_random`` (protocol -> methods
    not shown to beat the random map on every score), convergence means,
    overlap/ratio/interaction summaries, best ensembles, timings.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

from shortcut_audit.data.image_sets import ImageBatch, load_images, sample_photo_items, val_folder_items
from shortcut_audit.imagenet import cross_architecture as xarch
from shortcut_audit.imagenet.config import ImagenetConfig
from shortcut_audit.imagenet.convergence import convergence_rows
from shortcut_audit.imagenet.ensembles import ensemble_rows, size_protocol_rows
from shortcut_audit.imagenet.explain import (
    CountingScorer,
    MethodRun,
    method_settings,
    morris_statistics,
    predicted_classes,
    run_method,
)
from shortcut_audit.imagenet.fidelity import (
    FidelityProtocol,
    build_protocols,
    not_beating_random,
    protocol_rows,
    reference_maps,
    score_rows,
    summary_rows,
)
from shortcut_audit.io import atomic_dir, write_json, write_table
from shortcut_audit.metrics import METRICS, l1_distance
from shortcut_audit.models.imagenet import LoadedModel, WeightsNotFoundError, load_imagenet_model
from shortcut_audit.runtime import resolve_device, seed_everything

COLUMNS: dict[str, list[str]] = {
    "models": ["model", "status", "reason", "source", "weights_path", "input_size", "n_params", "is_reference",
               "n_images", "target_kind", "top1_accuracy", "mean_target_probability", "forwards", "seconds",
               "forward_seconds"],
    "fidelity": ["model", "method", "image_id", "target", "metric", "value", "direction", "forwards",
                 "explain_seconds", "reference", "protocol"],
    "fidelity_summary": ["model", "protocol", "method", "metric", "direction", "n_images", "mean", "ci_low",
                         "ci_high", "random_mean", "constant_mean", "gain_vs_random", "gain_ci_low", "gain_ci_high",
                         "vs_random", "beats_random", "protocol_detail"],
    "curves": ["model", "method", "mode", "step", "fraction", "score", "protocol"],
    "convergence": ["model", "method", "reference_kind", "image_id", "budget", "forwards", "reference_forwards",
                    "spearman"],
    "overlap": ["model", "reference", "image_id", "top_fraction", "radius", "overlap_share", "n_overlapping",
                "n_differing", "mu_star_overlapping", "mu_star_differing", "sigma_overlapping", "sigma_differing"],
    "ratio": ["model", "image_id", "threshold", "n_relevant", "n_ratio", "mean_ratio", "median_ratio"],
    "interactions": ["model", "image_id", "region_a", "region_b", "drop_a", "drop_b", "drop_ab", "interaction",
                     "interacts"],
    "masking": ["model", "which", "scope", "fraction", "accuracy", "clean_accuracy", "score_change"],
    "ensembles": ["model", "kind", "normalisation", "aggregation", "setting", "members", "n_members", "ordered_by",
                  "deletion_auc", "deletion_ci_low", "deletion_ci_high", "insertion_auc", "insertion_ci_low",
                  "insertion_ci_high"],
}
TABLES = tuple(COLUMNS)


@dataclass
class ImagenetResults:
    tables: dict[str, pd.DataFrame]
    arrays: dict[str, np.ndarray]
    metrics: dict


def image_items(config: ImagenetConfig):
    """The images to explain: the validation folder when set, else the sample photos."""
    if config.val_dir:
        return val_folder_items(config.val_dir, config.classes, config.images_per_class,
                                config.label_file, config.synset_file)
    return sample_photo_items(max_images=config.max_images)


def load_models(config: ImagenetConfig, device: torch.device) -> tuple[list[LoadedModel], list[dict]]:
    """Load every configured model; missing weights -> a 'skipped' row, never a download."""
    loaded, skipped = [], []
    for name in config.models:
        try:
            loaded.append(load_imagenet_model(name, config.weights_dir, config.input_size, device))
        except WeightsNotFoundError as exc:
            skipped.append({"model": name, "status": "skipped", "reason": str(exc)})
    return loaded, skipped


def _white_box_l1(loaded: LoadedModel, method: str, run: MethodRun, images, targets, batch_size, device, output):
    """L1 distance of a GEEX-family map to its white-box counterpart (GEEX paper, Fig. 3)."""
    from shortcut_audit.attribution import IntegratedGradients, Saliency
    from shortcut_audit.attribution.base import reduce_channels

    def explained(x):  # the same output the black-box method explained
        logits = loaded.model(x)
        return logits if output == "logit" else logits.softmax(dim=1)

    if method == "igeex":
        white = IntegratedGradients(explained, steps=32, baseline="zero", batch_size=batch_size,
                                    device=device)(images, targets)
        return "integrated_gradients", l1_distance(run.maps, white)
    explainer = Saliency(explained, batch_size=batch_size, device=device)
    gradient = reduce_channels(explainer.gradients(images.to(device), targets.to(device)), "sum").cpu()
    return "gradient", l1_distance(run.maps, gradient)


class ImagenetAudit:
    """One run of the audit; each step appends tidy rows to ``self.rows``."""

    def __init__(self, config: ImagenetConfig, log: Callable[[str], None] = print):
        self.config = config
        self.log = log
        self.device = resolve_device(config.device)
        self.rows: dict[str, list] = {name: [] for name in TABLES}
        self.protocols = fidelity_protocols(config)
        self.arrays: dict[str, np.ndarray] = {}
        self.stats: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    # ------------------------------------------------------------------ steps
    def prepare(self, loaded: LoadedModel, items) -> tuple[ImageBatch, torch.Tensor, str, CountingScorer]:
        batch = load_images(items, loaded.preprocessing)
        scorer = CountingScorer(loaded.model, self.device, self.config.autocast)
        predicted, _ = predicted_classes(scorer, batch.images, self.config.batch_size)
        if batch.has_labels:
            return batch, batch.labels, "true", scorer
        return batch, predicted, "predicted", scorer

    def cross_architecture_steps(self, loaded, batch, targets, scorer):
        c = self.config
        mu_star, sigma, run = morris_statistics(scorer, batch.images, targets, c, c.batch_size, c.seed)
        self.stats[loaded.name] = (mu_star, sigma)
        ids = batch.image_ids
        self.rows["ratio"] += xarch.ratio_rows(loaded.name, ids, mu_star, sigma, c.relevant_threshold)
        self.rows["masking"] += xarch.masking_rows(loaded.name, scorer, batch.images, targets, mu_star,
                                                   c.masking_fraction, c.deletion_baseline, c.batch_size)
        self.rows["interactions"] += xarch.interaction_rows(loaded.name, scorer, batch.images, targets, ids,
                                                            mu_star, c.top_k_pairs, c.interaction_threshold,
                                                            c.deletion_baseline, c.batch_size)
        return run

    def method_steps(self, loaded, batch, targets, scorer, morris_run: MethodRun):
        c = self.config
        size = batch.images.shape[-1]
        base_maps = {}
        for method in c.methods:
            if method == "morris_grid":
                run = morris_run
            else:
                self.log(f"  {loaded.name}: {method}")
                run = run_method(method, scorer, batch.images, targets,
                                 method_settings(method, c.forwards, size, c), c.batch_size, c.seed,
                                 c.explained_output)
            base_maps[method] = run.maps
            self.arrays[f"map_{method}"] = run.maps.numpy().astype(np.float32)
            extra = {"forwards": float(run.forwards_per_image), "explain_seconds": run.seconds, "reference": ""}
            self.score_fidelity(loaded, batch, targets, scorer, method, run.maps, extra)
            if method in ("geex", "gers", "igeex"):
                reference, distance = _white_box_l1(loaded, method, run, batch.images, targets, c.batch_size,
                                                    self.device, c.explained_output)
                self.rows["fidelity"] += score_rows(loaded.name, method, batch.image_ids, targets,
                                                    {"l1_to_white_box": distance},
                                                    **{**extra, "reference": reference, "protocol": ""})
        for name, maps in reference_maps(tuple(batch.images[:, 0].shape), c.seed).items():
            extra = {"forwards": 0.0, "explain_seconds": 0.0, "reference": ""}
            self.score_fidelity(loaded, batch, targets, scorer, name, maps, extra)
        return base_maps

    def score_fidelity(self, loaded, batch, targets, scorer, method, maps, extra):
        """Fidelity rows and mean curves of one method's maps under every configured protocol."""
        c = self.config
        fidelity, curves = protocol_rows(loaded.name, method, scorer, batch.images, maps, targets, batch.image_ids,
                                         self.protocols, c.batch_size, c.seed, **extra)
        self.rows["fidelity"] += fidelity
        self.rows["curves"] += curves

    def ensemble_steps(self, loaded, batch, targets, scorer, base_maps):
        c = self.config
        if len(base_maps) < 2:
            return
        self.log(f"  {loaded.name}: ensembles")
        args = (scorer, batch.images, targets, base_maps)
        protocol = dict(steps=c.ensemble_steps, baseline=c.ensemble_baseline, batch_size=c.batch_size, seed=c.seed,
                        level=c.interval_level)
        rows = ensemble_rows(loaded.name, *args, c.ensemble_normalisations, c.ensemble_aggregations,
                             c.ensemble_settings, **protocol)
        rows += size_protocol_rows(loaded.name, *args, rows, c.ensemble_size_normalisation,
                                   c.ensemble_size_aggregations, c.ensemble_settings, **protocol)
        self.rows["ensembles"] += rows

    def convergence_steps(self, loaded, batch, targets, scorer):
        c = self.config
        if not c.convergence_budgets:
            return
        self.log(f"  {loaded.name}: convergence")
        n = min(c.convergence_images, len(batch.image_ids))
        self.rows["convergence"] += convergence_rows(
            loaded.name, scorer, batch.images[:n], targets[:n], batch.image_ids[:n], c.convergence_methods,
            c.convergence_budgets, c.convergence_reference, c, c.batch_size, c.seed,
            output=c.explained_output)

    # ------------------------------------------------------------------- run
    def run(self) -> ImagenetResults:
        c = self.config
        seed_everything(c.seed)
        start = time.perf_counter()
        items = image_items(c)
        loaded_models, skipped = load_models(c, self.device)
        if not loaded_models:
            reasons = "; ".join(row["reason"] for row in skipped)
            raise RuntimeError(f"no ImageNet model could be loaded: {reasons}")
        reference = loaded_models[0].name
        model_rows = []
        for loaded in loaded_models:
            t0 = time.perf_counter()
            self.log(f"{loaded.name}: {len(items)} images at {loaded.preprocessing.input_size}px")
            batch, targets, target_kind, scorer = self.prepare(loaded, items)
            morris_run = self.cross_architecture_steps(loaded, batch, targets, scorer)
            if loaded.name == reference:
                self.arrays["images"] = batch.images.numpy().astype(np.float16)
                self.arrays["image_ids"] = np.array(batch.image_ids)
                self.arrays["targets"] = targets.numpy().astype(np.int64)
                base_maps = self.method_steps(loaded, batch, targets, scorer, morris_run)
                self.ensemble_steps(loaded, batch, targets, scorer, base_maps)
                self.convergence_steps(loaded, batch, targets, scorer)
            else:
                mu_ref = self.stats[reference][0]
                self.rows["overlap"] += xarch.overlap_rows(loaded.name, reference, batch.image_ids,
                                                           *self.stats[loaded.name], mu_ref,
                                                           c.top_fraction, c.neighbour_radius)
            mu_star, sigma = self.stats[loaded.name]
            self.arrays[f"mu_star_{loaded.name}"] = mu_star.numpy().astype(np.float32)
            self.arrays[f"sigma_{loaded.name}"] = sigma.numpy().astype(np.float32)
            probabilities = self._target_probabilities(scorer, batch, targets)
            model_rows.append({
                "model": loaded.name, "status": "loaded", "reason": "", "source": loaded.source,
                "weights_path": Path(loaded.weights_path).name if loaded.weights_path else "",
                "input_size": loaded.preprocessing.input_size, "n_params": loaded.n_params,
                "is_reference": loaded.name == reference, "n_images": len(batch.image_ids),
                "target_kind": target_kind,
                "top1_accuracy": self._accuracy(scorer, batch) if target_kind == "true" else -1.0,
                "mean_target_probability": float(probabilities.mean()),
                "forwards": int(scorer.total_inputs), "seconds": time.perf_counter() - t0,
                "forward_seconds": scorer.total_forward_seconds,
            })
        for row in skipped:
            model_rows.append({**row, "source": "", "weights_path": "", "input_size": 0, "n_params": 0,
                               "is_reference": False, "n_images": 0, "target_kind": "", "top1_accuracy": -1.0,
                               "mean_target_probability": 0.0, "forwards": 0, "seconds": 0.0,
                               "forward_seconds": 0.0})
        self.rows["models"] = model_rows
        self.rows["fidelity_summary"] = summary_rows(pd.DataFrame(self.rows["fidelity"], columns=COLUMNS["fidelity"]),
                                                     self.protocols, c.interval_level)
        tables = {name: pd.DataFrame(rows, columns=COLUMNS[name]) for name, rows in self.rows.items()}
        metrics = summarise(tables, c, reference, items, time.perf_counter() - start, self.device)
        return ImagenetResults(tables, self.arrays, metrics)

    def _target_probabilities(self, scorer, batch, targets):
        out = torch.cat([scorer(batch.images[i:i + self.config.batch_size]).cpu()
                         for i in range(0, len(batch.image_ids), self.config.batch_size)]).softmax(dim=1)
        return out.gather(1, targets.view(-1, 1)).squeeze(1)

    def _accuracy(self, scorer, batch):
        predicted, _ = predicted_classes(scorer, batch.images, self.config.batch_size)
        return float((predicted == batch.labels).float().mean())


def _mean_by(df: pd.DataFrame, keys: list[str], value: str) -> dict:
    if df.empty:
        return {}
    grouped = df.groupby(keys)[value].mean()
    return {"/".join(map(str, k)) if isinstance(k, tuple) else str(k): float(v) for k, v in grouped.items()}


def summarise(tables: dict[str, pd.DataFrame], config: ImagenetConfig, reference: str, items,
              seconds: float, device: torch.device) -> dict:
    """The headline numbers of ``metrics.json``."""
    fidelity = headline_fidelity(tables["fidelity"], config)
    per_method = {}
    if not fidelity.empty:
        for (method, metric), value in fidelity.groupby(["method", "metric"])["value"].mean().items():
            per_method.setdefault(method, {})[metric] = float(value)
    comparison = {}
    deletion = {m: v["deletion_auc"] for m, v in per_method.items() if "deletion_auc" in v}
    if "sobol" in deletion:
        others = {m: deletion[m] for m in ("rise", "occlusion") if m in deletion}
        comparison = {"deletion_auc": {"sobol": deletion["sobol"], **others},
                      "sobol_best": all(deletion["sobol"] < v for v in others.values()),
                      "direction": METRICS["deletion_auc"].direction}
    ensembles = tables["ensembles"]
    best = {}
    if not ensembles.empty:
        combos = ensembles[ensembles["kind"] == "ensemble"]
        if not combos.empty:
            top_ins = combos.loc[combos["insertion_auc"].idxmax()]
            top_del = combos.loc[combos["deletion_auc"].idxmin()]
            best = {"insertion": f"{top_ins['normalisation']}/{top_ins['aggregation']}",
                    "insertion_auc": float(top_ins["insertion_auc"]),
                    "deletion": f"{top_del['normalisation']}/{top_del['aggregation']}",
                    "deletion_auc": float(top_del["deletion_auc"])}
    interactions = tables["interactions"]
    models = tables["models"]
    return {
        "profile": {
            "device": str(device), "input_size": config.input_size or "model default",
            "forwards_per_method": config.forwards, "n_images": len(items),
            "image_source": "val_dir" if config.val_dir else "sample_photos",
            "fidelity_steps": config.fidelity_steps, "explained_output": config.explained_output, "morris_trajectories": config.morris_trajectories,
            "convergence_budgets": config.convergence_budgets,
            "convergence_reference_forwards": config.convergence_reference,
            "interval_level": config.interval_level, "ensemble_steps": config.ensemble_steps,
            "ensemble_baseline": config.ensemble_baseline,
        },
        "reference_model": reference,
        "models": {row["model"]: row["status"] for _, row in models.iterrows()},
        "methods": per_method,
        "sobol_vs_baselines": comparison,
        "convergence": _mean_by(tables["convergence"], ["method", "forwards"], "spearman"),
        "overlap_share": _mean_by(tables["overlap"], ["model"], "overlap_share"),
        "mean_ratio": _mean_by(tables["ratio"], ["model"], "mean_ratio"),
        "interaction_share": _mean_by(interactions.assign(interacts=interactions["interacts"].astype(float))
                                      if not interactions.empty else interactions, ["model"], "interacts"),
        "best_ensemble": best,
        **fidelity_protocol_summary(tables["fidelity_summary"], config),
        "seconds": seconds,
    }


def headline_fidelity(fidelity: pd.DataFrame, config: ImagenetConfig) -> pd.DataFrame:
    """Rows of the first configured protocol (the headline numbers), plus the protocol-free L1 rows."""
    return fidelity[fidelity["protocol"].isin([config.fidelity_protocols[0], ""])]


def fidelity_protocols(config: ImagenetConfig) -> list[FidelityProtocol]:
    """The configured fidelity protocols (``imagenet.fidelity``), the first being the headline."""
    return build_protocols(config.fidelity_protocols, config.fidelity_steps, config.deletion_baseline,
                           config.insertion_baseline, config.region_grid, config.region_baseline)


def fidelity_protocol_summary(summary: pd.DataFrame, config: ImagenetConfig) -> dict:
    """``metrics.json`` entries: the protocols, the headline one, and the methods not beating random."""
    protocols = fidelity_protocols(config)
    return {"fidelity_protocols": {p.name: p.describe() for p in protocols},
            "headline_protocol": protocols[0].name,
            "not_beating_random": not_beating_random(summary)}


def run_imagenet_audit(config: ImagenetConfig, log: Callable[[str], None] = print) -> ImagenetResults:
    """Run the whole audit for ``config`` (see the module docstring for the outputs)."""
    return ImagenetAudit(config, log).run()


def write_results(results: ImagenetResults, out_dir: str | Path) -> None:
    """Write every table, ``maps.npz`` and ``metrics.json`` into ``out_dir`` atomically."""
    with atomic_dir(out_dir) as tmp:
        for name in TABLES:
            write_table(results.tables[name], tmp / f"{name}.csv")
        np.savez_compressed(tmp / "maps.npz", **results.arrays)
        write_json(results.metrics, tmp / "metrics.json")


__all__ = ["ImagenetResults", "ImagenetAudit", "run_imagenet_audit", "write_results", "image_items",
           "load_models", "summarise", "headline_fidelity", "TABLES", "COLUMNS"]
