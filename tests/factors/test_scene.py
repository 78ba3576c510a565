"""Scenes render items under chosen factor values and check every image factor's output."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from shortcut_audit.data.biased_mnist import FACTORS, N_VALUES, render
from shortcut_audit.factors import FactorError, digit_scene, image_factor, image_scene


def _table(n: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    table = pd.DataFrame({"label": rng.integers(0, 10, n)})
    for f in FACTORS:
        table[f] = rng.integers(0, N_VALUES[f], n)
    digits = rng.integers(0, 256, (n, 28, 28)).astype(np.uint8)
    return table, digits


def _stripe(images: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
    out = images.clone()
    out[level == 1, :, :2, :] = 1.0
    return out


def test_digit_scene_renders_exactly_as_the_renderer():
    table, digits = _table(6)
    scene = digit_scene(table, digits, canvas=56)
    expected = render(torch.as_tensor(digits), *(torch.as_tensor(table[f].to_numpy()) for f in FACTORS), canvas=56)
    assert torch.equal(scene.render_own(), expected)


def test_values_set_by_column_and_image_factors_apply_after_the_base():
    table, digits = _table(4)
    stripe = image_factor("stripe", _stripe, levels=["off", "on"])
    scene = digit_scene(table, digits, image_factors=[stripe])
    assert scene.names == (*FACTORS, "stripe")
    values = scene.with_values(scene.columns(["bg_color", "stripe"]), torch.tensor([[3.0, 1.0]]))
    images = scene.render_grid(values)
    plain = render(
        torch.as_tensor(digits),
        torch.as_tensor(table["digit_color"].to_numpy()),
        torch.full((4,), 3),
        torch.as_tensor(table["position"].to_numpy()),
    )
    assert torch.equal(images[:, :, 2:], plain[:, :, 2:])
    assert bool((images[:, :, :2] == 1.0).all())


@pytest.mark.parametrize(
    "bad, message",
    [
        (lambda images, v: images[:, :2], "returned shape"),
        (lambda images, v: images * float("nan"), "NaN or infinite"),
        (lambda images, v: images + 2.0, r"expected \[0, 1\]"),
        (lambda images, v: (images * 255).to(torch.uint8), "floating"),
        (lambda images, v: images.numpy(), "expected a torch.Tensor"),
    ],
)
def test_a_misbehaving_factor_function_is_named(bad, message):
    broken = image_factor("broken_overlay", bad, value_range=(0.0, 1.0))
    scene = image_scene(torch.rand(3, 3, 8, 8), torch.zeros(3, dtype=torch.long), [broken])
    with pytest.raises(
        FactorError, match=rf"broken_overlay.*{message}|{message}.*broken_overlay|'<lambda>'.*{message}"
    ):
        scene.render_own()


def test_unknown_and_repeated_factor_names_are_refused():
    scene = image_scene(
        torch.rand(2, 3, 4, 4),
        torch.zeros(2, dtype=torch.long),
        [image_factor("stripe", _stripe, levels=["off", "on"])],
    )
    with pytest.raises(FactorError, match="unknown factor.*'colour'.*it can set stripe"):
        scene.check(["colour"])
    with pytest.raises(FactorError, match="distinct"):
        scene.check(["stripe", "stripe"])


def test_select_keeps_items_labels_and_values_together():
    table, digits = _table(5)
    scene = digit_scene(table, digits)
    part = scene.select(torch.tensor([4, 1]))
    assert torch.equal(part.labels, scene.labels[[4, 1]])
    assert torch.equal(part.render_own(), scene.render_own()[[4, 1]])
