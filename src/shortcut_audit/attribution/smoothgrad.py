"""SmoothGrad (Smilkov et al., 2017)."""

from __future__ import annotations

from shortcut_audit.attribution.base import (
    GradientExplainer,
    check_choice,
    check_positive,
    check_positive_int,
    indexed_randn,
    reduce_channels,
)


class SmoothGrad(GradientExplainer):
    """Gradients averaged over Gaussian-noised copies of the input.

    ``M(x) = 1/n sum_{k=1..n} dS_target(x + eps_k) / dx``, ``eps_k ~ N(0, sigma^2 I)``
    (Eq. 3 of the paper), with ``sigma = noise_level * (max(x) - min(x))`` per image
    (the paper recommends 10-20 %); the map is the channel maximum of ``|M|`` as for
    saliency (``channel_reduction="abs_max"``), or the signed channel sum of ``M``
    (``"sum"``, the form the GEEX paper compares its estimated gradients with). Noise
    draw k depends only on (seed, k) and serves every image.

    Parameters
    ----------
    n_samples
        n (the paper uses 50).
    noise_level
        sigma as a fraction of each image's value range.
    channel_reduction
        ``"abs_max"`` (the paper's) or ``"sum"`` (signed).
    """

    name = "smoothgrad"

    def __init__(
        self,
        model,
        *,
        n_samples: int = 50,
        noise_level: float = 0.15,
        channel_reduction: str = "abs_max",
        batch_size: int = 64,
        device=None,
        seed: int = 0,
    ):
        super().__init__(model, batch_size=batch_size, device=device, seed=seed)
        self.n_samples = check_positive_int("n_samples", n_samples)
        self.noise_level = check_positive("noise_level", noise_level)
        self.channel_reduction = check_choice("channel_reduction", channel_reduction, ("abs_max", "sum"))

    def explain(self, images, targets):
        flat = images.flatten(1)
        sigma = (self.noise_level * (flat.amax(1) - flat.amin(1))).view(-1, 1, 1, 1)
        shape = tuple(images.shape[1:])

        def point(imgs, s, k):
            return imgs[:, None] + s[:, None] * indexed_randn(self.seed, k, shape, self.device)[None]

        mean = self.repeated_gradients(
            images, targets, self.n_samples, point, lambda imgs, s, k: 1.0 / self.n_samples, aux=sigma
        )
        return reduce_channels(mean, self.channel_reduction)
