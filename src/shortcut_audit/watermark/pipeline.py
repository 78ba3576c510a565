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
from shortcut_audit.config import ParamError
from shortcut_audit.data.image_sets import load_images
from shortcut_audit.factors.scene import ProbabilityReader, image_scene
from shortcut_audit.factors.watermark import CARTON, watermark_mask
from shortcut_audit.imagenet.explain import CountingScorer
from shortcut_audit.imagenet.pipeline import image_items
from shortcut_audit.io import atomic_dir, save_npz, write_json
from shortcut_audit.models.imagenet import WeightsNotFoundError, load_imagenet_model
from shortcut_audit.runtime import resolve_device, seed_everything, select_compute_path
from shortcut_audit.watermark.audit import MORRIS_OUTPUTS, audit_images, seeded_subset
from shortcut_audit.watermark.config import WatermarkConfig, check_inputs
from shortcut_audit.watermark.explainers import benchmark_explainers

__all__ = ["COLUMNS", "TABLES", "WatermarkResults", "map_key", "run_watermark_audit", "write_results"]

#: File stem -> columns of every table the stage writes (declared in :mod:`shortcut_audit.schema`).
COLUMNS: dict[str, list[str]] = schema.columns_of("watermark")
TABLES = tuple(COLUMNS)
HEADLINE = ("carton_gap", "top1_change_rate", "carton_logit_shift", "accuracy_drop")


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
    """One run over every model; each step appends rows to ``self.rows``."""

    def __init__(self, config: WatermarkConfig, log: Callable[[str], None] = print):
        self.config, self.log = config, log
        self.device = resolve_device(config.device)
        try:
            self.compute_path = select_compute_path(self.device, config.precision, False)
        except ValueError as err:
            raise ParamError("watermark.precision", str(err)) from None
        self.rows: dict[str, list[dict]] = {name: [] for name in TABLES}
        self.arrays: dict[str, np.ndarray] = {}

    def model_step(self, loaded, batch) -> dict:
        c = self.config
        scorer = CountingScorer(loaded.model, self.device, path=self.compute_path)
        reader = ProbabilityReader(scorer, c.batch_size)
        start = time.perf_counter()
        result = audit_images(reader, batch, c.image_factors(), c, self.device)
        identity = {"model": loaded.name, "target_kind": result.target_kind}
        self.rows["images"] += [{"model": loaded.name, **row} for row in result.images.to_dict("records")]
        self.rows["effects"] += [{**identity, **row} for row in result.effects.to_dict("records")]
        self.rows["verdicts"].append({**identity, **result.verdict})
        self.rows["morris"] += [{**identity, **row} for row in result.morris.to_dict("records")]
        explained = loaded.name in c.explain.models
        if explained:
            self.explain_step(loaded, batch, result.labels, scorer)
        accuracy = (
            float((result.images["clean_top1"] == result.images["label"]).mean())
            if result.target_kind == "true"
            else -1.0
        )
        return {
            "model": loaded.name,
            "status": "loaded",
            "reason": "",
            "source": loaded.source,
            "input_size": loaded.preprocessing.input_size,
            "n_images": len(batch.image_ids),
            "target_kind": result.target_kind,
            "top1_accuracy": accuracy,
            "explained": explained,
            "forwards": int(scorer.total_inputs),
            "seconds": time.perf_counter() - start,
            "forward_seconds": scorer.total_forward_seconds,
        }

    def explain_step(self, loaded, batch, labels: torch.Tensor, scorer: CountingScorer) -> None:
        c, e = self.config, self.config.explain
        self.log(f"  {loaded.name}: explaining the carton logit of the watermarked photos")
        chosen = seeded_subset(len(batch.image_ids), e.n_images, c.seed)
        scene = image_scene(
            batch.images[chosen].to(self.device), labels[chosen], c.image_factors(), own={"watermark": 1}
        )
        images = scene.render_own()
        ids = [batch.image_ids[i] for i in chosen.tolist()]
        size = images.shape[-1]
        opacity, height = (scene.factor(n).neutral for n in ("watermark_opacity", "watermark_y"))
        mask = watermark_mask(size, size, c.drawn_text, height, opacity, e.dilation, c.texts)
        bench = benchmark_explainers(
            loaded.model,
            scorer,
            images,
            ids,
            mask,
            e,
            c.batch_size,
            c.seed,
            input_scale=float(np.mean(loaded.preprocessing.std)),
            n_resamples=c.n_bootstrap,
            log=self.log,
        )
        self.rows["explainers"] += [{"model": loaded.name, **r} for r in bench.scores.to_dict("records")]
        self.rows["explainer_summary"] += [{"model": loaded.name, **r} for r in bench.summary.to_dict("records")]
        self.arrays[map_key("images", loaded.name)] = images.cpu().numpy().astype(np.float16)
        self.arrays[map_key("image_ids", loaded.name)] = np.array(ids)
        self.arrays[map_key("mask", loaded.name)] = mask.cpu().numpy()
        for method, maps in bench.maps.items():
            self.arrays[map_key("map", loaded.name, method)] = maps.cpu().numpy().astype(np.float32)

    def run(self) -> WatermarkResults:
        c = self.config
        seed_everything(c.seed)
        items = image_items(c)  # a missing folder or photo fails here, before any model
        check_inputs(c)
        model_rows, skipped = [], []
        for name in c.models:
            try:
                loaded = load_imagenet_model(name, c.weights_dir, c.input_size, self.device)
            except WeightsNotFoundError as err:
                skipped.append(_skipped_row(name, str(err)))
                self.log(f"{name}: skipped ({err})")
                continue
            self.log(f"{name}: {len(items)} images at {loaded.preprocessing.input_size}px")
            batch = load_images(items, loaded.preprocessing)
            model_rows.append(self.model_step(loaded, batch))
        if not model_rows:
            raise RuntimeError("no ImageNet model could be loaded: " + "; ".join(r["reason"] for r in skipped))
        self.rows["models"] = model_rows + skipped
        tables = {name: pd.DataFrame(rows, columns=COLUMNS[name]) for name, rows in self.rows.items()}
        return WatermarkResults(tables, self.arrays, summarise(tables, c, len(items)))


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


def run_watermark_audit(config: WatermarkConfig, log: Callable[[str], None] = print) -> WatermarkResults:
    """Run the whole watermark audit for ``config`` (module docstring)."""
    return WatermarkAudit(config, log).run()


def write_results(results: WatermarkResults, out_dir: str | Path) -> None:
    """Write every table, ``maps.npz`` and ``metrics.json`` into ``out_dir`` atomically."""
    with atomic_dir(out_dir) as tmp:
        for name in TABLES:
            schema.write(f"watermark/{name}", results.tables[name], tmp / f"{name}.csv")
        save_npz(tmp / "maps.npz", results.arrays)
        write_json(results.metrics, tmp / "metrics.json")
        write_json(headline(results.tables), tmp / "headline.json")
