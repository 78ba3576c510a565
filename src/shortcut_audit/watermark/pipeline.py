"""The watermark audit of every configured ImageNet model -> ``data/watermark/``.

Tables (CSV, written atomically by :func:`write_results`; schema also in
docs/architecture.md):

``models.csv``
    ``model, status`` (loaded | skipped), ``reason`` (why skipped), ``source``,
    ``input_size`` (the watermark is drawn at this size), ``n_images``, ``target_kind``
    (true: images with true classes; predicted: no labels, each image's class is the
    model's clean top-1), ``top1_accuracy`` (clean, -1 without labels), ``explained``
    (the explainer benchmark ran on this model), ``forwards`` (images classified),
    ``seconds``, ``forward_seconds``.
``images.csv``
    One row per model and image: ``model, image_id, label`` (-1: none),
    ``clean_top1, watermarked_top1, changed, carton_prob_clean, carton_prob_watermarked,
    carton_logit_clean, carton_logit_watermarked``.
``effects.csv``
    ``model, target_kind, statistic, value, ci_low, ci_high, n_images``: statistics of
    :mod:`.effects` (``top1_change_rate``, ``carton_share_clean``,
    ``carton_share_watermarked``, ``carton_gap``, ``carton_prob_shift``,
    ``carton_logit_shift``; with true labels also ``accuracy_clean``,
    ``accuracy_watermarked``, ``accuracy_drop``), 95 % bootstrap intervals over images.
``verdicts.csv``
    One row per model: ``model, target_kind, factor`` (watermark), ``state``
    (relied_on | not_relied_on | inconclusive), ``drop, ci_low, ci_high`` (accuracy drop
    on the correct images, the top-1 change rate without labels), ``threshold``,
    ``statistic``, ``first_round_state, n_items, repetitions, rounds, n_pool, n_correct``.
``morris.csv``
    ``model, target_kind`` and the factor-Morris columns ``sampling, factor, output, mu,
    mu_star, sigma, mu_star_conf, mu_star_share, sigma_over_mu_star`` for the outputs
    ``class_478_prob`` (carton) and ``true_class_prob`` on watermarked images.
``explainers.csv``
    One row per explained model, method and image: ``model, method, kind`` (black_box |
    white_box | ensemble), ``image_id, mask_share, pointing, positive_mass, forwards``
    (per image), ``seconds`` (per image).
``explainer_summary.csv``
    One row per explained model and method: ``model, method, kind, n_images, mask_share,
    mask_share_ci_low, mask_share_ci_high, pointing, pointing_ci_low, pointing_ci_high,
    chance`` (the mask's area share), ``forwards, seconds, no_positive_mass`` (images
    whose map has no positive attribution).
``maps.npz``
    Per explained model ``m`` (key :func:`map_key`): ``images__m`` (n, 3, S, S) float16
    watermarked photos, ``image_ids__m``, ``mask__m`` (S, S) bool, ``map__m__<method>``
    (n, S, S) float32 for every base method and the best ensemble.
``headline.json``
    The DVC metric: carton gap per loaded model and how many models rely on the
    watermark (:func:`headline`).
``metrics.json``
    Profile, per model the headline effects, verdict and the aspect with the largest
    carton ``mu*``; per explained model each single method's and the best ensemble's mean
    scores, the chance level and the best method. No wall time (the file is a function of
    the params and seed).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from shortcut_audit import schema
from shortcut_audit.audit.factor_morris import factor_changes, morris_from_changes
from shortcut_audit.config import ParamError
from shortcut_audit.data.image_sets import ImageBatch, load_images
from shortcut_audit.distributed import Shard, ShardData, merge
from shortcut_audit.factors.scene import ProbabilityReader, image_scene
from shortcut_audit.factors.watermark import CARTON, watermark_mask
from shortcut_audit.imagenet.explain import CountingScorer
from shortcut_audit.imagenet.pipeline import image_items
from shortcut_audit.io import atomic_dir, save_npz, write_json
from shortcut_audit.models.imagenet import WeightsNotFoundError, load_imagenet_model
from shortcut_audit.runtime import seed_everything, select_compute_path
from shortcut_audit.watermark.audit import (
    CONF_LEVEL,
    MORRIS_OUTPUTS,
    seeded_subset,
    watermark_scenes,
    watermark_verdict,
)
from shortcut_audit.watermark.config import WatermarkConfig, check_inputs
from shortcut_audit.watermark.effects import IMAGE_COLUMNS, effect_rows, image_effects, scene_logits
from shortcut_audit.watermark.explainers import SCORE_COLUMNS, benchmark_from_scores, explain_images

__all__ = ["COLUMNS", "TABLES", "WatermarkResults", "map_key", "run_watermark_audit", "write_results"]

#: File stem -> columns of every table the stage writes (declared in :mod:`shortcut_audit.schema`).
COLUMNS: dict[str, list[str]] = schema.columns_of("watermark")
TABLES = tuple(COLUMNS)
HEADLINE = ("carton_gap", "top1_change_rate", "carton_logit_shift", "accuracy_drop")
#: The per-photo numbers of an explainer score row (:data:`~.explainers.SCORE_COLUMNS`).
SCORE_VALUES = ("mask_share", "pointing", "positive_mass", "forwards", "seconds")


def map_key(kind: str, model: str, method: str = "") -> str:
    """Key of an array of ``maps.npz``: ``images__<model>``, ``map__<model>__<method>``, ...

    Characters other than letters, digits, ``_`` and ``-`` in the model name (an import
    path's ``:`` or ``.``) become ``_``.
    """
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", model)
    return f"{kind}__{safe}" + (f"__{method}" if method else "")


@dataclass
class WatermarkResults:
    tables: dict[str, pd.DataFrame]
    arrays: dict[str, np.ndarray]
    metrics: dict


class WatermarkAudit:
    """One run over every model, on this process's share of the photos (all of them by default).

    Each process (:class:`~shortcut_audit.distributed.Shard`) classifies its photos
    (:meth:`~shortcut_audit.distributed.Shard.items`, round-robin) clean and watermarked,
    runs the aspect Morris on its share of the Morris photos and explains its share of
    the explained photos; the per-photo results go into a
    :class:`~shortcut_audit.distributed.ShardData` per photo set. The verdict needs every
    photo of the pool at once: every process holds all the photos, the clean top-1 classes
    are exchanged (:meth:`~shortcut_audit.distributed.Shard.gather_items`) and the
    interventions share their cells (:func:`~shortcut_audit.audit.interventions.run_interventions`),
    so every process takes the same budget decisions. :meth:`combine` (rank 0) puts the
    per-photo results back in photo order and builds every table: the bootstrap intervals
    over photos, the Morris statistics, the best ensemble and the summaries are those of a
    single process. Draws shared by the photos (Morris design, masks, noise, the verdict's
    pool and re-draws) derive from the seed alone, an ensemble's random numbers from the
    seed and the photo id (:func:`~shortcut_audit.attribution.base.key_seed`), never from
    the rank.
    """

    def __init__(self, config: WatermarkConfig, log: Callable[[str], None] = print, shard: Shard | None = None):
        self.config = config
        self.shard = shard or Shard.single()
        self.log = self.shard.logger(log)
        self.device = self.shard.device(config.device)
        try:
            self.compute_path = select_compute_path(self.device, config.precision, False)
        except ValueError as err:
            raise ParamError("watermark.precision", str(err)) from None
        self.chosen: dict[str, torch.Tensor] = {}

    # ------------------------------------------------------------------ this process's photos
    def model_step(self, loaded, batch: ImageBatch, parts: dict[str, ShardData]) -> None:
        """Effect, verdict, aspects (and explanations) of one model on this process's photos, into ``parts``."""
        c, m = self.config, loaded.name
        scorer = CountingScorer(loaded.model, self.device, path=self.compute_path)
        reader = ProbabilityReader(scorer, c.batch_size)
        factors = c.image_factors()
        start = time.perf_counter()
        photos, n = parts["photos"], len(batch.image_ids)
        mine = photos.index
        probe = watermark_scenes(batch.images[mine].to(self.device), torch.zeros(len(mine), dtype=torch.long), factors)
        clean = scene_logits(reader, probe)
        marked = scene_logits(
            reader, probe, probe.with_values(probe.columns(["watermark"]), torch.ones(1, 1, dtype=torch.float64))[0]
        )
        clean_top1 = self.shard.gather_items(clean.argmax(dim=1), n)
        if batch.has_labels:
            labels, target_kind = batch.labels.long(), "true"
        else:
            labels, target_kind = clean_top1, "predicted"
        table = image_effects(
            [batch.image_ids[i] for i in mine.tolist()], clean, marked, labels[mine] if target_kind == "true" else None
        )
        for column in IMAGE_COLUMNS[1:]:
            photos.put(f"{m}/{column}", torch.tensor(table[column].to_numpy()))
        photos.set(f"{m}/target_kind", target_kind)
        verdict, _ = watermark_verdict(
            reader,
            watermark_scenes(batch.images.to(self.device), labels, factors),
            target_kind,
            c.drop_threshold,
            c.verdict_images,
            c.repetitions,
            c.max_doublings,
            c.pool_size,
            c.n_bootstrap,
            c.seed,
            clean_predictions=clean_top1,
            shard=self.shard,
        )
        photos.set(f"{m}/verdict", verdict)
        self.morris_step(reader, batch, labels, parts["morris"], m)
        if m in c.explain.models:
            self.explain_step(loaded, batch, labels, scorer, parts["explain"])
        photos.add(f"{m}/forwards", int(scorer.total_inputs))
        photos.add(f"{m}/seconds", time.perf_counter() - start)
        photos.add(f"{m}/forward_seconds", scorer.total_forward_seconds)

    def morris_step(self, reader, batch: ImageBatch, labels: torch.Tensor, part: ShardData, m: str) -> None:
        """The output changes of the aspect Morris (:func:`~.audit.aspect_morris`) on this process's Morris photos.

        The global design derives from the seed alone, so a photo's changes do not depend on the photos with it.
        """
        c = self.config
        positions = self.chosen["morris"][part.index]
        scene = image_scene(
            batch.images[positions].to(self.device), labels[positions], c.image_factors(), own={"watermark": 1}
        )
        factors = scene.check(c.morris_factors)
        changes, n_images = factor_changes(
            reader, scene, factors, c.morris_trajectories, c.morris_levels, "trajectory", c.seed, "global"
        )
        part.put(f"{m}/changes", changes.permute(2, 0, 1, 3))  # photos first
        part.add(f"{m}/n_images", n_images)
        part.set(f"{m}/factors", list(factors))

    def explain_step(self, loaded, batch: ImageBatch, labels: torch.Tensor, scorer, part: ShardData) -> None:
        """Maps and per-photo scores of every explainer on this process's explained photos (watermarked)."""
        c, e, m = self.config, self.config.explain, loaded.name
        self.log(f"  {m}: explaining the carton logit of the watermarked photos")
        positions = self.chosen["explain"][part.index]
        scene = image_scene(
            batch.images[positions].to(self.device), labels[positions], c.image_factors(), own={"watermark": 1}
        )
        images = scene.render_own()
        size = images.shape[-1]
        opacity, height = (scene.factor(n).neutral for n in ("watermark_opacity", "watermark_y"))
        mask = watermark_mask(size, size, c.drawn_text, height, opacity, e.dilation, c.texts)
        scores, maps = explain_images(
            loaded.model,
            scorer,
            images,
            [batch.image_ids[i] for i in positions.tolist()],
            mask,
            e,
            c.batch_size,
            c.seed,
            input_scale=float(np.mean(loaded.preprocessing.std)),
            log=self.log,
        )
        part.put(f"{m}/images", images.cpu())
        part.set(f"{m}/mask", mask.cpu())
        part.set(f"{m}/kinds", dict(zip(scores["method"], scores["kind"])))
        for method, maps_of in maps.items():
            part.put(f"{m}/map/{method}", maps_of)
        for method, group in scores.groupby("method", sort=False):
            for column in SCORE_VALUES:
                part.put(f"{m}/score/{method}/{column}", torch.tensor(group[column].to_numpy(float)))

    def _check_same_load(self, name: str, loaded: bool) -> None:
        """Every process must load the same models (weights on every node), or the exchanges would not match."""
        answers = self.shard.all_gather(loaded)
        for rank, answer in enumerate(answers):
            if answer != answers[0]:
                raise RuntimeError(
                    f"model {name}: rank {rank} {'loaded' if answer else 'skipped'} it, rank 0 did not: every "
                    "node needs the same weights (watermark.weights_dir or imagenet.weights_dir)"
                )

    # ------------------------------------------------------------------ run
    def run(self) -> WatermarkResults | None:
        """Run the audit; the results on rank 0 (a single process: always), None on the other ranks."""
        c = self.config
        seed_everything(c.seed)
        items = image_items(c)  # a missing folder or photo fails here, before any model
        check_inputs(c)
        n = len(items)
        self.shard.check_items(n, "photos")
        self.chosen = {
            "morris": seeded_subset(n, c.morris_images, c.seed),
            "explain": seeded_subset(n, c.explain.n_images, c.seed),
        }
        self.shard.check_items(len(self.chosen["morris"]), "Morris photos (watermark.morris.n_images)")
        if c.explain.models:
            self.shard.check_items(len(self.chosen["explain"]), "explained photos (watermark.explain.n_images)")
        sizes = {"photos": n, **{name: len(chosen) for name, chosen in self.chosen.items()}}
        parts = {name: ShardData(self.shard.items(size)) for name, size in sizes.items()}
        models, skipped = [], []
        for name in c.models:
            try:
                loaded = load_imagenet_model(name, c.weights_dir, c.input_size, self.device)
            except WeightsNotFoundError as err:
                self._check_same_load(name, False)
                skipped.append(_skipped_row(name, str(err)))
                self.log(f"{name}: skipped ({err})")
                continue
            self._check_same_load(name, True)
            self.log(f"{name}: {n} images at {loaded.preprocessing.input_size}px")
            batch = load_images(items, loaded.preprocessing)
            self.model_step(loaded, batch, parts)
            models.append((name, loaded.source, loaded.preprocessing.input_size))
        if not models:
            raise RuntimeError("no ImageNet model could be loaded: " + "; ".join(r["reason"] for r in skipped))
        gathered = self.shard.gather_to_root(parts)
        if gathered is None:
            return None
        merged = {name: merge([g[name] for g in gathered], size) for name, size in sizes.items()}
        return self.combine(merged, models, skipped, [item.image_id for item in items])

    # ------------------------------------------------------------------ rank 0
    def combine(
        self, data: dict[str, ShardData], models: list[tuple[str, str, int]], skipped: list[dict], image_ids: list[str]
    ) -> WatermarkResults:
        """Every table from the per-photo results of all photos (in photo order)."""
        c = self.config
        rows: dict[str, list[dict]] = {name: [] for name in TABLES}
        arrays: dict[str, np.ndarray] = {}
        photos = data["photos"]
        model_rows = []
        for m, source, input_size in models:
            target_kind = photos.shared[f"{m}/target_kind"]
            images = pd.DataFrame(
                {"image_id": image_ids, **{col: photos.per_item[f"{m}/{col}"].numpy() for col in IMAGE_COLUMNS[1:]}},
                columns=list(IMAGE_COLUMNS),
            )
            identity = {"model": m, "target_kind": target_kind}
            effects = effect_rows(images, c.n_bootstrap, CONF_LEVEL, c.seed)
            rows["images"] += [{"model": m, **row} for row in images.to_dict("records")]
            rows["effects"] += [{**identity, **row} for row in effects.to_dict("records")]
            rows["verdicts"].append({**identity, **photos.shared[f"{m}/verdict"]})
            labels = torch.tensor(images["label" if target_kind == "true" else "clean_top1"].to_numpy())
            morris = data["morris"]
            table = morris_from_changes(
                morris.per_item[f"{m}/changes"].permute(1, 2, 0, 3),
                labels[self.chosen["morris"]],
                morris.shared[f"{m}/factors"],
                int(morris.totals[f"{m}/n_images"]),
                CONF_LEVEL,
                c.n_bootstrap,
                c.seed,
                "global",
                MORRIS_OUTPUTS,
            ).table
            rows["morris"] += [{**identity, **row} for row in table.to_dict("records")]
            explained = m in c.explain.models
            if explained:
                self.explain_rows(rows, arrays, data["explain"], m, image_ids)
            accuracy = float((images["clean_top1"] == images["label"]).mean()) if target_kind == "true" else -1.0
            model_rows.append(
                {
                    "model": m,
                    "status": "loaded",
                    "reason": "",
                    "source": source,
                    "input_size": input_size,
                    "n_images": len(image_ids),
                    "target_kind": target_kind,
                    "top1_accuracy": accuracy,
                    "explained": explained,
                    "forwards": int(photos.totals[f"{m}/forwards"]),
                    "seconds": photos.totals[f"{m}/seconds"],
                    "forward_seconds": photos.totals[f"{m}/forward_seconds"],
                }
            )
        rows["models"] = model_rows + skipped
        tables = {name: pd.DataFrame(table_rows, columns=COLUMNS[name]) for name, table_rows in rows.items()}
        return WatermarkResults(tables, arrays, summarise(tables, c, len(image_ids)))

    def explain_rows(self, rows: dict, arrays: dict, data: ShardData, m: str, image_ids: list[str]) -> None:
        """The explainer rows and maps of model ``m`` from the scores and maps of every explained photo."""
        c = self.config
        ids = [image_ids[i] for i in self.chosen["explain"].tolist()]
        kinds = data.shared[f"{m}/kinds"]
        scores = pd.DataFrame(
            [
                {
                    "method": method,
                    "kind": kind,
                    "image_id": image_id,
                    **{col: float(data.per_item[f"{m}/score/{method}/{col}"][j]) for col in SCORE_VALUES},
                }
                for method, kind in kinds.items()
                for j, image_id in enumerate(ids)
            ],
            columns=list(SCORE_COLUMNS),
        )
        mask = data.shared[f"{m}/mask"]
        maps = {method: data.per_item[f"{m}/map/{method}"] for method in kinds}
        bench = benchmark_from_scores(scores, maps, mask, c.n_bootstrap, c.seed)
        rows["explainers"] += [{"model": m, **r} for r in bench.scores.to_dict("records")]
        rows["explainer_summary"] += [{"model": m, **r} for r in bench.summary.to_dict("records")]
        arrays[map_key("images", m)] = data.per_item[f"{m}/images"].numpy().astype(np.float16)
        arrays[map_key("image_ids", m)] = np.array(ids)
        arrays[map_key("mask", m)] = mask.numpy()
        for method, maps_of in bench.maps.items():
            arrays[map_key("map", m, method)] = maps_of.numpy().astype(np.float32)


def _skipped_row(name: str, reason: str) -> dict:
    return {
        "model": name,
        "status": "skipped",
        "reason": reason,
        "source": "",
        "input_size": 0,
        "n_images": 0,
        "target_kind": "",
        "top1_accuracy": -1.0,
        "explained": False,
        "forwards": 0,
        "seconds": 0.0,
        "forward_seconds": 0.0,
    }


def summarise(tables: dict[str, pd.DataFrame], config: WatermarkConfig, n_images: int) -> dict:
    """The headline numbers of ``metrics.json`` (module docstring)."""
    models = {}
    effects, verdicts, morris = tables["effects"], tables["verdicts"].set_index("model"), tables["morris"]
    for row in tables["models"].itertuples(index=False):
        if row.status != "loaded":
            models[row.model] = {"status": row.status}
            continue
        own = effects[effects["model"] == row.model].set_index("statistic")
        verdict = verdicts.loc[row.model]
        carton = morris[(morris["model"] == row.model) & (morris["output"] == MORRIS_OUTPUTS[0])]
        models[row.model] = {
            "status": row.status,
            "target_kind": row.target_kind,
            **{s: {k: float(own.at[s, k]) for k in ("value", "ci_low", "ci_high")} for s in HEADLINE if s in own.index},
            "verdict": {
                "state": str(verdict["state"]),
                "drop": float(verdict["drop"]),
                "ci_low": float(verdict["ci_low"]),
                "ci_high": float(verdict["ci_high"]),
            },
            "top_carton_aspect": str(carton.loc[carton["mu_star"].idxmax(), "factor"]) if len(carton) else "",
        }
    explainers = {}
    summary = tables["explainer_summary"]
    for model, group in summary.groupby("model", sort=False):
        best = group.loc[group["mask_share"].idxmax()]
        ensembles = group[group["kind"] == "ensemble"]
        shown = group[group["kind"] != "ensemble"]
        if len(ensembles):  # the best ensemble only: metrics.json stays small
            shown = pd.concat([shown, ensembles.loc[[ensembles["mask_share"].idxmax()]]])
        explainers[model] = {
            "chance": float(group["chance"].iloc[0]),
            "best_by_mask_share": str(best["method"]),
            "methods": {
                str(r.method): {
                    "mask_share": float(r.mask_share),
                    "pointing": float(r.pointing),
                    "kind": str(r.kind),
                    "forwards": float(r.forwards),
                }
                for r in shown.itertuples(index=False)
            },
        }
    e = config.explain
    return {
        "profile": {
            "image_source": "val_dir" if config.val_dir else "sample_photos",
            "n_images": n_images,
            "input_size": config.input_size or "model default",
            "texts": list(config.texts),
            "drop_threshold": config.drop_threshold,
            "morris_trajectories": config.morris_trajectories,
            "explained_models": list(e.models),
            "forwards_per_method": e.forwards,
            "dilation": e.dilation,
            "target_class": CARTON,
            "precision": config.precision,
        },
        "models": models,
        "explainers": explainers,
    }


def headline(tables: dict[str, pd.DataFrame]) -> dict:
    """``headline.json``, the stage's DVC metric: carton gap per loaded model, models relying on the watermark.

    Small on purpose, so that ``dvc metrics show`` fits a screen; ``metrics.json``
    holds the detail the report reads.
    """
    effects = tables["effects"]
    gaps = effects[effects["statistic"] == "carton_gap"]
    states = tables["verdicts"]["state"].value_counts()
    return {
        "carton_gap": {str(r.model): round(float(r.value), 4) for r in gaps.itertuples(index=False)},
        "relied_on": int(states.get("relied_on", 0)),
    }


def run_watermark_audit(
    config: WatermarkConfig, log: Callable[[str], None] = print, shard: Shard | None = None
) -> WatermarkResults | None:
    """Run the whole watermark audit for ``config`` (module docstring).

    With ``shard`` (a process of a sharded run) this process audits its share of the
    photos and rank 0 returns the results of all of them; the other ranks return None
    (:class:`WatermarkAudit`).
    """
    return WatermarkAudit(config, log, shard).run()


def write_results(results: WatermarkResults, out_dir: str | Path) -> None:
    """Write every table, ``maps.npz`` and ``metrics.json`` into ``out_dir`` atomically."""
    with atomic_dir(out_dir) as tmp:
        for name in TABLES:
            schema.write(f"watermark/{name}", results.tables[name], tmp / f"{name}.csv")
        save_npz(tmp / "maps.npz", results.arrays)
        write_json(results.metrics, tmp / "metrics.json")
        write_json(headline(results.tables), tmp / "headline.json")
