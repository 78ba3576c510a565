"""The explain_imagenet stage on 2 torchrun processes (CPU, gloo) against the single-process run."""

from __future__ import annotations

import json
import math
import os
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from shortcut_audit.distributed import DistributedRunError
from shortcut_audit.imagenet.pipeline import TABLES
from shortcut_audit.io import is_temporary

# wall times differ between runs; everything else must not
TIMING = {"seconds", "forward_seconds", "explain_seconds"}
# the last bits of a forward pass depend on how many inputs share its batch (a process batches fewer images)
TOLERANCE = dict(rtol=1e-6, atol=1e-6)

FAILING_MODULE = textwrap.dedent("""
    import os

    from tiny_imagenet_net import build


    def build_on_rank_0_only():
        if os.environ.get("RANK") == "1":
            raise RuntimeError("the weights of this model are missing on this node")
        return build(seed=2)
""")


def _stage():
    from shortcut_audit.stages import explain_imagenet

    return explain_imagenet


@pytest.fixture
def worker_path(tmp_path, monkeypatch, tiny_model_path):
    """Workers are new processes: they find the tiny model modules through PYTHONPATH."""
    (tmp_path / "failing_imagenet_net.py").write_text(FAILING_MODULE)
    paths = [str(tmp_path), str(Path(__file__).resolve().parents[2] / "src"), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_hub"))
    return tmp_path


def _run(tmp_path: Path, params: dict, name: str, processes: int) -> Path:
    params = {**params, "launcher": {"nproc_per_node": processes}}
    (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(params))
    out = tmp_path / name
    assert _stage().main(["--params", str(tmp_path / f"{name}.yaml"), "--output", str(out)]) == 0
    return out


def _same_json(a, b, path="metrics"):
    if isinstance(a, dict):
        assert set(a) == set(b), path
        for key in a:
            if key not in TIMING:
                _same_json(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _same_json(x, y, f"{path}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert math.isclose(a, b, rel_tol=TOLERANCE["rtol"], abs_tol=TOLERANCE["atol"]), (path, a, b)
    else:
        assert a == b, (path, a, b)


def assert_same_outputs(single: Path, sharded: Path) -> None:
    """Same files, rows and columns; text, integers and booleans equal; numbers to 1e-6."""
    assert sorted(p.name for p in single.iterdir()) == sorted(p.name for p in sharded.iterdir())
    for name in TABLES:
        a = pd.read_csv(single / f"{name}.csv", keep_default_na=False)
        b = pd.read_csv(sharded / f"{name}.csv", keep_default_na=False)
        assert list(a.columns) == list(b.columns) and len(a) == len(b), name
        for column in a.columns:
            if column in TIMING:
                continue
            if a[column].dtype.kind == "f" or b[column].dtype.kind == "f":
                np.testing.assert_allclose(
                    b[column].to_numpy(float), a[column].to_numpy(float), **TOLERANCE, err_msg=f"{name}.{column}"
                )
            else:
                assert a[column].tolist() == b[column].tolist(), f"{name}.{column}"
    maps_a, maps_b = np.load(single / "maps.npz"), np.load(sharded / "maps.npz")
    assert maps_a.files == maps_b.files
    for key in maps_a.files:
        if maps_a[key].dtype.kind == "f":
            np.testing.assert_allclose(maps_b[key], maps_a[key], **TOLERANCE, err_msg=key)
        else:
            assert np.array_equal(maps_a[key], maps_b[key]), key
    _same_json(json.loads((single / "metrics.json").read_text()), json.loads((sharded / "metrics.json").read_text()))


def test_two_processes_write_the_tables_of_one(worker_path, make_params, tiny_model_path):
    # 3 photos on 2 processes: rank 0 explains two (and alone the convergence image), rank 1 one
    params = make_params([tiny_model_path, "tiny_imagenet_net:build_other"], max_images=3)
    single = _run(worker_path, params, "single", 1)
    sharded = _run(worker_path, params, "sharded", 2)
    assert len(pd.read_csv(single / "fidelity.csv")["image_id"].unique()) == 3
    assert_same_outputs(single, sharded)
    assert not [p.name for p in worker_path.iterdir() if is_temporary(p.name)]  # no shard left behind


def test_a_failing_rank_fails_the_stage_with_no_output(worker_path, make_params, tiny_model_path):
    params = make_params([tiny_model_path, "failing_imagenet_net:build_on_rank_0_only"], max_images=3)
    with pytest.raises(
        DistributedRunError,
        match=r"^rank 1 of 2 .*RuntimeError: the weights of this model are "
        r"missing on this node",
    ):
        _run(worker_path, params, "failed", 2)
    assert not (worker_path / "failed").exists()
    assert not [p.name for p in worker_path.iterdir() if is_temporary(p.name)]
