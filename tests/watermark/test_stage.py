"""The audit_watermark stage end to end: every table, user factors, and bad input that writes nothing."""

from __future__ import annotations

import importlib.util
import json
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from watermark_synthetic import TINY_MODEL, TINY_MODULE, tiny_params

from shortcut_audit.config import ParamError
from shortcut_audit.factors.base import FactorError
from shortcut_audit.stages import audit_watermark
from shortcut_audit.watermark.pipeline import COLUMNS, map_key

USER_FACTORS = textwrap.dedent("""
    import torch


    def red_border(images, level):
        out = images.clone()
        out[level == 1, 0, :2, :] = 1.0
        return out


    def wrong_shape(images, level):
        return images[:, :, 1:, :]


    def not_a_number(images, level):
        return images * float("nan")
""")


def _stage():
    return audit_watermark


@pytest.fixture()
def workdir(tmp_path, monkeypatch):
    """A folder with the tiny model (importable) and the user factors; the stage runs from there."""
    (tmp_path / "tiny_watermark_net.py").write_text(TINY_MODULE)
    (tmp_path / "my_factors.py").write_text(USER_FACTORS)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _params(models=(TINY_MODEL,), **watermark) -> dict:
    params = tiny_params(models=list(models), **watermark)
    if "explain" not in watermark:
        params["watermark"]["explain"]["models"] = [models[0]]
    params["factors"] = {
        "red_border": {"function": "my_factors.py:red_border", "levels": ["none", "red"]},
        "wrong_shape": {"function": "my_factors.py:wrong_shape", "levels": ["off", "on"]},
        "not_a_number": {"function": "my_factors.py:not_a_number", "range": [0.0, 1.0]},
    }
    return params


def _run(folder: Path, params: dict, output: Path) -> int:
    (folder / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True))
    return _stage().main(["--params", str(folder / "params.yaml"), "--output", str(output)])


def test_stage_writes_every_table_and_audits_a_user_factor(workdir):
    params = _params(
        morris={"n_trajectories": 2, "factors": ["watermark_opacity", "watermark_y", "watermark_text", "red_border"]}
    )
    out = workdir / "watermark"
    assert _run(workdir, params, out) == 0
    for name, columns in COLUMNS.items():
        assert list(pd.read_csv(out / f"{name}.csv", keep_default_na=False).columns) == columns, name
    morris = pd.read_csv(out / "morris.csv")
    assert set(morris["factor"]) == {"watermark_opacity", "watermark_y", "watermark_text", "red_border"}
    assert set(morris["output"]) == {"class_478_prob", "true_class_prob"}
    verdicts = pd.read_csv(out / "verdicts.csv")
    assert len(verdicts) == 1 and verdicts["state"].iloc[0] in ("relied_on", "not_relied_on", "inconclusive")
    assert verdicts["statistic"].iloc[0] == "top1_change_rate"  # the sample photos carry no labels
    effects = pd.read_csv(out / "effects.csv")
    assert "accuracy_drop" not in set(effects["statistic"]) and (effects["n_images"] == 2).all()
    summary = pd.read_csv(out / "explainer_summary.csv")
    assert set(summary["method"]) == {"sobol", "rise", "occlusion", "gradient", "gradcam", "z_mean", "z_ucb"}
    assert summary["chance"].nunique() == 1 and 0 < summary["chance"].iloc[0] < 1
    metrics = json.loads((out / "metrics.json").read_text())
    model = TINY_MODEL
    assert metrics["models"][model]["verdict"]["state"] == verdicts["state"].iloc[0]
    assert metrics["explainers"][model]["best_by_mask_share"] in set(summary["method"])
    gap = effects.loc[effects["statistic"] == "carton_gap", "value"].iloc[0]
    assert json.loads((out / "headline.json").read_text()) == {
        "carton_gap": {model: round(gap, 4)},
        "relied_on": int(verdicts["state"].iloc[0] == "relied_on"),
    }
    maps = np.load(out / "maps.npz")
    assert maps[map_key("images", model)].shape == (2, 3, 48, 48)
    assert maps[map_key("mask", model)].dtype == bool
    assert maps[map_key("map", model, "sobol")].shape == (2, 48, 48)


def test_a_model_without_weights_is_skipped(workdir, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(workdir / "empty_hub"))
    out = workdir / "watermark"
    assert _run(workdir, _params(models=(TINY_MODEL, "resnet50")), out) == 0
    models = pd.read_csv(out / "models.csv", keep_default_na=False).set_index("model")
    assert models.at["resnet50", "status"] == "skipped" and "resnet50" in models.at["resnet50", "reason"]
    assert set(pd.read_csv(out / "verdicts.csv")["model"]) == {TINY_MODEL}


def _fails(folder: Path, params: dict, error, match: str) -> None:
    out = folder / "watermark"
    out.mkdir()
    (out / "earlier.csv").write_text("kept\n")
    with pytest.raises(error, match=match):
        _run(folder, params, out)
    assert [p.name for p in out.iterdir()] == ["earlier.csv"]  # nothing written, nothing removed
    assert not [p for p in folder.iterdir() if p.name.startswith(".tmp-")]


def test_an_unknown_factor_is_refused_by_name(workdir):
    params = _params(morris={"factors": ["watermark_opacty"]})
    _fails(
        workdir,
        params,
        ParamError,
        r"watermark\.morris\.factors.*'watermark_opacty'.*did you mean "
        r"'watermark_opacity'",
    )


@pytest.mark.parametrize("factor, problem", [("wrong_shape", "returned shape"), ("not_a_number", "NaN")])
def test_a_factor_function_that_misbehaves_is_named(workdir, factor, problem):
    params = _params(morris={"factors": ["watermark_opacity", factor]})
    _fails(workdir, params, FactorError, f"{factor}.*{problem}")


def test_a_text_the_font_cannot_draw_is_named(workdir):
    params = _params(texts={"chinese": "捷径捷径捷径", "malayalam": "\u0d15\u0d16"})
    _fails(workdir, params, FactorError, "watermark_text.*cannot draw")


def test_a_missing_imagenet_w_package_is_named(workdir, monkeypatch):
    real = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        return None if name == "imagenet_w" else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    _fails(workdir, _params(), FactorError, "factor 'watermark' needs the package imagenet-w")


@pytest.mark.parametrize(
    "override, key",
    [
        (
            {"explain": {"models": ["efficientnet_lite0"], "forwards": 40, "methods": ["rise"]}},
            "watermark.explain.models",
        ),
        (
            {"explain": {"models": [TINY_MODEL], "forwards": 40, "methods": ["sobol"], "sobol": {"grid_size": 6}}},
            "watermark.explain.forwards",
        ),
        ({"explain": {"models": [TINY_MODEL], "forwards": 40, "methods": ["lime"]}}, "watermark.explain.methods"),
        ({"models": ["no_such_net"]}, "watermark.models"),
        ({"verdict": {"drop_threshold": 1.5}}, "watermark.verdict.drop_threshold"),
        ({"texts": {}}, "watermark.texts"),
    ],
)
def test_bad_settings_name_their_key(workdir, override, key):
    _fails(workdir, _params(**override), ParamError, key.replace(".", r"\."))


@pytest.mark.slow
def test_stage_on_efficientnet_lite0(workdir):
    """The real model on two sample photos at a reduced budget: a carton logit the watermark raises."""
    params = _params(models=("efficientnet_lite0",), input_size=None, morris={"n_trajectories": 2})
    out = workdir / "watermark"
    assert _run(workdir, params, out) == 0
    effects = pd.read_csv(out / "effects.csv").set_index("statistic")
    assert effects.at["carton_logit_shift", "value"] > 0  # the watermark raises the carton logit
    summary = pd.read_csv(out / "explainer_summary.csv")
    assert (summary["forwards"][summary["kind"] == "black_box"] <= 40).all()
    assert pd.read_csv(out / "models.csv")["input_size"].iloc[0] == 224


def test_same_seed_same_numbers(workdir):
    first, second = workdir / "first", workdir / "second"
    assert _run(workdir, _params(), first) == 0 and _run(workdir, _params(), second) == 0
    for name in COLUMNS:
        a, b = (pd.read_csv(folder / f"{name}.csv") for folder in (first, second))
        timing = [c for c in a.columns if "seconds" in c]
        pd.testing.assert_frame_equal(a.drop(columns=timing), b.drop(columns=timing), check_exact=True, obj=name)
    assert (first / "metrics.json").read_text() == (second / "metrics.json").read_text()
