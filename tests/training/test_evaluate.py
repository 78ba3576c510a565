"""Evaluation: accuracies, bias-conflicting subsets and the per-model metrics record."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import shortcut_audit  # noqa: F401
from shortcut_audit.data import biased_mnist as bm
from shortcut_audit.training.evaluate import (
    MODEL_METRIC_COLUMNS,
    accuracy,
    aligned_conflicting_gap,
    conflicting_accuracies,
    model_metrics,
    predict,
)
from shortcut_audit.training.results import TrainResult
from shortcut_audit.training.splits import RenderedSplit


class BackgroundReader(nn.Module):
    """A pure shortcut model: predicts the class linked to the background colour.

    The top-left pixel is always background (MNIST digits have blank borders), so
    the prediction is exactly ``bg_color``, whatever the digit.
    """

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x):
        corner = x[:, :, 0, 0]  # (N, 3)
        return -self.scale * torch.cdist(corner, bm.BG_PALETTE.to(x.device))


@pytest.fixture(scope="module")
def splits(data_root) -> dict[str, RenderedSplit]:
    return {
        name: RenderedSplit(*bm.load_split(data_root, "p0.99", name))
        for name in ("val", "test_unbiased", "test_aligned")
    }


def test_predict_and_accuracy_match_the_shortcut(splits):
    model = BackgroundReader().train()
    split = splits["test_unbiased"]
    preds = predict(model, split, batch_size=300)
    assert preds.tolist() == split.table.bg_color.tolist()
    assert model.training  # mode restored
    assert accuracy(model, split) == pytest.approx(split.table.bg_color_aligned.mean())


def test_model_metrics_of_a_pure_shortcut_model(splits):
    spec = bm.parse_dataset_id("p0.99")
    result = TrainResult(seconds=1.25, device="cpu")
    metrics = model_metrics(
        BackgroundReader(), splits, dataset_id="p0.99", spec=spec, arch="bg_reader", result=result, batch_size=256
    )
    assert tuple(metrics) == MODEL_METRIC_COLUMNS
    unbiased, aligned = splits["test_unbiased"].table, splits["test_aligned"].table
    assert metrics["aligned_acc"] == pytest.approx(aligned.bg_color_aligned.mean())
    assert metrics["unbiased_acc"] == pytest.approx(unbiased.bg_color_aligned.mean())
    # Wrong on every row whose background is not the linked one ...
    assert metrics["conflicting_acc_bg_color"] == 0.0
    # ... and right on the others, whatever the digit colour.
    dc_conflicting = unbiased[~unbiased.digit_color_aligned]
    assert metrics["conflicting_acc_digit_color"] == pytest.approx(dc_conflicting.bg_color_aligned.mean())
    expected_gap = metrics["aligned_acc"] - np.mean([metrics[f"conflicting_acc_{f}"] for f in bm.FACTORS])
    assert metrics["aligned_conflicting_gap"] == pytest.approx(expected_gap)
    assert metrics["aligned_conflicting_gap"] > 0.8
    assert metrics["p"] == 0.99 and metrics["biased_factors"] == "digit_color+bg_color+position"
    assert metrics["n_params"] == 1 and metrics["epochs"] == 0 and metrics["train_seconds"] == 1.25


def _table(aligned: dict[str, list[bool]]) -> pd.DataFrame:
    return pd.DataFrame({f"{f}_aligned": aligned[f] for f in bm.FACTORS})


def test_conflicting_accuracies_by_hand():
    table = _table(
        {
            "digit_color": [True, False, False, True],
            "bg_color": [False, False, True, True],
            "position": [False, True, False, False],
        }
    )
    correct = np.array([True, False, True, True])
    acc = conflicting_accuracies(correct, table)
    assert acc == {"digit_color": 0.5, "bg_color": 0.5, "position": 1.0}
    assert aligned_conflicting_gap(0.9, acc, ("bg_color",)) == pytest.approx(0.4)
    assert aligned_conflicting_gap(0.9, acc, ("digit_color", "position")) == pytest.approx(0.15)


def test_conflicting_accuracies_errors():
    table = _table({"digit_color": [True, True], "bg_color": [False, True], "position": [False, False]})
    with pytest.raises(ValueError, match="no bias-conflicting row for digit_color"):
        conflicting_accuracies(np.array([True, False]), table)
    with pytest.raises(ValueError, match="3 predictions for a table of 2 rows"):
        conflicting_accuracies(np.array([True, False, True]), table)
    with pytest.raises(ValueError, match="at least one biased factor"):
        aligned_conflicting_gap(0.5, {"bg_color": 0.1}, ())


def test_known_validation_accuracy_is_reused(splits):
    tests = {name: splits[name] for name in ("test_unbiased", "test_aligned")}
    metrics = model_metrics(
        BackgroundReader(),
        tests,
        dataset_id="bg_color-p0.99",
        spec=bm.parse_dataset_id("bg_color-p0.99"),
        arch="bg_reader",
        result=TrainResult(),
        val_acc=0.75,
    )
    assert metrics["val_acc"] == 0.75
    assert metrics["biased_factors"] == "bg_color"
    # only the background is biased: the gap uses its conflicting accuracy alone
    assert metrics["aligned_conflicting_gap"] == pytest.approx(metrics["aligned_acc"])
    with pytest.raises(ValueError, match=r"needs split\(s\) \['val'\]"):
        model_metrics(
            BackgroundReader(),
            tests,
            dataset_id="p0.99",
            spec=bm.parse_dataset_id("p0.99"),
            arch="bg_reader",
            result=TrainResult(),
        )
