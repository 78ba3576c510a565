import pytest
import torch

from shortcut_audit.metrics import (
    curve_auc,
    deletion_curve,
    insertion_curve,
    make_baseline,
    pixel_ranks,
    region_perturbation_curve,
    tie_keys,
)
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


# ------------------------------------------------------------------ ties (Mahlau & Nolde 2022, Sec. 4.1)


def _mirrored(model):
    """The same model reading the opposite (bottom-right) quadrant: a relabelling of the pixels."""
    return lambda x: model(x.flip(-1, -2))


def _mean_auc(model, maps, seeds, **kw):
    images, targets = torch.ones(2, 3, 8, 8), torch.zeros(2, dtype=torch.long)
    return sum(float(deletion_curve(model, images, maps, targets, seed=s, **kw).auc.mean()) for s in seeds) / len(seeds)


def test_tied_pixels_are_deleted_in_random_order(quadrant_model):
    """A constant map carries no ranking: with ties in random order each step deletes a uniformly random
    set of pixels, so the expected remaining share of the quadrant is 1 - f and the expected deletion AUC of
    the output score 10 (1 - f) is exactly 5, wherever the quadrant lies. Raster order instead deletes the
    top rows first and favours the model that reads the top-left quadrant."""
    constant = torch.zeros(2, 8, 8)
    kw = dict(steps=16, score="output", baseline="zero")
    seeds = range(120)
    for model in (quadrant_model, _mirrored(quadrant_model)):
        assert abs(_mean_auc(model, constant, seeds, **kw) - 5.0) < 0.15
    top_left = _mean_auc(quadrant_model, constant, [0], ties="raster", **kw)
    bottom_right = _mean_auc(_mirrored(quadrant_model), constant, [0], ties="raster", **kw)
    assert top_left < 2.5 and bottom_right > 7.5  # what raster order did: position decides the score


def test_saturated_pi_plateaus_gain_nothing_from_their_position(quadrant_model):
    """PI (Eq. 9) saturates to exactly 0 away from the best pixels: a plateau. Its deletion AUC must not
    depend on whether the model reads the quadrant that raster order deletes first or last."""
    from shortcut_audit.attribution import ensemble

    gen = torch.Generator().manual_seed(0)
    stack = 0.01 * torch.randn(3, 2, 8, 8, generator=gen)
    stack[:, :, 3:5, 3:5] += 5.0  # one central hot spot, symmetric under the 180-degree flip
    pi = ensemble.aggregate(stack, normalization="none", method="pi")
    assert (pi == 0).float().mean() > 0.8  # the plateau
    kw = dict(steps=16, score="output", baseline="zero")
    seeds = range(120)
    a = _mean_auc(quadrant_model, pi, seeds, **kw)
    b = _mean_auc(_mirrored(quadrant_model), pi, seeds, **kw)
    assert abs(a - b) < 0.2
    raster_a = _mean_auc(quadrant_model, pi, [0], ties="raster", **kw)
    raster_b = _mean_auc(_mirrored(quadrant_model), pi, [0], ties="raster", **kw)
    assert raster_b - raster_a > 3.0


def test_random_ties_keep_the_order_of_distinct_values_and_are_seeded():
    maps = torch.tensor([[[0.1, 0.9, 0.5, 0.5], [0.5, 0.5, 0.0, 0.9]]])
    ranks = [pixel_ranks(maps, tie_keys(maps.shape, seed)) for seed in range(20)]
    for r in ranks:
        assert sorted(r[0, [1, 7]].tolist()) == [0, 1] and sorted(r[0, [2, 3, 4, 5]].tolist()) == [2, 3, 4, 5]
        assert r[0, 0] == 6 and r[0, 6] == 7
    assert len({tuple(r[0].tolist()) for r in ranks}) > 1
    assert torch.equal(ranks[3], pixel_ranks(maps, tie_keys(maps.shape, 3)))


def test_region_curve_removes_one_cell_per_step(quadrant_model, quadrant_map):
    images = torch.ones(2, 3, 8, 8)
    targets = torch.zeros(2, dtype=torch.long)
    curve = region_perturbation_curve(
        quadrant_model, images, quadrant_map, targets, "deletion", grid=2, baseline="zero", score="output"
    )
    torch.testing.assert_close(curve.fractions, torch.tensor([[0.0, 0.25, 0.5, 0.75, 1.0]] * 2))
    torch.testing.assert_close(curve.scores, torch.tensor([[10.0, 0.0, 0.0, 0.0, 0.0]] * 2))
    torch.testing.assert_close(curve.auc, torch.full((2,), 1.25))
    # the cells of a 3 x 3 grid on 8 px differ in size: fractions follow the cells actually removed
    uneven = region_perturbation_curve(
        quadrant_model, images, quadrant_map, targets, "insertion", grid=3, baseline="zero", score="output"
    )
    assert uneven.fractions.shape == (2, 10) and torch.allclose(uneven.fractions[:, -1], torch.ones(2))
    assert (uneven.fractions.diff(dim=1) > 0).all() and uneven.scores[0, -1] == pytest.approx(10.0)
