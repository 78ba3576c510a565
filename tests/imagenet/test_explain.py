import pytest
import torch

from shortcut_audit.imagenet.config import parse_config
from shortcut_audit.imagenet.explain import (
    CountingScorer,
    ExplainedOutput,
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


def test_morris_statistics_run_local_and_global_analyses(make_params, tiny_model_path):
    config = parse_config(make_params([tiny_model_path]))
    loaded = load_imagenet_model(tiny_model_path, input_size=32)
    scorer = CountingScorer(loaded.model, torch.device("cpu"))
    images, targets = torch.rand(2, 3, 32, 32), torch.tensor([1, 2])
    analyses = morris_statistics(scorer, images, targets, config, 16, 0)
    for stats in (analyses.local, analyses.global_per_image):
        assert set(stats) == {"mu_star", "sigma", "mu_star_plus_sigma"} and stats["mu_star"].shape == (2, 4, 4)
        assert (stats["mu_star"] >= 0).all() and (stats["sigma"] >= 0).all()
        assert torch.allclose(stats["mu_star_plus_sigma"], stats["mu_star"] + stats["sigma"])
    assert analyses.global_["sigma"].shape == (4, 4) and not torch.equal(
        analyses.local["mu_star"], analyses.global_per_image["mu_star"]
    )
    assert analyses.run.forwards_per_image == config.morris_trajectories * (16 + 1)  # one analysis' forwards
    assert scorer.total_inputs == 2 * 2 * config.morris_trajectories * 17  # both analyses, mu* and sigma once
    assert analyses.run.settings["sampling"] == "local" and analyses.run.maps.shape == (2, 32, 32)


def _paper_global_morris(model, images, targets, design, grid):
    """MoSIP Sec. 5 global analysis, written out: shared min/max lumped bounds, the same
    samples on every image's region map, EE per trajectory step, mu* and sigma, image mean."""
    n, c, h, w = images.shape
    rows = torch.arange(h)[:, None] * grid // h
    cols = torch.arange(w)[None, :] * grid // w
    region = rows * grid + cols  # (H, W)
    d = grid * grid
    lumped = torch.stack([torch.stack([images[i][:, region == j].sum() for j in range(d)]) for i in range(n)])
    low, high = lumped.min(0).values, lumped.max(0).values
    x = design.matrix().double()
    values = low.double() + x * (high - low).double()  # the same lumped samples for every image
    r = design.n_trajectories
    mu_star, sigma = torch.zeros(n, d), torch.zeros(n, d)
    for i in range(n):
        share = images[i] / lumped[i][region]
        rebuilt = values.float()[:, region][:, None] * share
        with torch.no_grad():
            f = model(rebuilt)[:, targets[i]].double()
        effects = torch.zeros(r, d, dtype=torch.float64)
        for t in range(r):
            xs, ys = x[t * (d + 1) : (t + 1) * (d + 1)], f[t * (d + 1) : (t + 1) * (d + 1)]
            for s in range(d):
                j = int((xs[s + 1] - xs[s]).abs().argmax())
                effects[t, j] = (ys[s + 1] - ys[s]) / (xs[s + 1, j] - xs[s, j])
        mu_star[i], sigma[i] = effects.abs().mean(0), effects.std(0, unbiased=True)
    return mu_star.mean(0).view(grid, grid), sigma.mean(0).view(grid, grid)


def test_global_analysis_matches_the_paper_procedure(make_params, tiny_model_path):
    from shortcut_audit.sensitivity.morris import trajectory_design

    params = make_params(
        [tiny_model_path], morris={"grid_size": 2, "levels": 4, "n_trajectories": 3, "sampling": "global"}
    )
    config = parse_config(params)
    loaded = load_imagenet_model(tiny_model_path, input_size=16)
    brightness = torch.tensor([0.2, 0.6, 1.0]).view(3, 1, 1, 1)  # a wide global range of lumped values
    images = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(4)) * brightness
    targets = torch.tensor([1, 5, 9])
    analyses = morris_statistics(CountingScorer(loaded.model, torch.device("cpu")), images, targets, config, 8, 0)
    design = trajectory_design(3, 4, 4, seed=0)  # the engine's sampler (checked against SALib elsewhere)
    mu_star, sigma = _paper_global_morris(loaded.model, images, targets, design, 2)
    assert mu_star.min() > 1e-3 and sigma.min() > 1e-4
    torch.testing.assert_close(analyses.global_["mu_star"].float(), mu_star, rtol=1e-4, atol=1e-8)
    torch.testing.assert_close(analyses.global_["sigma"].float(), sigma, rtol=1e-4, atol=1e-8)
    assert analyses.run.settings["sampling"] == "global"  # imagenet.morris.sampling picks the compared maps


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


@pytest.mark.parametrize(
    "forwards, image_size, patch_fraction",
    [
        (16, 128, 0.2),
        (20, 128, 0.2),
        (25, 224, 0.2),
        (200, 128, 0.05),
        (3936, 224, 0.01),
        (200, 128, 0.2),
        (17, 32, 0.25),
        (100, 37, 1.0),
    ],
)
def test_occlusion_settings_cover_every_pixel_within_the_budget(
    make_params, tiny_model_path, forwards, image_size, patch_fraction
):
    from shortcut_audit.attribution.occlusion import window_starts

    config = parse_config(
        make_params([tiny_model_path], forwards=max(forwards, 40), occlusion={"patch_fraction": patch_fraction})
    )
    settings = method_settings("occlusion", forwards, image_size, config)
    patch, stride = settings["patch_size"], settings["stride"]
    starts = window_starts(image_size, patch, stride)
    covered = torch.zeros(image_size, dtype=torch.bool)
    for start in starts:
        covered[start : start + patch] = True
    assert covered.all(), (patch, stride)
    assert len(starts) ** 2 + 1 <= max(forwards, 5)  # windows plus the clean pass fit the budget
    assert patch >= round(patch_fraction * image_size)


def test_occlusion_on_a_small_budget_gives_finite_maps(make_params, tiny_model_path):
    config = parse_config(make_params([tiny_model_path], occlusion={"patch_fraction": 0.05}))
    loaded = load_imagenet_model(tiny_model_path, input_size=64)
    scorer = CountingScorer(loaded.model, torch.device("cpu"))
    run = run_method(
        "occlusion",
        scorer,
        torch.rand(1, 3, 64, 64),
        torch.tensor([1]),
        method_settings("occlusion", 20, 64, config),
        16,
        0,
    )
    assert torch.isfinite(run.maps).all() and run.forwards_per_image <= 20


def _conv_output_dtypes(model):
    """dtypes of every conv layer's output, recorded by forward hooks."""
    seen = []
    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.register_forward_hook(lambda m, args, out: seen.append((args[0].is_contiguous(), out.dtype)))
    return seen


@pytest.mark.parametrize(
    "precision, native, bf16, channels_last",
    [
        ("bf16", True, True, True),
        ("fast", True, False, True),
        ("fast", False, False, True),
        ("fp32", True, False, False),
    ],
)
def test_scorer_takes_the_selected_compute_path(monkeypatch, tiny_model_path, precision, native, bf16, channels_last):
    from shortcut_audit import runtime

    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: native)
    loaded = load_imagenet_model(tiny_model_path, input_size=32)
    seen = _conv_output_dtypes(loaded.model)
    scorer = CountingScorer(loaded.model, torch.device("cpu"), precision=precision)
    logits = scorer(torch.rand(3, 3, 32, 32))
    assert logits.dtype == torch.float32 and logits.shape == (3, 1000) and scorer.total_inputs == 3
    assert seen == [(not channels_last, torch.bfloat16 if bf16 else torch.float32)]
    conv = loaded.model.net[0]
    assert conv.weight.is_contiguous(memory_format=torch.channels_last) is channels_last
    assert scorer.path.precision == precision


def test_scorer_refuses_a_path_of_another_device():
    from shortcut_audit.runtime import ComputePath

    with pytest.raises(ValueError, match="does not run on device cpu"):
        CountingScorer(torch.nn.Linear(2, 2), torch.device("cpu"), path=ComputePath("cuda", "fast", True, True))


def test_fast_path_maps_agree_with_fp32(make_params, tiny_model_path):
    """The default fast path (channels_last float32) keeps every map's ranking: Spearman
    >= 0.999 per image against plain float32."""
    from shortcut_audit.metrics.convergence import spearman

    config = parse_config(make_params([tiny_model_path]))
    images, targets = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1)), torch.tensor([1, 2])
    maps = {}
    for precision in ("fp32", "fast"):
        scorer = CountingScorer(
            load_imagenet_model(tiny_model_path, input_size=32).model, torch.device("cpu"), precision=precision
        )
        maps[scorer.path.name] = {
            method: run_method(method, scorer, images, targets, method_settings(method, 60, 32, config), 16, 0).maps
            for method in ("sobol", "rise", "occlusion", "morris_grid", "geex")
        }
    for method, fp32 in maps["cpu-fp32"].items():
        rho = spearman(maps["cpu-fp32-channels_last"][method], fp32)
        assert (rho >= 0.999).all(), (method, rho)


@pytest.mark.slow
def test_compiled_scorer_matches_eager(tiny_model_path):
    loaded = load_imagenet_model(tiny_model_path, input_size=32)
    x = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        eager = loaded.model(x)
    scorer = CountingScorer(loaded.model, torch.device("cpu"), precision="fp32", compile=True)
    assert scorer.path.name == "cpu-fp32-compiled"
    torch.testing.assert_close(scorer(x), eager, rtol=1e-4, atol=1e-5)
