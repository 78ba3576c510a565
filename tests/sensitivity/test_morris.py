"""Morris screening: SALib on identical sample matrices, analytic answers, designs and edge cases."""

import numpy as np
import pytest
import torch
from SALib.analyze import morris as salib_morris_analyze
from SALib.sample import morris as salib_morris_sample

from shortcut_audit.sensitivity import (
    MorrisDesign,
    analyse,
    elementary_effects,
    morris,
    radial_design,
    trajectory_design,
)


def _nonlinear(x: np.ndarray) -> np.ndarray:
    return np.sin(3 * x[:, 0]) + x[:, 1] ** 2 * x[:, 2] + 0.5 * x[:, 3] + np.exp(x[:, 0] * x[:, 2])


def _nonlinear_torch(x: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(_nonlinear(x.double().cpu().numpy()))


@pytest.mark.parametrize("levels", [4, 6])
def test_mu_mu_star_sigma_equal_salib_on_salib_sample_matrix(levels):
    problem = {"num_vars": 4, "names": list("abcd"), "bounds": [[0.0, 1.0]] * 4}
    x = salib_morris_sample.sample(problem, 30, num_levels=levels, seed=1)
    y = _nonlinear(x)
    reference = salib_morris_analyze.analyze(problem, x, y, num_levels=levels, num_resamples=500, seed=1)
    stats = analyse(elementary_effects(torch.from_numpy(x), torch.from_numpy(y)), n_resamples=500)
    for key in ("mu", "mu_star", "sigma"):
        np.testing.assert_allclose(stats[key][:, 0].numpy(), reference[key], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(stats["mu_star_conf"][:, 0].numpy(), reference["mu_star_conf"], rtol=0.3)


def test_grouped_statistics_equal_salib_on_salib_grouped_matrix():
    groups = ["g1", "g1", "g2", "g3"]
    problem = {"num_vars": 4, "names": list("abcd"), "bounds": [[0.0, 1.0]] * 4, "groups": groups}
    x = salib_morris_sample.sample(problem, 25, num_levels=4, seed=2)
    y = _nonlinear(x)
    reference = salib_morris_analyze.analyze(problem, x, y, num_levels=4, seed=2)
    stats = analyse(elementary_effects(torch.from_numpy(x), torch.from_numpy(y), groups=groups))
    np.testing.assert_allclose(stats["mu_star"][:, 0].numpy(), reference["mu_star"], rtol=1e-10, atol=1e-12)
    # SALib moves a group's inputs in opposite directions at times, which makes a multi-input
    # group's mu ill-defined, and reports its sigma as NaN; single-input groups must agree.
    np.testing.assert_allclose(stats["mu"][1:, 0].numpy(), reference["mu"][1:], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(stats["sigma"][1:, 0].numpy(), reference["sigma"][1:], rtol=1e-10, atol=1e-12)
    assert torch.isfinite(stats["sigma"]).all()


def test_salib_analyze_on_our_design_equals_our_analysis():
    design = trajectory_design(20, 4, levels=4, seed=3, dtype=torch.float64)
    x = design.matrix().numpy()
    y = _nonlinear(x)
    problem = {"num_vars": 4, "names": list("abcd"), "bounds": [[0.0, 1.0]] * 4}
    reference = salib_morris_analyze.analyze(problem, x, y, num_levels=4, seed=3)
    stats = analyse(design.effects(torch.from_numpy(y)))
    for key in ("mu", "mu_star", "sigma"):
        np.testing.assert_allclose(stats[key][:, 0].numpy(), reference[key], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("levels", [2, 4, 8, 20])
def test_trajectory_design_lives_on_the_grid_and_moves_one_input_by_delta(levels):
    delta = levels / (2 * (levels - 1))
    design = trajectory_design(50, 5, levels=levels, seed=4, dtype=torch.float64)
    points = design.matrix().view(50, 6, 5)
    assert points.min() >= 0 and points.max() <= 1 + 1e-12
    on_grid = points * (levels - 1)
    torch.testing.assert_close(on_grid, on_grid.round(), rtol=0, atol=1e-9)
    steps = points[:, 1:] - points[:, :-1]
    assert ((steps.abs() > 1e-12).sum(dim=2) == 1).all()
    torch.testing.assert_close(steps.abs().sum(dim=2), torch.full((50, 5), delta, dtype=torch.float64))
    recovered = MorrisDesign.from_matrix(design.matrix())
    torch.testing.assert_close(recovered.step, design.step)
    assert torch.equal(recovered.moved_group, design.moved_group)


def test_grouped_trajectory_moves_a_whole_group_at_once():
    groups = ["colour", "colour", "position"]
    design = trajectory_design(10, 3, levels=4, seed=5, groups=groups, dtype=torch.float64)
    points = design.matrix().view(10, 3, 3)
    moved = (points[:, 1:] - points[:, :-1]).abs() > 1e-12
    per_step_group = torch.stack([moved[..., :2].all(-1) & ~moved[..., 2], ~moved[..., :2].any(-1) & moved[..., 2]], -1)
    assert per_step_group.sum(dim=2).eq(1).all()


@pytest.mark.parametrize("design", ["trajectory", "radial"])
def test_linear_function_gives_mu_star_equal_to_coefficient_times_range_and_zero_sigma(design):
    coefficients = torch.tensor([3.0, -2.0, 0.5, 0.0], dtype=torch.float64)
    lower = torch.tensor([0.0, -1.0, 10.0, 5.0], dtype=torch.float64)
    upper = torch.tensor([1.0, 3.0, 12.0, 6.0], dtype=torch.float64)

    def f(x):
        return (lower + x * (upper - lower)) @ coefficients

    result = morris(f, 4, n_trajectories=20, design=design, seed=6, dtype=torch.float64)
    expected = (coefficients * (upper - lower)).numpy()
    np.testing.assert_allclose(result.mu.numpy(), expected, atol=1e-9)
    np.testing.assert_allclose(result.mu_star.numpy(), np.abs(expected), atol=1e-9)
    np.testing.assert_allclose(result.sigma.numpy(), 0.0, atol=1e-9)
    assert result.mu_star[3] == 0 and result.sigma[3] == 0  # the inert input
    assert result.n_evaluations == 20 * 5


def test_inert_input_of_a_nonlinear_function_has_mu_star_zero():
    result = morris(lambda x: torch.sin(6 * x[:, 0]) * x[:, 2] ** 2, 3, n_trajectories=30, seed=7)
    assert result.mu_star[1] == 0 and result.sigma[1] == 0 and result.mu_star_conf[1] == 0
    assert result.mu_star[0] > 0 and result.mu_star[2] > 0 and result.sigma[0] > 0


def test_radial_design_moves_one_input_from_the_base_point():
    design = radial_design(8, 3, seed=8, dtype=torch.float64)
    points = design.matrix().view(8, 4, 3)
    differences = points[:, 1:] - points[:, :1]
    off_diagonal = differences * (1 - torch.eye(3, dtype=torch.float64))
    assert torch.equal(off_diagonal, torch.zeros_like(off_diagonal))
    assert (torch.diagonal(differences, dim1=1, dim2=2).abs() > 0).all()
    recovered = MorrisDesign.from_matrix(design.matrix(), kind="radial")
    torch.testing.assert_close(recovered.step, design.step)


@pytest.mark.parametrize("design", ["trajectory", "radial"])
def test_vector_outputs_give_d_by_k_results_matching_scalar_runs(design):
    def f(x):
        return torch.stack([_nonlinear_torch(x), x[:, 1].double() * 4.0], dim=1)

    result = morris(f, 4, n_trajectories=16, design=design, seed=9, output_names=["nonlinear", "linear"])
    single = morris(_nonlinear_torch, 4, n_trajectories=16, design=design, seed=9)
    assert result.mu_star.shape == result.sigma.shape == result.mu_star_conf.shape == (4, 2)
    torch.testing.assert_close(result.mu_star[:, 0], single.mu_star)
    torch.testing.assert_close(result.mu_star_conf[:, 0], single.mu_star_conf)
    np.testing.assert_allclose(result.mu_star[:, 1].numpy(), [0.0, 4.0, 0.0, 0.0], atol=1e-5)
    frame = result.to_frame()
    assert list(frame.columns) == ["name", "output", "mu", "mu_star", "sigma", "mu_star_conf"]
    assert len(frame) == 8 and not frame.isna().any().any()


def test_groups_give_one_row_per_group_named_by_label():
    result = morris(
        lambda x: x[:, 0] + x[:, 1] + 0 * x[:, 2], 3, n_trajectories=12, groups=["digit", "digit", "bg"], seed=10
    )
    assert result.names == ("digit", "bg") and result.mu_star.shape == (2,)
    assert result.mu_star[1] == 0
    np.testing.assert_allclose(result.mu_star[0].item(), 2.0, atol=1e-5)
    assert result.n_evaluations == 12 * 3


def test_batches_are_bounded_deterministic_and_do_not_change_numbers():
    sizes = []

    def f(x):
        sizes.append(x.shape[0])
        return _nonlinear_torch(x)

    small = morris(f, 4, n_trajectories=10, seed=11, batch_size=7)
    assert max(sizes) <= 7 and sum(sizes) == 50
    large = morris(_nonlinear_torch, 4, n_trajectories=10, seed=11)
    for key in ("mu", "mu_star", "sigma", "mu_star_conf"):
        assert torch.equal(getattr(small, key), getattr(large, key))
    other = morris(_nonlinear_torch, 4, n_trajectories=10, seed=12)
    assert not torch.equal(small.mu_star, other.mu_star)


def test_constant_output_gives_zeros_and_a_warning():
    with pytest.warns(RuntimeWarning, match="constant"):
        result = morris(lambda x: torch.ones(x.shape[0]), 3, n_trajectories=5)
    assert torch.equal(result.mu_star, torch.zeros(3, dtype=torch.float64))
    assert torch.equal(result.sigma, torch.zeros(3, dtype=torch.float64))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"levels": 5}, "even"),
        ({"design": "star"}, "unknown Morris design"),
        ({"n_trajectories": 1}, "n_trajectories"),
        ({"groups": ["a", "b"]}, "one label per input"),
        ({"design": "radial", "groups": ["a", "a", "b"]}, "groups need design='trajectory'"),
        ({"design": "radial", "sampler": "sobolev"}, "unknown sampler"),
        ({"conf_level": 0.0}, "conf_level"),
    ],
)
def test_bad_arguments_fail_early(kwargs, message):
    with pytest.raises(ValueError, match=message):
        morris(lambda x: x[:, 0], 3, **{"n_trajectories": 4, **kwargs})


def test_a_matrix_that_is_not_one_at_a_time_is_rejected():
    x = torch.tensor([[0.0, 0.0], [1.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    with pytest.raises(ValueError, match="exactly the inputs of one group"):
        MorrisDesign.from_matrix(x)
    with pytest.raises(ValueError, match="whole number of trajectories"):
        MorrisDesign.from_matrix(x[:2])


HUGE = 1e155  # finite, but its square (1e310) is not


@pytest.mark.parametrize("design", ["trajectory", "radial"])
def test_huge_finite_outputs_give_the_unit_scale_statistics_times_the_scale(design):
    """mu, mu*, sigma and the bootstrap width are homogeneous of degree 1 in the output."""
    unit = morris(_nonlinear_torch, 4, n_trajectories=12, levels=4, design=design, seed=3, device="cpu")
    huge = morris(
        lambda x: _nonlinear_torch(x) * HUGE, 4, n_trajectories=12, levels=4, design=design, seed=3, device="cpu"
    )
    noise = 1e-12 * float(unit.mu_star.max())  # the linear input's sigma is rounding noise (~1e-8)
    for name in ("mu", "mu_star", "sigma", "mu_star_conf"):
        values = getattr(huge, name)
        assert torch.isfinite(values).all(), name
        np.testing.assert_allclose(
            values.numpy() / HUGE, getattr(unit, name).numpy(), rtol=1e-12, atol=noise, err_msg=name
        )


def test_analyse_of_huge_effects_matches_numpy_on_the_unit_effects():
    effects = torch.randn(20, 3, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    stats = analyse(effects * HUGE, n_resamples=0)
    e = effects.numpy()
    np.testing.assert_allclose(stats["mu"].numpy() / HUGE, e.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats["mu_star"].numpy() / HUGE, np.abs(e).mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats["sigma"].numpy() / HUGE, e.std(axis=0, ddof=1), rtol=1e-12)


def test_unit_scale_statistics_are_bit_identical_to_unscaled_arithmetic():
    """The rescaling is by a power of two, so ordinary outputs give exactly the old numbers."""
    effects = torch.randn(15, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 0.37
    stats = analyse(effects, n_resamples=0)
    assert torch.equal(stats["mu"], effects.mean(dim=0)) and torch.equal(stats["sigma"], effects.std(dim=0))
    assert torch.equal(stats["mu_star"], effects.abs().mean(dim=0))


def test_effects_beyond_the_float64_range_fail_clearly():
    def f(x):  # finite outputs whose differences are not: 0.9e308 - (-0.9e308) overflows
        high = torch.tensor(0.9e308, dtype=torch.float64)
        return torch.where(x[:, 0] > 0.5, high, -high)

    with pytest.raises(ValueError, match="exceed the float64 range"):
        morris(f, 2, n_trajectories=4, levels=4, seed=0, device="cpu")


def test_effects_near_the_float64_limit_still_give_finite_statistics():
    effects = torch.full((20, 2), 1.5e308, dtype=torch.float64)  # their plain sum overflows
    stats = analyse(effects, n_resamples=10)
    assert stats["mu"].tolist() == [1.5e308, 1.5e308] and stats["sigma"].tolist() == [0.0, 0.0]
