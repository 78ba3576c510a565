"""The measurement behind Biased-MNIST: strong correlation -> shortcut, p = 0.1 -> none.

Shrestha et al. (2021): a model trained where every factor agrees with the class
99% of the time scores high on aligned test data and collapses on bias-conflicting
data; trained on the unbiased p = 0.1 data it shows no such gap.
"""

from __future__ import annotations

import pytest
import torch

import shortcut_audit  # noqa: F401
from shortcut_audit.data import biased_mnist as bm
from shortcut_audit.models.registry import build
from shortcut_audit.training.evaluate import model_metrics
from shortcut_audit.training.loop import train_model
from shortcut_audit.training.settings import TrainConfig
from shortcut_audit.training.splits import RenderedSplit

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shortcut_data(make_data_root):
    return make_data_root(["p0.1", "p0.99"], n_train=4000, n_val=500, n_test=2000)


def _train_and_measure(root, dataset_id: str) -> dict:
    splits = {name: RenderedSplit(*bm.load_split(root, dataset_id, name)) for name in bm.SPLITS}
    torch.manual_seed(0)
    model = build("simple_cnn")
    result = train_model(
        model, splits["train"], splits["val"], TrainConfig(epochs=2, batch_size=64, lr=2e-3, seed=0), progress=False
    )
    metrics = model_metrics(
        model, splits, dataset_id=dataset_id, spec=bm.parse_dataset_id(dataset_id), arch="simple_cnn", result=result
    )
    print(dataset_id, {k: round(v, 3) for k, v in metrics.items() if isinstance(v, float)})
    return metrics


def test_simple_cnn_takes_the_shortcut_only_when_it_is_there(shortcut_data):
    biased = _train_and_measure(shortcut_data, "p0.99")
    unbiased = _train_and_measure(shortcut_data, "p0.1")

    # p = 0.99: near-perfect on aligned data, far worse on bias-conflicting data of every factor.
    assert biased["aligned_acc"] > 0.9
    assert biased["aligned_conflicting_gap"] > 0.5
    for factor in bm.FACTORS:
        assert biased[f"conflicting_acc_{factor}"] < biased["aligned_acc"] - 0.4

    # p = 0.1: the model learned the digits, and aligned and conflicting accuracies agree.
    assert unbiased["unbiased_acc"] > 0.6
    assert abs(unbiased["aligned_conflicting_gap"]) < 0.08
    assert biased["aligned_conflicting_gap"] - unbiased["aligned_conflicting_gap"] > 0.5
