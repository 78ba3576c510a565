"""GEEX, GERS and iGEEX: black-box gradient estimation for explanations.

Reference: Y. Cai and G. Wunder, "On Gradient-like Explanation under a Black-box
Setting: When Black-box Explanations Become as Good as White-box" (arXiv:2308.09381;
ICML 2024). Sections below are those of the project's copy of the text (Sec. 3
"Gradient Estimation for Explanation" with its parts "Natural Evolution Strategies",
"Noise Sampling" and "Integrated Gradient Estimation"; Sec. 4 "Experiments"). The
extracted text lost nearly every formula and number: only the equation label (1) of
the empirical search gradient survives, and the sample count, the kernel width and
the GERS mask sizes are blank; the values below that the text does not carry are
named as such.

Estimator (Sec. 3, "Natural Evolution Strategies", Eq. 1 with a Gaussian search
distribution centred on the input; Wierstra et al., JMLR 2014): the search gradient
of the expected loss, ``1/n sum_i L(z_i) grad_x log pi(z_i | x)``, with mirrored
sampling ("Noise Sampling": every mask ``eps`` is used with its symmetric ``-eps``):

``g(x) = 1 / (2 S sigma) * sum_{s=1..S} eps_s * [L(x + sigma eps_s) - L(x - sigma eps_s)]``

with ``eps_s ~ N(0, I)``. **Noise convention** (the only one in this module):
``sigma`` is the standard deviation of the Gaussian search distribution, i.e. every
query is ``x +- sigma * eps`` with unit-variance ``eps`` per noise element, in the
units of the model's input. ``g`` is then an unbiased estimate of the gradient of the
Gaussian-smoothed loss; for a linear loss ``L = w . x`` it is ``E[eps eps^T] w``, i.e.
``w`` for full-resolution noise. The authors' reference code draws its masks as
``N(0, I) / 2`` and scales them by its kernel width ``sigma_ref``, so its queries have
standard deviation ``sigma_ref / 2``: ``sigma = sigma_ref / 2`` here. Its ImageNet
example uses ``sigma_ref = 0.3`` on standardised (z-scored) inputs and ``n* = 5000``
masks, so the defaults are ``sigma = 0.15`` and ``n_samples = 5000`` (the paper text
lost both numbers).

Loss (Sec. 3, end of "Natural Evolution Strategies"): the cross-entropy of the model's
prediction against the "non-informative" uniform distribution ``1/K``,
``L = -1/K sum_k log p_k`` (``loss="uniform_ce"``, the default: it needs no label and
measures how informative the prediction is); the class score itself, which the paper
names as the alternative bound to one class, is ``loss="target"``.

Noise (Sec. 3, "Noise Sampling"): masks of the image's spatial size applied to the
input, one mask for all colour channels (``noise="shared"``, as in the paper and its
code); ``noise="per_channel"`` draws one mask per channel. With shared noise the
estimate is the derivative along the all-channels direction, ``sum_c dL/dx_c`` per
pixel, which is also what the channel sum of per-channel estimates gives.

Variants (Sec. 4, "Experimental Details"):

- GEEX: full-resolution noise; the map is the estimate summed over channels.
- GERS (mask resizing, end of "Noise Sampling"): noise drawn at ``noise_size`` and
  bilinearly upsampled to the image, so the estimate is ``U U^T grad L`` (``U`` the
  upsampling): a low-pass gradient with far less variance per sample. ``sigma`` is the
  standard deviation of the low-resolution noise. The ImageNet mask size is lost from
  the text; ``noise_size = 8`` is this library's choice.
- iGEEX ("Integrated Gradient Estimation"): Integrated Gradients (Sundararajan et al.
  2017) with the gradient replaced by ``g``: ``(x - b) * 1/m sum_t g(b + alpha_t (x - b))``.
  The root point ``b`` is a zero matrix in all the paper's settings; it uses full
  resolution noise on small inputs and resized noise on ImageNet (``noise_size``).
  ``steps = m`` path points with ``n_samples`` mirrored pairs each, at the midpoints
  ``alpha_t = (t - 1/2) / m`` of [0, 1]; by default (``steps=None``) every mirrored pair
  gets its own path point ("dense one-sample estimators" of the ICML version), which
  merges the path sum and the sample sum at the same cost per forward. With shared
  noise the per-pixel estimate multiplies every channel's ``x_c - b_c``; for colour
  inputs this equals Integrated Gradients only where the channels' gradients agree
  (per-channel noise recovers it exactly for linear models).

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
    pair,
    reduce_channels,
    target_score,
    zero_if_constant,
)

LOSSES = ("uniform_ce", "target")
NOISES = ("shared", "per_channel")
MODEL_OUTPUTS = ("logits", "probabilities")
#: Kernel width of the reference code's ImageNet example (its queries have std half of it).
REFERENCE_KERNEL_WIDTH = 0.3
DEFAULT_SIGMA = REFERENCE_KERNEL_WIDTH / 2
DEFAULT_SAMPLES = 5000


def uniform_cross_entropy(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of softmax(outputs) against the uniform distribution, per row.

    ``H(u, p) = -1/K sum_k log p_k`` with ``p = softmax(outputs)``: at least ``log K``,
    with equality at ``p = u``, and growing as the prediction gets more informative.
    """
    del targets  # the uniform reference needs no label
    return -F.log_softmax(outputs, dim=1).mean(dim=1)


def uniform_cross_entropy_of_probabilities(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """:func:`uniform_cross_entropy` for models that return probabilities (rows summing to 1)."""
    del targets
    return -torch.log(outputs.clamp_min(torch.finfo(outputs.dtype).tiny)).mean(dim=1)


class GEEX(BlackBoxExplainer):
    """Gradient estimate with NES and mirrored sampling (Cai & Wunder, Sec. 3, Eq. 1).

    Parameters
    ----------
    n_samples
        S, the number of mirrored pairs (2 S forwards per image); ``n* = 5000`` of the
        reference code by default.
    sigma
        Standard deviation of the search distribution (see the module docstring for
        the convention), in the model's input units. The default 0.15 is the reference
        code's ImageNet noise on standardised inputs; rescale it for other input units.
    loss
        ``"uniform_ce"`` (the paper's: cross-entropy against the uniform distribution)
        or ``"target"`` (the target class score).
    noise
        ``"shared"`` (the paper's: one noise plane for all channels) or ``"per_channel"``.
    noise_size
        None for full-resolution noise, else the side (int or (h, w)) of the
        low-resolution noise that is bilinearly upsampled to the image (mask resizing).
    model_output
        What the model returns, for ``loss="uniform_ce"``: ``"logits"`` or
        ``"probabilities"``.
    channel_reduction
        ``"sum"`` (signed) or ``"abs_max"``.
    """

    name = "geex"

    def __init__(
        self,
        model,
        *,
        n_samples: int = DEFAULT_SAMPLES,
        sigma: float = DEFAULT_SIGMA,
        loss: str = "uniform_ce",
        noise: str = "shared",
        noise_size: int | tuple[int, int] | None = None,
        model_output: str = "logits",
        channel_reduction: str = "sum",
        batch_size: int = 64,
        device=None,
        seed: int = 0,
    ):
        super().__init__(model, batch_size=batch_size, device=device, seed=seed)
        self.n_samples = check_positive_int("n_samples", n_samples)
        self.sigma = check_positive("sigma", sigma)
        self.loss = check_choice("loss", loss, LOSSES)
        self.noise_kind = check_choice("noise", noise, NOISES)
        self.noise_size = None if noise_size is None else pair("noise_size", noise_size)
        self.model_output = check_choice("model_output", model_output, MODEL_OUTPUTS)
        self.channel_reduction = check_choice("channel_reduction", channel_reduction, ("sum", "abs_max"))

    @property
    def score(self):
        if self.loss == "target":
            return target_score
        return uniform_cross_entropy if self.model_output == "logits" else uniform_cross_entropy_of_probabilities

    def noise_shape(self, image_shape: tuple[int, int, int]) -> tuple[int, int, int]:
        """Shape ``(channels, h, w)`` of one search direction for images ``(C, H, W)``."""
        c, h, w = image_shape
        return (1 if self.noise_kind == "shared" else c, h, w)

    def noise(self, indices: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
        """Search directions ``eps`` (m, c, H, W) for global sample indices; ``shape`` from :meth:`noise_shape`."""
        c, h, w = shape
        if self.noise_size is None:
            return indexed_randn(self.seed, indices, shape, self.device)
        low = indexed_randn(self.seed, indices, (c, *self.noise_size), self.device)
        return F.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)

    def estimate_gradients(self, points_of, n_points: int, images, targets, pairs_per_point: int | None = None):
        """Mean NES gradient over ``n_points`` query points per image, (N, c, H, W), and the scores.

        ``points_of(images, t)`` gives the query points ``(g, m, C, H, W)`` for point
        indices ``t`` (m,); each point gets ``P = pairs_per_point`` mirrored pairs
        (``n_samples`` when None). Perturbation index ``p`` encodes point ``p // (2P)``,
        sample ``(p % 2P) // 2`` and sign ``+`` for even ``p``; the noise of point ``t``,
        sample ``s`` is draw ``t P + s``. ``c`` is 1 with shared noise.
        """
        shape = self.noise_shape(tuple(images.shape[1:]))
        per_point = self.n_samples if pairs_per_point is None else pairs_per_point
        queries = 2 * per_point

        def perturb(imgs, idx):
            t, r = idx // queries, idx % queries
            sign = 1.0 - 2.0 * (r % 2).float()
            eps = self.noise(t * per_point + r // 2, shape)
            return points_of(imgs, t) + self.sigma * sign.view(1, -1, 1, 1, 1) * eps[None]

        scores = self.perturbed_scores(images, targets, n_points * queries, perturb, self.score)
        diffs = scores[:, 0::2] - scores[:, 1::2]  # (N, n_points * P), ordered like the noise indices
        grads = torch.zeros(images.shape[0], *shape, device=self.device)
        for j0 in range(0, diffs.shape[1], self.batch_size):
            idx = torch.arange(j0, min(j0 + self.batch_size, diffs.shape[1]), device=self.device)
            grads += torch.einsum("nm,mchw->nchw", diffs[:, idx], self.noise(idx, shape))
        grads /= 2.0 * per_point * self.sigma * n_points
        return grads, scores

    def explain(self, images, targets):
        grads, scores = self.estimate_gradients(
            lambda imgs, t: imgs[:, None].expand(-1, len(t), -1, -1, -1), 1, images, targets
        )
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

    def __init__(self, model, *, noise_size: int | tuple[int, int] = 8, **kwargs):
        super().__init__(model, noise_size=noise_size, **kwargs)


class IGEEX(GEEX):
    """Integrated GEEX: NES gradients averaged along the path from a baseline, times (x - b).

    Parameters
    ----------
    steps
        None (default): one mirrored pair at each of ``n_samples`` evenly spaced path
        points, ``2 * n_samples`` forwards in all. An int m: m path points (midpoint
        rule) with ``n_samples`` pairs each (the Riemann sum of the paper's iGEEX),
        ``2 * m * n_samples`` forwards.
    baseline
        Constant baseline value (0 by default, the paper's zero root point).
    noise_size
        As for :class:`GEEX`: None (full resolution, the paper's choice on small
        inputs) or the low-resolution noise side (its choice on ImageNet).
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
