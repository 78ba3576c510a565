"""Sobol indices: analytic known answers, SALib on identical samples, streaming and edge cases."""

import numpy as np
import pytest
import torch
from SALib.analyze import sobol as salib_sobol_analyze
from SALib.sample import sobol as salib_sobol_sample

from shortcut_audit.sensitivity import ESTIMATORS, SAMPLERS, saltelli_rows, sobol, sobol_indices
from shortcut_audit.sensitivity.samplers import sample


def test_ishigami_within_002_of_analytic_with_scrambled_sobol_and_jansen(analytic):
    first, total = analytic.ishigami_indices()
    result = sobol(analytic.ishigami, 3, n=8192, estimator="jansen", sampler="sobol", seed=0, device="cpu")
    assert result.first.shape == (3,) and result.first.dtype == torch.float64
    np.testing.assert_allclose(result.first.numpy(), first, atol=0.02)
    np.testing.assert_allclose(result.total.numpy(), total, atol=0.02)
    assert result.n_evaluations == 8192 * 5


def test_g_function_totals_within_003_of_analytic(analytic):
    first, total = analytic.g_function_indices()
    result = sobol(analytic.g_function, 6, n=4096, seed=1, device="cpu")
    np.testing.assert_allclose(result.total.numpy(), total, atol=0.03)
    np.testing.assert_allclose(result.first.numpy(), first, atol=0.03)


@pytest.mark.parametrize("estimator", sorted(ESTIMATORS))
def test_every_estimator_recovers_ishigami(estimator, analytic):
    first, total = analytic.ishigami_indices()
    result = sobol(analytic.ishigami, 3, n=4096, estimator=estimator, seed=2, n_resamples=20)
    np.testing.assert_allclose(result.first.numpy(), first, atol=0.04)
    np.testing.assert_allclose(result.total.numpy(), total, atol=0.04)
    assert (result.first_conf > 0).all() and (result.total_conf > 0).all()


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_every_sampler_recovers_g_function_totals(sampler, analytic):
    _, total = analytic.g_function_indices()
    result = sobol(analytic.g_function, 6, n=4096, sampler=sampler, seed=3, n_resamples=0)
    np.testing.assert_allclose(result.total.numpy(), total, atol=0.05)
    assert torch.equal(result.total_conf, torch.zeros(6, dtype=torch.float64))


def _salib_outputs_in_our_layout(y: np.ndarray, d: int) -> torch.Tensor:
    """SALib interleaves rows as [A_j, AB_1j .. AB_dj, B_j]; ours stacks [A; B; AB_1 .. AB_d]."""
    per_row = torch.from_numpy(y).view(-1, d + 2)
    blocks = [per_row[:, 0], per_row[:, d + 1]] + [per_row[:, 1 + i] for i in range(d)]
    return torch.stack(blocks).unsqueeze(-1)


def test_saltelli_estimator_equals_salib_on_identical_samples(analytic):
    d = 3
    problem = {"num_vars": d, "names": ["a", "b", "c"], "bounds": [[0.0, 1.0]] * d}
    x = salib_sobol_sample.sample(problem, 1024, calc_second_order=False, seed=4)
    y = analytic.ishigami(torch.from_numpy(x)).numpy()
    reference = salib_sobol_analyze.analyze(problem, y, calc_second_order=False, num_resamples=200, seed=4)
    ours = sobol_indices(_salib_outputs_in_our_layout(y, d), "saltelli", n_resamples=200, seed=4)
    np.testing.assert_allclose(ours["first"][:, 0].numpy(), reference["S1"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours["total"][:, 0].numpy(), reference["ST"], rtol=1e-10, atol=1e-12)
    # Bootstrap draws differ, the spread they estimate does not.
    np.testing.assert_allclose(ours["first_conf"][:, 0].numpy(), reference["S1_conf"], rtol=0.35)
    np.testing.assert_allclose(ours["total_conf"][:, 0].numpy(), reference["ST_conf"], rtol=0.35)


def test_saltelli_rows_build_a_b_and_ab_blocks():
    a = torch.arange(6.0).view(3, 2)
    b = -torch.arange(1.0, 7.0).view(3, 2)
    full = saltelli_rows(a, b, 0, 12)
    torch.testing.assert_close(full[0:3], a)
    torch.testing.assert_close(full[3:6], b)
    torch.testing.assert_close(full[6:9], torch.stack([b[:, 0], a[:, 1]], dim=1))
    torch.testing.assert_close(full[9:12], torch.stack([a[:, 0], b[:, 1]], dim=1))
    torch.testing.assert_close(saltelli_rows(a, b, 4, 10), full[4:10])
    without_b = saltelli_rows(a, b, 0, 9, first_order=False)
    torch.testing.assert_close(without_b, torch.cat([full[0:3], full[6:12]]))


def test_without_first_order_f_never_sees_b_and_costs_n_times_d_plus_1():
    d, n = 4, 64
    seen = []

    def f(x):
        seen.append(x.clone())
        return x.sum(dim=1)

    result = sobol(f, d, n=n, first_order=False, batch_size=50, seed=5)
    points = torch.cat(seen)
    assert points.shape[0] == n * (d + 1) == result.n_evaluations
    b_rows = sample("sobol", n, 2 * d, seed=5)[:, d:]
    is_b_row = (points[:, None, :] == b_rows[None, :, :]).all(dim=2)
    assert not bool(is_b_row.any())
    assert not result.has_first and torch.equal(result.first, torch.zeros(d, dtype=torch.float64))
    assert "first" not in result.to_frame().columns
    # Additive function: total index of each input is 1/d.
    np.testing.assert_allclose(result.total.numpy(), [0.25] * d, atol=0.02)


def test_f_gets_at_most_batch_size_points_and_all_points_in_the_unit_cube():
    sizes = []

    def f(x):
        sizes.append(x.shape[0])
        assert x.dtype == torch.float32 and x.min() >= 0 and x.max() < 1
        return x[:, 0]

    sobol(f, 5, n=100, batch_size=64, seed=6)
    assert max(sizes) <= 64 and sum(sizes) == 100 * 7


def test_vector_outputs_give_d_by_k_indices_and_a_tidy_frame(analytic):
    def f(x):
        return torch.stack([analytic.ishigami(x), x[:, 0].double() * 2.0], dim=1)

    result = sobol(f, 3, n=2048, seed=7, output_names=["ishigami", "linear"])
    assert result.first.shape == result.total.shape == result.total_conf.shape == (3, 2)
    np.testing.assert_allclose(result.total[:, 1].numpy(), [1.0, 0.0, 0.0], atol=1e-9)
    single = sobol(analytic.ishigami, 3, n=2048, seed=7)
    torch.testing.assert_close(result.total[:, 0], single.total)
    frame = result.to_frame()
    assert list(frame.columns) == ["name", "output", "first", "first_conf", "total", "total_conf"]
    assert len(frame) == 6 and set(frame["output"]) == {"ishigami", "linear"}
    assert not frame.isna().any().any()


def test_constant_output_gives_zero_indices_and_a_warning_never_nan():
    with pytest.warns(RuntimeWarning, match="constant"):
        result = sobol(lambda x: torch.full((x.shape[0],), 3.25), 4, n=64, seed=8)
    for values in (result.first, result.total, result.first_conf, result.total_conf):
        assert torch.equal(values, torch.zeros(4, dtype=torch.float64))
    assert result.warnings


def test_constant_column_among_varying_ones_is_zeroed_alone():
    def f(x):
        return torch.stack([x[:, 0], torch.zeros(x.shape[0])], dim=1)

    with pytest.warns(RuntimeWarning):
        result = sobol(f, 2, n=256, seed=9)
    assert torch.equal(result.total[:, 1], torch.zeros(2, dtype=torch.float64))
    np.testing.assert_allclose(result.total[:, 0].numpy(), [1.0, 0.0], atol=1e-9)


def test_same_seed_same_numbers_other_seed_other_numbers(analytic):
    first = sobol(analytic.ishigami, 3, n=256, seed=10)
    again = sobol(analytic.ishigami, 3, n=256, seed=10)
    other = sobol(analytic.ishigami, 3, n=256, seed=11)
    assert torch.equal(first.first, again.first) and torch.equal(first.total_conf, again.total_conf)
    assert not torch.equal(first.first, other.first)


def test_batch_size_does_not_change_the_numbers(analytic):
    small = sobol(analytic.ishigami, 3, n=256, seed=12, batch_size=7)
    large = sobol(analytic.ishigami, 3, n=256, seed=12, batch_size=4096)
    torch.testing.assert_close(small.total, large.total, rtol=0, atol=0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"estimator": "martinez"}, "unknown Sobol estimator"),
        ({"sampler": "grid"}, "unknown sampler"),
        ({"n": 1}, "n must be"),
        ({"batch_size": 0}, "batch_size"),
        ({"conf_level": 1.0}, "conf_level"),
        ({"names": ["a"]}, "names"),
    ],
)
def test_bad_arguments_fail_early_with_a_clear_message(kwargs, message):
    calls = []

    def f(x):
        calls.append(1)
        return x[:, 0]

    with pytest.raises(ValueError, match=message):
        sobol(f, 2, **{"n": 16, **kwargs})
    assert not calls


def test_bad_model_outputs_are_rejected():
    with pytest.raises(ValueError, match="NaN"):
        sobol(lambda x: torch.full((x.shape[0],), float("nan")), 2, n=16)
    with pytest.raises(ValueError, match="shape"):
        sobol(lambda x: x[:3, 0], 2, n=16)


HUGE = 1e155  # finite, but its square (1e310) is not


@pytest.mark.parametrize("estimator", sorted(ESTIMATORS))
def test_huge_finite_outputs_give_the_indices_of_scale_one(estimator, analytic):
    """Sobol indices and their bootstrap widths are scale invariant; only the variance scales (by 1e310)."""
    kwargs = dict(n=512, estimator=estimator, seed=4, n_resamples=20, device="cpu")
    unit = sobol(analytic.ishigami, 3, **kwargs)
    with pytest.warns(RuntimeWarning, match="variance .* float64"):
        huge = sobol(lambda x: analytic.ishigami(x) * HUGE, 3, **kwargs)
    for name in ("first", "total", "first_conf", "total_conf"):
        values = getattr(huge, name)
        assert torch.isfinite(values).all(), name
        np.testing.assert_allclose(values.numpy(), getattr(unit, name).numpy(), rtol=1e-9, atol=1e-12, err_msg=name)
    assert torch.isinf(huge.variance) and huge.warnings


def test_a_representable_variance_of_large_outputs_is_exact(analytic):
    unit = sobol(analytic.ishigami, 3, n=256, seed=5, n_resamples=0, device="cpu")
    large = sobol(lambda x: analytic.ishigami(x) * 1e150, 3, n=256, seed=5, n_resamples=0, device="cpu")
    np.testing.assert_allclose(large.variance.numpy() / 1e300, unit.variance.numpy(), rtol=1e-12)
    np.testing.assert_allclose(large.total.numpy(), unit.total.numpy(), rtol=1e-9, atol=1e-12)
