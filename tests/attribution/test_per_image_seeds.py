"""Seeds of an item's own (key_seed), per-image RBM streams, and Morris global bounds given directly."""

from dataclasses import replace

import torch

from shortcut_audit.attribution.base import key_seed
from shortcut_audit.attribution.ensemble import TABLE_1, aggregate, aggregate_all
from shortcut_audit.attribution.morris_grid import MorrisGridAttribution
from shortcut_audit.sensitivity.partitions import ImageGrid, global_lump_bounds


def test_key_seed_is_a_function_of_the_seed_and_the_key():
    assert key_seed(0, "chelsea") == key_seed(0, "chelsea")
    assert len({key_seed(0, "chelsea"), key_seed(1, "chelsea"), key_seed(0, "coffee")}) == 3
    assert 0 <= key_seed(3, "x") < 2**63


def test_an_images_rbm_aggregation_is_its_own_with_per_image_seeds():
    stack = torch.rand(3, 4, 6, 6, generator=torch.Generator().manual_seed(0))  # 3 methods, 4 images
    settings = replace(TABLE_1, rbm_iterations=3)
    seeds = [5, 6, 7, 8]
    batch = aggregate(stack, "z", "rbm", settings, seed=seeds)
    for i in range(4):
        alone = aggregate(stack[:, i : i + 1], "z", "rbm", settings, seed=seeds[i : i + 1])
        torch.testing.assert_close(alone[0], batch[i])
    # the vectorised run over normalisations gives each image's RBM the same stream as a separate call
    both = aggregate_all(stack, ["z", "l1"], ["rbm"], settings, seed=seeds)
    torch.testing.assert_close(both[("l1", "rbm")], aggregate(stack, "l1", "rbm", settings, seed=seeds))


def test_global_bounds_given_directly_equal_those_of_the_reference_images():
    generator = torch.Generator().manual_seed(0)
    images, targets = torch.rand(4, 3, 8, 8, generator=generator), torch.zeros(4, dtype=torch.long)
    model = lambda x: torch.stack([x[:, 0, :4, :4].mean(dim=(1, 2)), x.mean(dim=(1, 2, 3))], dim=1)  # noqa: E731
    kwargs = dict(grid_size=2, n_trajectories=3, levels=4, sampling="global", batch_size=16)
    from_images = MorrisGridAttribution(model, reference_images=images, **kwargs).region_statistics(images, targets)
    # bounds as two processes holding two images each would agree on them: min of the minima, max of the maxima
    grid = ImageGrid(8, 8, 2)
    halves = [global_lump_bounds(grid, images[:2]), global_lump_bounds(grid, images[2:])]
    bounds = (torch.minimum(halves[0][0], halves[1][0]), torch.maximum(halves[0][1], halves[1][1]))
    from_bounds = MorrisGridAttribution(model, bounds=bounds, **kwargs).region_statistics(images[2:], targets[2:])
    for name, values in from_images.items():
        torch.testing.assert_close(from_bounds[name], values[2:])
