"""Ensemble normalisations and aggregations on small stacks with hand-computed answers."""
import math

import pytest
import torch

from shortcut_audit.attribution import ensemble
from shortcut_audit.attribution.ensemble.rbm import cd1_step

MAP = torch.tensor([[[1.0, 2.0], [3.0, 6.0]]])  # (1, 2, 2)


@pytest.mark.parametrize("method, expected", [
    ("linear", [[0.0, 0.2], [0.4, 1.0]]),
    # mean 3, population std sqrt((4 + 1 + 0 + 9) / 4) = sqrt(3.5)
    ("z", [[-2 / math.sqrt(3.5), -1 / math.sqrt(3.5)], [0.0, 3 / math.sqrt(3.5)]]),
    ("l1", [[1 / 12, 2 / 12], [3 / 12, 6 / 12]]),
    ("l2", [[1 / math.sqrt(50), 2 / math.sqrt(50)], [3 / math.sqrt(50), 6 / math.sqrt(50)]]),
    ("none", [[1.0, 2.0], [3.0, 6.0]]),
])
def test_normalisations_match_hand_computed_values(method, expected):
    torch.testing.assert_close(ensemble.normalise(MAP, method)[0], torch.tensor(expected))


@pytest.mark.parametrize("method", ["linear", "z", "l1", "l2"])
def test_degenerate_maps_normalise_without_nan(method):
    constant = ensemble.normalise(torch.full((2, 3, 3), 4.0), method)
    expected = {"linear": 0.0, "z": 0.0, "l1": 1 / 9, "l2": 1 / 3}[method]  # no spread -> 0; norms divide
    torch.testing.assert_close(constant, torch.full((2, 3, 3), expected))
    assert (ensemble.normalise(torch.zeros(2, 3, 3), method) == 0).all()


def test_unknown_names_are_rejected():
    with pytest.raises(ValueError, match="linear"):
        ensemble.normalise(MAP, "minmax")
    with pytest.raises(ValueError, match="ucb"):
        ensemble.aggregate(MAP[None], method="median")
    with pytest.raises(ValueError):
        ensemble.aggregate(MAP, method="mean")  # not (K, N, H, W)


# Three methods, one image, a 1 x 2 map; pixel 0 values (0, 1, 2), pixel 1 values (1, 1, 1).
STACK = torch.tensor([[[[0.0, 1.0]]], [[[1.0, 1.0]]], [[[2.0, 1.0]]]])  # (3, 1, 1, 2)
MU = torch.tensor([1.0, 1.0])
SIGMA = torch.tensor([math.sqrt(2 / 3), 0.0])


def phi(z):
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


def pdf(z):
    return math.exp(-z * z / 2) / math.sqrt(2 * math.pi)


def agg(method, **kw):
    return ensemble.aggregate(STACK, normalization="none", method=method, **kw)[0, 0]


def test_mean_and_percentiles():
    torch.testing.assert_close(agg("mean"), MU)
    torch.testing.assert_close(agg("percentile", percentile=75.0), torch.tensor([1.5, 1.0]))
    torch.testing.assert_close(agg("percentile", percentile=0.0), torch.tensor([0.0, 1.0]))


def test_ucb():
    torch.testing.assert_close(agg("ucb", epsilon=-0.5), MU - 0.5 * SIGMA)
    torch.testing.assert_close(agg("ucb", epsilon=2.0), MU + 2.0 * SIGMA)


def test_probability_of_improvement_and_its_degenerate_limit():
    s = math.sqrt(2 / 3)
    torch.testing.assert_close(agg("pi", epsilon=0.5), torch.tensor([phi(0.5 / s), 1.0]))
    torch.testing.assert_close(agg("pi", epsilon=1.0), torch.tensor([0.5, 0.5]))
    torch.testing.assert_close(agg("pi", epsilon=1.5), torch.tensor([phi(-0.5 / s), 0.0]))


def test_expected_improvement():
    s = math.sqrt(2 / 3)
    z = 0.5 / s
    expected = torch.tensor([0.5 * phi(z) + s * pdf(z), 0.5])
    torch.testing.assert_close(agg("ei", epsilon=0.5), expected)


def test_ci_takes_its_threshold_from_the_ensemble_variance():
    s2 = 2 / 3
    eps = (s2 + 0.0) / 2  # mean over the two pixels of the variance
    expected = torch.tensor([phi((1 - eps) / math.sqrt(s2)), 1.0])
    torch.testing.assert_close(agg("ci"), expected)


def test_api_and_aei_average_over_the_threshold_interval():
    s = math.sqrt(2 / 3)
    eps = [0.0, 1.0, 2.0]
    api = [sum(phi((1 - e) / s) for e in eps) / 3, (1.0 + 0.5 + 0.0) / 3]
    aei = [sum((1 - e) * phi((1 - e) / s) + s * pdf((1 - e) / s) for e in eps) / 3, (1.0 + 0 + 0) / 3]
    torch.testing.assert_close(agg("api", eps_range=(0.0, 2.0), n_eps=3), torch.tensor(api))
    torch.testing.assert_close(agg("aei", eps_range=(0.0, 2.0), n_eps=3), torch.tensor(aei))


def test_value_at_risk_is_a_quantile_of_the_improvement():
    s = math.sqrt(2 / 3)
    q = -1.2815515655446004  # Phi^-1(0.1)
    expected = torch.tensor([max(1 - 0.2 + s * q, 0.0), 0.8])
    torch.testing.assert_close(agg("var", epsilon=0.2, delta=0.1), expected)
    with pytest.raises(ValueError):
        agg("var", delta=1.5)


def test_default_is_z_normalised_ucb():
    stack = torch.rand(3, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    z = ensemble.normalise(stack, "z")
    expected = z.mean(0) - 0.5 * z.std(0, unbiased=False)
    torch.testing.assert_close(ensemble.aggregate(stack), expected)


def test_cd1_step_matches_a_hand_computed_update():
    v = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]], dtype=torch.float64)  # 1 RBM, 2 samples, 2 visible
    w = torch.tensor([[0.5, -0.5]], dtype=torch.float64)
    b = torch.zeros(1, 2, dtype=torch.float64)
    c = torch.zeros(1, dtype=torch.float64)
    h_sample = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    h0 = [sig(0.5), sig(-0.5)]
    v1 = [[sig(0.5), sig(-0.5)], [0.5, 0.5]]
    h1 = [sig(0.5 * v1[0][0] - 0.5 * v1[0][1]), sig(0.0)]
    dw = [(1 * h0[0] - (v1[0][0] * h1[0] + v1[1][0] * h1[1])) / 2,
          (1 * h0[1] - (v1[0][1] * h1[0] + v1[1][1] * h1[1])) / 2]
    db = [((1 - v1[0][0]) + (0 - v1[1][0])) / 2, ((0 - v1[0][1]) + (1 - v1[1][1])) / 2]
    dc = ((h0[0] - h1[0]) + (h0[1] - h1[1])) / 2
    w2, b2, c2 = cd1_step(v, w, b, c, h_sample, lr=0.1)
    torch.testing.assert_close(w2, w + 0.1 * torch.tensor([dw], dtype=torch.float64))
    torch.testing.assert_close(b2, 0.1 * torch.tensor([db], dtype=torch.float64))
    torch.testing.assert_close(c2, 0.1 * torch.tensor([dc], dtype=torch.float64))


def test_rbm_ranks_the_region_all_methods_agree_on_first_and_is_seeded():
    gen = torch.Generator().manual_seed(0)
    stack = 0.1 * torch.rand(4, 2, 8, 8, generator=gen)
    stack[:, :, :3, :3] += 1.0  # every method marks the same region
    out = ensemble.aggregate(stack, normalization="linear", method="rbm", seed=3)
    assert out.shape == (2, 8, 8) and ((out >= 0) & (out <= 1)).all()
    region = torch.zeros(8, 8, dtype=torch.bool)
    region[:3, :3] = True
    assert (out[:, region].amin(1) > out[:, ~region].amax(1)).all()
    torch.testing.assert_close(out, ensemble.aggregate(stack, normalization="linear", method="rbm", seed=3),
                               rtol=0, atol=0)
