"""A share of the digits (a process's items) gets the numbers those digits get in the whole sample."""

import pytest
import torch

from shortcut_audit.audit.factor_morris import factor_changes, factor_morris, morris_from_changes
from shortcut_audit.audit.pixel_view import PixelView, pixel_view
from shortcut_audit.factors.scene import ProbabilityReader


@pytest.mark.parametrize("sampling", ["global", "local"])
def test_morris_changes_of_a_share_are_those_of_the_whole_sample(bg_model, aligned, sampling):
    reader = ProbabilityReader(bg_model, batch_size=64)
    args = (["digit_color", "bg_color", "position"], 4, 4, "trajectory", 3, sampling)
    whole, n_images = factor_changes(reader, aligned, *args)
    shares = [torch.arange(rank, len(aligned), 3) for rank in range(3)]
    merged = torch.empty_like(whole)
    for index in shares:
        part, _ = factor_changes(reader, aligned, *args, items=index)
        merged[:, :, index] = part
    torch.testing.assert_close(merged, whole)
    # and the summary of the merged changes is the Morris table of the whole sample
    table = morris_from_changes(merged, aligned.labels, args[0], n_images, seed=3, sampling=sampling).table
    expected = factor_morris(reader, aligned, args[0], 4, 4, seed=3, sampling=sampling).table
    torch.testing.assert_close(torch.tensor(table["mu_star"].to_numpy()), torch.tensor(expected["mu_star"].to_numpy()))


def test_pixel_view_of_a_share_is_that_of_the_whole_sample(bg_model, heldout):
    kwargs = dict(grid_size=4, nb_design=4, batch_size=64, seed=1)
    whole = pixel_view(bg_model, heldout, 5, **kwargs)
    parts = [
        pixel_view(bg_model, heldout, 5, index=torch.tensor(index), **kwargs).per_image()
        for index in ([0, 2, 4], [1, 3])
    ]
    order = torch.tensor([0, 2, 4, 1, 3]).argsort()
    merged = PixelView.from_per_image({key: torch.cat([p[key] for p in parts])[order] for key in parts[0]})
    assert merged.table["image"].tolist() == list(range(5))
    torch.testing.assert_close(torch.from_numpy(merged.maps), torch.from_numpy(whole.maps))
    torch.testing.assert_close(
        torch.tensor(merged.table["background_share"].to_numpy()),
        torch.tensor(whole.table["background_share"].to_numpy()),
    )
    with pytest.raises(ValueError, match="first 5 digits"):
        pixel_view(bg_model, heldout, 5, index=torch.tensor([5]), **kwargs)
