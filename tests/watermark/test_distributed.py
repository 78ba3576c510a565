"""The audit_watermark stage on 2 torchrun processes (CPU, gloo) against the single-process run."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from watermark_synthetic import TINY_MODEL, TINY_MODULE, tiny_params

from shortcut_audit.distributed import DistributedRunError
from shortcut_audit.io import is_temporary
from shortcut_audit.stages import audit_watermark
from shortcut_audit.watermark.pipeline import TABLES

# wall times differ between runs; everything else must not
TIMING = {"seconds", "forward_seconds"}
# the last bits of a forward pass depend on how many photos share its batch (a process batches fewer)
ATOL = 1e-6

FAILING_MODULE = textwrap.dedent("""
    import os

    from tiny_watermark_net import build


    def build_on_rank_0_only():
        if os.environ.get("RANK") == "1":
            raise RuntimeError("the weights of this model are missing on this node")
        return build()
""")


@pytest.fixture
def worker_path(tmp_path, monkeypatch):
    """Workers are new processes: they find the tiny model modules through PYTHONPATH."""
    (tmp_path / "tiny_watermark_net.py").write_text(TINY_MODULE)
    (tmp_path / "failing_watermark_net.py").write_text(FAILING_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    paths = [str(tmp_path), str(Path(__file__).resolve().parents[2] / "src"), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_hub"))
    return tmp_path


def _params(model: str = TINY_MODEL) -> dict:
    # 3 photos: rank 0 takes two, rank 1 one; every ensemble, RBM included (per-photo random numbers)
    params = tiny_params(models=[model], max_images=3)
    explain = params["watermark"]["explain"]
    explain["models"] = [model]
    explain["ensembles"] = {"normalisations": ["z"], "aggregations": ["mean", "ucb", "rbm"]}
    return params


def _run(folder: Path, params: dict, name: str, processes: int) -> Path:
    params = {**params, "launcher": {"nproc_per_node": processes}}
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(params, allow_unicode=True))
    out = folder / name
    assert audit_watermark.main(["--params", str(folder / f"{name}.yaml"), "--output", str(out)]) == 0
    return out


def _json_difference(a, b, path: str = "metrics") -> float:
    """Largest absolute difference between the numbers of two JSON documents; anything else must be equal."""
    if isinstance(a, dict):
        assert set(a) == set(b), path
        return max([_json_difference(a[k], b[k], f"{path}.{k}") for k in a if k not in TIMING], default=0.0)
    if isinstance(a, list):
        assert len(a) == len(b), path
        return max([_json_difference(x, y, f"{path}[{i}]") for i, (x, y) in enumerate(zip(a, b))], default=0.0)
    if isinstance(a, float) or isinstance(b, float):
        return abs(float(a) - float(b))
    assert a == b, (path, a, b)
    return 0.0


def largest_difference(single: Path, sharded: Path) -> float:
    """Same files, rows and columns, text, integers and booleans; the largest absolute difference of the numbers."""
    assert sorted(p.name for p in single.iterdir()) == sorted(p.name for p in sharded.iterdir())
    worst = 0.0
    for name in TABLES:
        a = pd.read_csv(single / f"{name}.csv", keep_default_na=False)
        b = pd.read_csv(sharded / f"{name}.csv", keep_default_na=False)
        assert list(a.columns) == list(b.columns) and len(a) == len(b), name
        for column in a.columns:
            if column in TIMING:
                continue
            if a[column].dtype.kind == "f" or b[column].dtype.kind == "f":
                x, y = a[column].to_numpy(float), b[column].to_numpy(float)
                assert np.array_equal(np.isnan(x), np.isnan(y)), f"{name}.{column}"
                worst = max([worst, *np.abs(x - y)[~np.isnan(x)].tolist()])
            else:
                assert a[column].tolist() == b[column].tolist(), f"{name}.{column}"
    maps_a, maps_b = np.load(single / "maps.npz"), np.load(sharded / "maps.npz")
    assert maps_a.files == maps_b.files
    for key in maps_a.files:
        if maps_a[key].dtype.kind == "f":
            worst = max(worst, float(np.abs(maps_a[key].astype(float) - maps_b[key].astype(float)).max()))
        else:
            assert np.array_equal(maps_a[key], maps_b[key]), key
    for name in ("metrics.json", "headline.json"):
        worst = max(worst, _json_difference(*(json.loads((folder / name).read_text()) for folder in (single, sharded))))
    return worst


@pytest.mark.slow  # about 45 s: two runs, one of them through torchrun
def test_two_processes_write_the_tables_of_one(worker_path):
    single = _run(worker_path, _params(), "single", 1)
    sharded = _run(worker_path, _params(), "sharded", 2)
    assert len(pd.read_csv(single / "images.csv")) == 3
    assert set(pd.read_csv(single / "explainer_summary.csv")["method"]) >= {"sobol", "gradcam"}
    assert largest_difference(single, sharded) <= ATOL
    assert not [p.name for p in worker_path.iterdir() if is_temporary(p.name)]  # no shard left behind


def test_a_failing_rank_fails_the_stage_with_no_output(worker_path):
    with pytest.raises(
        DistributedRunError, match=r"^rank 1 of 2 .*RuntimeError: the weights of this model are missing on this node"
    ):
        _run(worker_path, _params("failing_watermark_net:build_on_rank_0_only"), "failed", 2)
    assert not (worker_path / "failed").exists()
    assert not [p.name for p in worker_path.iterdir() if is_temporary(p.name)]
