"""GEEX, GERS and iGEEX: black-box gradient estimation for explanations.

Reference: Y. Cai and G. Wunder, "On Gradient-like Explanation under a Black-box
Setting: When Black-box Explanations Become as Good as White-box", ICML 2024, PMLR 235,
pp. 5360-5382 (arXiv:2308.09381; its first version calls the path-integrated method
iGEEX). Section numbers below are those of the ICML version and its reference code.

All three estimate the input gradient of a loss ``L`` from model outputs only, with
the search gradient of natural evolution strategies (Sec. 3.1; Wierstra et al., JMLR
2014) under a Gaussian search distribution centred on the input, and mirrored
(antithetic) sampling, which the paper adopts to keep the search distribution
isotropic:

``g(x) = 1 / (2 S sigma) * sum_{s=1..S} eps_s * [L(x + sigma eps_s) - L(x - sigma eps_s)]``

with ``eps_s ~ N(0, I)``; this is the log-likelihood-trick estimator
``1/n sum_i L(z_i) grad log pi(z_i | x)`` over the ``n = 2 S`` mirrored queries
``z = x +- sigma eps``. For a differentiable ``L`` it is an unbiased estimate of the
gradient of the Gaussian-smoothed loss; for a linear ``L`` of the gradient itself. ``L``
is either the target score or the cross-entropy of the softmax output against the
uniform distribution, ``L = -1/K sum_k log softmax(z)_k`` (which needs no label: it
measures how far the prediction is from indifference), the two fitness functions of
the reference code.

- GEEX (the paper's raw gradient estimate "GE"): full-resolution noise; the map is the
  estimate reduced over channels.
- GERS: noise drawn at ``noise_size x noise_size`` and bilinearly upsampled, so the
  estimator sees ``Sigma = U U^T`` instead of ``I`` and returns a low-pass gradient
  with far less variance per sample. (The paper's own device against the variance of
  high-dimensional inputs is a 5 x 5 Gaussian filter of deviation 0.7 on the noise;
  it states no low-resolution noise size, so ``noise_size = 8`` is this library's choice.)
- iGEEX: the estimate integrated along the straight path from a baseline ``b`` (the
  Integrated Gradients construction of Sundararajan et al. 2017, Eq. 1, with the
  gradient replaced by ``g``) and multiplied by ``x - b``. By default every mirrored
  pair is evaluated at its own path point (the "dense one-sample estimators" of
  Sec. 3.3, which merge the path sum and the sample sum into one):
  ``(x - b) * 1/(2 S sigma) sum_s eps_s [L(p_s + sigma eps_s) - L(p_s - sigma eps_s)]``,
  ``p_s = b + alpha_s (x - b)``, ``alpha_s = (s - 1/2) / S`` (evenly spaced where the
  paper draws ``alpha ~ U[0, 1]``: the same integral with less variance). With
  ``steps = T`` the path is instead cut into T midpoints with S pairs each (Sec. 3.2),
  ``alpha_t = (t - 1/2) / T``.

Paper defaults: ``n* = 5000`` noise samples (each evaluated mirrored in the reference
code, so 10,000 forwards per image) and ``sigma = 0.3`` on ImageNet, ``1.0`` on MNIST
and Fashion-MNIST, both in standardised input units; a zero baseline for greyscale
images and a blurred copy of the image for ImageNet.

Noise is shared by all images of a batch (one draw serves the batch) and drawn per
sample index, so results do not depend on ``batch_size``. Unlike the reference code,
which draws one noise plane and shares it across colour channels, every channel gets
its own noise, so the estimate is the per-channel gradient that iGEEX multiplies by
the per-channel ``x - b``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from shortcut_audit.attribution.base import (
    BlackBoxExplainer,
    check_choice,
    check_positive,
    check_positive_int,
    indexed_randn,
    pair,
    reduce_channels,
    target_score,
    zero_if_constant,
)

LOSSES = ("target", "uniform_ce")


def uniform_cross_entropy(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of softmax(outputs) against the uniform distribution, per row."""
    del targets  # the uniform reference needs no label
    return -F.log_softmax(outputs, dim=1).mean(dim=1)


class GEEX(BlackBoxExplainer):
    """Gradient estimate with NES and mirrored sampling (Cai & Wunder 2024, Sec. 3.1).

    Parameters
    ----------
    n_samples
        S, the number of mirrored pairs (2 S forwards per image); the paper's
        ``n* = 5000`` by default.
    sigma
        Standard deviation of the search distribution, in input units; the paper's
        ImageNet value 0.3 by default (it uses 1.0 for MNIST and Fashion-MNIST; both in
        standardised pixel units, so rescale for inputs in [0, 1]).
    loss
        ``"target"`` (score of the target class) or ``"uniform_ce"``.
    channel_reduction
        ``"sum"`` (signed) or ``"abs_max"``.
    """

    name = "geex"

    def __init__(self, model, *, n_samples: int = 5000, sigma: float = 0.3, loss: str = "target",
                 channel_reduction: str = "sum", batch_size: int = 64, device=None, seed: int = 0):
        super().__init__(model, batch_size=batch_size, device=device, seed=seed)
        self.n_samples = check_positive_int("n_samples", n_samples)
        self.sigma = check_positive("sigma", sigma)
        self.loss = check_choice("loss", loss, LOSSES)
        self.channel_reduction = check_choice("channel_reduction", channel_reduction, ("sum", "abs_max"))

    @property
    def score(self):
        return target_score if self.loss == "target" else uniform_cross_entropy

    def noise(self, indices: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
        """Search directions ``eps`` (m, C, H, W) for global sample indices."""
        return indexed_randn(self.seed, indices, shape, self.device)

    def estimate_gradients(self, points_of, n_points: int, images, targets, pairs_per_point: int | None = None):
        """Mean NES gradient over ``n_points`` query points per image, (N, C, H, W), and the scores.

        ``points_of(images, t)`` gives the query points ``(g, m, C, H, W)`` for point
        indices ``t`` (m,); each point gets ``P = pairs_per_point`` mirrored pairs
        (``n_samples`` when None). Perturbation index ``p`` encodes point ``p // (2P)``,
        sample ``(p % 2P) // 2`` and sign ``+`` for even ``p``; the noise of point ``t``,
        sample ``s`` is draw ``t P + s``.
        """
        shape = tuple(images.shape[1:])
        per_point = self.n_samples if pairs_per_point is None else pairs_per_point
        queries = 2 * per_point

        def perturb(imgs, idx):
            t, r = idx // queries, idx % queries
            sign = 1.0 - 2.0 * (r % 2).float()
            eps = self.noise(t * per_point + r // 2, shape)
            return points_of(imgs, t) + self.sigma * sign.view(1, -1, 1, 1, 1) * eps[None]

        scores = self.perturbed_scores(images, targets, n_points * queries, perturb, self.score)
        diffs = scores[:, 0::2] - scores[:, 1::2]  # (N, n_points * P), ordered like the noise indices
        grads = torch.zeros_like(images)
        for j0 in range(0, diffs.shape[1], self.batch_size):
            idx = torch.arange(j0, min(j0 + self.batch_size, diffs.shape[1]), device=self.device)
            grads += torch.einsum("nm,mchw->nchw", diffs[:, idx], self.noise(idx, shape))
        grads /= 2.0 * per_point * self.sigma * n_points
        return grads, scores

    def explain(self, images, targets):
        grads, scores = self.estimate_gradients(
            lambda imgs, t: imgs[:, None].expand(-1, len(t), -1, -1, -1), 1, images, targets)
        return zero_if_constant(reduce_channels(grads, self.channel_reduction), scores, self.name)


class GERS(GEEX):
    """GEEX with low-resolution search directions, bilinearly upsampled to the image size.

    Parameters
    ----------
    noise_size
        Side of the low-resolution noise grid (int or (h, w)); not a paper value (see
        the module docstring).
    """

    name = "gers"

    def __init__(self, model, *, noise_size: int = 8, **kwargs):
        super().__init__(model, **kwargs)
        self.noise_size = pair("noise_size", noise_size)

    def noise(self, indices, shape):
        c, h, w = shape
        low = indexed_randn(self.seed, indices, (c, *self.noise_size), self.device)
        return F.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)


class IGEEX(GEEX):
    """Integrated GEEX: NES gradients averaged along the path from a baseline, times (x - b).

    Parameters
    ----------
    steps
        None (default): dense one-sample estimators (Cai & Wunder 2024, Sec. 3.3), one
        mirrored pair at each of ``n_samples`` evenly spaced path points, so
        ``2 * n_samples`` forwards in all. An int T: T path points (midpoint rule) with
        ``n_samples`` pairs each (Sec. 3.2), ``2 * T * n_samples`` forwards.
    baseline
        Constant baseline value (0 by default, the paper's greyscale baseline).
    """

    name = "igeex"

    def __init__(self, model, *, steps: int | None = None, baseline: float = 0.0, **kwargs):
        super().__init__(model, **kwargs)
        self.steps = None if steps is None else check_positive_int("steps", steps)
        self.baseline = float(baseline)

    def explain(self, images, targets):
        b = self.baseline
        n_points, per_point = (self.n_samples, 1) if self.steps is None else (self.steps, self.n_samples)

        def points_of(imgs, t):
            alpha = ((t.float() + 0.5) / n_points).view(1, -1, 1, 1, 1)
            return b + alpha * (imgs[:, None] - b)

        grads, scores = self.estimate_gradients(points_of, n_points, images, targets, per_point)
        return zero_if_constant(reduce_channels((images - b) * grads, "sum"), scores, self.name)
