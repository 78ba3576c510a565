"""Restricted-Boltzmann-machine aggregation of attribution maps (``g_rbm`` of Mahlau & Nolde 2022).

The unsupervised ensemble of Borisov et al. (2021, "A Robust Unsupervised Ensemble of
Feature-Based Explanations using Restricted Boltzmann Machines", arXiv:2111.07379; ref. [5]
of Mahlau & Nolde), as evaluated by Mahlau & Nolde (Sec. 3.2, Table 1): for each image,
every pixel is one training sample whose ``K`` visible units are the attributions of the
``K`` base methods scaled to [0, 1]; a Bernoulli RBM with a single hidden unit is trained
by contrastive divergence, and the aggregated attribution of a pixel is the hidden
activation probability ``p(h = 1 | v) = sigmoid(v . w + c)``.

Mahlau & Nolde name two settings, the learning rate ``alpha`` and "k iterations of training
in the contrastive learning algorithm" (Table 1: ``alpha = 1e-4``, ``k = 100``), and list
scikit-learn 1.0.2 among their tools (Sec. 4). The training here follows the algorithm of
scikit-learn's ``BernoulliRBM``, whose ``learning_rate`` and ``n_iter`` those two settings
match: ``k`` sweeps over the pixels in raster order, in mini-batches of ``batch_size``
pixels (scikit-learn's default, 10; the papers give no batch size), each mini-batch one
persistent-contrastive-divergence step (a persistent chain of ``batch_size`` hidden
samples, started at 0). That reading is an inference from the paper, not stated in it; with
full-batch updates ``alpha = 1e-4`` for 100 steps would leave the weights at their random
initialisation.

One step on a mini-batch ``V`` (b, K) with the chain ``H`` (B,) (:func:`pcd_step`):

``h+ = sigmoid(V w + c)``, ``V- ~ Bernoulli(sigmoid(H w^T + b_v))``, ``h- = sigmoid(V- w + c)``,
``w += alpha (V^T h+ / b - V-^T h- / B)``, ``b_v += alpha (mean V - mean V-)``,
``c += alpha (mean h+ - mean h-)``, ``H ~ Bernoulli(h-)``.

(scikit-learn divides both sums by ``b``; the two differ only on a last, shorter batch.)
Initialisation as scikit-learn: ``w ~ N(0, 0.01^2)``, biases 0.

The hidden unit's sign is arbitrary (flipping ``w, c`` gives the mirrored model), so the
output is oriented to correlate positively with the ensemble mean (this library's choice).
All images are trained together, one independent RBM each, vectorised over images: the
training is a long sequence of tiny steps (100 sweeps of ``n / batch_size`` mini-batches), so
its cost is per step, not per image, and training M images together costs little more than
one. With one seed per image, an image's map is bit for bit the same alone or in a batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy.special import expit

# mini-batches whose random numbers are drawn at once (bounds memory for many images)
_CHUNK = 256


def pcd_step(
    v: np.ndarray,
    w: np.ndarray,
    b: np.ndarray,
    c: np.ndarray,
    chain: np.ndarray,
    u_visible: np.ndarray,
    u_hidden: np.ndarray,
    lr: float,
):
    """One persistent-contrastive-divergence update of M independent single-hidden-unit RBMs.

    Parameters
    ----------
    v : ndarray (M, b, K)
        A mini-batch of b visible vectors per RBM.
    w, b, c : ndarray (M, K), (M, K), (M,)
        Weights, visible biases, hidden bias.
    chain : ndarray (M, B)
        Binary hidden states of the persistent chain.
    u_visible, u_hidden : ndarray (M, B, K), (M, B)
        Uniform [0, 1) numbers that sample the negative visibles and the next chain (passed
        in so the step is pure).
    lr : float
        Learning rate ``alpha``.

    Returns
    -------
    ``(w, b, c, chain)`` after the step.
    """
    # Products then sums along one axis (no einsum, whose loop order may depend on the shapes):
    # each RBM's numbers are then the same whatever other RBMs share the call.
    h_pos = expit((v * w[:, None, :]).sum(axis=2) + c[:, None])
    p_visible = expit(chain[:, :, None] * w[:, None, :] + b[:, None, :])
    v_neg = (u_visible < p_visible).astype(v.dtype)
    h_neg = expit((v_neg * w[:, None, :]).sum(axis=2) + c[:, None])
    positive = (v * h_pos[:, :, None]).sum(axis=1) / v.shape[1]
    negative = (v_neg * h_neg[:, :, None]).sum(axis=1) / v_neg.shape[1]
    w = w + lr * (positive - negative)
    b = b + lr * (v.sum(axis=1) / v.shape[1] - v_neg.sum(axis=1) / v_neg.shape[1])
    c = c + lr * (h_pos.sum(axis=1) / h_pos.shape[1] - h_neg.sum(axis=1) / h_neg.shape[1])
    return w, b, c, (u_hidden < h_neg).astype(v.dtype)


def hidden_probability(v: np.ndarray, w: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``p(h = 1 | v) = sigmoid(v . w + c)``, (M, n)."""
    return expit(np.einsum("mnk,mk->mn", v, w) + c[:, None])


class _Uniforms:
    """The random numbers of M RBMs: one stream for all (an int seed), or one stream per RBM.

    With one seed per RBM (per image), an RBM's numbers do not depend on which other
    RBMs are trained with it: the same image gets the same aggregation whatever images
    share its batch (or process).
    """

    def __init__(self, seed: int | Sequence[int], m: int):
        if isinstance(seed, bool):
            raise TypeError(f"rbm: seed must be an int or a sequence of ints, got {seed!r}")
        self.shared: np.random.Generator | None = None
        self.own: list[np.random.Generator] = []
        if isinstance(seed, (int, np.integer)):
            self.shared = np.random.default_rng(int(seed))
        else:
            seeds = [int(s) for s in seed]
            if len(seeds) != m:
                raise ValueError(f"rbm: got {len(seeds)} per-image seeds for {m} RBMs")
            self.own = [np.random.default_rng(s) for s in seeds]

    def normal(self, scale: float, k: int, m: int) -> np.ndarray:
        if self.shared is not None:
            return self.shared.normal(0.0, scale, size=(m, k))
        return np.stack([rng.normal(0.0, scale, size=k) for rng in self.own]).reshape(m, k)

    def random(self, blocks: int, m: int, *shape: int) -> np.ndarray:
        """Uniform numbers ``(blocks, m, *shape)``."""
        if self.shared is not None:
            return self.shared.random((blocks, m, *shape))
        return np.stack([rng.random((blocks, *shape)) for rng in self.own], axis=1).reshape(blocks, m, *shape)


def train_rbms(
    v: np.ndarray, *, iterations: int, learning_rate: float, batch_size: int, seed: int | Sequence[int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train M independent RBMs on ``v`` (M, n, K) in [0, 1]; returns ``(w, b, c)``.

    ``seed``: one int for all RBMs (one random stream), or one per RBM (:class:`_Uniforms`).
    """
    m, n, k = v.shape
    rng = _Uniforms(seed, m)
    w = rng.normal(0.01, k, m)
    b, c = np.zeros((m, k)), np.zeros(m)
    chain = np.zeros((m, batch_size))
    starts = list(range(0, n, batch_size))
    for _ in range(iterations):
        for first in range(0, len(starts), _CHUNK):
            block = starts[first : first + _CHUNK]
            u_visible = rng.random(len(block), m, batch_size, k)
            u_hidden = rng.random(len(block), m, batch_size)
            for j, start in enumerate(block):
                w, b, c, chain = pcd_step(
                    v[:, start : start + batch_size], w, b, c, chain, u_visible[j], u_hidden[j], learning_rate
                )
    return w, b, c


def rbm_aggregate(
    stack: torch.Tensor,
    *,
    iterations: int = 100,
    learning_rate: float = 1e-4,
    batch_size: int = 10,
    seed: int | Sequence[int] = 0,
) -> torch.Tensor:
    """Aggregate a stack (K, N, H, W) of maps in [0, 1] with one single-hidden-unit RBM per image.

    Parameters
    ----------
    stack : Tensor (K, N, H, W)
        Base maps scaled to [0, 1] (visible units are Bernoulli probabilities).
    iterations, learning_rate
        ``k`` and ``alpha`` of Mahlau & Nolde (Table 1: 100 and 1e-4).
    batch_size
        Pixels per mini-batch (scikit-learn's default 10; not given in the papers).
    seed
        Seeds initialisation and sampling; same seed, same result. One int seeds every
        image's RBM from one stream; a sequence of N ints gives each image's RBM its own.

    Returns
    -------
    Tensor (N, H, W) float32 of hidden probabilities, oriented to correlate positively with
    the mean map.
    """
    k, n, h, wd = stack.shape
    v = stack.permute(1, 2, 3, 0).reshape(n, h * wd, k).double().cpu().numpy()
    if v.size and (v.min() < 0 or v.max() > 1):
        raise ValueError("rbm: visible units must lie in [0, 1]; scale the maps first (linear normalisation)")
    w, _, c = train_rbms(v, iterations=iterations, learning_rate=learning_rate, batch_size=batch_size, seed=seed)
    p = hidden_probability(v, w, c)
    mean = v.mean(axis=2)
    covariance = ((p - p.mean(1, keepdims=True)) * (mean - mean.mean(1, keepdims=True))).sum(1)
    p = np.where(covariance[:, None] < 0, 1.0 - p, p)
    return torch.from_numpy(p).view(n, h, wd).float().to(stack.device)
