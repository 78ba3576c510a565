"""Small image classifiers for Biased-MNIST, looked up by name.

Every architecture maps images ``(N, in_channels, image_size, image_size)`` with
values in [0, 1] to class logits ``(N, num_classes)``. Every one starts with a
batch-norm layer on the input (as the MoSIP paper's simple CNN does; here without
affine parameters), so callers pass raw renderer output and no architecture
depends on a dataset-specific mean. All are sized for CPU training: none runs a
convolution on the full 56x56 canvas.

The four families differ in the inductive biases that matter for shortcut
learning: ``simple_cnn`` and ``vgg_small`` keep a spatial feature map up to the
linear head (position is readable), ``resnet_small`` pools globally after
residual stages, and ``mlp`` sees raw pixels with no convolution at all.

References
----------
MoSIP: Morris screening on semantic input partitions, Biased-MNIST experiments
(simple CNN: batch-norm on the input, convolution + ReLU layers with pooling, a
linear head). Simonyan & Zisserman (2015), "Very deep convolutional networks"
(stacks of 3x3 convolutions). He et al. (2016), "Deep residual learning", Eq. (1)
``y = F(x) + x`` with a 1x1 projection when the shape changes.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def _check_geometry(arch: str, num_classes: int, in_channels: int, image_size: int, min_size: int) -> None:
    for name, value, low in (
        ("num_classes", num_classes, 2),
        ("in_channels", in_channels, 1),
        ("image_size", image_size, min_size),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{arch}: {name} must be an integer >= {low}, got {value!r}")


def _input_norm(in_channels: int) -> nn.BatchNorm2d:
    """Batch-norm on the input without affine parameters.

    It standardises each input channel with batch (training) or running (eval)
    statistics. A learnable scale and shift here would be redundant with the first
    layer's weights and would force back-propagation down to the input, which costs
    ~20% of a CPU training step for these small networks.
    """
    return nn.BatchNorm2d(in_channels, affine=False)


def _strided_size(size: int, stride: int) -> int:
    """Output side of a 3x3 convolution with padding 1 and the given stride."""
    return (size - 1) // stride + 1


def _conv_bn_relu(in_channels: int, out_channels: int, stride: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


class SimpleCNN(nn.Module):
    """MoSIP's simple CNN: input batch-norm, 4 x (3x3 conv + ReLU) with max-pooling, linear head.

    The first two convolutions have stride 2 (56 -> 28 -> 14 pixels), the third is
    followed by 2x2 max-pooling (-> 7), the fourth keeps the 7x7 map. The head
    reads the flattened map, which keeps where a feature occurred (needed to learn,
    and to audit, position cues). Strided rather than pooled early layers keep
    full-resolution convolutions out of the network, which dominate CPU cost.

    Parameters
    ----------
    num_classes, in_channels, image_size : int
        Output classes, input channels and input height/width.
    widths : tuple of int
        Channels of the four convolutions.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 3,
        image_size: int = 56,
        widths: tuple[int, int, int, int] = (16, 24, 32, 32),
    ):
        super().__init__()
        c1, c2, c3, c4 = widths
        self.features = nn.Sequential(
            _input_norm(in_channels),
            nn.Conv2d(in_channels, c1, 3, stride=2, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c1, c2, 3, stride=2, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c2, c3, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(c3, c4, 3, padding=1),
            nn.ReLU(inplace=True),
        )
        side = _strided_size(_strided_size(image_size, 2), 2) // 2
        self.head = nn.Linear(c4 * side * side, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.features(x), 1))


class VGGSmall(nn.Module):
    """VGG-style network (VGG-11 layout, batch-norm variant): 3x3 conv + BN + ReLU stacks and max-pooling.

    One convolution with 16 channels, pool; one with 32, pool; two with 64 (the
    first convolution has stride 2 so no layer runs on the full 56x56 canvas).
    The map is average-pooled to 3x3 (a coarse spatial layout survives) and read
    by a two-layer classifier with dropout, as in VGG's head.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 3,
        image_size: int = 56,
        widths: tuple[int, int, int] = (16, 32, 64),
        hidden: int = 64,
    ):
        super().__init__()
        w1, w2, w3 = widths
        self.features = nn.Sequential(
            _input_norm(in_channels),
            *_conv_bn_relu(in_channels, w1, stride=2),
            nn.MaxPool2d(2),
            *_conv_bn_relu(w1, w2),
            nn.MaxPool2d(2),
            *_conv_bn_relu(w2, w3),
            *_conv_bn_relu(w3, w3),
            nn.AdaptiveAvgPool2d(3),
        )
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(w3 * 9, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(0.2),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class BasicBlock(nn.Module):
    """Residual block of He et al. (2016), Eq. (1): ``relu(F(x) + shortcut(x))``.

    ``F`` is conv-BN-ReLU-conv-BN (3x3); the shortcut is the identity, or a strided
    1x1 convolution + BN when the stride or the channel count changes.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.residual = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.residual(x) + self.shortcut(x))


class ResNetSmall(nn.Module):
    """ResNet-style network: stem (strided 3x3 conv + max-pool), three residual stages, global pooling.

    As in ResNet the stem reduces the resolution fourfold (56 -> 14); stages of one
    :class:`BasicBlock` each work at 14, 7 and 4 pixels with 16, 32 and 64 channels.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 3,
        image_size: int = 56,
        widths: tuple[int, int, int] = (16, 32, 64),
    ):
        super().__init__()
        self.stem = nn.Sequential(
            _input_norm(in_channels), *_conv_bn_relu(in_channels, widths[0], stride=2), nn.MaxPool2d(2)
        )
        blocks, channels = [], widths[0]
        for index, width in enumerate(widths):
            blocks.append(BasicBlock(channels, width, stride=1 if index == 0 else 2))
            channels = width
        self.stages = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))


class MLP(nn.Module):
    """Multi-layer perceptron on raw pixels: input batch-norm, flatten, two ReLU hidden layers.

    No convolution and no weight sharing: every pixel has its own weights, so
    translation is not built in (the contrast to the CNNs for the position factor).
    """

    def __init__(
        self, num_classes: int = 10, in_channels: int = 3, image_size: int = 56, hidden: tuple[int, int] = (256, 128)
    ):
        super().__init__()
        layers: list[nn.Module] = [_input_norm(in_channels), nn.Flatten()]
        features = in_channels * image_size * image_size
        for width in hidden:
            layers += [nn.Linear(features, width), nn.ReLU(inplace=True)]
            features = width
        layers.append(nn.Linear(features, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


# name -> (constructor, smallest image_size it supports)
_REGISTRY: dict[str, tuple[Callable[..., nn.Module], int]] = {
    "simple_cnn": (SimpleCNN, 8),
    "vgg_small": (VGGSmall, 16),
    "resnet_small": (ResNetSmall, 16),
    "mlp": (MLP, 1),
}

ARCHITECTURES: tuple[str, ...] = tuple(_REGISTRY)


def build(arch: str, num_classes: int = 10, in_channels: int = 3, image_size: int = 56) -> nn.Module:
    """Build a freshly initialised classifier by registry name.

    Parameters
    ----------
    arch : str
        One of :data:`ARCHITECTURES`.
    num_classes, in_channels, image_size : int
        Logit count, input channels and square input size.

    Returns
    -------
    torch.nn.Module
        The model in training mode, on the CPU; initialised from torch's global RNG
        (seed it with :func:`shortcut_audit.runtime.seed_everything` first).

    Raises
    ------
    ValueError
        For an unknown ``arch`` (the message lists the known ones) or an invalid size.
    """
    if arch not in _REGISTRY:
        raise ValueError(f"unknown architecture {arch!r}; known: {', '.join(ARCHITECTURES)}")
    constructor, min_size = _REGISTRY[arch]
    _check_geometry(arch, num_classes, in_channels, image_size, min_size)
    return constructor(num_classes=num_classes, in_channels=in_channels, image_size=image_size)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (buffers such as batch-norm statistics excluded)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
