"""Samplers: unit-cube points, determinism, stratification, registry."""

import pytest
import torch

from shortcut_audit.sensitivity import SAMPLERS, sample


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_points_lie_in_the_unit_cube_and_are_seeded(name):
    points = sample(name, 256, 5, seed=3, device="cpu")
    assert points.shape == (256, 5) and points.dtype == torch.float32
    assert points.min() >= 0 and points.max() < 1
    assert torch.equal(points, sample(name, 256, 5, seed=3))
    assert not torch.equal(points, sample(name, 256, 5, seed=4))
    assert (points.mean(dim=0) - 0.5).abs().max() < 0.08


@pytest.mark.parametrize("name", ["sobol", "latin"])
def test_stratified_samplers_fill_every_one_dimensional_stratum(name):
    n = 64
    points = sample(name, n, 3, seed=0, dtype=torch.float64)
    occupied = torch.floor(points * 16).long()
    for j in range(3):
        assert torch.equal(torch.bincount(occupied[:, j], minlength=16), torch.full((16,), 4))


def test_halton_fills_the_strata_of_each_dimension_prime_base():
    points = sample("halton", 360, 3, seed=2, dtype=torch.float64)  # 360 = 2^3 * 3^2 * 5
    for j, bins in enumerate((8, 9, 5)):
        occupied = torch.floor(points[:, j] * bins).long()
        assert torch.equal(torch.bincount(occupied, minlength=bins), torch.full((bins,), 360 // bins))


def test_latin_hypercube_has_one_point_per_stratum():
    points = sample("latin", 50, 4, seed=1, dtype=torch.float64)
    for j in range(4):
        assert torch.equal(torch.sort(torch.floor(points[:, j] * 50).long()).values, torch.arange(50))


def test_unknown_sampler_lists_the_known_ones():
    with pytest.raises(ValueError, match="halton.*latin.*monte_carlo.*sobol"):
        sample("random", 4, 2)
    with pytest.raises(ValueError, match="n >= 1"):
        sample("sobol", 0, 2)
