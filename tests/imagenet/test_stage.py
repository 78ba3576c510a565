"""The explain_imagenet stage end to end on a tiny model (plus a skipped torchvision model)."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from shortcut_audit.config import ParamError
from shortcut_audit.imagenet.pipeline import COLUMNS

STAGE = Path(__file__).resolve().parents[2] / "stages" / "explain_imagenet.py"


def _stage():
    spec = importlib.util.spec_from_file_location("explain_imagenet_stage", STAGE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_stage_writes_every_table(tmp_path, monkeypatch, make_params, tiny_model_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_hub"))
    params = make_params([tiny_model_path, "resnet50", "tiny_imagenet_net:build_other"])
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    out = tmp_path / "imagenet"
    assert _stage().main(["--params", str(tmp_path / "params.yaml"), "--output", str(out)]) == 0
    for name, columns in COLUMNS.items():
        table = pd.read_csv(out / f"{name}.csv", keep_default_na=False)
        assert list(table.columns) == columns, name
    models = pd.read_csv(out / "models.csv", keep_default_na=False)
    assert models.set_index("model").loc["resnet50", "status"] == "skipped"
    assert "resnet50-0676ba61.pth" in models.set_index("model").loc["resnet50", "reason"]
    fidelity = pd.read_csv(out / "fidelity.csv")
    assert set(fidelity["method"]) == {"sobol", "rise", "occlusion", "morris_grid", "geex"}
    assert {"deletion_auc", "insertion_auc", "naopc", "l1_to_white_box"} <= set(fidelity["metric"])
    white = fidelity[fidelity["metric"] == "l1_to_white_box"]
    assert set(white["method"]) == {"rise", "geex"}
    assert set(white["reference"]) == {"gradient", "smoothgrad", "integrated_gradients"}
    ensembles = pd.read_csv(out / "ensembles.csv")
    assert len(ensembles[ensembles["kind"] == "ensemble"]) == 4
    assert set(pd.read_csv(out / "convergence.csv")["method"]) == {"sobol", "rise"}
    assert len(pd.read_csv(out / "overlap.csv")) == 2  # the second architecture vs the reference, per image
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["models"]["resnet50"] == "skipped" and "sobol" in metrics["sobol_vs_baselines"]["deletion_auc"]
    assert set(metrics["convergence"]) == set(metrics["convergence_variance"]) == {
        f"{m}/independent/{b}" for m in ("sobol", "rise") for b in (20, 40)}
    assert "geex/smoothgrad" in metrics["l1_to_white_box"] and "l1_to_white_box" not in metrics["methods"]["geex"]
    maps = np.load(out / "maps.npz")
    assert maps["map_sobol"].shape == (2, 32, 32) and maps["images"].dtype == np.float16


def test_stage_validates_before_work(tmp_path, make_params):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(make_params(["efficientnet_lite0"], forwards=-1)))
    with pytest.raises(ParamError, match="imagenet.forwards"):
        _stage().main(["--params", str(tmp_path / "params.yaml"), "--output", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()
