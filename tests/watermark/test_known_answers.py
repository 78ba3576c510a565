"""Known answers: a classifier that reads the watermark's text relies on it, and explainers find the text."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from watermark_synthetic import blind_reader, photos, text_reader, watermarked

from shortcut_audit.factors import image_scene
from shortcut_audit.factors.scene import ProbabilityReader
from shortcut_audit.factors.watermark import CARTON, WATERMARK, watermark_mask
from shortcut_audit.imagenet.explain import CountingScorer
from shortcut_audit.watermark.audit import audit_images, watermark_verdict
from shortcut_audit.watermark.config import ExplainConfig, WatermarkConfig
from shortcut_audit.watermark.explainers import benchmark_explainers, mask_scores

SIZE = 96


def _verdict(model, images):
    reader = ProbabilityReader(model, batch_size=64)
    labels = reader.predict(images)
    scene = image_scene(images, labels, [WATERMARK])
    row, _ = watermark_verdict(
        reader,
        scene,
        "predicted",
        threshold=0.1,
        n_items=16,
        repetitions=1,
        max_doublings=3,
        pool_size=None,
        n_resamples=500,
        seed=0,
    )
    return row


def test_a_classifier_reading_the_text_relies_on_the_watermark():
    images = photos(16, SIZE)
    model = text_reader(images)
    assert (model(images).argmax(1) != CARTON).all() and (model(watermarked(images)).argmax(1) == CARTON).all()
    row = _verdict(model, images)
    assert row["state"] == "relied_on" and row["statistic"] == "top1_change_rate"
    assert row["drop"] == pytest.approx(1.0) and row["ci_low"] >= 0.1


def test_a_classifier_blind_to_the_text_does_not_rely_on_it():
    images = photos(16, SIZE)
    model = blind_reader(images)
    row = _verdict(model, images)
    assert row["state"] == "not_relied_on" and row["drop"] == 0.0 and row["ci_high"] < 0.1


def _explain_config(**overrides) -> ExplainConfig:
    explain = {
        "models": ["efficientnet_lite0"],
        "forwards": 2000,
        "methods": ["sobol", "rise", "occlusion"],
        "white_box": [],
        "dilation": 3,
        "sobol": {"grid_size": 12},
        "rise": {"grid_size": 12},
        "occlusion": {"patch_fraction": 0.05},
        "ensembles": {"normalisations": ["z"], "aggregations": ["mean"]},
    }
    explain.update(overrides)
    return ExplainConfig.from_params({"watermark": {"explain": explain}}, ["efficientnet_lite0"])


def _benchmark(model, images, config):
    mask = watermark_mask(SIZE, SIZE, dilation=config.dilation)
    scorer = CountingScorer(model, torch.device("cpu"))
    return benchmark_explainers(
        model,
        scorer,
        watermarked(images),
        [str(i) for i in range(len(images))],
        mask,
        config,
        batch_size=256,
        seed=0,
        n_resamples=500,
        log=lambda message: None,
    )


def test_sobol_rise_and_occlusion_put_most_attribution_on_the_text():
    images = photos(4, SIZE)
    bench = _benchmark(text_reader(images), images, _explain_config())
    summary = bench.summary.set_index("method")
    chance = float(watermark_mask(SIZE, SIZE, dilation=3).double().mean())
    assert bench.chance == pytest.approx(chance) and chance < 0.3
    for method in ("sobol", "rise", "occlusion"):
        assert summary.at[method, "mask_share"] > 0.5, method
        assert summary.at[method, "mask_share_ci_low"] > chance, method
        assert summary.at[method, "pointing"] == 1.0, method
        assert summary.at[method, "forwards"] <= 2000, method
    assert summary.at["z_mean", "kind"] == "ensemble"
    assert summary.at["z_mean", "forwards"] == pytest.approx(
        sum(summary.at[m, "forwards"] for m in ("sobol", "rise", "occlusion"))
    )


def test_rise_offset_dilutes_its_mass_but_not_its_pointing():
    """With a carton logit far above 0 on RISE's masks, Eq. 6 adds that mean to every pixel."""
    images = photos(4, SIZE)
    config = _explain_config(methods=["rise", "occlusion"])
    centred = _benchmark(text_reader(images), images, config).summary.set_index("method")
    offset = _benchmark(text_reader(images, centred=False), images, config).summary.set_index("method")
    assert offset.at["rise", "mask_share"] < centred.at["rise", "mask_share"] - 0.2
    assert offset.at["rise", "pointing"] == 1.0
    assert offset.at["occlusion", "mask_share"] == pytest.approx(centred.at["occlusion", "mask_share"], abs=1e-6)


def _scores_by_definition(maps: np.ndarray, mask: np.ndarray):
    chance = mask.mean()
    shares, points = [], []
    for a in maps:
        positive = np.maximum(a, 0.0)
        total = positive.sum()
        shares.append(positive[mask].sum() / total if total > 0 else chance)
        top = a == a.max()
        points.append(top[mask].sum() / top.sum())
    return np.array(shares), np.array(points)


def test_mask_scores_follow_their_definitions():
    rng = np.random.default_rng(0)
    mask = rng.random((9, 11)) < 0.3
    maps = rng.normal(size=(5, 9, 11))
    maps[1] = np.round(maps[1])  # ties at the maximum
    maps[2] = -np.abs(maps[2])  # no positive attribution: chance
    maps[3] = 0.0  # constant: chance on both scores
    maps[4][mask] += 10.0  # all the evidence on the mask
    share, pointing, mass = mask_scores(torch.tensor(maps), torch.tensor(mask))
    expected_share, expected_pointing = _scores_by_definition(maps, mask)
    np.testing.assert_allclose(share, expected_share, rtol=1e-12)
    np.testing.assert_allclose(pointing, expected_pointing, rtol=1e-12)
    assert share[3] == pointing[3] == pytest.approx(mask.mean()) and mass[2] == mass[3] == 0.0
    assert pointing[4] == 1.0 and share[4] > 0.8


def test_the_audit_of_the_text_reader_reports_the_effect_and_the_aspects():
    images = photos(12, SIZE)
    model = text_reader(images)
    params = {
        "watermark": {
            "models": ["efficientnet_lite0"],
            "n_bootstrap": 200,
            "verdict": {"n_images": 12},
            "morris": {"n_trajectories": 4},
            "explain": {"models": ["efficientnet_lite0"], "forwards": 100, "methods": ["rise"], "white_box": []},
        }
    }
    config = WatermarkConfig.from_params(params)
    from shortcut_audit.data.image_sets import ImageBatch

    batch = ImageBatch(images, [f"p{i}" for i in range(12)], torch.full((12,), -1))
    result = audit_images(ProbabilityReader(model, 64), batch, config.image_factors(), config, torch.device("cpu"))
    effects = result.effects.set_index("statistic")
    assert effects.at["top1_change_rate", "value"] == 1.0
    assert effects.at["carton_gap", "value"] == 1.0 and effects.at["carton_share_clean", "value"] == 0.0
    assert "accuracy_drop" not in effects.index  # no labels
    assert result.verdict["state"] == "relied_on"
    carton = result.morris[result.morris["output"] == "class_478_prob"].set_index("factor")
    assert set(carton.index) == {"watermark_opacity", "watermark_y", "watermark_text"}
    # each aspect changes which pixels the text brightens, or by how much: each moves the carton output
    assert (carton["mu_star"] > 0.01).all()
    assert set(result.morris["output"]) == {"class_478_prob", "true_class_prob"}
