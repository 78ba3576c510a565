"""Known answers on tiny models: region localisation, IG / iGEEX on linear models, Sobol indices."""

import pytest
import torch

from shortcut_audit import attribution as A
from shortcut_audit.attribution.base import gaussian_blur

from .conftest import LinearModel, RegionModel, positive_mass_in, quadrant

TARGETS = torch.zeros(3, dtype=torch.long)


@pytest.mark.parametrize(
    "make, size, channels, threshold",
    [
        # bilinear map upsampling (the default) spreads half a cell of mass over the region's border
        (lambda m: A.SobolAttribution(m, grid_size=4, nb_design=16, batch_size=128), 16, 3, 0.8),
        (
            lambda m: A.SobolAttribution(m, grid_size=4, nb_design=16, index="signed_total", map_upsampling="nearest"),
            16,
            3,
            0.9,
        ),
        (lambda m: A.MorrisGridAttribution(m, grid_size=4, n_trajectories=8, levels=4), 16, 3, 0.9),
        (
            lambda m: A.MorrisGridAttribution(m, grid_size=4, n_trajectories=8, statistic="mu_star_plus_sigma"),
            16,
            3,
            0.9,
        ),
        (lambda m: A.Occlusion(m, patch_size=4, stride=4), 16, 3, 0.9),
        (lambda m: A.Occlusion(m, patch_size=(2, 4), stride=(2, 4)), 16, 3, 0.9),
        (lambda m: A.RISE(m, nb_masks=2000, grid_size=4, batch_size=256), 32, 3, 0.8),
        (lambda m: A.GEEX(m, n_samples=1000, batch_size=256), 16, 1, 0.8),
        (lambda m: A.GEEX(m, n_samples=1000, loss="uniform_ce", batch_size=256), 16, 1, 0.8),
        (lambda m: A.GERS(m, n_samples=300, noise_size=8, batch_size=256), 32, 3, 0.8),
    ],
    ids=[
        "sobol",
        "sobol_signed",
        "morris",
        "morris_mu_sigma",
        "occlusion",
        "occlusion_rectangular",
        "rise",
        "geex",
        "geex_uniform_ce",
        "gers",
    ],
)
def test_region_model_mass_lies_in_the_region(make, size, channels, threshold):
    region = quadrant(size)
    x = torch.rand(3, channels, size, size, generator=torch.Generator().manual_seed(0)) * 0.8 + 0.1
    maps = make(RegionModel(region))(x, TARGETS)
    assert maps.shape == (3, size, size) and maps.dtype == torch.float32
    assert (positive_mass_in(maps, region) >= threshold).all(), positive_mass_in(maps, region)


def test_morris_global_sampling_localises_the_region():
    region = quadrant(16)
    x = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    refs = torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    maps = A.MorrisGridAttribution(
        RegionModel(region), grid_size=4, n_trajectories=8, sampling="global", reference_images=refs
    )(x, TARGETS)
    assert (positive_mass_in(maps, region) >= 0.9).all()


@pytest.mark.parametrize("baseline", ["zero", "blur"])
def test_integrated_gradients_of_a_linear_model_is_exact(baseline):
    w = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    x = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    targets = torch.tensor([0, 1, 1, 0])
    ig = A.IntegratedGradients(LinearModel(w), steps=4, baseline=baseline, blur_sigma=1.5)
    b = torch.zeros_like(x) if baseline == "zero" else gaussian_blur(x, 1.5)
    expected = ((x - b) * w[targets]).sum(1)
    torch.testing.assert_close(ig(x, targets), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "sample_counts, options",
    [
        ((8, 64, 1024), {"steps": 2, "loss": "target"}),
        # one mirrored pair per path point (the default, steps=None)
        ((16, 128, 2048), {"sigma": 0.1, "loss": "target"}),
    ],
    ids=["fixed_steps", "dense_path"],
)
def test_igeex_approaches_integrated_gradients_as_samples_grow(sample_counts, options):
    w = torch.randn(1, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    x = torch.rand(2, 1, 6, 6, generator=torch.Generator().manual_seed(1))
    targets = torch.zeros(2, dtype=torch.long)
    exact = A.IntegratedGradients(LinearModel(w), steps=4)(x, targets)
    errors = []
    for n in sample_counts:
        approx = A.IGEEX(LinearModel(w), n_samples=n, batch_size=512, **options)(x, targets)
        errors.append(float((approx - exact).norm() / exact.norm()))
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.25


def test_dense_igeex_is_the_path_rule_with_one_pair_per_point():
    region = quadrant(8)
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    targets = torch.zeros(2, dtype=torch.long)
    dense = A.IGEEX(RegionModel(region), n_samples=12, batch_size=7)(x, targets)
    stepped = A.IGEEX(RegionModel(region), n_samples=1, steps=12, batch_size=32)(x, targets)
    torch.testing.assert_close(dense, stepped, rtol=1e-5, atol=1e-6)


def _additive_mask_model(coefficients: torch.Tensor, grid: A.sobol.ImageGrid):
    """f(tau(1, M)) = sum_i a_i M_i: reads each cell's mean of a constant-one image inpainted by M."""

    def model(x):
        cells = torch.zeros(x.shape[0], grid.d).index_add_(1, grid.region_index.flatten(), x[:, 0].flatten(1))
        cells = cells / grid.region_sizes
        return torch.stack([cells @ coefficients, torch.zeros(x.shape[0])], 1)

    return model


@pytest.mark.parametrize("index", ["total", "first"])
def test_sobol_indices_of_an_additive_mask_model_match_analytic_values(index):
    # f = sum a_i M_i with M_i ~ U(0, 1) iid: Var = sum a_i^2 / 12 and S_i = S_Ti = a_i^2 / sum a_j^2
    a = torch.tensor([1.0, 2.0, 0.0, 3.0])
    grid = A.sobol.ImageGrid(8, 8, 2)
    x = torch.ones(1, 1, 8, 8)
    maps = A.SobolAttribution(
        _additive_mask_model(a, grid),
        grid_size=2,
        nb_design=1024,
        index=index,
        map_upsampling="nearest",
        batch_size=1024,
    )(x, torch.zeros(1, dtype=torch.long))
    cells = maps[0, ::4, ::4].flatten()
    torch.testing.assert_close(cells, a**2 / (a**2).sum(), atol=0.03, rtol=0)


def test_sobol_uses_n_times_d_plus_one_forwards_without_first_order():
    region = quadrant(8)
    model = RegionModel(region)
    A.SobolAttribution(model, grid_size=3, nb_design=8, batch_size=1)(torch.rand(1, 1, 8, 8), [0])
    assert model.calls == 8 * (9 + 1)
    model = RegionModel(region)
    A.SobolAttribution(model, grid_size=3, nb_design=8, index="first", batch_size=1)(torch.rand(1, 1, 8, 8), [0])
    assert model.calls == 8 * (9 + 2)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_signed_sobol_flips_sign_with_the_region_effect(sign):
    region = quadrant(16)
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 0.8 + 0.1
    maps = A.SobolAttribution(
        RegionModel(region, sign=sign), grid_size=4, nb_design=16, index="signed_total", map_upsampling="nearest"
    )(x, torch.zeros(2, dtype=torch.long))
    inside = maps[:, region]
    assert (torch.sign(inside) == sign).all()
    assert (maps[:, ~region].abs() < 1e-3).all()
