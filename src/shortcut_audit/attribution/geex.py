"""GEEX, GERS and iGEEX: black-box gradient estimation for explanations.

All three estimate the input gradient of a loss ``L`` from model outputs only, with
the natural-evolution-strategies (NES) search gradient and mirrored (antithetic)
sampling (Wierstra et al., JMLR 2014; Salimans et al., 2017):

``g(x) = 1 / (2 S sigma) * sum_{s=1..S} eps_s * [L(x + sigma eps_s) - L(x - sigma eps_s)]``

with ``eps_s ~ N(0, I)``. For a differentiable ``L`` this is an unbiased estimate of
the gradient of the Gaussian-smoothed loss; for a linear ``L`` it is unbiased for the
gradient itself. ``L`` is either the target score or the cross-entropy of the
softmax output against the uniform distribution, ``L = -1/K sum_k log softmax(z)_k``
(which needs no label: it measures how far the prediction is from indifference).

- GEEX: full-resolution noise; the map is the estimate reduced over channels.
- GERS: noise drawn at ``noise_size x noise_size`` and bilinearly upsampled, so the
  estimator sees ``Sigma = U U^T`` instead of ``I`` and returns a low-pass gradient
  with far less variance per sample.
- iGEEX: the estimate integrated along the straight path from a baseline ``b`` (the
  Integrated Gradients construction of Sundararajan et al. 2017, Eq. 1, with the
  gradient replaced by ``g``), ``(x - b) * 1/T sum_t g(b + alpha_t (x - b))``,
  ``alpha_t = (t - 1/2) / T``.

Noise is shared by all images of a batch (one draw serves the batch) and drawn per
sample index, so results do not depend on ``batch_size``.
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
    """Gradient estimate with NES and mirrored sampling (see the module docstring).

    Parameters
    ----------
    n_samples
        S, the number of mirrored pairs (2 S forwards per image).
    sigma
        Standard deviation of the search distribution, in input units.
    loss
        ``"target"`` (score of the target class) or ``"uniform_ce"``.
    channel_reduction
        ``"sum"`` (signed) or ``"abs_max"``.
    """

    name = "geex"

    def __init__(self, model, *, n_samples: int = 256, sigma: float = 0.1, loss: str = "target",
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

    def estimate_gradients(self, points_of, n_points: int, images, targets):
        """Mean NES gradient over ``n_points`` query points per image, (N, C, H, W), and the scores.

        ``points_of(images, t)`` gives the query points ``(g, m, C, H, W)`` for point
        indices ``t`` (m,). Perturbation index ``p`` encodes point ``p // (2S)``, sample
        ``(p % 2S) // 2`` and sign ``+`` for even ``p``.
        """
        shape = tuple(images.shape[1:])
        pairs = 2 * self.n_samples

        def perturb(imgs, idx):
            t, r = idx // pairs, idx % pairs
            sign = 1.0 - 2.0 * (r % 2).float()
            eps = self.noise(t * self.n_samples + r // 2, shape)
            return points_of(imgs, t) + self.sigma * sign.view(1, -1, 1, 1, 1) * eps[None]

        scores = self.perturbed_scores(images, targets, n_points * pairs, perturb, self.score)
        diffs = scores[:, 0::2] - scores[:, 1::2]  # (N, n_points * S), ordered like the noise indices
        grads = torch.zeros_like(images)
        for j0 in range(0, diffs.shape[1], self.batch_size):
            idx = torch.arange(j0, min(j0 + self.batch_size, diffs.shape[1]), device=self.device)
            grads += torch.einsum("nm,mchw->nchw", diffs[:, idx], self.noise(idx, shape))
        grads /= 2.0 * self.n_samples * self.sigma * n_points
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
        Side of the low-resolution noise grid (int or (h, w)).
    """

    name = "gers"

    def __init__(self, model, *, noise_size: int = 8, **kwargs):
        super().__init__(model, **kwargs)
        self.noise_size = check_positive_int("noise_size", noise_size)

    def noise(self, indices, shape):
        c, h, w = shape
        low = indexed_randn(self.seed, indices, (c, self.noise_size, self.noise_size), self.device)
        return F.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)


class IGEEX(GEEX):
    """Integrated GEEX: NES gradients averaged along the path from a baseline, times (x - b).

    Parameters
    ----------
    steps
        T, the number of path points (midpoint rule).
    baseline
        Constant baseline value (0 by default).
    """

    name = "igeex"

    def __init__(self, model, *, steps: int = 16, baseline: float = 0.0, **kwargs):
        super().__init__(model, **kwargs)
        self.steps = check_positive_int("steps", steps)
        self.baseline = float(baseline)

    def explain(self, images, targets):
        b = self.baseline

        def points_of(imgs, t):
            alpha = ((t.float() + 0.5) / self.steps).view(1, -1, 1, 1, 1)
            return b + alpha * (imgs[:, None] - b)

        grads, scores = self.estimate_gradients(points_of, self.steps, images, targets)
        return zero_if_constant(reduce_channels((images - b) * grads, "sum"), scores, self.name)
