"""Collect the trained models of a sweep into one table of metrics and one of curves."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from shortcut_audit.training.evaluate import MODEL_METRIC_COLUMNS

CURVE_COLUMNS: tuple[str, ...] = ("epoch", "train_loss", "train_acc", "val_acc")
METRICS_FILE = "metrics.json"
CURVE_FILE = "curve.csv"


class MissingModelError(FileNotFoundError):
    """A model of the sweep has not been trained (or its outputs are incomplete)."""


def model_dir(models_root: str | Path, dataset_id: str, arch: str) -> Path:
    """Folder of one trained model: ``<models_root>/<dataset_id>/<arch>``."""
    return Path(models_root) / dataset_id / arch


def read_model_outputs(models_root: str | Path, dataset_id: str, arch: str) -> tuple[dict, pd.DataFrame]:
    """Metrics record and training curve of one model, checked against their schemas.

    Raises
    ------
    MissingModelError
        Naming the model and the stage that makes it, when a file is missing.
    ValueError
        When a file lacks columns/keys of the schema.
    """
    folder = model_dir(models_root, dataset_id, arch)
    for name in (METRICS_FILE, CURVE_FILE):
        if not (folder / name).is_file():
            raise MissingModelError(f"model {dataset_id}/{arch}: {folder / name} is missing; "
                                    f"train it with `dvc repro train@{dataset_id}-{arch}`")
    metrics = json.loads((folder / METRICS_FILE).read_text())
    missing = [key for key in MODEL_METRIC_COLUMNS if key not in metrics]
    if missing:
        raise ValueError(f"{folder / METRICS_FILE}: missing key(s) {missing}; retrain the model")
    if (metrics["dataset_id"], metrics["arch"]) != (dataset_id, arch):
        raise ValueError(f"{folder / METRICS_FILE}: describes {metrics['dataset_id']}/{metrics['arch']}, "
                         f"expected {dataset_id}/{arch}")
    curve = pd.read_csv(folder / CURVE_FILE)
    missing = [c for c in CURVE_COLUMNS if c not in curve.columns]
    if missing or curve.empty:
        raise ValueError(f"{folder / CURVE_FILE}: empty or missing column(s) {missing}; retrain the model")
    return {key: metrics[key] for key in MODEL_METRIC_COLUMNS}, curve[list(CURVE_COLUMNS)]


def collect_models(models_root: str | Path, datasets: Sequence[str],
                   architectures: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per model (``models.csv`` schema) and the stacked curves (``curves.csv``).

    Models are ordered dataset-major, in the order of ``datasets`` and ``architectures``.
    """
    rows, curves = [], []
    for dataset_id in datasets:
        for arch in architectures:
            metrics, curve = read_model_outputs(models_root, dataset_id, arch)
            rows.append(metrics)
            curves.append(curve.assign(dataset_id=dataset_id, arch=arch))
    models = pd.DataFrame(rows, columns=list(MODEL_METRIC_COLUMNS))
    curves_table = pd.concat(curves, ignore_index=True)[["dataset_id", "arch", *CURVE_COLUMNS]]
    return models, curves_table


def summary_metrics(models: pd.DataFrame) -> dict:
    """Sweep-level metrics for ``dvc metrics show``: means over models and per-model headlines."""
    if models.empty:
        raise ValueError("no model to summarise")
    gap = models["aligned_conflicting_gap"]
    return {
        "n_models": int(len(models)),
        "mean_val_acc": float(models["val_acc"].mean()),
        "mean_unbiased_acc": float(models["unbiased_acc"].mean()),
        "mean_aligned_acc": float(models["aligned_acc"].mean()),
        "mean_aligned_conflicting_gap": float(gap.mean()),
        "max_aligned_conflicting_gap": float(gap.max()),
        "total_train_seconds": float(np.round(models["train_seconds"].sum(), 3)),
        "models": {
            f"{row.dataset_id}/{row.arch}": {
                "unbiased_acc": float(row.unbiased_acc),
                "aligned_acc": float(row.aligned_acc),
                "aligned_conflicting_gap": float(row.aligned_conflicting_gap),
            }
            for row in models.itertuples(index=False)
        },
    }
