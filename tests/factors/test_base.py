"""The factor interface: domains, neutral values, interventions, user functions."""

from __future__ import annotations

import pytest
import torch

from shortcut_audit.data.biased_mnist import FACTORS, N_VALUES
from shortcut_audit.factors import Categorical, Continuous, Factor, FactorError, image_factor
from shortcut_audit.factors.biased_mnist import RENDERER_FACTORS


def test_categorical_unit_mapping_is_mosips_partition():
    domain = Categorical(tuple("abcde"))
    u = torch.tensor([0.0, 0.19, 0.2, 0.99, 1.0], dtype=torch.float64)
    assert domain.from_unit(u).tolist() == [0.0, 0.0, 1.0, 4.0, 4.0]


def test_continuous_unit_mapping_is_linear():
    assert Continuous(0.2, 1.0).from_unit(torch.tensor([0.0, 0.5, 1.0])).tolist() == pytest.approx([0.2, 0.6, 1.0])


def test_full_domain_draw_equals_a_plain_randint():
    factor = Factor("c", Categorical(tuple("abcdefghij")))
    drawn = factor.draw(torch.Generator().manual_seed(5), 100)
    assert torch.equal(drawn, torch.randint(10, (100,), generator=torch.Generator().manual_seed(5)).double())


def test_intervention_draws_only_its_levels_and_range():
    present = Factor("w", Categorical(("absent", "present")), intervention=(1,))
    assert set(present.draw(torch.Generator().manual_seed(0), 50).tolist()) == {1.0}
    opacity = Factor("o", Continuous(0.0, 1.0), intervention=(0.5, 0.7))
    values = opacity.draw(torch.Generator().manual_seed(0), 500)
    assert float(values.min()) >= 0.5 and float(values.max()) <= 0.7


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"name": "bad name", "domain": Categorical(("a",))}, "identifier"),
        ({"name": "x", "domain": Categorical(("a", "b")), "neutral": 2}, "neutral"),
        ({"name": "x", "domain": Continuous(0, 1), "intervention": (0.5,)}, "sub-range"),
        ({"name": "x", "domain": Categorical(("a", "b")), "intervention": (3,)}, "intervention"),
    ],
)
def test_bad_definitions_are_refused(kwargs, message):
    with pytest.raises(FactorError, match=message):
        Factor(**kwargs)


def test_image_factor_resolves_level_names():
    factor = image_factor(
        "frame", lambda images, v: images, levels=["none", "thin"], neutral="none", intervention=["thin"]
    ).factors[0]
    assert factor.neutral == 0.0 and factor.intervention == (1.0,)
    with pytest.raises(FactorError, match="unknown level 'thick'"):
        image_factor("frame", lambda images, v: images, levels=["none", "thin"], neutral="thick")


def test_renderer_factors_match_the_renderer():
    assert tuple(f.name for f in RENDERER_FACTORS) == FACTORS
    assert all(f.domain.size == N_VALUES[f.name] for f in RENDERER_FACTORS)
