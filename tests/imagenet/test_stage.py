"""The explain_imagenet stage end to end on a tiny model (plus a skipped torchvision model)."""

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
    from shortcut_audit.stages import explain_imagenet

    return explain_imagenet


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
    white = fidelity[fidelity["metric"] == "l1_to_white_box"]
    assert set(white["method"]) == {"rise", "geex"}
    assert set(white["reference"]) == {"gradient", "smoothgrad", "integrated_gradients"}
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
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["models"]["resnet50"] == "skipped" and "sobol" in metrics["sobol_vs_baselines"]["deletion_auc"]
    assert (
        set(metrics["convergence"])
        == set(metrics["convergence_variance"])
        == {f"{m}/independent/{b}" for m in ("sobol", "rise") for b in (20, 40)}
    )
    assert "geex/smoothgrad" in metrics["l1_to_white_box"] and "l1_to_white_box" not in metrics["methods"]["geex"]
    assert metrics["headline_protocol"] == "rise" and set(metrics["fidelity_protocols"]) == {"rise", "region"}
    maps = np.load(out / "maps.npz")
    assert maps["map_sobol"].shape == (2, 32, 32) and maps["images"].dtype == np.float16
    _check_mosip_tables(out, maps, metrics, [tiny_model_path, "tiny_imagenet_net:build_other"])


def _paper_ratio(mu_star, sigma, threshold):
    """MoSIP Fig. 6a on the global analysis: mu*/sigma over regions with normalised mu* or sigma > threshold."""
    relevant = (mu_star / mu_star.max() > threshold) | (sigma / sigma.max() > threshold)
    usable = relevant & (sigma > 0)
    return float(np.mean(mu_star[usable] / sigma[usable]))


def _check_mosip_tables(out, maps, metrics, models):
    first, second = models
    overlap = pd.read_csv(out / "overlap.csv")
    # alexnet is not configured: the first loaded model stands in, and the table says so
    assert set(overlap["model"]) == {second} and set(overlap["reference"]) == {first}
    assert set(overlap["requested_reference"]) == {"alexnet"} and metrics["overlap_reference"]["stands_in"]
    assert sorted(overlap["statistic"].unique()) == ["mu_star", "mu_star_plus_sigma", "sigma"] and len(overlap) == 6
    ratio = pd.read_csv(out / "ratio.csv").set_index("model")
    for model in models:  # the ratio is read from the global analysis (its arrays are in maps.npz)
        expected = _paper_ratio(maps[f"mu_star_global_{model}"], maps[f"sigma_global_{model}"], 0.6)
        assert ratio.loc[model, "mean_ratio"] == pytest.approx(expected, rel=1e-5)
        assert maps[f"mu_star_global_{model}"].shape == (4, 4) and maps[f"mu_star_{model}"].shape == (2, 4, 4)
    masking = pd.read_csv(out / "masking.csv")
    # 2 scopes x (3 statistics + random + constant) x 2 directions x steps 0..4 (25% of 16 regions), per model
    assert len(masking) == 2 * 100 and set(masking["target_kind"]) == {"predicted"}
    assert set(masking["ranking"]) == {"mu_star", "sigma", "mu_star_plus_sigma", "random", "constant"}
    assert (masking.loc[masking["step"] == 0, "accuracy"] == 1.0).all()
    pairs = pd.read_csv(out / "interactions.csv")
    assert len(pairs) == 2 * 3 and (pairs["interacts"] == (pairs["drop_x"] + pairs["drop_y"] > pairs["drop_xy"])).all()
    assert len(pd.read_csv(out / "score_interactions.csv")) == 2 * 2 * 3


def test_stage_uses_the_configured_overlap_reference(tmp_path, monkeypatch, make_params, tiny_model_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_hub"))
    other = "tiny_imagenet_net:build_other"
    params = make_params(
        [tiny_model_path, other],
        methods=["rise"],
        convergence={"methods": ["rise"], "budgets": [20], "reference_forwards": 40, "n_images": 1},
        cross_architecture={"reference_model": other, "top_k": 3},
    )
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    assert _stage().main(["--params", str(tmp_path / "params.yaml"), "--output", str(tmp_path / "out")]) == 0
    overlap = pd.read_csv(tmp_path / "out" / "overlap.csv")
    assert set(overlap["model"]) == {tiny_model_path} and set(overlap["reference"]) == {other}
    assert set(overlap["requested_reference"]) == {other}


@pytest.mark.parametrize(
    "precision, path",
    [
        ("fp32", "cpu-fp32"),
        ("fast", "cpu-fp32-channels_last"),
        ("bf16", "cpu-bf16-channels_last"),
    ],
)
def test_stage_records_the_compute_path_and_fp32_can_be_forced(
    tmp_path, monkeypatch, make_params, tiny_model_path, precision, path
):
    """On a CPU with native bfloat16 (detection patched) each precision takes its path, and
    metrics.json says which arithmetic produced the numbers."""
    from shortcut_audit import runtime

    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: True)
    params = make_params(
        [tiny_model_path],
        methods=["rise", "occlusion"],
        precision=precision,
        convergence={"methods": ["rise"], "budgets": [20], "reference_forwards": 40, "n_images": 1},
    )
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    assert _stage().main(["--params", str(tmp_path / "params.yaml"), "--output", str(tmp_path / "out")]) == 0
    profile = json.loads((tmp_path / "out" / "metrics.json").read_text())["profile"]
    assert (profile["precision"], profile["compute_path"]) == (precision, path)


def test_stage_refuses_bf16_without_native_support_before_work(tmp_path, monkeypatch, make_params, tiny_model_path):
    from shortcut_audit import runtime

    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: False)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(make_params([tiny_model_path], precision="bf16")))
    with pytest.raises(ParamError, match=r"imagenet\.precision.*needs native bfloat16"):
        _stage().main(["--params", str(tmp_path / "params.yaml"), "--output", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


def test_stage_validates_before_work(tmp_path, make_params):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(make_params(["efficientnet_lite0"], forwards=-1)))
    with pytest.raises(ParamError, match="imagenet.forwards"):
        _stage().main(["--params", str(tmp_path / "params.yaml"), "--output", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()
