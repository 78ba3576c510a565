"""Ensemble normalisations and aggregations (Mahlau & Nolde 2022, Sec. 3): each equation is
re-implemented here from the paper text, in plain Python, and compared on small random stacks."""

import math

import numpy as np
import pytest
import torch

from shortcut_audit.attribution import ensemble
from shortcut_audit.attribution.ensemble import TABLE_1, AggregationSettings
from shortcut_audit.attribution.ensemble.rbm import pcd_step

MAP = torch.tensor([[[1.0, 2.0], [3.0, 6.0]]])  # (1, 2, 2)


@pytest.mark.parametrize(
    "method, expected",
    [
        ("linear", [[0.0, 0.2], [0.4, 1.0]]),
        # mean 3, population std sqrt((4 + 1 + 0 + 9) / 4) = sqrt(3.5)
        ("z", [[-2 / math.sqrt(3.5), -1 / math.sqrt(3.5)], [0.0, 3 / math.sqrt(3.5)]]),
        ("l1", [[1 / 12, 2 / 12], [3 / 12, 6 / 12]]),
        ("l2", [[1 / math.sqrt(50), 2 / math.sqrt(50)], [3 / math.sqrt(50), 6 / math.sqrt(50)]]),
        ("none", [[1.0, 2.0], [3.0, 6.0]]),
    ],
)
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


# ------------------------------------------------------------------ the paper's equations, written out


def Phi(z):  # noqa: N802 (the paper's symbol)
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


def phi(z):
    return math.exp(-z * z / 2) / math.sqrt(2 * math.pi)


def random_stack(seed=0, k=4, n=2, h=3, w=5):
    return torch.randn(k, n, h, w, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def pixels(stack):
    """Per image: list of per-pixel lists of the K base values (E_ij), in raster order."""
    k, n, h, w = stack.shape
    return [[[float(stack[m, i, r, c]) for m in range(k)] for r in range(h) for c in range(w)] for i in range(n)]


def mean(values):  # Eq. 6
    return sum(values) / len(values)


def std(values):  # Eq. 7: population standard deviation over the ensemble
    mu = mean(values)
    return math.sqrt(sum((v - mu) ** 2 for v in values) / len(values))


def pi_paper(values, eps, e_plus):  # Eq. 9 with Z from the text under Eq. 10
    return Phi((mean(values) - e_plus - eps) / std(values))


def ei_paper(values, eps, e_plus):  # Eq. 10
    z = (mean(values) - e_plus - eps) / std(values)
    return Phi(z) * (mean(values) - e_plus - eps) + std(values) * phi(z)


def per_pixel(stack, rule):
    """Apply ``rule(values, E+, all pixels of the image)`` pixel by pixel; returns (N, H, W)."""
    k, n, h, w = stack.shape
    out = []
    for image in pixels(stack):
        e_plus = max(mean(v) for v in image)  # E+ = max_ij mu(E_ij)
        out.append([rule(v, e_plus, image) for v in image])
    return torch.tensor(out, dtype=torch.float32).view(n, h, w)


def agg(stack, method, **settings):
    return ensemble.aggregate(stack, normalization="none", method=method, settings=AggregationSettings(**settings))


@pytest.mark.parametrize("eps", [-4.0, -0.5, 0.3])
def test_pi_is_eq_9_measured_against_e_plus(eps):
    stack = random_stack(1)
    expected = per_pixel(stack, lambda v, e_plus, _: pi_paper(v, eps, e_plus))
    torch.testing.assert_close(agg(stack, "pi", pi_epsilon=eps), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("eps", [-6.0, -1.0, 0.2])
def test_ei_is_eq_10_measured_against_e_plus(eps):
    stack = random_stack(2)
    expected = per_pixel(stack, lambda v, e_plus, _: ei_paper(v, eps, e_plus))
    torch.testing.assert_close(agg(stack, "ei", ei_epsilon=eps), expected, rtol=1e-5, atol=1e-6)


def test_ci_is_ei_with_the_eq_11_exploration_rate():
    stack = random_stack(3).abs()  # positive attributions: E+ > 0 as Eq. 11 needs

    def ci(values, e_plus, image):
        eps = sum(std(u) ** 2 for u in image) / (len(image) * e_plus)  # (1 / (m n E+)) sum sigma^2
        return ei_paper(values, eps, e_plus)

    torch.testing.assert_close(agg(stack, "ci"), per_pixel(stack, ci), rtol=1e-5, atol=1e-6)


def test_api_and_aei_are_eqs_14_15_over_the_interval():
    stack = random_stack(4)
    a, b, n = -3.0, 1.5, 5
    grid = [k * (b - a) / (n - 1) + a for k in range(n)]
    api = per_pixel(stack, lambda v, e_plus, _: sum(pi_paper(v, e, e_plus) for e in grid) / n)
    aei = per_pixel(stack, lambda v, e_plus, _: sum(ei_paper(v, e, e_plus) for e in grid) / n)
    torch.testing.assert_close(agg(stack, "api", api_range=(a, b), n_eps=n), api, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(agg(stack, "aei", aei_range=(a, b), n_eps=n), aei, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("eps, delta", [(1e-7, 1.0), (0.5, 0.1), (2.0, 1e-3)])
def test_var_is_eq_16(eps, delta):
    stack = random_stack(5)
    expected = per_pixel(stack, lambda v, *_: sum(e / (eps * std(v) + delta) for e in v) / len(v))
    torch.testing.assert_close(agg(stack, "var", var_epsilon=eps, var_delta=delta), expected, rtol=1e-5, atol=1e-6)


def test_var_at_table_1_setting_ranks_pixels_like_the_average():
    """Sec. 3.2 / Fig. 3: 'The explanation of VAR is intrinsically close to the average aggregation'."""
    stack = random_stack(6, k=5, n=3, h=8, w=8)
    var = ensemble.aggregate(stack, method="var").flatten(1)
    average = ensemble.aggregate(stack, method="mean").flatten(1)
    assert torch.equal(var.argsort(dim=1), average.argsort(dim=1))


def test_ucb_mean_and_percentile_are_eqs_8_5_and_g_k():
    stack = random_stack(7)
    ucb = per_pixel(stack, lambda v, *_: mean(v) - 0.5 * std(v))
    torch.testing.assert_close(agg(stack, "ucb", ucb_epsilon=-0.5), ucb, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(agg(stack, "mean"), per_pixel(stack, lambda v, *_: mean(v)), rtol=1e-5, atol=1e-6)

    def lower_quartile(values):  # linear interpolation between the sorted data points
        ordered, position = sorted(values), 0.25 * (len(values) - 1)
        low = math.floor(position)
        high = min(low + 1, len(values) - 1)
        return ordered[low] + (position - low) * (ordered[high] - ordered[low])

    torch.testing.assert_close(
        agg(stack, "percentile", percentile=25.0),
        per_pixel(stack, lambda v, *_: lower_quartile(v)),
        rtol=1e-5,
        atol=1e-6,
    )


def test_defaults_are_table_1():
    """Table 1 (ImageNet, z-score): percentile k=25, UCB -0.5, PI -4, EI -6, API [-7, 2], AEI [-10, 5],
    VAR 1e-7, RBM alpha 1e-4 and k=100."""
    stack = random_stack(8)
    z = ensemble.normalise(stack, "z").double()
    for method, rule in (
        ("pi", lambda v, e, _: pi_paper(v, -4.0, e)),
        ("ei", lambda v, e, _: ei_paper(v, -6.0, e)),
        ("ucb", lambda v, *_: mean(v) - 0.5 * std(v)),
    ):
        torch.testing.assert_close(ensemble.aggregate(stack, method=method), per_pixel(z, rule), rtol=1e-4, atol=1e-5)
    assert (TABLE_1.percentile, TABLE_1.api_range, TABLE_1.aei_range) == (25.0, (-7.0, 2.0), (-10.0, 5.0))
    assert (TABLE_1.var_epsilon, TABLE_1.rbm_learning_rate, TABLE_1.rbm_iterations) == (1e-7, 1e-4, 100)


def test_degenerate_ensembles_take_the_gaussian_limit_without_nan():
    # Two methods agreeing everywhere: sigma = 0, so PI is the step function and EI max(gap, 0).
    stack = torch.tensor([[[[0.0, 1.0, 3.0]]], [[[0.0, 1.0, 3.0]]]])  # (2, 1, 1, 3); E+ = 3
    torch.testing.assert_close(agg(stack, "pi", pi_epsilon=-1.5)[0, 0], torch.tensor([0.0, 0.0, 1.0]))
    torch.testing.assert_close(agg(stack, "pi", pi_epsilon=-2.0)[0, 0], torch.tensor([0.0, 0.5, 1.0]))
    torch.testing.assert_close(agg(stack, "ei", ei_epsilon=-2.5)[0, 0], torch.tensor([0.0, 0.5, 2.5]))
    assert torch.isfinite(agg(stack, "ci")).all() and torch.isfinite(agg(stack, "aei")).all()


def test_bad_settings_fail_closed():
    with pytest.raises(ValueError, match="percentile"):
        AggregationSettings(percentile=120.0)
    with pytest.raises(ValueError, match="api_range"):
        AggregationSettings(api_range=(2.0, -7.0))
    with pytest.raises(ValueError, match="var_delta"):
        AggregationSettings(var_delta=0.0)
    with pytest.raises(ValueError, match="E\\+"):
        agg(-random_stack(9).abs(), "ci")  # all attributions negative: E+ < 0, Eq. 11 undefined


# ------------------------------------------------------------------ RBM (Borisov et al. 2021, ref. [5])


def test_pcd_step_matches_a_hand_computed_update():
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    v = np.array([[[1.0, 0.0], [0.0, 1.0]]])  # 1 RBM, a mini-batch of 2 pixels, 2 visible units
    w, b, c = np.array([[0.5, -0.5]]), np.zeros((1, 2)), np.zeros(1)
    chain = np.array([[1.0, 0.0]])
    u_visible = np.array([[[0.1, 0.9], [0.6, 0.4]]])
    u_hidden = np.array([[0.3, 0.7]])
    h_pos = [sig(0.5), sig(-0.5)]
    p_vis = [[sig(0.5), sig(-0.5)], [0.5, 0.5]]  # chain 1 -> sigmoid(w + b), chain 0 -> sigmoid(b)
    v_neg = [[1.0 if u < p else 0.0 for u, p in zip(us, ps)] for us, ps in zip(u_visible[0], p_vis)]
    h_neg = [sig(0.5 * x[0] - 0.5 * x[1]) for x in v_neg]
    dw = [
        (v[0, 0, j] * h_pos[0] + v[0, 1, j] * h_pos[1]) / 2 - (v_neg[0][j] * h_neg[0] + v_neg[1][j] * h_neg[1]) / 2
        for j in range(2)
    ]
    db = [(v[0, 0, j] + v[0, 1, j]) / 2 - (v_neg[0][j] + v_neg[1][j]) / 2 for j in range(2)]
    dc = (h_pos[0] + h_pos[1]) / 2 - (h_neg[0] + h_neg[1]) / 2
    w2, b2, c2, chain2 = pcd_step(v, w, b, c, chain, u_visible, u_hidden, lr=0.1)
    np.testing.assert_allclose(w2, w + 0.1 * np.array([dw]))
    np.testing.assert_allclose(b2, 0.1 * np.array([db]))
    np.testing.assert_allclose(c2, 0.1 * np.array([dc]))
    np.testing.assert_array_equal(chain2, [[1.0 if u < h else 0.0 for u, h in zip(u_hidden[0], h_neg)]])


def test_rbm_ranks_the_region_all_methods_agree_on_first_and_is_seeded():
    gen = torch.Generator().manual_seed(0)
    stack = 0.1 * torch.rand(4, 2, 8, 8, generator=gen)
    stack[:, :, :3, :3] += 1.0  # every method marks the same region
    settings = AggregationSettings(rbm_learning_rate=0.05, rbm_iterations=20)
    out = ensemble.aggregate(stack, normalization="linear", method="rbm", settings=settings, seed=3)
    assert out.shape == (2, 8, 8) and ((out >= 0) & (out <= 1)).all()
    region = torch.zeros(8, 8, dtype=torch.bool)
    region[:3, :3] = True
    assert (out[:, region].amin(1) > out[:, ~region].amax(1)).all()
    again = ensemble.aggregate(stack, normalization="linear", method="rbm", settings=settings, seed=3)
    torch.testing.assert_close(out, again, rtol=0, atol=0)


def test_rbm_map_of_an_image_is_bit_for_bit_the_same_alone_or_in_a_batch():
    """One seed per image: training many images' RBMs together (one vectorised run) must not
    change any image's map, so batching is a speed-up only (the watermark benchmark relies on it)."""
    gen = torch.Generator().manual_seed(1)
    stack = torch.rand(5, 4, 12, 12, generator=gen)
    settings = AggregationSettings(rbm_iterations=3)
    seeds = [11, 12, 13, 14]
    together = ensemble.aggregate(stack, normalization="z", method="rbm", settings=settings, seed=seeds)
    alone = torch.cat(
        [
            ensemble.aggregate(stack[:, i : i + 1], normalization="z", method="rbm", settings=settings, seed=[s])
            for i, s in enumerate(seeds)
        ]
    )
    assert torch.equal(together, alone)
    every = ensemble.aggregate_all(stack, ["z", "linear"], ["rbm", "mean"], settings, seed=seeds)
    assert torch.equal(every[("z", "rbm")], together)
