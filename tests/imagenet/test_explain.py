import pytest
import torch

from shortcut_audit.imagenet.config import parse_config
from shortcut_audit.imagenet.explain import (
    CountingScorer,
    ExplainedOutput,
    ReplayScorer,
    method_settings,
    morris_statistics,
    run_method,
)
from shortcut_audit.models.imagenet import load_imagenet_model


def test_every_method_stays_within_its_budget(make_params, tiny_model_path):
    config = parse_config(make_params([tiny_model_path]))
    loaded = load_imagenet_model(tiny_model_path, input_size=32)
    scorer = CountingScorer(loaded.model, torch.device("cpu"))
    images, targets = torch.rand(2, 3, 32, 32), torch.tensor([1, 2])
    for method in ("sobol", "rise", "occlusion", "morris_grid", "geex", "gers", "igeex"):
        run = run_method(method, scorer, images, targets, method_settings(method, 60, 32, config), 16, 0)
        assert run.maps.shape == (2, 32, 32) and torch.isfinite(run.maps).all()
        assert 0 < run.forwards_per_image <= 61, method  # occlusion adds its clean pass
        assert 0 < run.forward_seconds <= run.seconds


def test_morris_statistics_pay_the_forwards_once(make_params, tiny_model_path):
    config = parse_config(make_params([tiny_model_path]))
    loaded = load_imagenet_model(tiny_model_path, input_size=32)
    scorer = CountingScorer(loaded.model, torch.device("cpu"))
    images, targets = torch.rand(2, 3, 32, 32), torch.tensor([1, 2])
    mu_star, sigma, run = morris_statistics(scorer, images, targets, config, 16, 0)
    assert mu_star.shape == sigma.shape == (2, 4, 4)
    assert run.forwards_per_image == config.morris_trajectories * (16 + 1)
    assert (mu_star >= 0).all() and (sigma >= 0).all() and not torch.equal(mu_star, sigma)


def test_replay_refuses_different_inputs():
    scorer = CountingScorer(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 5)), torch.device("cpu"))
    replay = ReplayScorer(scorer)
    x = torch.rand(2, 3, 2, 2)
    first = replay(x)
    replay.replay()
    assert torch.equal(replay(x), first) and scorer.inputs_seen == 2
    replay.replay()
    with pytest.raises(RuntimeError, match="different inputs"):
        replay(x + 1)


def test_explained_output_logit_or_probability():
    scorer = CountingScorer(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 5)), torch.device("cpu"))
    x = torch.rand(3, 3, 2, 2)
    logits = ExplainedOutput(scorer, "logit")(x)
    probabilities = ExplainedOutput(scorer, "probability")(x)
    assert torch.allclose(probabilities, logits.softmax(dim=1)) and scorer.total_inputs == 6
    with pytest.raises(ValueError, match="output must be"):
        ExplainedOutput(scorer, "energy")


def test_geex_settings_follow_the_paper_and_convert_sigma_to_input_units(make_params):
    config = parse_config(make_params(["efficientnet_lite0"]))
    for method in ("geex", "gers", "igeex"):
        settings = method_settings(method, 64, 32, config, input_scale=0.5)
        assert settings["sigma"] == pytest.approx(config.geex_sigma * 0.5)
        assert (settings["loss"], settings["noise"], settings["model_output"]) == ("uniform_ce", "shared", "logits")
        # GERS and (on ImageNet) iGEEX draw low-resolution noise; GEEX full-resolution noise
        assert settings.get("noise_size") == (None if method == "geex" else config.geex_noise_size)
    probability = parse_config(make_params(["efficientnet_lite0"], explained_output="probability"))
    assert method_settings("geex", 64, 32, probability)["model_output"] == "probabilities"


def test_grid_override_sets_sobol_and_rise_masks(make_params):
    config = parse_config(make_params(["efficientnet_lite0"]))
    assert method_settings("sobol", 120, 32, config, grid_size=7) == {"grid_size": 7, "nb_design": 2}
    assert method_settings("rise", 120, 32, config, grid_size=7)["grid_size"] == 7
    assert method_settings("sobol", 120, 32, config)["grid_size"] == config.sobol_grid
