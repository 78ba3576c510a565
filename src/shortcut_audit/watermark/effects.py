"""What ``do(watermark)`` does to a model's predictions, image by image, with intervals.

Li et al. (CVPR 2023) measure the watermark shortcut on ImageNet-W (every validation
image with the watermark) against ImageNet:

* the **ImageNet-W gap**, accuracy on ImageNet-W minus accuracy on ImageNet (about
  -25 points for a ResNet-50 trained with ERM); here ``accuracy_drop`` is its negative,
  clean minus watermarked accuracy, so that a shortcut shows as a positive drop;
* the **carton gap**, the share of images predicted "carton" (class 478) on ImageNet-W
  minus that share on ImageNet (about +30 points for the same model).

(The paper's text is not among the project's copies; the two reference values are
quoted as the project's issue gives them, to be checked against the paper's tables.)

Without labels (the offline sample photos) accuracy is undefined; the statistics that
need no label remain: ``top1_change_rate`` (the watermark changes the top-1 class),
the carton shares and their gap, and the mean shift of the carton probability and
logit (which move before the top-1 class does).

Every statistic is a mean over images of a per-image quantity, paired clean against
watermarked, so its 95 % interval is a percentile bootstrap over images
(:class:`~shortcut_audit.audit.interventions.ItemBootstrap`, the same resampled
images for every statistic of a model).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from shortcut_audit.audit.interventions import ItemBootstrap
from shortcut_audit.factors.scene import ProbabilityReader, Scene
from shortcut_audit.factors.watermark import CARTON

__all__ = ["EFFECT_COLUMNS", "IMAGE_COLUMNS", "STATISTICS", "effect_rows", "image_effects", "scene_logits"]

IMAGE_COLUMNS = (
    "image_id",
    "label",
    "clean_top1",
    "watermarked_top1",
    "changed",
    "carton_prob_clean",
    "carton_prob_watermarked",
    "carton_logit_clean",
    "carton_logit_watermarked",
)
EFFECT_COLUMNS = ("statistic", "value", "ci_low", "ci_high", "n_images")
#: The statistics of :func:`effect_rows`, in table order; those of LABELLED need true classes.
STATISTICS = (
    "top1_change_rate",
    "carton_share_clean",
    "carton_share_watermarked",
    "carton_gap",
    "carton_prob_shift",
    "carton_logit_shift",
    "accuracy_clean",
    "accuracy_watermarked",
    "accuracy_drop",
)
LABELLED = ("accuracy_clean", "accuracy_watermarked", "accuracy_drop")


def scene_logits(
    reader: ProbabilityReader, scene: Scene, values: torch.Tensor | None = None, chunk: int | None = None
) -> torch.Tensor:
    """Logits ``(n, classes)`` (CPU, float32) of every item rendered under ``values`` ``(n, d)`` (own values: None).

    Images are rendered ``chunk`` at a time (default: the reader's batch size), so
    memory is bounded whatever the number of items.
    """
    n = len(scene)
    values = scene.own_values if values is None else values.to(scene.device, torch.float64)
    if values.shape != scene.own_values.shape:
        raise ValueError(f"values must have shape {tuple(scene.own_values.shape)}, got {tuple(values.shape)}")
    step = int(chunk or reader.batch_size)
    out = []
    for start in range(0, n, step):
        items = torch.arange(start, min(start + step, n), device=scene.device)
        out.append(reader.logits(scene.render(items, values[items])).cpu())
    return torch.cat(out)


def image_effects(
    image_ids: list[str],
    clean: torch.Tensor,
    watermarked: torch.Tensor,
    labels: torch.Tensor | None = None,
    target: int = CARTON,
) -> pd.DataFrame:
    """One row per image (:data:`IMAGE_COLUMNS`) from clean and watermarked logits ``(n, classes)``.

    ``label`` is -1 where the image has no true class.
    """
    if clean.shape != watermarked.shape or clean.dim() != 2 or clean.shape[0] != len(image_ids):
        raise ValueError(
            f"expected two logit tensors ({len(image_ids)}, classes), got {tuple(clean.shape)} "
            f"and {tuple(watermarked.shape)}"
        )
    clean, watermarked = clean.double(), watermarked.double()
    labels = torch.full((len(image_ids),), -1, dtype=torch.long) if labels is None else labels.cpu().long()
    top_clean, top_marked = clean.argmax(dim=1), watermarked.argmax(dim=1)
    return pd.DataFrame(
        {
            "image_id": [str(i) for i in image_ids],
            "label": labels.numpy(),
            "clean_top1": top_clean.numpy(),
            "watermarked_top1": top_marked.numpy(),
            "changed": (top_clean != top_marked).numpy(),
            "carton_prob_clean": clean.softmax(dim=1)[:, target].numpy(),
            "carton_prob_watermarked": watermarked.softmax(dim=1)[:, target].numpy(),
            "carton_logit_clean": clean[:, target].numpy(),
            "carton_logit_watermarked": watermarked[:, target].numpy(),
        },
        columns=list(IMAGE_COLUMNS),
    )


def _per_image(images: pd.DataFrame, statistic: str, target: int) -> np.ndarray:
    carton_clean = (images["clean_top1"] == target).to_numpy(float)
    carton_marked = (images["watermarked_top1"] == target).to_numpy(float)
    correct_clean = (images["clean_top1"] == images["label"]).to_numpy(float)
    correct_marked = (images["watermarked_top1"] == images["label"]).to_numpy(float)
    values = {
        "top1_change_rate": lambda: images["changed"].to_numpy(float),
        "carton_share_clean": lambda: carton_clean,
        "carton_share_watermarked": lambda: carton_marked,
        "carton_gap": lambda: carton_marked - carton_clean,
        "carton_prob_shift": lambda: (images["carton_prob_watermarked"] - images["carton_prob_clean"]).to_numpy(float),
        "carton_logit_shift": lambda: (images["carton_logit_watermarked"] - images["carton_logit_clean"]).to_numpy(
            float
        ),
        "accuracy_clean": lambda: correct_clean,
        "accuracy_watermarked": lambda: correct_marked,
        "accuracy_drop": lambda: correct_clean - correct_marked,
    }
    return values[statistic]()


def effect_rows(
    images: pd.DataFrame, n_resamples: int = 2000, conf_level: float = 0.95, seed: int = 0, target: int = CARTON
) -> pd.DataFrame:
    """Every statistic of the module docstring with its bootstrap interval (:data:`EFFECT_COLUMNS`).

    The accuracy statistics appear only when every image has a true label.
    """
    n = len(images)
    if n == 0:
        raise ValueError("no image: the watermark's effect is undefined")
    labelled = bool((images["label"] >= 0).all())
    bootstrap = ItemBootstrap(n, n_resamples, conf_level, seed)
    rows = []
    for statistic in STATISTICS:
        if statistic in LABELLED and not labelled:
            continue
        value, low, high = bootstrap.interval(_per_image(images, statistic, target))
        rows.append({"statistic": statistic, "value": value, "ci_low": low, "ci_high": high, "n_images": n})
    return pd.DataFrame(rows, columns=list(EFFECT_COLUMNS))
