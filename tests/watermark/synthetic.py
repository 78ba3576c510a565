"""Known-answer classifiers for the watermark audit: they read the watermark's text, or not.

Each is a tiny ``nn.Module`` over images in ``[0, 1]`` with 1000 logits: class 0 has a
constant logit (the "object"), the carton logit (478) is ``gain * (b - offset)`` where
``b`` is the mean brightness of the pixels a weight map selects. A model that reads the
text's own pixels switches to carton when the (white) watermark brightens them; a model
that reads rows far below the text never sees it.
"""

from __future__ import annotations

import torch
from torch import nn

from shortcut_audit.factors import image_scene
from shortcut_audit.factors.watermark import CARTON, WATERMARK, watermark_mask

GAIN = 40.0


class BrightnessReader(nn.Module):
    """Carton logit ``GAIN * (mean brightness under weights - offset)``; class 0 logit ``rival``."""

    def __init__(self, weights: torch.Tensor, offset: float, rival: float):
        super().__init__()
        self.register_buffer("weights", weights.float() / weights.float().sum())
        self.offset, self.rival = float(offset), float(rival)

    def brightness(self, x: torch.Tensor) -> torch.Tensor:
        return (x.mean(dim=1) * self.weights).flatten(1).sum(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = torch.zeros(x.shape[0], 1000, dtype=x.dtype, device=x.device)
        logits[:, 0] = self.rival
        logits[:, CARTON] = GAIN * (self.brightness(x) - self.offset)
        return logits


def photos(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """Noise "photos" ``(n, 3, size, size)`` in [0, 1] (mean brightness 1/2 everywhere)."""
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def watermarked(images: torch.Tensor) -> torch.Tensor:
    """``do(watermark)`` with the paper's text, height and opacity."""
    labels = torch.zeros(len(images), dtype=torch.long)
    return image_scene(images, labels, [WATERMARK], own={"watermark": 1}).render_own()


def text_reader(images: torch.Tensor, centred: bool = True) -> BrightnessReader:
    """Reads the text's pixels; carton wins on watermarked ``images`` only.

    The rival logit sits halfway between the clean and the watermarked carton logits.
    ``centred``: the carton logit is about 0 on average when half of the pixels are kept
    at random (RISE's masks), so RISE's uncentred map (its Eq. 6 adds the mean score to
    every pixel) shows its shape rather than that offset.
    """
    size = images.shape[-1]
    text = watermark_mask(size, size).float()
    probe = BrightnessReader(text, 0.0, 0.0)
    clean, marked = probe.brightness(images), probe.brightness(watermarked(images))
    offset = 0.5 * float(marked.mean()) if centred else 0.0
    rival = GAIN * (0.5 * (float(clean.max()) + float(marked.min())) - offset)
    return BrightnessReader(text, offset, rival)


def blind_reader(images: torch.Tensor) -> BrightnessReader:
    """Reads the bottom tenth of the rows, far below the text (which ends above 0.6 H)."""
    size = images.shape[-1]
    weights = torch.zeros(size, size)
    weights[-max(1, size // 10) :] = 1.0
    probe = BrightnessReader(weights, 0.0, 0.0)
    rival = GAIN * float(probe.brightness(images).max()) + 1.0
    return BrightnessReader(weights, 0.0, rival)


TINY_MODULE = """
import torch
from torch import nn


def build():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(128, 1000))
"""
TINY_MODEL = "tiny_watermark_net:build"


def tiny_params(**watermark) -> dict:
    """A fast watermark section: a random conv net on two sample photos at 48 px, small budgets."""
    section = {
        "models": [TINY_MODEL],
        "max_images": 2,
        "input_size": 48,
        "batch_size": 16,
        "n_bootstrap": 200,
        "verdict": {"n_images": 4},
        "morris": {"n_trajectories": 2},
        "explain": {
            "models": [TINY_MODEL],
            "forwards": 40,
            "methods": ["sobol", "rise", "occlusion"],
            "white_box": ["gradient", "gradcam"],
            "sobol": {"grid_size": 3},
            "rise": {"grid_size": 4},
            "ensembles": {"normalisations": ["z"], "aggregations": ["mean", "ucb"]},
        },
    }
    section.update(watermark)
    return {"seed": 0, "device": "cpu", "watermark": section}


def tiny_watermark_run(root, monkeypatch) -> None:
    """Write ``root/data/watermark`` from a run of the tiny net (importable from ``root``)."""
    from pathlib import Path

    from shortcut_audit.watermark.config import WatermarkConfig
    from shortcut_audit.watermark.pipeline import run_watermark_audit, write_results

    root = Path(root)
    (root / "tiny_watermark_net.py").write_text(TINY_MODULE)
    monkeypatch.syspath_prepend(str(root))
    config = WatermarkConfig.from_params(tiny_params())
    write_results(run_watermark_audit(config, log=lambda message: None), root / "data" / "watermark")
