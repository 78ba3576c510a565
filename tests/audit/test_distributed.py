"""The audit_factors stage on 2 torchrun processes (CPU, gloo) against the single-process run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from audit_synthetic import trained_workspace

from shortcut_audit.io import is_temporary

REPO = Path(__file__).resolve().parents[2]
DATASET = "p0.9"
SIZES = {"n_train": 1000, "n_val": 100, "n_test": 120}
TOLERANCE = dict(rtol=1e-6, atol=1e-6)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """Real MNIST digits at one bias level, a simple CNN trained for one epoch, and small audit params."""
    root = tmp_path_factory.mktemp("audit_distributed")
    params = trained_workspace(root, DATASET, SIZES, batch_size=64, lr=0.005)
    params["audit"].update(n_digits=15, batch_size=256)
    params["audit"]["morris"].update(n_trajectories=4, levels=4)
    params["audit"]["interventions"].update(n_digits=17, repetitions=2, max_doublings=1, n_bootstrap=200)
    params["audit"]["pixel_view"].update(n_images=3, grid_size=4, nb_design=4)
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return root


def _audit(workspace: Path, name: str, processes: int) -> Path:
    from shortcut_audit.stages import audit_factors

    params = yaml.safe_load((workspace / "params.yaml").read_text())
    params["launcher"] = {"nproc_per_node": processes}
    (workspace / f"{name}.yaml").write_text(yaml.safe_dump(params))
    data = workspace / "data"
    assert (
        audit_factors.main(
            [
                "--dataset",
                DATASET,
                "--arch",
                "simple_cnn",
                "--params",
                str(workspace / f"{name}.yaml"),
                "--data",
                str(data),
                "--models",
                str(data / "models"),
                "--output",
                str(workspace / name),
            ]
        )
        == 0
    )
    return workspace / name / DATASET / "simple_cnn" / "seed0"


def _close(a, b) -> bool:
    if isinstance(a, dict):
        return set(a) == set(b) and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(a, b, rel_tol=TOLERANCE["rtol"], abs_tol=TOLERANCE["atol"])
    return a == b


def test_two_processes_write_the_audit_of_one(workspace, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(REPO / "src"))
    single = _audit(workspace, "single", 1)
    sharded = _audit(workspace, "sharded", 2)
    assert sorted(p.name for p in single.iterdir()) == sorted(p.name for p in sharded.iterdir())
    for path in sorted(single.glob("*.parquet")):
        a, b = pd.read_parquet(path), pd.read_parquet(sharded / path.name)
        assert list(a.columns) == list(b.columns) and len(a) == len(b), path.name
        for column in a.columns:
            if a[column].dtype.kind == "f":
                np.testing.assert_allclose(b[column], a[column], **TOLERANCE, err_msg=f"{path.name}.{column}")
            else:
                assert a[column].tolist() == b[column].tolist(), f"{path.name}.{column}"
    maps_a, maps_b = np.load(single / "maps.npz"), np.load(sharded / "maps.npz")
    assert maps_a.files == maps_b.files
    for key in maps_a.files:
        np.testing.assert_allclose(maps_b[key].astype(float), maps_a[key].astype(float), **TOLERANCE, err_msg=key)
    metrics = json.loads((single / "metrics.json").read_text())
    assert _close(metrics, json.loads((sharded / "metrics.json").read_text()))
    # the digits of every step were shared out: 15 Morris digits, 3 pixel-view images, 17+ intervention digits
    assert metrics["budget"]["n_items"] >= 17 and len(pd.read_parquet(single / "pixel_view.parquet")) == 3
    assert not [p.name for p in (workspace / "sharded" / DATASET / "simple_cnn").iterdir() if is_temporary(p.name)]
