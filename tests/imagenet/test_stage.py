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
    fidelity = pd.read_csv(out / "fidelity.csv", keep_default_na=False)
    methods = {"sobol", "rise", "occlusion", "morris_grid", "geex"}
    assert set(fidelity["method"]) == methods | {"random", "constant"}
    assert {"deletion_auc", "insertion_auc", "naopc", "l1_to_white_box"} <= set(fidelity["metric"])
    assert set(fidelity["protocol"]) == {"rise", "region", ""}  # "": the L1 distance, no perturbation
    summary = pd.read_csv(out / "fidelity_summary.csv")
    assert len(summary) == 2 * 7 * 3  # protocols x (methods + 2 reference maps) x scores
    assert set(summary.loc[summary["method"] == "random", "vs_random"]) == {"reference"}
    assert set(summary["vs_random"]) <= {"better", "worse", "inconclusive", "reference"}
    curves = pd.read_csv(out / "curves.csv")
    region = curves[(curves["protocol"] == "region") & (curves["method"] == "sobol") & (curves["mode"] == "deletion")]
    assert len(region) == 4 * 4 + 1  # one cell of the 4 x 4 grid per step
    ensembles = pd.read_csv(out / "ensembles.csv", keep_default_na=False)
    assert len(ensembles[ensembles["kind"] == "ensemble"]) == 2 * 4
    assert set(ensembles.loc[ensembles["kind"] == "reference", "members"]) == {"random", "constant"}
    size = ensembles[ensembles["kind"] == "size_protocol"]
    assert len(size) == 2 * 5 * 2  # orderings x ensemble sizes 1..5 x (mean, ucb)
    assert set(size["ordered_by"]) == {"deletion_auc", "insertion_auc"}
    assert (ensembles["deletion_ci_low"] <= ensembles["deletion_auc"]).all()
    assert set(pd.read_csv(out / "convergence.csv")["method"]) == {"sobol", "rise"}
    assert len(pd.read_csv(out / "overlap.csv")) == 2  # the second architecture vs the reference, per image
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["models"]["resnet50"] == "skipped" and "sobol" in metrics["sobol_vs_baselines"]["deletion_auc"]
    assert metrics["headline_protocol"] == "rise" and set(metrics["fidelity_protocols"]) == {"rise", "region"}
    maps = np.load(out / "maps.npz")
    assert maps["map_sobol"].shape == (2, 32, 32) and maps["images"].dtype == np.float16


def test_stage_validates_before_work(tmp_path, make_params):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(make_params(["efficientnet_lite0"], forwards=-1)))
    with pytest.raises(ParamError, match="imagenet.forwards"):
        _stage().main(["--params", str(tmp_path / "params.yaml"), "--output", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()
