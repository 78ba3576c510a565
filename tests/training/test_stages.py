"""Stages train and train_summary on small data: outputs, schemas, errors before any work."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import shortcut_audit  # noqa: F401
from shortcut_audit.config import ParamError
from shortcut_audit.models.checkpoints import load_model
from shortcut_audit.training.evaluate import MODEL_METRIC_COLUMNS
from shortcut_audit.training.summary import MissingModelError

REPO = Path(__file__).resolve().parents[2]


def _stage(name: str):
    """The library module of a DVC stage (``stages/<name>.py`` only calls its ``main``)."""
    return importlib.import_module(f"shortcut_audit.stages.{name}")


train_stage = _stage("train")
summary_stage = _stage("train_summary")


def _train(params_path, data_root, models, dataset, arch):
    return train_stage.main(
        [
            "--dataset",
            dataset,
            "--arch",
            arch,
            "--params",
            str(params_path),
            "--data",
            str(data_root),
            "--output",
            str(models),
            "--no-progress",
        ]
    )


@pytest.fixture(scope="module")
def trained(data_root, tmp_path_factory) -> Path:
    """data/models with mlp trained on p0.1 and p0.99 (2 epochs by a per-architecture override, 2,000 images)."""
    import yaml

    folder = tmp_path_factory.mktemp("sweep")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["device"] = "cpu"
    params["biased_mnist"].update(datasets=["p0.1", "p0.99"], n_train=2000, n_val=500, n_test=1000)
    params["train"].update(
        architectures=["mlp"],
        epochs=1,
        batch_size=128,
        per_architecture={"mlp": {"epochs": 2}, "simple_cnn": {"epochs": 3}},
    )
    (folder / "params.yaml").write_text(yaml.safe_dump(params))
    for dataset in ("p0.1", "p0.99"):
        assert _train(folder / "params.yaml", data_root, folder / "models", dataset, "mlp") == 0
    return folder


def test_train_stage_writes_the_model_folder(trained):
    folder = trained / "models" / "p0.99" / "mlp" / "seed0"
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "curve.csv", "metrics.json", "model.pt"]
    assert [p.name for p in folder.parent.iterdir()] == ["seed0"]  # no temporary leftovers
    metrics = json.loads((folder / "metrics.json").read_text())
    assert tuple(sorted(metrics)) == tuple(sorted(MODEL_METRIC_COLUMNS))
    assert metrics["dataset_id"] == "p0.99" and metrics["arch"] == "mlp" and metrics["epochs"] == 2
    assert metrics["seed"] == 0
    assert metrics["device"] == "cpu" and metrics["p"] == 0.99
    for key in ("val_acc", "unbiased_acc", "aligned_acc", "conflicting_acc_position"):
        assert 0.0 <= metrics[key] <= 1.0
    curve = pd.read_csv(folder / "curve.csv")
    assert curve.columns.tolist() == ["epoch", "train_loss", "train_acc", "val_acc"] and len(curve) == 2
    assert curve.val_acc.iloc[-1] == pytest.approx(metrics["val_acc"])
    model, config = load_model(folder)
    assert config == {
        "arch": "mlp",
        "num_classes": 10,
        "in_channels": 3,
        "image_size": 56,
        "dataset_id": "p0.99",
        "seed": 0,
    }
    with torch.no_grad():
        assert model(torch.rand(2, 3, 56, 56)).shape == (2, 10)


def test_train_stage_is_deterministic(trained, data_root, tmp_path):
    assert _train(trained / "params.yaml", data_root, tmp_path, "p0.99", "mlp") == 0
    again = torch.load(tmp_path / "p0.99" / "mlp" / "seed0" / "model.pt", weights_only=True)
    first = torch.load(trained / "models" / "p0.99" / "mlp" / "seed0" / "model.pt", weights_only=True)
    assert all(torch.equal(first[k], again[k]) for k in first)
    a = json.loads((tmp_path / "p0.99" / "mlp" / "seed0" / "metrics.json").read_text())
    b = json.loads((trained / "models" / "p0.99" / "mlp" / "seed0" / "metrics.json").read_text())
    assert {k: v for k, v in a.items() if k != "train_seconds"} == {k: v for k, v in b.items() if k != "train_seconds"}


@pytest.mark.parametrize(
    "key, value",
    [
        ("train.epochs", 0),
        ("train.batch_size", -8),
        ("train.lr", 0.0),
        ("train.architectures", ["mlp", "alexnet"]),
        ("biased_mnist.datasets", []),
        ("device", "gpu"),
    ],
)
def test_train_stage_rejects_bad_params_before_any_work(params, write_params, tmp_path, key, value):
    section, _, name = key.rpartition(".")
    (params[section] if section else params)[name] = value
    # The data folder does not exist: failing on it would mean work had started.
    argv = [
        "--dataset",
        "p0.1",
        "--arch",
        "mlp",
        "--params",
        str(write_params(params)),
        "--data",
        str(tmp_path / "no_data"),
        "--output",
        str(tmp_path / "models"),
    ]
    with pytest.raises(ParamError) as err:
        train_stage.main(argv)
    assert err.value.key == key
    assert not (tmp_path / "models").exists()


@pytest.mark.parametrize(
    "flag, value, key",
    [
        ("--dataset", "p0.7", "biased_mnist.datasets"),
        ("--arch", "resnet_small", "train.architectures"),
        ("--seed", "3", "train.seeds"),
    ],
)
def test_train_stage_rejects_a_model_outside_the_sweep(params, write_params, tmp_path, flag, value, key):
    choice = {"--dataset": "p0.1", "--arch": "mlp", "--seed": "0", flag: value}
    argv = [
        "--dataset",
        choice["--dataset"],
        "--arch",
        choice["--arch"],
        "--seed",
        choice["--seed"],
        "--params",
        str(write_params(params)),
        "--data",
        str(tmp_path / "no_data"),
        "--output",
        str(tmp_path / "models"),
    ]
    listed = f"does not list {flag} '{value}'" if flag != "--seed" else f"does not list seed {value}"
    with pytest.raises(ParamError, match=f"{key}: {listed}"):
        train_stage.main(argv)
    assert not (tmp_path / "models").exists()


def test_train_summary_collects_every_model(trained, tmp_path):
    out = tmp_path / "summary"
    assert (
        summary_stage.main(
            ["--params", str(trained / "params.yaml"), "--models", str(trained / "models"), "--output", str(out)]
        )
        == 0
    )
    assert sorted(p.name for p in out.iterdir()) == ["curves.csv", "metrics.json", "models.csv"]
    models = pd.read_csv(out / "models.csv")
    assert models.columns.tolist() == list(MODEL_METRIC_COLUMNS)
    assert list(zip(models.dataset_id, models.arch)) == [("p0.1", "mlp"), ("p0.99", "mlp")]
    curves = pd.read_csv(out / "curves.csv")
    assert curves.columns.tolist() == ["dataset_id", "arch", "seed", "epoch", "train_loss", "train_acc", "val_acc"]
    assert len(curves) == 4  # 2 epochs per model
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"unbiased_acc"}
    assert set(metrics["unbiased_acc"]) == {"p0.1", "p0.99"}
    assert metrics["unbiased_acc"]["p0.99"] == pytest.approx(models.unbiased_acc.iloc[1], abs=1e-4)
    assert np.isfinite(models.select_dtypes("number").to_numpy()).all()


def test_train_summary_names_a_missing_model(trained, tmp_path):
    import yaml

    params = yaml.safe_load((trained / "params.yaml").read_text())
    params["train"]["architectures"] = ["mlp", "simple_cnn"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(MissingModelError, match=r"model p0.1/simple_cnn/seed0: .* train@p0.1-simple_cnn-0"):
        summary_stage.main(
            [
                "--params",
                str(tmp_path / "params.yaml"),
                "--models",
                str(trained / "models"),
                "--output",
                str(tmp_path / "summary"),
            ]
        )
    assert not (tmp_path / "summary").exists()
