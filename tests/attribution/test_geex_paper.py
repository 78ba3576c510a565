"""GEEX / GERS / iGEEX against Cai & Wunder, Sec. 3 (Eq. 1, loss, noise sampling), on models
whose gradients are known in closed form.

For a linear loss the mirrored NES estimate is ``1/S sum_s eps_s eps_s^T v``, whose
expectation is ``E[eps eps^T] v`` and whose per-component standard error is
``sqrt((|v|^2 + v_i^2) / S)`` (Gaussian eps); the tests allow five standard errors.
"""

import pytest
import torch
import torch.nn.functional as F

from shortcut_audit import attribution as A

from .conftest import LinearModel

REFERENCE_KERNEL_WIDTH = 0.3  # the reference code's ImageNet setting; its masks are N(0, I) / 2


class RecordingModel:
    """Wraps a model and keeps every query it is sent."""

    def __init__(self, model):
        self.model, self.queries = model, []

    def __call__(self, x):
        self.queries.append(x.clone())
        return self.model(x)


def _weights(classes, channels, size, seed=0):
    return torch.randn(classes, channels, size, size, generator=torch.Generator().manual_seed(seed))


def _assert_within_standard_errors(estimate, expected, n_pairs, effective_gradient_norm):
    bound = 5.0 * torch.sqrt((effective_gradient_norm**2 + expected**2) / n_pairs)
    assert ((estimate - expected).abs() <= bound).all(), float(((estimate - expected).abs() / bound).max())


def _cosine(a, b):
    return float(F.cosine_similarity(a.flatten(), b.flatten(), dim=0))


def test_default_loss_is_the_cross_entropy_against_the_uniform_distribution():
    # L(x) = -1/K sum_k log softmax(W x)_k has gradient W^T (p - u), p = softmax(W x), u = 1/K
    w = 0.3 * _weights(3, 1, 4)
    x = torch.rand(1, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    p = torch.softmax(torch.einsum("nchw,kchw->nk", x, w), dim=1)[0]
    expected = torch.einsum("k,kchw->chw", p - 1.0 / 3, w).sum(0)
    maps = A.GEEX(LinearModel(w), n_samples=8000, sigma=0.02, batch_size=4096)(x, [0])[0]
    assert _cosine(maps, expected) > 0.99
    assert _cosine(maps, w[0, 0]) < 0.9  # not the class-score gradient


def test_target_loss_is_the_class_score_gradient():
    w = _weights(3, 1, 4)
    x = torch.rand(1, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    maps = A.GEEX(LinearModel(w), n_samples=4000, loss="target", batch_size=4096)(x, [2])[0]
    _assert_within_standard_errors(maps, w[2, 0], 4000, w[2].norm())


def test_uniform_loss_reads_probabilities_when_told_so():
    w = 0.3 * _weights(3, 1, 4)
    x = torch.rand(2, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    logits = A.GEEX(LinearModel(w), n_samples=64)(x, [0, 1])
    probabilities = A.GEEX(
        lambda z: torch.softmax(LinearModel(w)(z), dim=1), n_samples=64, model_output="probabilities"
    )(x, [0, 1])
    torch.testing.assert_close(probabilities, logits, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("noise, shared", [("shared", True), ("per_channel", False)])
def test_noise_is_one_plane_for_all_channels_by_default(noise, shared):
    model = RecordingModel(LinearModel(_weights(2, 3, 6)))
    x = torch.rand(1, 3, 6, 6, generator=torch.Generator().manual_seed(1))
    kwargs = {} if noise == "shared" else {"noise": noise}
    A.GEEX(model, n_samples=8, **kwargs)(x, [0])
    offsets = torch.cat(model.queries) - x
    same = torch.allclose(offsets[:, 0], offsets[:, 1], atol=1e-6) and torch.allclose(
        offsets[:, 0], offsets[:, 2], atol=1e-6
    )
    assert same is shared


def test_default_sigma_is_the_reference_codes_effective_noise():
    # the reference draws N(0, I) / 2 and multiplies by its kernel width: std = width / 2
    model = RecordingModel(LinearModel(_weights(2, 1, 8)))
    x = torch.zeros(1, 1, 8, 8)
    explainer = A.GEEX(model, n_samples=200)
    explainer(x, [0])
    offsets = torch.cat(model.queries)
    assert explainer.sigma == pytest.approx(REFERENCE_KERNEL_WIDTH / 2)
    assert float(offsets.std()) == pytest.approx(REFERENCE_KERNEL_WIDTH / 2, rel=0.03)


@pytest.mark.parametrize("noise", ["shared", "per_channel"])
@pytest.mark.parametrize("sigma", [0.05, 1.0])
def test_estimate_of_a_linear_score_is_its_gradient_for_every_noise(noise, sigma):
    # f = w . x: per channel E[g] = w, so the channel sum is sum_c w_c; with shared noise
    # g estimates the derivative along the all-channels direction, which is sum_c w_c too
    w = _weights(1, 3, 4)
    x = torch.rand(1, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    n = 3000
    maps = A.GEEX(LinearModel(w), n_samples=n, sigma=sigma, loss="target", noise=noise, batch_size=4096)(x, [0])[0]
    expected = w[0].sum(0)
    norm = expected.norm() if noise == "shared" else w.norm()
    bound_scale = 1.0 if noise == "shared" else 3**0.5  # three independent channel errors add up
    _assert_within_standard_errors(maps, expected, n / bound_scale**2, norm)


def _bilinear_operator(low: int, size: int) -> torch.Tensor:
    """U (size^2, low^2): column j is the bilinear upsampling of the j-th unit low-resolution cell."""
    units = torch.eye(low * low).view(-1, 1, low, low)
    return F.interpolate(units, size=(size, size), mode="bilinear", align_corners=False).view(low * low, -1).T


def test_resized_noise_estimates_the_low_pass_gradient():
    # eps = U e, e ~ N(0, I): E[g] = U U^T w
    w = _weights(1, 1, 8)
    x = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    u = _bilinear_operator(3, 8)
    expected = (u @ (u.T @ w.flatten())).view(8, 8)
    n = 3000
    maps = A.GERS(LinearModel(w), n_samples=n, noise_size=3, loss="target", batch_size=4096)(x, [0])[0]
    _assert_within_standard_errors(maps, expected, n, (u.T @ w.flatten()).norm() * u.norm(dim=0).max())


@pytest.mark.parametrize("noise_size", [None, 3])
def test_igeex_is_x_minus_b_times_the_estimated_gradient_with_either_noise(noise_size):
    # linear score: the gradient is the same at every path point, so iGEEX = (x - 0) * E[g]
    w = _weights(1, 1, 8)
    x = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    u = _bilinear_operator(3, 8) if noise_size else torch.eye(64)
    gradient = (u @ (u.T @ w.flatten())).view(8, 8)
    n = 3000
    maps = A.IGEEX(LinearModel(w), n_samples=n, loss="target", noise_size=noise_size, batch_size=4096)(x, [0])[0]
    _assert_within_standard_errors(maps / x[0, 0], gradient, n, (u.T @ w.flatten()).norm() * u.norm(dim=0).max())


def test_shared_noise_igeex_multiplies_every_channel_difference():
    # with one noise plane the estimate is sum_c w_c per pixel; iGEEX sums (x_c - b_c) times it
    w = _weights(1, 3, 4)
    x = torch.rand(1, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    n = 3000
    maps = A.IGEEX(LinearModel(w), n_samples=n, loss="target", batch_size=4096)(x, [0])[0]
    plane = w[0].sum(0)
    _assert_within_standard_errors(maps / x[0].sum(0), plane, n, plane.norm())
