"""Known-answer stand-ins for the factor audit: synthetic digits and models with known reliance."""

from __future__ import annotations

import copy
from pathlib import Path

import torch
import yaml
from torch import nn

from shortcut_audit.data import biased_mnist as bm
from shortcut_audit.data import mnist
from shortcut_audit.data.biased_mnist import BG_PALETTE, DIGIT_PALETTE, FACTORS, N_VALUES, linked_value
from shortcut_audit.factors.scene import DigitBase, Scene
from shortcut_audit.io import write_table
from shortcut_audit.models.checkpoints import save_model
from shortcut_audit.models.registry import build
from shortcut_audit.training.loop import train_model
from shortcut_audit.training.settings import TrainConfig
from shortcut_audit.training.splits import RenderedSplit
from shortcut_audit.training.summary import model_dir

REPO = Path(__file__).resolve().parents[2]

SHARPNESS = 50.0


def synthetic_digits(n: int, seed: int = 0) -> torch.Tensor:
    """Bars of full ink in the centre of the 28x28 box (MNIST-like: empty border rows/cols)."""
    generator = torch.Generator().manual_seed(seed)
    digits = torch.zeros(n, 28, 28, dtype=torch.uint8)
    widths = torch.randint(2, 6, (n,), generator=generator)
    for i, w in enumerate(widths.tolist()):
        digits[i, 6:22, 12 : 12 + w] = 255
    return digits


def digit_sample(n: int, aligned: bool, seed: int = 0, canvas: int = 56) -> Scene:
    """Synthetic digits with factors linked to the label (``aligned``) or uniform."""
    generator = torch.Generator().manual_seed(seed + 1)
    labels = torch.randint(10, (n,), generator=generator)
    if aligned:
        factors = torch.stack([linked_value(f, labels) for f in FACTORS], dim=1)
    else:
        factors = torch.stack([torch.randint(N_VALUES[f], (n,), generator=generator) for f in FACTORS], dim=1)
    return Scene(DigitBase(synthetic_digits(n, seed), canvas), (), labels, factors.double())


def _nearest_palette_logits(colours: torch.Tensor, palette: torch.Tensor) -> torch.Tensor:
    return -SHARPNESS * ((colours[:, None, :] - palette.to(colours)[None]) ** 2).sum(dim=-1)


class BackgroundColourModel(nn.Module):
    """Predicts the class linked to the background colour, read at the top-left pixel.

    Pixel (0, 0) is background whatever the position (the digits' border is empty).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _nearest_palette_logits(x[:, :, 0, 0], BG_PALETTE)


class DigitColourModel(nn.Module):
    """Predicts the class linked to the digit colour, read at the brightest pixel.

    Every digit colour is brighter (channel sum) than every background colour, so the
    brightest pixel is a full-ink pixel of pure digit colour.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(2)  # (N, 3, HW)
        brightest = flat.sum(dim=1).argmax(dim=1)
        colours = flat.gather(2, brightest.view(-1, 1, 1).expand(-1, 3, 1)).squeeze(2)
        return _nearest_palette_logits(colours, DIGIT_PALETTE)


class ConstantModel(nn.Module):
    """Ignores its input: the same logits for every image."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.linspace(-1.0, 1.0, 10, device=x.device).expand(x.shape[0], 10).clone()


def bar_digits(widths: torch.Tensor) -> torch.Tensor:
    """Bars of full ink of the given widths in the centre of the 28x28 box."""
    digits = torch.zeros(len(widths), 28, 28, dtype=torch.uint8)
    for i, w in enumerate(widths.tolist()):
        digits[i, 6:22, 12 : 12 + w] = 255
    return digits


def gated_pool(n: int, wide_share: float, seed: int = 0, canvas: int = 56) -> Scene:
    """A pool of digits with every factor at its linked value; a ``wide_share`` of them are wide bars."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(10, (n,), generator=generator)
    widths = torch.where(torch.rand(n, generator=generator) < wide_share, 5, 2)
    factors = torch.stack([linked_value(f, labels) for f in FACTORS], dim=1)
    return Scene(DigitBase(bar_digits(widths), canvas), (), labels, factors.double())


class WidthGatedModel(nn.Module):
    """Reads the background colour for wide bars and the digit colour for narrow ones.

    Ink pixels are those that differ from the background colour at the top-left pixel;
    a wide bar (width 5) has 80 of them, a narrow one (width 2) 32. Re-drawing the
    background costs a wide digit its decision with probability 0.9 (the new colour is
    the linked one with probability 1/10) and a narrow one nothing, so the Shapley drop
    of the background is ``0.9 x (share of wide digits)``, known exactly.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        background = x[:, :, :1, :1]
        ink = ((x - background).abs().sum(dim=1) > 1e-3).flatten(1).sum(dim=1)
        wide = (ink > 56)[:, None]
        return torch.where(wide, BackgroundColourModel()(x), DigitColourModel()(x))


class EitherColourModel(nn.Module):
    """Reads both colours as equal, redundant cues: one vote each, ties to the smaller class.

    Swapping the roles of the two colours leaves the model's behaviour unchanged in
    distribution, so each colour must get half of the Shapley drop.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        votes = (BackgroundColourModel()(x).argmax(dim=1), DigitColourModel()(x).argmax(dim=1))
        logits = torch.zeros(x.shape[0], 10, device=x.device)
        for vote in votes:
            logits[torch.arange(x.shape[0]), vote] += 1.0
        return logits


def trained_workspace(root: Path, dataset: str, sizes: dict, batch_size: int, lr: float) -> dict:
    """Real MNIST, one Biased-MNIST level and a simple CNN trained on it for one epoch under ``root/data``.

    Returns the repository's params narrowed to that level and model (CPU), for the caller to
    adjust and write.
    """
    data = root / "data"
    (data / "mnist").mkdir(parents=True)
    mnist.write_mnist_arrays(mnist.load_mnist(None), data / "mnist")
    arrays = mnist.load_mnist_arrays(data / "mnist")
    tables = bm.make_dataset(
        dataset, bm.parse_dataset_id(dataset), arrays["train_labels"], arrays["test_labels"], 0, **sizes
    )
    folder = bm.dataset_dir(data, dataset)
    folder.mkdir(parents=True)
    for split, table in tables.items():
        write_table(table, folder / f"{split}.parquet")
    splits = {s: RenderedSplit(*bm.load_split(data, dataset, s)) for s in ("train", "val")}
    torch.manual_seed(0)
    model = build("simple_cnn")
    train_model(
        model, splits["train"], splits["val"], TrainConfig(epochs=1, batch_size=batch_size, lr=lr), progress=False
    )
    metadata = {"arch": "simple_cnn", "num_classes": 10, "in_channels": 3, "image_size": 56, "dataset_id": dataset}
    save_model(model, {**metadata, "seed": 0}, model_dir(data / "models", dataset, "simple_cnn", 0))
    params = copy.deepcopy(yaml.safe_load((REPO / "params.yaml").read_text()))
    params["device"] = "cpu"
    params["biased_mnist"].update(datasets=[dataset], **sizes)
    params["train"].update(architectures=["simple_cnn"], seeds=[0])
    return params
