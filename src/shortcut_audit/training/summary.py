"""Collect the trained models of a sweep into one table of metrics and one of curves."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from shortcut_audit import schema
from shortcut_audit.training.evaluate import MODEL_METRIC_COLUMNS

CURVE_COLUMNS: tuple[str, ...] = tuple(schema.table("models/curve").columns)
METRICS_FILE = "metrics.json"
CURVE_FILE = schema.file_name("models/curve")


class MissingModelError(FileNotFoundError):
    """A model of the sweep has not been trained (or its outputs are incomplete)."""


def model_dir(models_root: str | Path, dataset_id: str, arch: str, seed: int) -> Path:
    """Folder of one trained model: ``<models_root>/<dataset_id>/<arch>/seed<seed>``."""
    return Path(models_root) / dataset_id / arch / f"seed{int(seed)}"


def read_model_outputs(models_root: str | Path, dataset_id: str, arch: str, seed: int) -> tuple[dict, pd.DataFrame]:
    """Metrics record and training curve of one model, checked against their schemas.

    Raises
    ------
    MissingModelError
        Naming the model and the stage that makes it, when a file is missing.
    ValueError
        When a file lacks columns/keys of the schema.
    """
    folder = model_dir(models_root, dataset_id, arch, seed)
    for name in (METRICS_FILE, CURVE_FILE):
        if not (folder / name).is_file():
            raise MissingModelError(
                f"model {dataset_id}/{arch}/seed{seed}: {folder / name} is missing; "
                f"train it with `dvc repro train@{dataset_id}-{arch}-{seed}`"
            )
    metrics = json.loads((folder / METRICS_FILE).read_text())
    missing = [key for key in MODEL_METRIC_COLUMNS if key not in metrics]
    if missing:
        raise ValueError(f"{folder / METRICS_FILE}: missing key(s) {missing}; retrain the model")
    if (metrics["dataset_id"], metrics["arch"], metrics["seed"]) != (dataset_id, arch, seed):
        raise ValueError(
            f"{folder / METRICS_FILE}: describes {metrics['dataset_id']}/{metrics['arch']}/"
            f"seed{metrics['seed']}, expected {dataset_id}/{arch}/seed{seed}"
        )
    curve = schema.read(folder / CURVE_FILE, "models/curve")
    missing = [c for c in CURVE_COLUMNS if c not in curve.columns]
    if missing or curve.empty:
        raise ValueError(f"{folder / CURVE_FILE}: empty or missing column(s) {missing}; retrain the model")
    return {key: metrics[key] for key in MODEL_METRIC_COLUMNS}, curve[list(CURVE_COLUMNS)]


def collect_models(
    models_root: str | Path, datasets: Sequence[str], architectures: Sequence[str], seeds: Sequence[int] = (0,)
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per model (``models.csv`` schema) and the stacked curves (``curves.csv``).

    Models are ordered dataset-major, in the order of ``datasets``, ``architectures``
    and ``seeds``.
    """
    rows, curves = [], []
    for dataset_id in datasets:
        for arch in architectures:
            for seed in seeds:
                metrics, curve = read_model_outputs(models_root, dataset_id, arch, seed)
                rows.append(metrics)
                curves.append(curve.assign(dataset_id=dataset_id, arch=arch, seed=seed))
    models = pd.DataFrame(rows, columns=list(MODEL_METRIC_COLUMNS))
    curves_table = pd.concat(curves, ignore_index=True)[schema.table("train_summary/curves").names]
    return models, curves_table


def summary_metrics(models: pd.DataFrame) -> dict:
    """Headline numbers for ``dvc metrics show``: unbiased accuracy by correlation level.

    Small on purpose, so that ``dvc metrics show`` and ``dvc exp show`` fit a screen
    (per-model numbers are in ``models.csv``); the level's accuracy is the mean over
    architectures and seeds, rounded to 4 decimals. Wall times are left out so the
    file depends only on params and seeds.
    """
    if models.empty:
        raise ValueError("no model to summarise")
    by_level = models.groupby("dataset_id", sort=False)["unbiased_acc"].mean()
    return {"unbiased_acc": {str(k): round(float(v), 4) for k, v in by_level.items()}}
