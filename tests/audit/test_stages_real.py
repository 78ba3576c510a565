"""End to end on real MNIST: a model trained at p = 0.99 through both audit stages."""

from __future__ import annotations

import copy
import importlib
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

import shortcut_audit  # noqa: F401
from shortcut_audit.data import biased_mnist as bm
from shortcut_audit.data import mnist
from shortcut_audit.io import read_json, write_table
from shortcut_audit.models.checkpoints import save_model
from shortcut_audit.models.registry import build
from shortcut_audit.training.loop import train_model
from shortcut_audit.training.settings import TrainConfig
from shortcut_audit.training.splits import RenderedSplit
from shortcut_audit.training.summary import model_dir

REPO = Path(__file__).resolve().parents[2]
DATASET = "p0.99"
SIZES = {"n_train": 3000, "n_val": 200, "n_test": 300}


def _stage(name: str):
    """The library module of a DVC stage (``stages/<name>.py`` only calls its ``main``)."""
    return importlib.import_module(f"shortcut_audit.stages.{name}")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A data folder (real MNIST, one Biased-MNIST level), a trained simple CNN and params."""
    root = tmp_path_factory.mktemp("audit_stage")
    data = root / "data"
    (data / "mnist").mkdir(parents=True)
    mnist.write_mnist_arrays(mnist.load_mnist(None), data / "mnist")
    arrays = mnist.load_mnist_arrays(data / "mnist")
    tables = bm.make_dataset(
        DATASET, bm.parse_dataset_id(DATASET), arrays["train_labels"], arrays["test_labels"], 0, **SIZES
    )
    folder = bm.dataset_dir(data, DATASET)
    folder.mkdir(parents=True)
    for split, table in tables.items():
        write_table(table, folder / f"{split}.parquet")
    splits = {s: RenderedSplit(*bm.load_split(data, DATASET, s)) for s in ("train", "val")}
    torch.manual_seed(0)
    model = build("simple_cnn")
    train_model(model, splits["train"], splits["val"], TrainConfig(epochs=1, batch_size=128, lr=0.002), progress=False)
    save_model(
        model,
        {"arch": "simple_cnn", "num_classes": 10, "in_channels": 3, "image_size": 56, "dataset_id": DATASET},
        model_dir(data / "models", DATASET, "simple_cnn", 0),
    )
    params = copy.deepcopy(yaml.safe_load((REPO / "params.yaml").read_text()))
    params["device"] = "cpu"
    params["biased_mnist"].update(datasets=[DATASET], **SIZES)
    params["train"]["architectures"] = ["simple_cnn"]
    params["audit"]["interventions"]["n_digits"] = 128
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return root


@pytest.mark.slow
def test_both_stages_on_a_model_trained_at_high_bias(workspace):
    data, params = workspace / "data", str(workspace / "params.yaml")
    assert (
        _stage("audit_factors").main(
            [
                "--dataset",
                DATASET,
                "--arch",
                "simple_cnn",
                "--params",
                params,
                "--data",
                str(data),
                "--models",
                str(data / "models"),
                "--output",
                str(data / "audit"),
            ]
        )
        == 0
    )
    folder = data / "audit" / DATASET / "simple_cnn" / "seed0"
    metrics = read_json(folder / "metrics.json")
    assert metrics["p"] == 0.99 and metrics["biased_factors"] == "digit_color+bg_color+position"
    verdicts = pd.read_parquet(folder / "verdicts.parquet").set_index("factor")
    # at p = 0.99 the colours decide the class: at least one of them is relied on
    assert (verdicts.loc[["digit_color", "bg_color"], "state"] == "relied_on").any()
    assert (verdicts["ci_low"] <= verdicts["drop"]).all() and (verdicts["drop"] <= verdicts["ci_high"]).all()
    assert (
        _stage("audit_summary").main(
            ["--params", params, "--audit", str(data / "audit"), "--output", str(data / "audit_summary")]
        )
        == 0
    )
    summary = read_json(data / "audit_summary" / "metrics.json")
    assert sum(summary["cells"].values()) == 3
