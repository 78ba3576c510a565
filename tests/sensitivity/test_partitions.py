"""Input partitions and perturbations: known-answer tests."""

import pytest
import torch
import torch.nn.functional as F

from shortcut_audit.sensitivity import (
    PERTURBATIONS,
    Amplitude,
    Blur,
    GridPartition,
    ImageGrid,
    Inpainting,
    MaskPartition,
    SemanticPartition,
    compose,
    global_lump_bounds,
    make_perturbation,
)
from shortcut_audit.sensitivity.perturbations import gaussian_blur


def _images(n=3, c=3, h=12, w=10, seed=0):
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed))


def test_semantic_levels_are_uniform_and_cover_every_level():
    partition = SemanticPartition([10, 10, 9], names=["digit_color", "bg_color", "position"])
    x = (torch.arange(90, dtype=torch.float64) + 0.5).div(90).unsqueeze(1).expand(-1, 3)
    levels = partition(x)
    for j, m in enumerate((10, 10, 9)):
        assert torch.equal(torch.bincount(levels[:, j], minlength=m), torch.full((m,), 90 // m))
    corners = partition(torch.tensor([[0.0, 1.0, 1.0]]))
    assert corners.tolist() == [[0, 9, 8]]


def test_semantic_partition_passes_levels_to_the_renderer():
    partition = SemanticPartition([4, 3], render=lambda levels: levels.float() * 10)
    assert partition(torch.tensor([[0.3, 0.9]])).tolist() == [[10.0, 20.0]]
    assert partition.d == 2 and partition.names == ("x0", "x1")
    with pytest.raises(ValueError, match="shape"):
        partition(torch.zeros(2, 3))


def test_grid_lumps_times_region_map_reconstructs_the_image():
    grid = ImageGrid(12, 10, 4)
    images = _images()
    images[0, :, :3, :3] = 0.0  # a black region: region map falls back to equal shares
    lumped, region_map = grid.lump(images), grid.region_map(images)
    assert lumped.shape == (3, 16)
    torch.testing.assert_close(grid.reconstruct(lumped, region_map), images)
    index = grid.region_index
    for region in (0, 5, 15):
        torch.testing.assert_close(lumped[:, region], images[:, :, index == region].sum(dim=(1, 2)))
        shares = region_map[:, :, index == region].sum(dim=(1, 2))
        torch.testing.assert_close(shares, torch.ones(3))
    assert grid.region_sizes.sum() == 120


def test_grid_regions_are_row_major_blocks_and_match_nearest_upsampling():
    grid = ImageGrid(7, 10, (2, 3))
    assert grid.region_index[0].tolist() == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert grid.region_index[:, 0].tolist() == [0, 0, 0, 0, 3, 3, 3]
    cells = torch.arange(6.0).unsqueeze(0)
    torch.testing.assert_close(
        grid.upsample(cells), F.interpolate(cells.view(1, 1, 2, 3), size=(7, 10), mode="nearest")
    )


def test_local_sampling_is_centred_on_the_image_own_lumped_values():
    grid = ImageGrid(12, 10, 2)
    image = _images(n=1)[0]
    partition = GridPartition.local(grid, image, radius=0.2)
    lumped = grid.lump(image.unsqueeze(0))[0]
    torch.testing.assert_close(partition(torch.full((1, 4), 0.5))[0], image)
    torch.testing.assert_close(partition.lumped(torch.zeros(1, 4))[0], 0.8 * lumped)
    torch.testing.assert_close(partition.lumped(torch.ones(1, 4))[0], 1.2 * lumped)
    doubled = partition(torch.tensor([[1.0, 0.5, 0.5, 0.5]]))[0]
    top_left = grid.region_index == 0
    torch.testing.assert_close(doubled[:, top_left], 1.2 * image[:, top_left])
    torch.testing.assert_close(doubled[:, ~top_left], image[:, ~top_left])


def test_global_sampling_spans_min_to_max_lumped_values_of_the_image_set():
    grid = ImageGrid(12, 10, 2)
    images = _images(n=5)
    lower, upper = global_lump_bounds(grid, images, batch_size=2)
    lumped = grid.lump(images)
    torch.testing.assert_close(lower, lumped.min(dim=0).values)
    torch.testing.assert_close(upper, lumped.max(dim=0).values)
    partition = GridPartition.global_range(grid, images[0], images)
    rebuilt = partition(torch.zeros(1, 4))
    torch.testing.assert_close(grid.lump(rebuilt)[0], lower)


@pytest.mark.parametrize("batch_size", [0, -1])
def test_global_bounds_reject_a_batch_size_below_one(batch_size):
    # A negative batch size used to skip the loop and return (None, None).
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        global_lump_bounds(ImageGrid(12, 10, 2), _images(n=3), batch_size=batch_size)


def test_nearest_mask_upsampling_on_a_non_square_image_keeps_orientation():
    image = torch.ones(1, 6, 9)
    partition = MaskPartition(image, (2, 3), Inpainting(0.0))
    x = torch.tensor([[1.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    masks = partition.masks(x)
    assert masks.shape == (1, 1, 6, 9)
    assert masks[0, 0, :3, :3].eq(1).all() and masks.sum() == 9


def test_bilinear_mask_upsampling_matches_torch_interpolate():
    image = torch.zeros(3, 8, 12)
    partition = MaskPartition(image, (2, 3), upsampling="bilinear")
    x = torch.rand(4, 6, generator=torch.Generator().manual_seed(1))
    expected = F.interpolate(x.view(4, 1, 2, 3), size=(8, 12), mode="bilinear", align_corners=False)
    torch.testing.assert_close(partition.masks(x), expected)
    constant = partition.masks(torch.full((1, 6), 0.3))
    torch.testing.assert_close(constant, torch.full((1, 1, 8, 12), 0.3))


def test_inpainting_moves_removed_pixels_to_the_baseline():
    image = _images(n=1, h=4, w=4)[0]
    masks = torch.tensor([1.0, 0.0, 0.25]).view(3, 1, 1, 1).expand(3, 1, 4, 4)
    out = Inpainting(baseline=0.5)(image, masks)
    torch.testing.assert_close(out[0], image)
    torch.testing.assert_close(out[1], torch.full_like(image, 0.5))
    torch.testing.assert_close(out[2], 0.25 * image + 0.75 * 0.5)
    channel_mean = torch.tensor([0.1, 0.2, 0.3]).view(3, 1, 1)
    out = Inpainting(baseline=channel_mean)(image, masks[1:2])
    torch.testing.assert_close(out[0], channel_mean.expand_as(image))


def test_amplitude_is_additive_not_multiplicative():
    image = _images(n=1, h=4, w=4)[0]
    masks = torch.tensor([0.5, 1.0, 0.0]).view(3, 1, 1, 1).expand(3, 1, 4, 4)
    out = Amplitude(scale=0.4)(image, masks)
    torch.testing.assert_close(out[0], image)  # M = 0.5 leaves the image as it is
    torch.testing.assert_close(out[1], image + 0.2)
    torch.testing.assert_close(out[2], image - 0.2)


def test_blur_keeps_kept_pixels_and_blurs_removed_ones():
    image = torch.zeros(1, 9, 9)
    image[0, 4, 4] = 1.0
    masks = torch.stack([torch.ones(1, 9, 9), torch.zeros(1, 9, 9)])
    out = Blur(sigma=1.0)(image, masks)
    torch.testing.assert_close(out[0], image)
    blurred = out[1, 0]
    torch.testing.assert_close(blurred.sum(), torch.tensor(1.0))
    assert blurred[4, 4] < 1.0 and blurred[4, 5] > 0 and torch.allclose(blurred, blurred.T)
    constant = torch.full((2, 5, 7), 0.7)
    torch.testing.assert_close(gaussian_blur(constant, 1.5), constant)


def test_perturbation_registry_and_bad_names():
    assert set(PERTURBATIONS) == {"inpainting", "blur", "amplitude"}
    assert make_perturbation("amplitude", scale=2.0) == Amplitude(2.0)
    with pytest.raises(ValueError, match="unknown perturbation"):
        make_perturbation("noise")
    with pytest.raises(ValueError, match="upsampling"):
        MaskPartition(torch.zeros(1, 4, 4), 2, upsampling="bicubic")
    with pytest.raises(ValueError, match="does not fit"):
        ImageGrid(4, 4, 5)


def test_compose_builds_images_per_batch_without_gradients():
    image = _images(n=1, h=8, w=8)[0]
    partition = MaskPartition(image, 2)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 64, 2))
    f = compose(model, partition, output=lambda logits: logits.softmax(dim=1)[:, 1])
    y = f(torch.rand(5, 4))
    assert y.shape == (5,) and not y.requires_grad
    torch.testing.assert_close(f(torch.ones(1, 4)), model(image.unsqueeze(0)).softmax(1)[:, 1].detach())
