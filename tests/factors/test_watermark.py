"""The ImageNet-W watermark as factors: the paper's transform reproduced, its aspects varied, its mask."""

from __future__ import annotations

import pytest
import torch

import shortcut_audit  # noqa: F401  (the torchvision shim must precede imagenet_w)
from shortcut_audit.factors import FactorError, builtin_registry, image_scene
from shortcut_audit.factors.watermark import LATIN_TEXT, PAPER_TEXT, WATERMARK, text_alpha, watermark_mask

imagenet_w = pytest.importorskip("imagenet_w")


def _images(n: int = 2, size: int = 224, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (torch.randint(0, 255, (n, 3, size, size), generator=generator).float() + 0.5) / 255


def _watermarked(images: torch.Tensor, **values: float) -> torch.Tensor:
    scene = image_scene(images, torch.zeros(len(images), dtype=torch.long), [WATERMARK], own={"watermark": 1})
    names = list(values)
    setting = torch.tensor([[values[n] for n in names]], dtype=torch.float64)
    return scene.render_grid(scene.with_values(scene.columns(names), setting)) if names else scene.render_own()


@pytest.mark.parametrize("size", [224, 160])
def test_the_default_watermark_is_the_papers_transform(size):
    images = _images(size=size)
    ours = _watermarked(images)
    reference = torch.stack([imagenet_w.AddWatermark(size)(image) for image in images])
    assert float((ours - reference).abs().max()) <= 1.0 / 255 + 1e-6


def test_aspects_change_the_drawing():
    images = _images(1)
    base = _watermarked(images)
    assert not torch.equal(_watermarked(images, watermark_opacity=1.0), base)
    assert not torch.equal(_watermarked(images, watermark_y=0.1), base)
    assert not torch.equal(_watermarked(images, watermark_text=1.0), base)
    absent = image_scene(images, torch.zeros(1, dtype=torch.long), [WATERMARK]).render_own()
    assert torch.equal(absent, images)


def test_the_latin_text_has_about_the_width_of_the_papers():
    def width(text):
        columns = text_alpha(text, 224, 224, 0.4, 1.0).max(axis=0) > 0
        return int(columns.nonzero()[0].max() - columns.nonzero()[0].min())

    assert abs(width(LATIN_TEXT) - width(PAPER_TEXT)) <= 0.05 * width(PAPER_TEXT)


def test_mask_marks_exactly_the_changed_pixels_and_dilates():
    images = _images(1)
    changed = (_watermarked(images) != images).any(dim=1)[0]
    mask = watermark_mask(224, 224)
    assert torch.equal(mask, changed)
    dilated = watermark_mask(224, 224, dilation=3)
    assert bool(dilated[mask].all()) and dilated.sum() > mask.sum()


def test_a_text_the_font_cannot_draw_is_refused():
    with pytest.raises(FactorError, match="cannot draw"):
        text_alpha("\u0d15\u0d16", 224, 224, 0.4, 0.5)  # Malayalam: not in the font


def test_the_registry_knows_the_watermark_factors():
    registry = builtin_registry()
    assert {"watermark", "watermark_opacity", "watermark_y", "watermark_text"} <= set(registry.names)
    assert registry.image_factors(["watermark_y", "watermark"]) == (WATERMARK,)
    assert registry.factor("watermark").intervention == (1.0,)
