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
    ``explain_seconds``, ``reference`` (white-box map of an l1_to_white_box row, else ""),
    ``protocol`` (sobol | rise | ensemble | region, see :mod:`shortcut_audit.imagenet.fidelity`;
    "" for l1_to_white_box). ``method`` also takes the reference maps ``random`` and
    ``constant`` (forwards 0), scored under every protocol like the methods. ``target`` is
    the class explained, except on naopc rows: there it is the class the model decided on
    the clean image, whose probability the GEEX paper tracks. Rows l1_to_white_box exist for
    GEEX, GERS, iGEEX and RISE (GEEX paper, Fig. 3), one per ``reference``: gradient,
    smoothgrad, integrated_gradients (signed channel sums).
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
    ``model, method, reference_kind`` (independent | nested seed), ``image_id, budget,
    forwards, reference_forwards, spearman``; Sobol and RISE on
    ``imagenet.convergence.grid_size`` masks (Sobol paper, Sec. 4.3).
``overlap.csv``
    MoSIP Fig. 5 (local analysis), one row per model other than the reference, ranking
    statistic and image: ``model, reference`` (the model compared against),
    ``requested_reference`` (``imagenet.cross_architecture.reference_model``; differs
    from ``reference`` when that model was not loaded and the first loaded one stands
    in), ``statistic`` (mu_star | sigma | mu_star_plus_sigma: the ranking of both
    models' top regions), ``image_id, top_fraction, radius, overlap_share,
    n_overlapping, n_differing``, the model's raw (unnormalised) mean ``mu_star_*`` and
    ``sigma_*`` over its ``*_overlapping`` / ``*_differing`` top regions, and the
    reference's own raw values on the same regions, ``reference_mu_star_*``,
    ``reference_sigma_*`` (0 when the set is empty; see the counts).
``ratio.csv``
    MoSIP Fig. 6a (global analysis), one row per model: ``model, n_images, threshold,
    n_relevant, n_ratio, mean_ratio, median_ratio`` (mu*/sigma over the relevant regions).
``interactions.csv``
    MoSIP Fig. 6b, the paper's pairwise heuristic, one row per model and pair of the
    global analysis' top-K regions: ``model, target_kind, n_images`` (correctly predicted
    images used), ``region_x, region_y`` (row-major region ids), ``drop_x, drop_y,
    drop_xy`` (accuracy drops), ``interaction`` (drop_x + drop_y - drop_xy),
    ``interacts`` (interaction > 0, i.e. delta1 + gamma1 > delta2 + gamma2).
``score_interactions.csv``
    Extension, not in MoSIP: per-image two-sided score test on the local top-K pairs,
    ``model, image_id, region_a, region_b, drop_a, drop_b, drop_ab`` (target-probability
    drops), ``interaction`` (drop_ab - drop_a - drop_b), ``interacts``
    (|interaction| > interaction_threshold x clean probability).
``masking.csv``
    MoSIP Figs. 4, 9 (``scope`` local) and 10 (global), one row per model, scope,
    ``ranking`` (mu_star | sigma | mu_star_plus_sigma), ``which`` (most | least important
    first) and ``step`` (regions masked, 0 = clean): ``target_kind`` (true: correct means
    the true class; predicted: no labels, correct means the model's own clean top-1, so
    every image counts), ``n_images`` (correctly predicted images used), ``fraction``
    (step / regions), ``accuracy``, ``score_change`` (mean change of the target probability).
    Masked regions (here, in ``interactions.csv`` and ``score_interactions.csv``) become
    ``imagenet.cross_architecture.mask_baseline``.
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
    ``map_<method>`` (n, S, S) float32, ``mu_star_<model>`` / ``sigma_<model>`` (n, w, w) of the
    local analysis, ``mu_star_global_<model>`` / ``sigma_global_<model>`` (w, w) of the global one.
``metrics.json``
    Profile (resolution, budgets, images, device, interval level, ensemble protocol, and the
    arithmetic of the forward passes: ``precision`` as asked, ``compute_path`` as taken, e.g.
    ``cpu-fp32-channels_last`` or ``cuda-bf16-channels_last``, see
    :func:`shortcut_audit.runtime.select_compute_path`), per-method mean scores and the
    Sobol vs RISE/Occlusion deletion comparison under the
    headline protocol (``headline_protocol``, the first of ``fidelity.protocols``),
    ``fidelity_protocols`` (name -> description), ``not_beating_random`` (protocol -> methods
    not shown to beat the random map on every score), mean L1 to each white-box map per
    method, convergence mean and variance over images per method, reference kind and budget,
    overlap (per model and statistic) / ratio / interaction summaries, the overlap reference
    (requested, used, stands_in), masking accuracy at the largest masked share, best
    ensembles, timings.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

from shortcut_audit.config import ParamError
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
from shortcut_audit import schema
from shortcut_audit.io import atomic_dir, write_json
from shortcut_audit.metrics import METRICS, l1_distance
from shortcut_audit.models.imagenet import LoadedModel, WeightsNotFoundError, load_imagenet_model
from shortcut_audit.runtime import resolve_device, seed_everything, select_compute_path

#: File stem -> columns of every table the stage writes (declared in :mod:`shortcut_audit.schema`).
COLUMNS: dict[str, list[str]] = schema.columns_of("imagenet")
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


# GEEX paper, Sec. 4, Fig. 3: these black-box maps are compared with every white-box map
WHITE_BOX_COMPARED = ("geex", "gers", "igeex", "rise")


def white_box_maps(loaded: LoadedModel, images, targets, config: ImagenetConfig, device) -> dict:
    """White-box maps of the explained output (GEEX paper, Fig. 3), signed channel sums, (N, H, W) each.

    ``gradient``; ``smoothgrad`` (the paper's white-box baseline; ``smoothgrad_samples``
    draws at ``smoothgrad_noise_level`` of the image range); ``integrated_gradients``
    (``ig_steps``, from the zero image, the iGEEX root point).
    """
    from shortcut_audit.attribution import IntegratedGradients, Saliency, SmoothGrad
    from shortcut_audit.attribution.base import reduce_channels

    def explained(x):  # the same output the black-box methods explained
        logits = loaded.model(x)
        return logits if config.explained_output == "logit" else logits.softmax(dim=1)

    kwargs = {"batch_size": config.batch_size, "device": device, "seed": config.seed}
    images, targets = images.to(device), targets.to(device)
    gradient = reduce_channels(Saliency(explained, **kwargs).gradients(images, targets), "sum").cpu()
    smoothgrad = SmoothGrad(explained, n_samples=config.white_box_smoothgrad_samples,
                            noise_level=config.white_box_smoothgrad_noise_level, channel_reduction="sum",
                            **kwargs)(images, targets)
    integrated = IntegratedGradients(explained, steps=config.white_box_ig_steps, baseline="zero",
                                     **kwargs)(images, targets)
    return {"gradient": gradient, "smoothgrad": smoothgrad, "integrated_gradients": integrated}


class ImagenetAudit:
    """One run of the audit; each step appends tidy rows to ``self.rows``."""

    def __init__(self, config: ImagenetConfig, log: Callable[[str], None] = print):
        self.config = config
        self.log = log
        self.device = resolve_device(config.device)
        self.rows: dict[str, list] = {name: [] for name in TABLES}
        self.protocols = fidelity_protocols(config)
        try:
            self.compute_path = select_compute_path(self.device, config.precision, config.compile)
        except ValueError as err:
            raise ParamError("imagenet.precision", str(err)) from None
        self.arrays: dict[str, np.ndarray] = {}
        self.stats: dict[str, dict[str, torch.Tensor]] = {}  # local MoSIP statistics per model

    # ------------------------------------------------------------------ steps
    def prepare(self, loaded: LoadedModel, items) -> tuple[ImageBatch, torch.Tensor, str, CountingScorer]:
        batch = load_images(items, loaded.preprocessing)
        scorer = CountingScorer(loaded.model, self.device, path=self.compute_path)
        predicted, _ = predicted_classes(scorer, batch.images, self.config.batch_size)
        if batch.has_labels:
            return batch, batch.labels, "true", scorer
        return batch, predicted, "predicted", scorer

    def cross_architecture_steps(self, loaded, batch, targets, target_kind, scorer):
        """MoSIP Sec. 5 on one model: local and global analyses, ratio, masking, pairs."""
        c = self.config
        analyses = morris_statistics(scorer, batch.images, targets, c, c.batch_size, c.seed)
        local, global_ = analyses.local, analyses.global_
        self.stats[loaded.name] = local
        ids = batch.image_ids
        self.rows["ratio"].append(xarch.ratio_row(loaded.name, len(ids), global_["mu_star"], global_["sigma"],
                                                  c.relevant_threshold))
        self.rows["masking"] += xarch.masking_rows(loaded.name, scorer, batch.images, targets, target_kind, local,
                                                   global_, c.masking_fraction, c.mask_baseline, c.batch_size)
        self.rows["interactions"] += xarch.pair_rows(loaded.name, scorer, batch.images, targets, target_kind,
                                                     global_["mu_star"], c.top_k_pairs, c.mask_baseline,
                                                     c.batch_size)
        self.rows["score_interactions"] += xarch.score_interaction_rows(
            loaded.name, scorer, batch.images, targets, ids, local["mu_star"], c.top_k_pairs,
            c.interaction_threshold, c.mask_baseline, c.batch_size)
        for suffix, stats in (("", local), ("_global", global_)):
            for name in ("mu_star", "sigma"):
                self.arrays[f"{name}{suffix}_{loaded.name}"] = stats[name].numpy().astype(np.float32)
        return analyses.run

    def overlap_steps(self, image_ids: list[str]) -> dict:
        """Fig. 5: every model against the reference architecture (AlexNet, or a stand-in)."""
        c = self.config
        used, stands_in = xarch.choose_reference(c.overlap_reference, list(self.stats))
        if stands_in:
            self.log(f"overlap reference {c.overlap_reference} is not loaded; {used} stands in")
        for name, stats in self.stats.items():
            if name != used:
                self.rows["overlap"] += xarch.overlap_rows(name, used, c.overlap_reference, image_ids, stats,
                                                           self.stats[used], c.top_fraction, c.neighbour_radius)
        return {"requested": c.overlap_reference, "used": used, "stands_in": stands_in}

    def method_steps(self, loaded, batch, targets, scorer, morris_run: MethodRun):
        c = self.config
        size = batch.images.shape[-1]
        input_scale = float(np.mean(loaded.preprocessing.std))  # GEEX sigma: standardised -> [0, 1] units
        decided, _ = predicted_classes(scorer, batch.images, c.batch_size)
        white = None
        base_maps = {}
        for method in c.methods:
            if method == "morris_grid":
                run = morris_run
            else:
                self.log(f"  {loaded.name}: {method}")
                run = run_method(method, scorer, batch.images, targets,
                                 method_settings(method, c.forwards, size, c, input_scale=input_scale),
                                 c.batch_size, c.seed, c.explained_output)
            base_maps[method] = run.maps
            self.arrays[f"map_{method}"] = run.maps.numpy().astype(np.float32)
            extra = {"forwards": float(run.forwards_per_image), "explain_seconds": run.seconds, "reference": ""}
            self.score_fidelity(loaded, batch, targets, decided, scorer, method, run.maps, extra)
            if method in WHITE_BOX_COMPARED:
                if white is None:
                    white = white_box_maps(loaded, batch.images, targets, c, self.device)
                for reference, white_map in white.items():
                    self.rows["fidelity"] += score_rows(loaded.name, method, batch.image_ids, targets,
                                                        {"l1_to_white_box": l1_distance(run.maps, white_map)},
                                                        **{**extra, "reference": reference, "protocol": ""})
        for name, maps in reference_maps(tuple(batch.images[:, 0].shape), c.seed).items():
            extra = {"forwards": 0.0, "explain_seconds": 0.0, "reference": ""}
            self.score_fidelity(loaded, batch, targets, decided, scorer, name, maps, extra)
        return base_maps

    def score_fidelity(self, loaded, batch, targets, decided, scorer, method, maps, extra):
        """Fidelity rows and mean curves of one method's maps under every configured protocol.

        nAOPC follows ``decided``, the class the model decided on the clean image (GEEX paper).
        """
        c = self.config
        fidelity, curves = protocol_rows(loaded.name, method, scorer, batch.images, maps, targets, batch.image_ids,
                                         self.protocols, c.batch_size, c.seed, decided=decided, **extra)
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
            self.log(f"{loaded.name}: {len(items)} images at {loaded.preprocessing.input_size}px, "
                     f"{self.compute_path.name}")
            batch, targets, target_kind, scorer = self.prepare(loaded, items)
            morris_run = self.cross_architecture_steps(loaded, batch, targets, target_kind, scorer)
            if loaded.name == reference:
                self.arrays["images"] = batch.images.numpy().astype(np.float16)
                self.arrays["image_ids"] = np.array(batch.image_ids)
                self.arrays["targets"] = targets.numpy().astype(np.int64)
                base_maps = self.method_steps(loaded, batch, targets, scorer, morris_run)
                self.ensemble_steps(loaded, batch, targets, scorer, base_maps)
                self.convergence_steps(loaded, batch, targets, scorer)
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
        overlap_reference = self.overlap_steps([str(i) for i in self.arrays["image_ids"]])
        self.rows["fidelity_summary"] = summary_rows(pd.DataFrame(self.rows["fidelity"], columns=COLUMNS["fidelity"]),
                                                     self.protocols, c.interval_level)
        tables = {name: pd.DataFrame(rows, columns=COLUMNS[name]) for name, rows in self.rows.items()}
        metrics = summarise(tables, c, reference, items, time.perf_counter() - start, self.device,
                            overlap_reference)
        metrics["profile"].update(precision=c.precision, compute_path=self.compute_path.name)
        return ImagenetResults(tables, self.arrays, metrics)

    def _target_probabilities(self, scorer, batch, targets):
        out = torch.cat([scorer(batch.images[i:i + self.config.batch_size]).cpu()
                         for i in range(0, len(batch.image_ids), self.config.batch_size)]).softmax(dim=1)
        return out.gather(1, targets.view(-1, 1)).squeeze(1)

    def _accuracy(self, scorer, batch):
        predicted, _ = predicted_classes(scorer, batch.images, self.config.batch_size)
        return float((predicted == batch.labels).float().mean())


def _keyed(grouped: pd.Series) -> dict:
    return {"/".join(map(str, k)) if isinstance(k, tuple) else str(k): float(v) for k, v in grouped.items()}


def _mean_by(df: pd.DataFrame, keys: list[str], value: str) -> dict:
    return {} if df.empty else _keyed(df.groupby(keys)[value].mean())


def _variance_by(df: pd.DataFrame, keys: list[str], value: str) -> dict:
    """Variance (1/n) of ``value`` per group, keyed like :func:`_mean_by`."""
    return {} if df.empty else _keyed(df.groupby(keys)[value].var(ddof=0))


def _share(pairs: pd.DataFrame) -> dict:
    """Share of interacting pairs per model."""
    return _mean_by(pairs.assign(interacts=pairs["interacts"].astype(float)) if not pairs.empty else pairs,
                    ["model"], "interacts")


def summarise(tables: dict[str, pd.DataFrame], config: ImagenetConfig, reference: str, items,
              seconds: float, device: torch.device, overlap_reference: dict | None = None) -> dict:
    """The headline numbers of ``metrics.json``."""
    white_box = tables["fidelity"][tables["fidelity"]["metric"] == "l1_to_white_box"]
    fidelity = headline_fidelity(tables["fidelity"], config)
    fidelity = fidelity[fidelity["metric"] != "l1_to_white_box"]
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
    masking = tables["masking"]
    models = tables["models"]
    return {
        "profile": {
            "device": str(device), "input_size": config.input_size or "model default",
            "forwards_per_method": config.forwards, "n_images": len(items),
            "image_source": "val_dir" if config.val_dir else "sample_photos",
            "fidelity_steps": config.fidelity_steps, "explained_output": config.explained_output, "morris_trajectories": config.morris_trajectories,
            "convergence_budgets": config.convergence_budgets,
            "convergence_reference_forwards": config.convergence_reference,
            "convergence_grid_size": config.convergence_grid,
            "interval_level": config.interval_level, "ensemble_steps": config.ensemble_steps,
            "ensemble_baseline": config.ensemble_baseline,
        },
        "reference_model": reference,
        "models": {row["model"]: row["status"] for _, row in models.iterrows()},
        "methods": per_method,
        "l1_to_white_box": _mean_by(white_box, ["method", "reference"], "value"),
        "sobol_vs_baselines": comparison,
        "convergence": _mean_by(tables["convergence"], ["method", "reference_kind", "budget"], "spearman"),
        "convergence_variance": _variance_by(tables["convergence"], ["method", "reference_kind", "budget"],
                                             "spearman"),
        "overlap_reference": overlap_reference or {},
        "overlap_share": _mean_by(tables["overlap"], ["model", "statistic"], "overlap_share"),
        "mean_ratio": _mean_by(tables["ratio"], ["model"], "mean_ratio"),
        "interaction_share": _share(tables["interactions"]),
        "score_interaction_share": _share(tables["score_interactions"]),
        "masking_accuracy": _mean_by(masking[masking["step"] == masking.groupby("model")["step"].transform("max")]
                                     if not masking.empty else masking,
                                     ["model", "scope", "ranking", "which"], "accuracy"),
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
            schema.write(f"imagenet/{name}", results.tables[name], tmp / f"{name}.csv")
        np.savez_compressed(tmp / "maps.npz", **results.arrays)
        write_json(results.metrics, tmp / "metrics.json")


__all__ = ["ImagenetResults", "ImagenetAudit", "run_imagenet_audit", "write_results", "image_items",
           "load_models", "summarise", "headline_fidelity", "TABLES", "COLUMNS"]
