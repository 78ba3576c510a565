import numpy as np
import torch
from scipy.stats import spearmanr

from shortcut_audit.metrics import ConvergencePoint, convergence_curve, spearman


def test_spearman_matches_scipy_with_ties():
    g = torch.Generator().manual_seed(1)
    a = torch.randint(0, 5, (3, 6, 6), generator=g).float()
    b = a + torch.randn(3, 6, 6, generator=g)
    ours = spearman(a, b)
    for i in range(3):
        assert ours[i].item() == np.float32(spearmanr(a[i].flatten(), b[i].flatten())[0])


def test_spearman_extremes_and_constant_map():
    a = torch.arange(16.0).view(1, 4, 4)
    assert spearman(a, a).item() == 1.0
    assert spearman(a, -a).item() == -1.0
    assert spearman(torch.ones(1, 4, 4), a).item() == 0.0


def test_convergence_improves_with_budget():
    g = torch.Generator().manual_seed(0)
    reference = torch.rand(4, 8, 8, generator=g)

    def explain(budget):
        noise = torch.randn(4, 8, 8, generator=torch.Generator().manual_seed(budget))
        return reference + noise / budget**0.5, budget

    points = convergence_curve(explain, [1, 10, 100, 1000], reference)
    means = [p.spearman.mean().item() for p in points]
    assert [p.forwards for p in points] == [1, 10, 100, 1000]
    assert means == sorted(means) and means[-1] > 0.95


def test_point_reports_the_mean_and_variance_over_images():
    # Fel et al. (2021), Fig. 2: mean and variance of the Spearman correlation over the images
    rho = torch.tensor([0.2, 0.5, 0.9, 1.0])
    point = ConvergencePoint(1000, rho)
    values = rho.numpy().astype(np.float64)
    assert abs(point.mean - values.sum() / 4) < 1e-12
    assert abs(point.variance - ((values - values.mean()) ** 2).sum() / 4) < 1e-12
    assert ConvergencePoint(1000, rho[:1]).variance == 0.0
