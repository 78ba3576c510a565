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


@pytest.mark.parametrize("forwards, image_size, patch_fraction", [
    (16, 128, 0.2), (20, 128, 0.2), (25, 224, 0.2), (200, 128, 0.05), (3936, 224, 0.01), (200, 128, 0.2),
    (17, 32, 0.25), (100, 37, 1.0),
])
def test_occlusion_settings_cover_every_pixel_within_the_budget(make_params, tiny_model_path, forwards, image_size,
                                                                patch_fraction):
    from shortcut_audit.attribution.occlusion import window_starts

    config = parse_config(make_params([tiny_model_path], forwards=max(forwards, 40),
                                      occlusion={"patch_fraction": patch_fraction}))
    settings = method_settings("occlusion", forwards, image_size, config)
    patch, stride = settings["patch_size"], settings["stride"]
    starts = window_starts(image_size, patch, stride)
    covered = torch.zeros(image_size, dtype=torch.bool)
    for start in starts:
        covered[start:start + patch] = True
    assert covered.all(), (patch, stride)
    assert len(starts) ** 2 + 1 <= max(forwards, 5)  # windows plus the clean pass fit the budget
    assert patch >= round(patch_fraction * image_size)


def test_occlusion_on_a_small_budget_gives_finite_maps(make_params, tiny_model_path):
    config = parse_config(make_params([tiny_model_path], occlusion={"patch_fraction": 0.05}))
    loaded = load_imagenet_model(tiny_model_path, input_size=64)
    scorer = CountingScorer(loaded.model, torch.device("cpu"))
    run = run_method("occlusion", scorer, torch.rand(1, 3, 64, 64), torch.tensor([1]),
                     method_settings("occlusion", 20, 64, config), 16, 0)
    assert torch.isfinite(run.maps).all() and run.forwards_per_image <= 20
