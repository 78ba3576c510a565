import pytest
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


def test_naopc_tracks_the_class_the_model_decided_not_the_label(make_quadrant_model, quadrant_map):
    # Cai & Wunder, Sec. 4: the confidence of "the class that has been decided" along the deletion
    # path, nAOPC = 1 - mean(trend) / trend[0]. Class 1 (constant logit 1) wins on dark images.
    model = make_quadrant_model(scale=4.0, other=1.0)
    images = torch.full((2, 3, 8, 8), 0.1)
    labels = torch.zeros(2, dtype=torch.long)  # the true class, which the model does not predict
    steps = 8
    trend = []
    for k in range(steps + 1):  # most relevant first: the quadrant's 16 pixels go in the first two steps
        x = images.clone().view(2, 3, 64)
        order = torch.argsort(quadrant_map.view(2, 64), dim=1, descending=True, stable=True)
        n_removed = round(k * 64 / steps)
        x[torch.arange(2)[:, None], :, order[:, :n_removed]] = 0.0
        trend.append(torch.softmax(model(x.view(2, 3, 8, 8)), dim=1)[:, 1])
    trend = torch.stack(trend, dim=1)
    expected = 1 - trend.mean(dim=1) / trend[:, 0]
    result = normalised_aopc(model, images, quadrant_map, labels, steps=steps)
    torch.testing.assert_close(result.normalised, expected, rtol=1e-5, atol=1e-6)
    assert (result.tracked == 1).all()
    followed = normalised_aopc(model, images, quadrant_map, labels, steps=steps, track="target")
    assert (followed.tracked == 0).all() and not torch.allclose(followed.normalised, expected)


def test_naopc_rejects_unknown_tracking(quadrant_model, quadrant_map):
    with pytest.raises(ValueError, match="track"):
        normalised_aopc(quadrant_model, torch.ones(2, 3, 8, 8), quadrant_map, track="label")
    with pytest.raises(ValueError, match="target classes"):
        normalised_aopc(quadrant_model, torch.ones(2, 3, 8, 8), quadrant_map, track="target")
