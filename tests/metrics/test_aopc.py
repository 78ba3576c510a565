import torch

from shortcut_audit.metrics import aopc_from_curve, normalised_aopc


def test_aopc_known_values():
    result = aopc_from_curve(torch.tensor([[1.0, 0.5, 0.0], [0.5, 0.5, 0.5], [0.0, 0.0, 0.0]]))
    assert torch.allclose(result.aopc, torch.tensor([0.5, 0.0, 0.0]))
    assert torch.allclose(result.normalised, torch.tensor([0.5, 0.0, 0.0]))


def test_normalisation_removes_the_confidence_scale(quadrant_model, quadrant_map):
    targets = torch.zeros(2, dtype=torch.long)
    bright = torch.ones(2, 3, 8, 8)
    low = normalised_aopc(quadrant_model, 0.5 * bright, quadrant_map, targets, steps=16, score="output")
    high = normalised_aopc(quadrant_model, bright, quadrant_map, targets, steps=16, score="output")
    assert torch.allclose(high.aopc, 2 * low.aopc)
    assert torch.allclose(high.normalised, low.normalised)
    # the output path 10 * (1 - 4f) on 17 points: mean remaining share = 2.5 / 17
    assert torch.allclose(high.normalised, torch.full((2,), 1 - 2.5 / 17), atol=1e-5)


def test_good_map_beats_reversed_map(quadrant_model, quadrant_map):
    images, targets = torch.rand(2, 3, 8, 8) + 0.5, torch.zeros(2, dtype=torch.long)
    good = normalised_aopc(quadrant_model, images, quadrant_map, targets, steps=8).normalised
    bad = normalised_aopc(quadrant_model, images, -quadrant_map, targets, steps=8).normalised
    assert (good > bad).all()
