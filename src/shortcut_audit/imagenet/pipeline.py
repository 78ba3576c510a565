"""The ImageNet audit: models x images -> fidelity, convergence, cross-architecture, ensembles.

Output tables (written by :func:`write_results` into ``data/imagenet/``):

``models.csv``
    ``model, status`` ("loaded" | "skipped"), ``reason`` (why skipped, "" otherwise),
    ``source`` (package | torchvision | import), ``weights_path``, ``input_size``,
    ``n_params``, ``is_reference``, ``n_images``, ``target_kind`` ("true" | "predicted"),
    ``top1_accuracy`` (against true classes; -1 without labels), ``mean_target_probability``,
    ``forwards`` (all forward passes of the model in this run), ``seconds``, ``forward_seconds``
    (wall seconds of the model's steps and of its forward passes; summed over the processes of a
    sharded run, see :class:`ImagenetAudit`).
``fidelity.csv``
    ``model, method, image_id, target, metric`` (deletion_auc | insertion_auc | naopc |
    l1_to_white_box), ``value, direction`` (higher | lower), ``forwards`` (per image),
    ``explain_seconds`` (the method's wall seconds on all images, summed over processes),
    ``reference`` (white-box map of an l1_to_white_box row, else ""),
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
    ``ranking`` (mu_star | sigma | mu_star_plus_sigma, and the uninformative references
    random | constant that every ranking is compared with), ``which`` (most | least important
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
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
import torch

from shortcut_audit import schema
from shortcut_audit.attribution.base import key_seed
from shortcut_audit.attribution.morris_grid import STATISTICS, average_over_images
from shortcut_audit.config import ParamError
from shortcut_audit.data.image_sets import ImageBatch, ImageItem, load_images, sample_photo_items, val_folder_items
from shortcut_audit.distributed import Shard, ShardData, merge
from shortcut_audit.imagenet import cross_architecture as xarch
from shortcut_audit.imagenet.config import ImagenetConfig
from shortcut_audit.imagenet.convergence import convergence_results, convergence_table
from shortcut_audit.imagenet.ensembles import EnsembleScore, ensemble_scores, score_table, size_protocol_scores
from shortcut_audit.imagenet.explain import (
    CountingScorer,
    MethodRun,
    method_settings,
    morris_statistics,
    predicted_classes,
    run_method,
)
from shortcut_audit.imagenet.fidelity import (
    REFERENCE_MAPS,
    SCORES,
    FidelityProtocol,
    build_protocols,
    not_beating_random,
    protocol_results,
    reference_maps,
    result_rows,
    score_rows,
    summary_rows,
)
from shortcut_audit.io import atomic_dir, save_npz, write_json
from shortcut_audit.metrics import METRICS, l1_distance
from shortcut_audit.metrics.convergence import ConvergencePoint
from shortcut_audit.metrics.deletion_insertion import PerturbationCurve
from shortcut_audit.metrics.region_masking import WHICH, MaskingCurve
from shortcut_audit.models.imagenet import LoadedModel, WeightsNotFoundError, load_imagenet_model
from shortcut_audit.runtime import seed_everything, select_compute_path
from shortcut_audit.sensitivity.partitions import ImageGrid, global_lump_bounds

#: File stem -> columns of every table the stage writes (declared in :mod:`shortcut_audit.schema`).
COLUMNS: dict[str, list[str]] = schema.columns_of("imagenet")
TABLES = tuple(COLUMNS)


@dataclass
class ImagenetResults:
    tables: dict[str, pd.DataFrame]
    arrays: dict[str, np.ndarray]
    metrics: dict


class ImageSource(Protocol):
    """The image keys of a config (:class:`ImagenetConfig`, the watermark stage's) that :func:`image_items` reads."""

    @property
    def val_dir(self) -> str | None: ...
    @property
    def classes(self) -> list[str] | None: ...
    @property
    def images_per_class(self) -> int: ...
    @property
    def label_file(self) -> str | None: ...
    @property
    def synset_file(self) -> str | None: ...
    @property
    def max_images(self) -> int | None: ...


def _curve_fractions(data: ShardData, key: str) -> torch.Tensor:
    """A curve's fractions, from the per-image data or else from the data shared by every image."""
    fractions = data.per_item.get(key, data.shared.get(key))
    if fractions is None:
        raise ValueError(f"the merged shard data has no {key!r}")
    return fractions


def image_items(config: ImageSource) -> list[ImageItem]:
    """The images to explain: the validation folder when set, else the sample photos."""
    if config.val_dir:
        return val_folder_items(
            config.val_dir, config.classes, config.images_per_class, config.label_file, config.synset_file
        )
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
WHITE_BOX_MAPS = ("gradient", "smoothgrad", "integrated_gradients")


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
    smoothgrad = SmoothGrad(
        explained,
        n_samples=config.white_box_smoothgrad_samples,
        noise_level=config.white_box_smoothgrad_noise_level,
        channel_reduction="sum",
        **kwargs,
    )(images, targets)
    integrated = IntegratedGradients(explained, steps=config.white_box_ig_steps, baseline="zero", **kwargs)(
        images, targets
    )
    return dict(zip(WHITE_BOX_MAPS, (gradient, smoothgrad, integrated)))


class ImagenetAudit:
    """One run of the audit, on this process's share of the images (all of them by default).

    The run has two phases. :meth:`model_steps` runs every step on the images of
    ``shard`` (:meth:`~shortcut_audit.distributed.Shard.items`) and keeps the per-image
    results; the few quantities that need every image -- MoSIP's global bounds and
    global ranking, the ensemble-size ordering -- are exchanged between the processes
    while the steps run. :meth:`combine` (on rank 0) puts the per-image results of all
    processes back in image order and builds every table, so that the tables do not
    depend on the number of processes. Every random draw of an image derives from the
    seed and the image's id (:func:`~shortcut_audit.attribution.base.key_seed`), draws
    shared by the images (masks, designs) from the seed alone.
    """

    def __init__(self, config: ImagenetConfig, log: Callable[[str], None] = print, shard: Shard | None = None):
        self.config = config
        self.shard = shard or Shard.single()
        self.log = self.shard.logger(log)
        self.device = self.shard.device(config.device)
        self.protocols = fidelity_protocols(config)
        try:
            self.compute_path = select_compute_path(self.device, config.precision, config.compile)
        except ValueError as err:
            raise ParamError("imagenet.precision", str(err)) from None
        self.n_images = 0

    # ------------------------------------------------------------------ shard steps
    def prepare(self, loaded: LoadedModel, items) -> tuple[ImageBatch, torch.Tensor, str, CountingScorer]:
        batch = load_images(items, loaded.preprocessing)
        scorer = CountingScorer(loaded.model, self.device, path=self.compute_path)
        predicted, _ = predicted_classes(scorer, batch.images, self.config.batch_size)
        if batch.has_labels:
            return batch, batch.labels, "true", scorer
        return batch, predicted, "predicted", scorer

    def _global_bounds(self, images: torch.Tensor):
        """MoSIP's global bounds over the images of every process (None: one process, the analysis computes them)."""
        if not self.shard.distributed:
            return None
        grid = ImageGrid(images.shape[-2], images.shape[-1], self.config.morris_grid)
        lower, upper = global_lump_bounds(grid, images.to(self.device), self.config.batch_size)
        return (
            self.shard.reduce(lower.cpu(), torch.minimum).to(self.device),
            self.shard.reduce(upper.cpu(), torch.maximum).to(self.device),
        )

    def cross_architecture_steps(self, loaded, batch, targets, scorer, part: ShardData, seeds) -> MethodRun:
        """MoSIP Sec. 5 on one model: local and global analyses, masking, pairs (per image)."""
        c, m = self.config, loaded.name
        analyses = morris_statistics(
            scorer, batch.images, targets, c, c.batch_size, c.seed, self._global_bounds(batch.images)
        )
        local = analyses.local
        global_ = average_over_images(
            {name: self.shard.gather_items(values, self.n_images) for name, values in analyses.global_per_image.items()}
        )
        for name in STATISTICS:
            part.put(f"{m}/local/{name}", local[name])
            part.set(f"{m}/global/{name}", global_[name])
        # The uninformative rankings: per image for the local analysis, one for all images for the global one.
        n_local, rows, cols = local["mu_star"].shape
        curves = xarch.masking_curves(
            scorer,
            batch.images,
            targets,
            xarch.with_reference_rankings(local, reference_maps((n_local, rows, cols), seeds)["random"]),
            xarch.with_reference_rankings(global_, reference_maps((1, rows, cols), c.seed)["random"][0]),
            c.masking_fraction,
            c.mask_baseline,
            c.batch_size,
            seeds,
        )
        for key, curve in curves.items():
            for what, values in zip(("kept", "correct", "score"), curve.per_image()):
                part.put(f"{m}/masking/{'/'.join(key)}/{what}", values)
            part.set(f"{m}/masking/steps", curve.steps)
            part.set(f"{m}/masking/fractions", curve.fractions)
        part.put(
            f"{m}/pairs",
            xarch.pair_predictions(
                scorer, batch.images, targets, global_["mu_star"], c.top_k_pairs, c.mask_baseline, c.batch_size, seeds
            ).T,
        )
        top, scores = xarch.score_interaction_scores(
            scorer, batch.images, targets, local["mu_star"], c.top_k_pairs, c.mask_baseline, c.batch_size, seed=seeds
        )
        part.put(f"{m}/score_interactions/top", top)
        part.put(f"{m}/score_interactions/scores", scores)
        return analyses.run

    def method_steps(self, loaded, batch, targets, scorer, morris_run: MethodRun, part: ShardData, seeds) -> dict:
        """Every method's maps, fidelity scores and distances to the white-box maps, per image (into ``part``).

        ``seeds``: one per image (:func:`~shortcut_audit.attribution.base.key_seed` of its id).
        Returns the maps by method (the ensembles' members).
        """
        c = self.config
        size = batch.images.shape[-1]
        input_scale = float(np.mean(loaded.preprocessing.std))  # GEEX sigma: standardised -> [0, 1] units
        decided, _ = predicted_classes(scorer, batch.images, c.batch_size)
        part.put("decided", decided)
        white = None
        base_maps = {}
        for method in c.methods:
            if method == "morris_grid":
                run = morris_run
            else:
                self.log(f"  {loaded.name}: {method}")
                run = run_method(
                    method,
                    scorer,
                    batch.images,
                    targets,
                    method_settings(method, c.forwards, size, c, input_scale=input_scale),
                    c.batch_size,
                    c.seed,
                    c.explained_output,
                )
            base_maps[method] = run.maps
            part.put(f"maps/{method}", run.maps)
            part.add(f"inputs/{method}", run.forwards_per_image * len(batch.image_ids))
            part.add(f"seconds/{method}", run.seconds)
            self._put_fidelity(
                part,
                method,
                protocol_results(scorer, batch.images, run.maps, targets, self.protocols, c.batch_size, seeds, decided),
            )
            if method in WHITE_BOX_COMPARED:
                if white is None:
                    white = white_box_maps(loaded, batch.images, targets, c, self.device)
                for reference, white_map in white.items():
                    part.put(f"l1/{method}/{reference}", l1_distance(run.maps, white_map))
        for name, maps in reference_maps(tuple(batch.images[:, 0].shape), seeds).items():
            self._put_fidelity(
                part,
                name,
                protocol_results(scorer, batch.images, maps, targets, self.protocols, c.batch_size, seeds, decided),
            )
        return base_maps

    @staticmethod
    def _put_fidelity(part: ShardData, method: str, results: dict) -> None:
        """Per-image scores and curves of :func:`protocol_results` (fractions shared unless region-wise)."""
        for protocol, (scores, curves) in results.items():
            for metric, values in scores.items():
                part.put(f"fidelity/{method}/{protocol}/{metric}", values)
            for mode, curve in curves.items():
                part.put(f"fidelity/{method}/{protocol}/{mode}/scores", curve.scores)
                if curve.fractions.ndim == 2:
                    part.put(f"fidelity/{method}/{protocol}/{mode}/fractions", curve.fractions)
                else:
                    part.set(f"fidelity/{method}/{protocol}/{mode}/fractions", curve.fractions)

    def ensemble_steps(self, loaded, batch, targets, scorer, base_maps, part: ShardData, seeds) -> None:
        c = self.config
        if len(base_maps) < 2:
            return
        self.log(f"  {loaded.name}: ensembles")
        args = (scorer, batch.images, targets, base_maps)
        protocol = dict(steps=c.ensemble_steps, baseline=c.ensemble_baseline, batch_size=c.batch_size, seed=seeds)
        scores = ensemble_scores(
            *args, c.ensemble_normalisations, c.ensemble_aggregations, c.ensemble_settings, **protocol
        )
        # the base methods' means over every image order the ensemble-size protocol
        base = [
            replace(
                s,
                deletion=self.shard.gather_items(torch.from_numpy(s.deletion), self.n_images).numpy(),
                insertion=self.shard.gather_items(torch.from_numpy(s.insertion), self.n_images).numpy(),
            )
            for s in scores
            if s.kind == "base"
        ]
        scores += size_protocol_scores(
            *args,
            score_table(loaded.name, base, c.interval_level),
            c.ensemble_size_normalisation,
            c.ensemble_size_aggregations,
            c.ensemble_settings,
            **protocol,
        )
        for mode in ("deletion", "insertion"):
            part.put(f"ensembles/{mode}", torch.from_numpy(np.stack([getattr(s, mode) for s in scores], axis=1)))
        part.set(
            "ensembles/rows",
            [
                {
                    "kind": s.kind,
                    "normalisation": s.normalisation,
                    "aggregation": s.aggregation,
                    "setting": s.setting,
                    "members": list(s.members),
                    "ordered_by": s.ordered_by,
                }
                for s in scores
            ],
        )

    def convergence_steps(self, loaded, batch, targets, scorer, part: ShardData) -> None:
        """Spearman to a converged map on the first ``convergence.n_images`` images (those of this process)."""
        c = self.config
        if not c.convergence_budgets:
            return
        keys = self._convergence_keys()
        shape = (len(batch.image_ids), len(keys), len(c.convergence_budgets))
        spearman, forwards = torch.full(shape, torch.nan), torch.full(shape, torch.nan)
        reference = torch.full(shape[:2], torch.nan)
        studied = (part.index < min(c.convergence_images, self.n_images)).nonzero().flatten()
        if len(studied):
            self.log(f"  {loaded.name}: convergence")
            results = convergence_results(
                scorer,
                batch.images[studied],
                targets[studied],
                c.convergence_methods,
                c.convergence_budgets,
                c.convergence_reference,
                c,
                c.batch_size,
                c.seed,
                output=c.explained_output,
            )
            for j, key in enumerate(keys):
                points, reference[studied, j] = results[key][0], float(results[key][1])
                for b, point in enumerate(points):
                    spearman[studied, j, b] = point.spearman.float()
                    forwards[studied, j, b] = float(point.forwards)
        part.put("convergence/spearman", spearman)
        part.put("convergence/forwards", forwards)
        part.put("convergence/reference_forwards", reference)

    def _convergence_keys(self) -> list[tuple[str, str]]:
        return [(method, "independent") for method in self.config.convergence_methods]

    def model_steps(self, loaded: LoadedModel, items, part: ShardData, reference: str) -> None:
        """Every step of one model on this process's images; per-image results go into ``part``."""
        c, m = self.config, loaded.name
        t0 = time.perf_counter()
        self.log(f"{m}: {len(items)} images at {loaded.preprocessing.input_size}px, {self.compute_path.name}")
        batch, targets, target_kind, scorer = self.prepare(loaded, items)
        seeds = [key_seed(c.seed, image_id) for image_id in batch.image_ids]
        part.set(f"{m}/target_kind", target_kind)
        part.put(f"{m}/targets", targets)
        morris_run = self.cross_architecture_steps(loaded, batch, targets, scorer, part, seeds)
        if m == reference:
            part.put("images", batch.images)
            base_maps = self.method_steps(loaded, batch, targets, scorer, morris_run, part, seeds)
            self.ensemble_steps(loaded, batch, targets, scorer, base_maps, part, seeds)
            self.convergence_steps(loaded, batch, targets, scorer, part)
        part.put(f"{m}/probability", self._target_probabilities(scorer, batch, targets))
        if target_kind == "true":
            predicted, _ = predicted_classes(scorer, batch.images, c.batch_size)
            part.put(f"{m}/correct", predicted == batch.labels)
        part.add(f"{m}/forwards", int(scorer.total_inputs))
        part.add(f"{m}/seconds", time.perf_counter() - t0)
        part.add(f"{m}/forward_seconds", scorer.total_forward_seconds)

    def _check_same_models(self, loaded: list[LoadedModel]) -> None:
        """Every process must load the same models (weights on every node), or the exchanges would not match."""
        names = self.shard.all_gather([m.name for m in loaded])
        for rank, theirs in enumerate(names):
            if theirs != names[0]:
                raise RuntimeError(
                    f"rank {rank} loaded models {theirs}, rank 0 {names[0]}: every node needs the "
                    "same weights (imagenet.weights_dir)"
                )

    # ------------------------------------------------------------------- run
    def run(self) -> ImagenetResults | None:
        """Run the audit; the results on rank 0 (a single process: always), None on the other ranks."""
        c = self.config
        seed_everything(c.seed)
        start = time.perf_counter()
        items = image_items(c)
        self.shard.check_items(len(items), "images")
        self.n_images = len(items)
        index = self.shard.items(len(items))
        loaded_models, skipped = load_models(c, self.device)
        if not loaded_models:
            reasons = "; ".join(row["reason"] for row in skipped)
            raise RuntimeError(f"no ImageNet model could be loaded: {reasons}")
        self._check_same_models(loaded_models)
        part = ShardData(index)
        for loaded in loaded_models:
            self.model_steps(loaded, [items[i] for i in index.tolist()], part, loaded_models[0].name)
        parts = self.shard.gather_to_root(part)
        if parts is None:
            return None
        return self.combine(merge(parts, len(items)), loaded_models, skipped, items, start)

    # ---------------------------------------------------------------- combine
    def combine(
        self, data: ShardData, loaded_models: list[LoadedModel], skipped: list[dict], items, start: float
    ) -> ImagenetResults:
        """Every table from the per-image results of all images (in image order)."""
        c = self.config
        rows: dict[str, list] = {name: [] for name in TABLES}
        arrays: dict[str, np.ndarray] = {}
        image_ids = [item.image_id for item in items]
        reference = loaded_models[0].name
        stats = {}
        model_rows = []
        for loaded in loaded_models:
            m = loaded.name
            target_kind = data.shared[f"{m}/target_kind"]
            targets = data.per_item[f"{m}/targets"]
            stats[m] = {name: data.per_item[f"{m}/local/{name}"] for name in STATISTICS}
            global_ = {name: data.shared[f"{m}/global/{name}"] for name in STATISTICS}
            self._mosip_rows(rows, data, m, target_kind, targets, global_, image_ids)
            for suffix, values in (("", stats[m]), ("_global", global_)):
                for name in ("mu_star", "sigma"):
                    arrays[f"{name}{suffix}_{m}"] = values[name].numpy().astype(np.float32)
            if m == reference:
                arrays["images"] = data.per_item["images"].numpy().astype(np.float16)
                arrays["image_ids"] = np.array(image_ids)
                arrays["targets"] = targets.numpy().astype(np.int64)
                self.method_rows(rows, arrays, data, m, targets, image_ids)
                if len(c.methods) >= 2:
                    rows["ensembles"] += score_table(m, self._ensemble_scores(data), c.interval_level)
                self._convergence_rows(rows, data, m, image_ids)
            model_rows.append(
                {
                    "model": m,
                    "status": "loaded",
                    "reason": "",
                    "source": loaded.source,
                    "weights_path": Path(loaded.weights_path).name if loaded.weights_path else "",
                    "input_size": loaded.preprocessing.input_size,
                    "n_params": loaded.n_params,
                    "is_reference": m == reference,
                    "n_images": len(image_ids),
                    "target_kind": target_kind,
                    "top1_accuracy": (
                        float(data.per_item[f"{m}/correct"].float().mean()) if target_kind == "true" else -1.0
                    ),
                    "mean_target_probability": float(data.per_item[f"{m}/probability"].mean()),
                    "forwards": int(data.totals[f"{m}/forwards"]),
                    "seconds": data.totals[f"{m}/seconds"],
                    "forward_seconds": data.totals[f"{m}/forward_seconds"],
                }
            )
        for row in skipped:
            model_rows.append(
                {
                    **row,
                    "source": "",
                    "weights_path": "",
                    "input_size": 0,
                    "n_params": 0,
                    "is_reference": False,
                    "n_images": 0,
                    "target_kind": "",
                    "top1_accuracy": -1.0,
                    "mean_target_probability": 0.0,
                    "forwards": 0,
                    "seconds": 0.0,
                    "forward_seconds": 0.0,
                }
            )
        rows["models"] = model_rows
        overlap_reference = self.overlap_steps(rows, stats, image_ids)
        rows["fidelity_summary"] = summary_rows(
            pd.DataFrame(rows["fidelity"], columns=COLUMNS["fidelity"]), self.protocols, c.interval_level
        )
        tables = {name: pd.DataFrame(table, columns=COLUMNS[name]) for name, table in rows.items()}
        metrics = summarise(
            tables, c, reference, items, time.perf_counter() - start, torch.device(self.device.type), overlap_reference
        )
        metrics["profile"].update(precision=c.precision, compute_path=self.compute_path.name)
        return ImagenetResults(tables, arrays, metrics)

    def _mosip_rows(self, rows, data: ShardData, m: str, target_kind: str, targets, global_, image_ids) -> None:
        c = self.config
        rows["ratio"].append(
            xarch.ratio_row(m, len(image_ids), global_["mu_star"], global_["sigma"], c.relevant_threshold)
        )
        steps, fractions = data.shared[f"{m}/masking/steps"], data.shared[f"{m}/masking/fractions"]
        curves = {}
        for scope in xarch.SCOPES:
            for ranking in xarch.MASKING_RANKINGS:
                for which in WHICH:
                    key = f"{m}/masking/{scope}/{ranking}/{which}"
                    curves[(scope, ranking, which)] = MaskingCurve.from_per_image(
                        which,
                        steps,
                        fractions,
                        *(data.per_item[f"{key}/{what}"] for what in ("kept", "correct", "score")),
                    )
        rows["masking"] += xarch.masking_table(m, target_kind, curves)
        rows["interactions"] += xarch.pair_table(
            m, target_kind, global_["mu_star"], c.top_k_pairs, data.per_item[f"{m}/pairs"].T, targets
        )
        rows["score_interactions"] += xarch.score_interaction_table(
            m,
            image_ids,
            data.per_item[f"{m}/score_interactions/top"],
            data.per_item[f"{m}/score_interactions/scores"],
            c.interaction_threshold,
        )

    def method_rows(self, rows, arrays, data: ShardData, m: str, targets, image_ids) -> None:
        """The combine half of :meth:`method_steps`: fidelity and curve rows, maps (``data`` of all images)."""
        c = self.config
        decided = data.per_item["decided"]
        for method in c.methods:
            arrays[f"map_{method}"] = data.per_item[f"maps/{method}"].numpy().astype(np.float32)
            extra = {
                "forwards": float(data.totals[f"inputs/{method}"] / len(image_ids)),
                "explain_seconds": data.totals[f"seconds/{method}"],
                "reference": "",
            }
            self._fidelity_rows(rows, data, m, method, image_ids, targets, decided, extra)
            if method in WHITE_BOX_COMPARED:
                for reference in WHITE_BOX_MAPS:
                    rows["fidelity"] += score_rows(
                        m,
                        method,
                        image_ids,
                        targets,
                        {"l1_to_white_box": data.per_item[f"l1/{method}/{reference}"]},
                        **{**extra, "reference": reference, "protocol": ""},
                    )
        for name in REFERENCE_MAPS:
            extra = {"forwards": 0.0, "explain_seconds": 0.0, "reference": ""}
            self._fidelity_rows(rows, data, m, name, image_ids, targets, decided, extra)

    def _fidelity_rows(self, rows, data: ShardData, m, method, image_ids, targets, decided, extra) -> None:
        results = {}
        for protocol in self.protocols:
            key = f"fidelity/{method}/{protocol.name}"
            scores = {metric: data.per_item[f"{key}/{metric}"] for metric in SCORES}
            curves = {
                mode: PerturbationCurve(
                    mode, _curve_fractions(data, f"{key}/{mode}/fractions"), data.per_item[f"{key}/{mode}/scores"]
                )
                for mode in ("deletion", "insertion")
            }
            results[protocol.name] = (scores, curves)
        fidelity, curve_rows = result_rows(m, method, image_ids, targets, results, decided, **extra)
        rows["fidelity"] += fidelity
        rows["curves"] += curve_rows

    @staticmethod
    def _ensemble_scores(data: ShardData) -> list[EnsembleScore]:
        deletion, insertion = data.per_item["ensembles/deletion"], data.per_item["ensembles/insertion"]
        return [
            EnsembleScore(**row, deletion=deletion[:, j].numpy(), insertion=insertion[:, j].numpy())
            for j, row in enumerate(data.shared["ensembles/rows"])
        ]

    def _convergence_rows(self, rows, data: ShardData, m: str, image_ids) -> None:
        c = self.config
        if not c.convergence_budgets:
            return
        n = min(c.convergence_images, len(image_ids))
        spearman = data.per_item["convergence/spearman"][:n]
        forwards = data.per_item["convergence/forwards"][0]
        reference = data.per_item["convergence/reference_forwards"][0]
        results = {
            key: (
                [ConvergencePoint(int(forwards[j, b]), spearman[:, j, b]) for b in range(len(c.convergence_budgets))],
                int(reference[j]),
            )
            for j, key in enumerate(self._convergence_keys())
        }
        rows["convergence"] += convergence_table(m, image_ids[:n], c.convergence_budgets, results)

    def overlap_steps(self, rows, stats: dict[str, dict[str, torch.Tensor]], image_ids: list[str]) -> dict:
        """Fig. 5: every model against the reference architecture (AlexNet, or a stand-in)."""
        c = self.config
        used, stands_in = xarch.choose_reference(c.overlap_reference, list(stats))
        if stands_in:
            self.log(f"overlap reference {c.overlap_reference} is not loaded; {used} stands in")
        for name, model_stats in stats.items():
            if name != used:
                rows["overlap"] += xarch.overlap_rows(
                    name,
                    used,
                    c.overlap_reference,
                    image_ids,
                    model_stats,
                    stats[used],
                    c.top_fraction,
                    c.neighbour_radius,
                )
        return {"requested": c.overlap_reference, "used": used, "stands_in": stands_in}

    def _target_probabilities(self, scorer, batch, targets):
        out = torch.cat(
            [
                scorer(batch.images[i : i + self.config.batch_size]).cpu()
                for i in range(0, len(batch.image_ids), self.config.batch_size)
            ]
        ).softmax(dim=1)
        return out.gather(1, targets.view(-1, 1)).squeeze(1)


def _keyed(grouped: pd.Series) -> dict:
    return {"/".join(map(str, k)) if isinstance(k, tuple) else str(k): float(v) for k, v in grouped.items()}


def _mean_by(df: pd.DataFrame, keys: list[str], value: str) -> dict:
    return {} if df.empty else _keyed(df.groupby(keys)[value].mean())


def _variance_by(df: pd.DataFrame, keys: list[str], value: str) -> dict:
    """Variance (1/n) of ``value`` per group, keyed like :func:`_mean_by`."""
    return {} if df.empty else _keyed(df.groupby(keys)[value].var(ddof=0))


def _share(pairs: pd.DataFrame) -> dict:
    """Share of interacting pairs per model."""
    return _mean_by(
        pairs.assign(interacts=pairs["interacts"].astype(float)) if not pairs.empty else pairs, ["model"], "interacts"
    )


def summarise(
    tables: dict[str, pd.DataFrame],
    config: ImagenetConfig,
    reference: str,
    items,
    seconds: float,
    device: torch.device,
    overlap_reference: dict | None = None,
) -> dict:
    """The headline numbers of ``metrics.json``."""
    white_box = tables["fidelity"][tables["fidelity"]["metric"] == "l1_to_white_box"]
    fidelity = headline_fidelity(tables["fidelity"], config)
    fidelity = fidelity[fidelity["metric"] != "l1_to_white_box"]
    per_method: dict[str, dict[str, float]] = {}
    if not fidelity.empty:
        for (method, metric), value in fidelity.groupby(["method", "metric"])["value"].mean().items():
            per_method.setdefault(method, {})[metric] = float(value)
    comparison = {}
    deletion = {m: v["deletion_auc"] for m, v in per_method.items() if "deletion_auc" in v}
    if "sobol" in deletion:
        others = {m: deletion[m] for m in ("rise", "occlusion") if m in deletion}
        comparison = {
            "deletion_auc": {"sobol": deletion["sobol"], **others},
            "sobol_best": all(deletion["sobol"] < v for v in others.values()),
            "direction": METRICS["deletion_auc"].direction,
        }
    ensembles = tables["ensembles"]
    best = {}
    if not ensembles.empty:
        combos = ensembles[ensembles["kind"] == "ensemble"]
        if not combos.empty:
            top_ins = combos.loc[combos["insertion_auc"].idxmax()]
            top_del = combos.loc[combos["deletion_auc"].idxmin()]
            best = {
                "insertion": f"{top_ins['normalisation']}/{top_ins['aggregation']}",
                "insertion_auc": float(top_ins["insertion_auc"]),
                "deletion": f"{top_del['normalisation']}/{top_del['aggregation']}",
                "deletion_auc": float(top_del["deletion_auc"]),
            }
    masking = tables["masking"]
    models = tables["models"]
    return {
        "profile": {
            "device": str(device),
            "input_size": config.input_size or "model default",
            "forwards_per_method": config.forwards,
            "n_images": len(items),
            "image_source": "val_dir" if config.val_dir else "sample_photos",
            "fidelity_steps": config.fidelity_steps,
            "explained_output": config.explained_output,
            "morris_trajectories": config.morris_trajectories,
            "convergence_budgets": config.convergence_budgets,
            "convergence_reference_forwards": config.convergence_reference,
            "convergence_grid_size": config.convergence_grid,
            "interval_level": config.interval_level,
            "ensemble_steps": config.ensemble_steps,
            "ensemble_baseline": config.ensemble_baseline,
        },
        "reference_model": reference,
        "models": {row["model"]: row["status"] for _, row in models.iterrows()},
        "methods": per_method,
        "l1_to_white_box": _mean_by(white_box, ["method", "reference"], "value"),
        "sobol_vs_baselines": comparison,
        "convergence": _mean_by(tables["convergence"], ["method", "reference_kind", "budget"], "spearman"),
        "convergence_variance": _variance_by(tables["convergence"], ["method", "reference_kind", "budget"], "spearman"),
        "overlap_reference": overlap_reference or {},
        "overlap_share": _mean_by(tables["overlap"], ["model", "statistic"], "overlap_share"),
        "mean_ratio": _mean_by(tables["ratio"], ["model"], "mean_ratio"),
        "interaction_share": _share(tables["interactions"]),
        "score_interaction_share": _share(tables["score_interactions"]),
        "masking_accuracy": _mean_by(
            masking[masking["step"] == masking.groupby("model")["step"].transform("max")]
            if not masking.empty
            else masking,
            ["model", "scope", "ranking", "which"],
            "accuracy",
        ),
        "best_ensemble": best,
        **fidelity_protocol_summary(tables["fidelity_summary"], config),
        "seconds": seconds,
    }


def headline_fidelity(fidelity: pd.DataFrame, config: ImagenetConfig) -> pd.DataFrame:
    """Rows of the first configured protocol (the headline numbers), plus the protocol-free L1 rows."""
    return fidelity[fidelity["protocol"].isin([config.fidelity_protocols[0], ""])]


def fidelity_protocols(config: ImagenetConfig) -> list[FidelityProtocol]:
    """The configured fidelity protocols (``imagenet.fidelity``), the first being the headline."""
    return build_protocols(
        config.fidelity_protocols,
        config.fidelity_steps,
        config.deletion_baseline,
        config.insertion_baseline,
        config.region_grid,
        config.region_baseline,
    )


def fidelity_protocol_summary(summary: pd.DataFrame, config: ImagenetConfig) -> dict:
    """``metrics.json`` entries: the protocols, the headline one, and the methods not beating random."""
    protocols = fidelity_protocols(config)
    return {
        "fidelity_protocols": {p.name: p.describe() for p in protocols},
        "headline_protocol": protocols[0].name,
        "not_beating_random": not_beating_random(summary),
    }


def run_imagenet_audit(
    config: ImagenetConfig, log: Callable[[str], None] = print, shard: Shard | None = None
) -> ImagenetResults | None:
    """Run the whole audit for ``config`` (see the module docstring for the outputs).

    With ``shard`` (a process of a sharded run) this process explains its share of the
    images; rank 0 returns the results of all, the other ranks None.
    """
    return ImagenetAudit(config, log, shard).run()


def write_results(results: ImagenetResults, out_dir: str | Path) -> None:
    """Write every table, ``maps.npz`` and ``metrics.json`` into ``out_dir`` atomically."""
    with atomic_dir(out_dir) as tmp:
        for name in TABLES:
            schema.write(f"imagenet/{name}", results.tables[name], tmp / f"{name}.csv")
        save_npz(tmp / "maps.npz", results.arrays)
        write_json(results.metrics, tmp / "metrics.json")


__all__ = [
    "ImagenetResults",
    "ImagenetAudit",
    "run_imagenet_audit",
    "write_results",
    "image_items",
    "load_models",
    "summarise",
    "headline_fidelity",
    "TABLES",
    "COLUMNS",
]
