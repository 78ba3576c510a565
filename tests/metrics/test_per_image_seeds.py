"""One seed per image: an image's random draws (tie order, random baselines, masks of masking curves)
are its own, whatever images share its batch -- what a run sharded over processes relies on."""

import pytest
import torch

from shortcut_audit.metrics import perturbation_curve, region_perturbation_curve
from shortcut_audit.metrics.perturbation import make_baseline, seeded_draws, tie_keys
from shortcut_audit.metrics.region_masking import MaskingCurve, masking_curve

SEEDS = [11, 7, 2024]


def _batch():
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(3, 3, 8, 8, generator=generator)
    maps = torch.zeros(3, 8, 8)  # all pixels tied: the order is the seeded tie order alone
    return images, maps, torch.zeros(3, dtype=torch.long)


def test_per_image_draws_do_not_depend_on_the_batch():
    draw = lambda shape, gen: torch.rand(shape, generator=gen)  # noqa: E731
    batch = seeded_draws(draw, (3, 4, 5), SEEDS, stream=7)
    for i, seed in enumerate(SEEDS):
        assert torch.equal(seeded_draws(draw, (1, 4, 5), [seed], stream=7)[0], batch[i])
    # one int keeps one stream for the batch: image 1's draws depend on image 0 being there
    assert not torch.equal(tie_keys((2, 4), 5)[1], tie_keys((1, 4), 5)[0])
    with pytest.raises(ValueError, match="2 per-image seeds for 3 images"):
        seeded_draws(draw, (3, 4), SEEDS[:2])
    with pytest.raises(TypeError, match="seed must be an int or a sequence of ints"):
        seeded_draws(draw, (3, 4), True)


@pytest.mark.parametrize("baseline", ["random_normal", "zero"])
@pytest.mark.parametrize("region", [False, True])
def test_an_images_curve_is_the_same_alone_and_in_a_batch(quadrant_model, baseline, region):
    images, maps, targets = _batch()
    kwargs = dict(baseline=baseline, batch_size=5)

    def curve(index):
        seeds = [SEEDS[i] for i in index]
        if region:
            return region_perturbation_curve(
                quadrant_model, images[index], maps[index], targets[index], "deletion", grid=4, seed=seeds, **kwargs
            )
        return perturbation_curve(
            quadrant_model, images[index], maps[index], targets[index], "deletion", steps=6, seed=seeds, **kwargs
        )

    batch = curve([0, 1, 2])
    for i in range(3):
        torch.testing.assert_close(curve([i]).scores[0], batch.scores[i])
    # the random-normal baseline of image 2 is drawn from its own seed (the paper's per-channel mean and std)
    noise = make_baseline(images, "random_normal", seed=SEEDS)
    alone = make_baseline(images[2:], "random_normal", seed=SEEDS[2:])
    assert torch.equal(noise[2], alone[0])


def test_masking_curves_seed_the_kept_images_by_their_own_seeds(quadrant_model):
    images, _, targets = _batch()
    importance = torch.rand(3, 2, 2, generator=torch.Generator().manual_seed(1))
    whole = masking_curve(
        quadrant_model,
        images,
        importance,
        targets,
        max_fraction=0.5,
        baseline="random_normal",
        subset="all",
        seed=SEEDS,
    )
    parts = [
        masking_curve(
            quadrant_model,
            images[i : i + 1],
            importance[i : i + 1],
            targets[i : i + 1],
            max_fraction=0.5,
            baseline="random_normal",
            subset="all",
            seed=SEEDS[i : i + 1],
        )
        for i in range(3)
    ]
    fields = [torch.cat(f) for f in zip(*(p.per_image() for p in parts))]
    merged = MaskingCurve.from_per_image("most", whole.steps, whole.fractions, *fields)
    torch.testing.assert_close(merged.score, whole.score)
    assert torch.equal(merged.correct, whole.correct) and torch.equal(merged.kept, whole.kept)
