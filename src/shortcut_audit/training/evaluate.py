"""Accuracy of a trained classifier on Biased-MNIST splits, and its per-model metrics.

The shortcut measurements follow Shrestha et al. (2021), "An Investigation of
Critical Issues in Bias Mitigation Techniques": a model that relies on a biased
factor is accurate when the factor takes its class-linked value (*aligned*
samples) and fails when it does not (*bias-conflicting* samples). Here

- ``aligned_acc``: accuracy on ``test_aligned`` (drawn at the training ``p``);
- ``conflicting_acc_<f>``: accuracy on the rows of ``test_unbiased`` (p = 0.1)
  whose factor ``f`` is *not* the linked value;
- ``aligned_conflicting_gap = aligned_acc - mean_f conflicting_acc_<f>`` over the
  dataset's biased factors: near 0 for a model that ignores the shortcuts, large
  for one that follows them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from torch import nn

from shortcut_audit import schema
from shortcut_audit._cpu_kernels import kernel_label
from shortcut_audit.data.biased_mnist import FACTORS, DatasetSpec
from shortcut_audit.models.registry import count_parameters

if TYPE_CHECKING:
    from shortcut_audit.training.results import TrainResult
    from shortcut_audit.training.splits import RenderedSplit

CONFLICTING_PREFIX = "conflicting_acc_"
# Column order of one model's metrics.json and of train_summary/models.csv (shortcut_audit.schema).
MODEL_METRIC_COLUMNS: tuple[str, ...] = tuple(schema.table("train_summary/models").columns)


@torch.no_grad()
def predict(model: nn.Module, split: RenderedSplit, batch_size: int = 1024) -> torch.Tensor:
    """Predicted classes of ``model`` (in eval mode) for every row of ``split``.

    Returns
    -------
    LongTensor (N,) on the CPU. The model's train/eval mode is restored afterwards.
    """
    was_training = model.training
    model.eval()
    try:
        preds = [model(images).argmax(1) for images, _ in split.batches(batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(preds).cpu()


def correct_mask(model: nn.Module, split: RenderedSplit, batch_size: int = 1024) -> np.ndarray:
    """Boolean (N,) array: whether each row of ``split`` is classified correctly."""
    return (predict(model, split, batch_size) == split.labels.cpu()).numpy()


def accuracy(model: nn.Module, split: RenderedSplit, batch_size: int = 1024) -> float:
    """Top-1 accuracy of ``model`` on ``split``."""
    return float(correct_mask(model, split, batch_size).mean())


def conflicting_accuracies(correct: np.ndarray, table: pd.DataFrame) -> dict[str, float]:
    """Accuracy on the bias-conflicting rows of each factor.

    Parameters
    ----------
    correct : bool array (N,), per row of ``table``
    table : factor table with the ``<factor>_aligned`` columns (normally ``test_unbiased``)

    Returns
    -------
    ``{factor: accuracy over rows with <factor>_aligned == False}`` for every factor.

    Raises
    ------
    ValueError
        When a factor has no conflicting row (the test split is too small).
    """
    correct = np.asarray(correct, dtype=bool)
    if len(correct) != len(table):
        raise ValueError(f"{len(correct)} predictions for a table of {len(table)} rows")
    out = {}
    for factor in FACTORS:
        conflicting = ~table[f"{factor}_aligned"].to_numpy(bool)
        if not conflicting.any():
            raise ValueError(f"no bias-conflicting row for {factor} in the test table; increase biased_mnist.n_test")
        out[factor] = float(correct[conflicting].mean())
    return out


def aligned_conflicting_gap(aligned_acc: float, conflicting: Mapping[str, float], biased: Sequence[str]) -> float:
    """``aligned_acc`` minus the mean bias-conflicting accuracy over the ``biased`` factors."""
    if not biased:
        raise ValueError("the gap needs at least one biased factor")
    missing = [f for f in biased if f not in conflicting]
    if missing:
        raise ValueError(f"no conflicting accuracy for biased factor(s) {missing}")
    return float(aligned_acc - np.mean([conflicting[f] for f in biased]))


def model_metrics(
    model: nn.Module,
    splits: Mapping[str, RenderedSplit],
    *,
    dataset_id: str,
    spec: DatasetSpec,
    arch: str,
    result: TrainResult,
    seed: int = 0,
    batch_size: int = 1024,
    val_acc: float | None = None,
) -> dict:
    """The per-model metrics record of docs/architecture.md.

    Parameters
    ----------
    model : the trained classifier
    splits : ``val``, ``test_unbiased`` and ``test_aligned`` as :class:`RenderedSplit`
    dataset_id, spec : the dataset and its parsed spec (p, biased factors)
    arch : registry name of ``model``
    result : the training run (epochs, seconds, device)
    seed : the training seed
    val_acc : validation accuracy when already known (e.g. the last epoch's of an
        evaluation-mode pass); measured on ``splits["val"]`` when None

    Returns
    -------
    dict with exactly the keys of :data:`MODEL_METRIC_COLUMNS`.
    """
    needed = ("test_unbiased", "test_aligned") if val_acc is not None else ("val", "test_unbiased", "test_aligned")
    missing = [name for name in needed if name not in splits]
    if missing:
        raise ValueError(f"model_metrics needs split(s) {missing}")
    unbiased = splits["test_unbiased"]
    unbiased_correct = correct_mask(model, unbiased, batch_size)
    conflicting = conflicting_accuracies(unbiased_correct, unbiased.table)
    aligned_acc = accuracy(model, splits["test_aligned"], batch_size)
    record = {
        "dataset_id": dataset_id,
        "p": float(spec.p),
        "biased_factors": "+".join(spec.biased),
        "arch": arch,
        "seed": int(seed),
        "n_params": count_parameters(model),
        "val_acc": float(val_acc) if val_acc is not None else accuracy(model, splits["val"], batch_size),
        "unbiased_acc": float(unbiased_correct.mean()),
        "aligned_acc": aligned_acc,
        **{f"{CONFLICTING_PREFIX}{factor}": acc for factor, acc in conflicting.items()},
        "aligned_conflicting_gap": aligned_conflicting_gap(aligned_acc, conflicting, spec.biased),
        "epochs": len(result.history),
        "train_seconds": round(float(result.seconds), 3),
        "device": result.device,
        "cpu_kernels": kernel_label(),
    }
    return {key: record[key] for key in MODEL_METRIC_COLUMNS}
