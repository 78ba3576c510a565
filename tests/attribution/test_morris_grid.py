"""MoSIP grid Morris: known answers of the local and global analyses (MoSIP Sec. 3.2, 5)."""

import pytest
import torch

from shortcut_audit.attribution import MorrisGridAttribution
from shortcut_audit.attribution.morris_grid import average_over_images


class LumpedLinear:
    """Class-0 score = sum_j a_j * (lumped value of region j) on a 2 x 2 grid of 8 x 8 images."""

    def __init__(self, weights):
        self.weights = torch.as_tensor(weights, dtype=torch.float32)

    def __call__(self, x):
        lumped = x.sum(dim=1).unfold(1, 4, 4).unfold(2, 4, 4).sum(dim=(3, 4)).flatten(1)  # (n, 4)
        s = lumped @ self.weights
        return torch.stack([s, torch.zeros_like(s)], dim=1)


def _lumped(images):
    return images.sum(dim=1).unfold(1, 4, 4).unfold(2, 4, 4).sum(dim=(3, 4)).flatten(1)


WEIGHTS = [0.5, -2.0, 1.0, 0.0]


def test_local_analysis_of_a_linear_model():
    """Lumped values move in [L (1 - r), L (1 + r)]: every EE of region j is a_j * 2 r L_j, sigma = 0."""
    images = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(0)) + 0.1
    stats = MorrisGridAttribution(
        LumpedLinear(WEIGHTS), grid_size=2, n_trajectories=4, levels=4, radius=0.5
    ).region_statistics(images, torch.zeros(3))
    expected = torch.tensor(WEIGHTS).abs() * _lumped(images)  # |a_j| * (2 * 0.5 * L_j)
    torch.testing.assert_close(stats["mu_star"].flatten(1).float(), expected, rtol=1e-4, atol=1e-4)
    assert stats["sigma"].abs().max() < 1e-3


def test_global_analysis_shares_bounds_and_averages():
    """Bounds = min and max lumped value over the images; the same range for every image."""
    g = torch.Generator().manual_seed(1)
    images = torch.rand(4, 3, 8, 8, generator=g) * torch.tensor([0.3, 0.6, 0.9, 1.2]).view(4, 1, 1, 1)
    lumped = _lumped(images)
    width = lumped.max(0).values - lumped.min(0).values
    explainer = MorrisGridAttribution(
        LumpedLinear(WEIGHTS), grid_size=2, n_trajectories=4, levels=4, sampling="global", reference_images=images
    )
    stats = explainer.region_statistics(images, torch.zeros(4))
    expected = torch.tensor(WEIGHTS).abs() * width
    torch.testing.assert_close(stats["mu_star"].flatten(1).float(), expected.expand(4, -1), rtol=1e-4, atol=1e-4)
    averaged = average_over_images(stats)
    assert averaged["mu_star"].shape == (2, 2)
    torch.testing.assert_close(averaged["mu_star_plus_sigma"], averaged["mu_star"] + averaged["sigma"])


@pytest.mark.parametrize("statistic", ["mu_star", "sigma", "mu_star_plus_sigma"])
def test_maps_paint_the_region_statistics(statistic):
    images = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    model = lambda x: torch.stack([torch.tanh(x[:, 0, :4, :4].mean((1, 2)) * x[:, 1, 4:, 4:].mean((1, 2)))] * 2, 1)  # noqa: E731
    explainer = MorrisGridAttribution(model, grid_size=2, n_trajectories=3, levels=4, statistic=statistic)
    maps = explainer(images, torch.zeros(2))
    stats = explainer.region_statistics(images, torch.zeros(2))[statistic].float()
    torch.testing.assert_close(maps[:, ::4, ::4], stats)
