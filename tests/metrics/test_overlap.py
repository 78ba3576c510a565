import pytest
import torch

from shortcut_audit.metrics import dilate, region_overlap


def _one_hot(i, j, g=5):
    v = torch.zeros(1, g, g)
    v[0, i, j] = 1.0
    return v


def test_identical_neighbour_and_far_regions():
    fraction = 1 / 25  # one region out of 25
    assert region_overlap(_one_hot(2, 2), _one_hot(2, 2), fraction).share.item() == 1.0
    assert region_overlap(_one_hot(2, 3), _one_hot(2, 2), fraction, radius=1).share.item() == 1.0
    assert region_overlap(_one_hot(3, 3), _one_hot(2, 2), fraction, radius=1).share.item() == 1.0
    assert region_overlap(_one_hot(2, 3), _one_hot(2, 2), fraction, radius=0).share.item() == 0.0
    far = region_overlap(_one_hot(0, 0), _one_hot(4, 4), fraction)
    assert far.share.item() == 0.0 and far.differing[0, 0, 0]


def test_dilate_is_chebyshev():
    grown = dilate(_one_hot(0, 0).bool())
    assert grown.sum() == 4 and grown[0, 1, 1]
    with pytest.raises(ValueError):
        dilate(grown, -1)


def test_shape_checks():
    with pytest.raises(ValueError):
        region_overlap(torch.rand(1, 4, 4), torch.rand(1, 5, 5))
