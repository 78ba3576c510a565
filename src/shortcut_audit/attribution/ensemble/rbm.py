"""Restricted-Boltzmann-machine aggregation of attribution maps.

The unsupervised ensemble of van den Heuvel et al. (2022, "A robust unsupervised
ensemble of feature-based explanations using restricted Boltzmann machines"), as
evaluated by Mahlau & Nolde (2022): for each image, every pixel is one training
sample whose ``K`` visible units are the (linearly normalised, [0, 1]) attributions
of the ``K`` base methods; a Bernoulli RBM with a single hidden unit is trained with
contrastive divergence (CD-1, Hinton 2002), and the aggregated attribution of a
pixel is the hidden activation probability ``p(h = 1 | v) = sigmoid(v . w + c)``.

Energy ``E(v, h) = -v.b - h c - h v.w``; CD-1 update for a batch ``V`` (n, K):

``h0 = sigmoid(V w + c)``, ``h ~ Bernoulli(h0)``, ``V1 = sigmoid(h w^T + b)``,
``h1 = sigmoid(V1 w + c)``,
``w += lr (V^T h0 - V1^T h1) / n``, ``b += lr mean(V - V1)``, ``c += lr mean(h0 - h1)``.

This layout (one RBM per image, pixels as samples, methods as visible units, a single
hidden unit read out as the aggregate) matches van den Heuvel et al.'s public code,
which trains scikit-learn's ``BernoulliRBM`` (persistent contrastive divergence,
learning rate 0.01, mini-batches of 10 pixels, 100 iterations); here plain CD-1 runs on
the full batch of an image's pixels, so ``lr`` and ``epochs`` are not those values.

The hidden unit's sign is arbitrary (flipping ``w, c`` gives the mirrored model), so
the output is oriented to correlate positively with the ensemble mean.
All images are trained together, one independent RBM each, vectorised over images.
"""
from __future__ import annotations

import torch


def cd1_step(v: torch.Tensor, w: torch.Tensor, b: torch.Tensor, c: torch.Tensor,
             h_sample: torch.Tensor, lr: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One CD-1 update for a batch of independent RBMs.

    Parameters
    ----------
    v
        Visible data (N, n, K): N independent RBMs, n samples, K visible units.
    w, b, c
        Weights (N, K), visible biases (N, K), hidden bias (N,).
    h_sample
        Binary hidden samples (N, n) drawn from ``p(h | v)`` (passed in so the step is pure).
    lr
        Learning rate.

    Returns
    -------
    Updated ``(w, b, c)``.
    """
    h0 = torch.sigmoid(torch.einsum("nsk,nk->ns", v, w) + c[:, None])
    v1 = torch.sigmoid(h_sample[..., None] * w[:, None, :] + b[:, None, :])
    h1 = torch.sigmoid(torch.einsum("nsk,nk->ns", v1, w) + c[:, None])
    n = v.shape[1]
    dw = (torch.einsum("nsk,ns->nk", v, h0) - torch.einsum("nsk,ns->nk", v1, h1)) / n
    db = (v - v1).mean(dim=1)
    dc = (h0 - h1).mean(dim=1)
    return w + lr * dw, b + lr * db, c + lr * dc


def hidden_probability(v: torch.Tensor, w: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """``p(h = 1 | v) = sigmoid(v . w + c)``, (N, n)."""
    return torch.sigmoid(torch.einsum("nsk,nk->ns", v, w) + c[:, None])


def rbm_aggregate(stack: torch.Tensor, *, epochs: int = 100, lr: float = 0.1, seed: int = 0) -> torch.Tensor:
    """Aggregate a stack (K, N, H, W) of maps in [0, 1] with one single-hidden-unit RBM per image.

    Returns (N, H, W) hidden probabilities, oriented to correlate positively with the mean map.
    """
    k, n, h, wd = stack.shape
    v = stack.permute(1, 2, 3, 0).reshape(n, h * wd, k).double()
    gen = torch.Generator().manual_seed(seed)
    w = (0.01 * torch.randn(n, k, generator=gen, dtype=torch.float64)).to(v.device)
    b = torch.zeros(n, k, dtype=torch.float64, device=v.device)
    c = torch.zeros(n, dtype=torch.float64, device=v.device)
    for _ in range(epochs):
        h0 = hidden_probability(v, w, c)
        h_sample = (torch.rand(h0.shape, generator=gen, dtype=torch.float64).to(v.device) < h0).double()
        w, b, c = cd1_step(v, w, b, c, h_sample, lr)
    p = hidden_probability(v, w, c)
    mean = v.mean(dim=2)
    covariance = ((p - p.mean(1, keepdim=True)) * (mean - mean.mean(1, keepdim=True))).sum(1)
    p = torch.where(covariance[:, None] < 0, 1.0 - p, p)
    return p.view(n, h, wd).float()
