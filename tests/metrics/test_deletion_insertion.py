import pytest
import torch

from shortcut_audit.metrics import curve_auc, deletion_curve, insertion_curve, make_baseline, pixel_ranks
from shortcut_audit.metrics.deletion_insertion import step_counts


def test_perfect_map_known_deletion_auc(quadrant_model, quadrant_map):
    images = torch.ones(2, 3, 8, 8)
    curve = deletion_curve(quadrant_model, images, quadrant_map, torch.zeros(2), steps=16, score="output")
    # the output falls linearly from 10 to 0 over the first quarter of pixels, then stays 0
    assert torch.allclose(curve.scores[:, 0], torch.full((2,), 10.0))
    assert torch.allclose(curve.scores[:, 4:], torch.zeros(2, 13), atol=1e-6)
    assert torch.allclose(curve.auc, torch.full((2,), 1.25), atol=1e-5)


def test_reversed_map_is_worse_on_deletion_and_insertion(quadrant_model, quadrant_map):
    images = torch.ones(2, 3, 8, 8)
    targets = torch.zeros(2, dtype=torch.long)
    kw = dict(steps=16, score="output", baseline="zero")
    good_del = deletion_curve(quadrant_model, images, quadrant_map, targets, **kw).auc
    bad_del = deletion_curve(quadrant_model, images, -quadrant_map, targets, **kw).auc
    assert torch.allclose(bad_del, torch.full((2,), 8.75), atol=1e-5)
    good_ins = insertion_curve(quadrant_model, images, quadrant_map, targets, **kw).auc
    bad_ins = insertion_curve(quadrant_model, images, -quadrant_map, targets, **kw).auc
    assert torch.allclose(good_ins, torch.full((2,), 8.75), atol=1e-5)
    assert torch.allclose(bad_ins, torch.full((2,), 1.25), atol=1e-5)
    assert (good_del < bad_del).all() and (good_ins > bad_ins).all()


def test_curve_ends_at_baseline_and_probability_range(quadrant_model, quadrant_map):
    images = torch.rand(2, 3, 8, 8)
    targets = torch.zeros(2, dtype=torch.long)
    curve = insertion_curve(quadrant_model, images, quadrant_map, targets, steps=5, baseline="gray")
    clean = quadrant_model(images).softmax(1)[:, 0]
    gray = quadrant_model(torch.full_like(images, 0.5)).softmax(1)[:, 0]
    assert torch.allclose(curve.scores[:, -1], clean, atol=1e-6)
    assert torch.allclose(curve.scores[:, 0], gray, atol=1e-6)
    assert ((curve.auc >= 0) & (curve.auc <= 1)).all()
    assert curve.fractions[0] == 0 and curve.fractions[-1] == 1 and (curve.fractions.diff() > 0).all()


def test_batch_size_does_not_change_the_curve(quadrant_model):
    g = torch.Generator().manual_seed(0)
    images, maps = torch.rand(3, 3, 8, 8, generator=g), torch.rand(3, 8, 8, generator=g)
    targets = torch.tensor([0, 1, 0])
    a = deletion_curve(quadrant_model, images, maps, targets, steps=7, batch_size=1).scores
    b = deletion_curve(quadrant_model, images, maps, targets, steps=7, batch_size=64).scores
    assert torch.allclose(a, b)


def test_model_calls_never_exceed_batch_size(quadrant_model, quadrant_map):
    seen = []

    def spy(x):
        seen.append(x.shape[0])
        return quadrant_model(x)

    deletion_curve(spy, torch.rand(2, 3, 8, 8), quadrant_map, torch.zeros(2), steps=10, batch_size=4)
    assert max(seen) <= 4 and sum(seen) == 2 * 11


def test_bad_inputs_fail_early(quadrant_model):
    images = torch.rand(2, 3, 8, 8)
    with pytest.raises(ValueError, match="maps must be"):
        deletion_curve(quadrant_model, images, torch.rand(2, 4, 4), torch.zeros(2))
    with pytest.raises(ValueError, match="NaN"):
        deletion_curve(quadrant_model, images, torch.full((2, 8, 8), float("nan")), torch.zeros(2))
    with pytest.raises(ValueError, match="unknown baseline"):
        deletion_curve(quadrant_model, images, torch.rand(2, 8, 8), torch.zeros(2), baseline="pink")


def test_pixel_ranks_and_step_counts():
    maps = torch.tensor([[[0.1, 0.9], [0.5, 0.5]]])
    assert pixel_ranks(maps).tolist() == [[3, 0, 1, 2]]
    assert step_counts(10, 4).tolist() == [0, 2, 5, 8, 10]
    assert float(curve_auc(torch.tensor([[1.0, 1.0, 1.0]]))) == pytest.approx(1.0)


def test_baselines():
    images = torch.rand(2, 3, 16, 16)
    assert make_baseline(images, "zero").abs().sum() == 0
    assert torch.allclose(make_baseline(images, "gray"), torch.full_like(images, 0.5))
    constant = torch.full((1, 3, 16, 16), 0.3)
    assert torch.allclose(make_baseline(constant, "blur"), constant, atol=1e-6)
    blurred = make_baseline(images, "blur")
    assert blurred.std() < images.std()
    noise = make_baseline(images, "random_normal", seed=3)
    assert torch.equal(noise, make_baseline(images, "random_normal", seed=3))
    assert torch.allclose(noise.mean(dim=(2, 3)), images.mean(dim=(2, 3)), atol=0.1)
