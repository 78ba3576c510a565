"""Pixel view: Sobol total-index maps scored by the renderer's digit mask."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shortcut_audit.audit.pixel_view import background_share, pixel_view


def test_background_share_by_hand():
    maps = torch.tensor([[[1.0, 3.0], [-2.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]])
    digit = torch.tensor([[[True, False], [False, False]], [[True, False], [False, False]]])
    with pytest.warns(RuntimeWarning, match="no positive mass"):
        shares = background_share(maps, digit)
    # image 0: positive mass 1 (digit) + 3 (background); negative values do not count
    assert shares.tolist() == [0.75, 0.0]
    with pytest.raises(ValueError, match="differ in shape"):
        background_share(maps, digit[:, :1])


def test_background_model_puts_all_its_mass_on_background(bg_model, digit_colour_model, heldout):
    view = pixel_view(bg_model, heldout, n_images=3, grid_size=7, nb_design=8)
    assert list(view.table.columns) == ["image", "label", "background_share", "background_pixel_fraction"]
    assert np.allclose(view.table["background_share"], 1.0)
    assert (view.table["background_pixel_fraction"] < 1.0).all()
    digit_view = pixel_view(digit_colour_model, heldout, n_images=3, grid_size=7, nb_design=8)
    assert digit_view.table["background_share"].mean() < 0.9
    arrays = view.arrays()
    assert arrays["images"].dtype == np.float16 and arrays["images"].shape == (3, 3, 56, 56)
    assert arrays["maps"].shape == arrays["digit_mask"].shape == (3, 56, 56)
    assert arrays["digit_mask"].dtype == bool


def test_pixel_view_refuses_more_images_than_the_sample(bg_model, heldout):
    with pytest.raises(ValueError, match="n_images"):
        pixel_view(bg_model, heldout, n_images=len(heldout) + 1)
