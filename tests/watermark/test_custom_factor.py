"""A factor defined in a test (a coloured border) runs through factor Morris, interventions and verdicts."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from shortcut_audit.audit.interventions import Budget, run_interventions
from shortcut_audit.audit.verdicts import verdict_table
from shortcut_audit.factors import image_factor, image_scene
from shortcut_audit.factors.scene import ProbabilityReader
from shortcut_audit.factors.watermark import WATERMARK
from shortcut_audit.watermark.audit import aspect_morris

SIZE = 64
GAIN = 20.0


def red_border(images: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
    """Level 1 paints a 3-pixel red frame; level 0 leaves the image alone."""
    out = images.clone()
    frame = torch.ones(images.shape[-2:], dtype=torch.bool)
    frame[3:-3, 3:-3] = False
    red = torch.tensor([1.0, 0.0, 0.0])[:, None, None]
    painted = level == 1
    out[painted] = torch.where(frame, red, out[painted])
    return out


class CornerRedness(nn.Module):
    """Class 1 when the bottom-right pixel is redder (red - green) than 0.75, else class 0.

    The watermark never reaches that pixel at any height or text (it ends above 0.97 H
    and 0.98 W), so the model is blind to it.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = torch.zeros(x.shape[0], 1000)
        logits[:, 0] = GAIN * 0.75
        logits[:, 1] = GAIN * (x[:, 0, -1, -1] - x[:, 1, -1, -1])
        return logits


@pytest.fixture()
def border():
    return image_factor(
        "red_border", red_border, levels=["none", "red"], intervention=["red"], description="a red frame"
    )


def _photos(n: int) -> torch.Tensor:
    return 0.25 + 0.5 * torch.rand(n, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))


def test_the_border_runs_through_morris_interventions_and_verdicts(border):
    images = _photos(12)
    reader = ProbabilityReader(CornerRedness(), batch_size=64)
    labels = reader.predict(images)
    assert (labels == 0).all()
    factors = ("red_border", "watermark_opacity", "watermark_y", "watermark_text")
    morris = aspect_morris(
        reader, images, labels, (WATERMARK, border), factors, n_trajectories=4, levels=4, seed=0, n_resamples=100
    )
    true_class = morris[morris["output"] == "true_class_prob"].set_index("factor")
    assert true_class.at["red_border", "mu_star"] > 0.9  # the border flips every image
    assert (true_class.loc[list(factors[1:]), "mu_star"] == 0.0).all()

    scene = image_scene(images, labels, (WATERMARK, border))
    result = run_interventions(
        reader, scene, ["red_border", "watermark"], Budget(12, 1), threshold=0.1, n_resamples=200
    )
    states = dict(zip(result.shapley_drop["factor"], result.shapley_drop["state"]))
    assert states == {"red_border": "relied_on", "watermark": "not_relied_on"}

    border_only = {
        name: frame[frame["factor"] == "red_border"]
        for name, frame in (("morris", morris), ("shapley", result.shapley_drop), ("single", result.single_drop))
    }
    table = verdict_table(
        border_only["morris"],
        border_only["shapley"],
        border_only["single"],
        "global",
        result.n_items,
        result.repetitions,
    )
    row = table.set_index("factor").loc["red_border"]
    assert row["state"] == "relied_on" and row["mu_star"] == pytest.approx(true_class.at["red_border", "mu_star"])
