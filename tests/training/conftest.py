"""Fixtures for the training tests: small Biased-MNIST data folders built from real MNIST."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

import shortcut_audit  # noqa: F401
from shortcut_audit.data import biased_mnist as bm
from shortcut_audit.data import mnist
from shortcut_audit.io import write_table

REPO = Path(__file__).resolve().parents[2]
SMALL = {"n_train": 2000, "n_val": 500, "n_test": 1000}


@pytest.fixture(scope="session")
def mnist_dir(tmp_path_factory) -> Path:
    """``mnist/`` folder as the prepare_mnist stage writes it, from the offline package."""
    folder = tmp_path_factory.mktemp("mnist_src") / "mnist"
    folder.mkdir()
    mnist.write_mnist_arrays(mnist.load_mnist(None), folder)
    return folder


@pytest.fixture(scope="session")
def make_data_root(mnist_dir, tmp_path_factory) -> Callable[..., Path]:
    """Factory: a data folder (``mnist/`` + ``biased_mnist/<id>/<split>.parquet``) for the given ids."""

    def make(datasets, n_train: int, n_val: int, n_test: int, seed: int = 0) -> Path:
        root = tmp_path_factory.mktemp("data")
        (root / "mnist").symlink_to(mnist_dir, target_is_directory=True)
        arrays = mnist.load_mnist_arrays(mnist_dir)
        for dataset_id in datasets:
            tables = bm.make_dataset(
                dataset_id,
                bm.parse_dataset_id(dataset_id),
                arrays["train_labels"],
                arrays["test_labels"],
                seed,
                n_train,
                n_val,
                n_test,
            )
            folder = bm.dataset_dir(root, dataset_id)
            folder.mkdir(parents=True)
            for split, table in tables.items():
                write_table(table, folder / f"{split}.parquet")
        return root

    return make


@pytest.fixture(scope="session")
def data_root(make_data_root) -> Path:
    """p0.1 and p0.99 (all factors biased) with 2,000 training images."""
    return make_data_root(["p0.1", "p0.99"], **SMALL)


@pytest.fixture()
def params() -> dict:
    """The repository's params.yaml shrunk to the small test data (a fresh copy per test)."""
    params = copy.deepcopy(yaml.safe_load((REPO / "params.yaml").read_text()))
    params["device"] = "cpu"
    params["biased_mnist"].update(datasets=["p0.1", "p0.99"], **SMALL)
    params["train"].update(architectures=["simple_cnn", "mlp"], epochs=1, batch_size=128)
    return params


@pytest.fixture()
def write_params(tmp_path) -> Callable[[dict], Path]:
    def write(params: dict) -> Path:
        path = tmp_path / "params.yaml"
        path.write_text(yaml.safe_dump(params, sort_keys=False))
        return path

    return write
