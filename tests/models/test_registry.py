"""Architecture registry: shapes, parameter counts, structure, errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import shortcut_audit  # noqa: F401
from shortcut_audit.models import registry
from shortcut_audit.models.registry import ARCHITECTURES, build, count_parameters

# Trainable parameters at the default 10 classes, 3 channels, 56x56.
EXPECTED_PARAMS_56 = {
    # input BN (no affine) + convs 3-16-24-32-32 (3x3, bias) + linear 32*7*7 -> 10
    "simple_cnn": (3 * 16 * 9 + 16)
    + (16 * 24 * 9 + 24)
    + (24 * 32 * 9 + 32)
    + (32 * 32 * 9 + 32)
    + (32 * 7 * 7 * 10 + 10),
    # conv+BN 3->16, 16->32, 32->64, 64->64 (3x3, no bias) + linear 64*3*3 -> 64 -> 10
    "vgg_small": (3 * 16 * 9 + 32)
    + (16 * 32 * 9 + 64)
    + (32 * 64 * 9 + 128)
    + (64 * 64 * 9 + 128)
    + (576 * 64 + 64)
    + (64 * 10 + 10),
    # stem conv+BN 3->16; blocks 16->16, 16->32 and 32->64 (two 3x3 conv+BN, 1x1 projection+BN
    # when the shape changes); linear 64 -> 10
    "resnet_small": (3 * 16 * 9 + 32)
    + 2 * (16 * 16 * 9 + 32)
    + (16 * 32 * 9 + 64 + 32 * 32 * 9 + 64 + 16 * 32 + 64)
    + (32 * 64 * 9 + 128 + 64 * 64 * 9 + 128 + 32 * 64 + 128)
    + (64 * 10 + 10),
    # input BN (no affine) + 9408 -> 256 -> 128 -> 10
    "mlp": (3 * 56 * 56 * 256 + 256) + (256 * 128 + 128) + (128 * 10 + 10),
}


def test_registry_lists_the_four_families():
    assert set(ARCHITECTURES) >= {"simple_cnn", "vgg_small", "resnet_small", "mlp"}


@pytest.mark.parametrize("arch", ARCHITECTURES)
@pytest.mark.parametrize("image_size", [28, 56, 84])
def test_forward_shape(arch, image_size):
    torch.manual_seed(0)
    model = build(arch, num_classes=10, in_channels=3, image_size=image_size).eval()
    with torch.no_grad():
        logits = model(torch.rand(5, 3, image_size, image_size))
    assert logits.shape == (5, 10)
    assert logits.dtype == torch.float32 and torch.isfinite(logits).all()


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_other_class_and_channel_counts(arch):
    model = build(arch, num_classes=4, in_channels=1, image_size=56).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 1, 56, 56)).shape == (2, 4)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_parameter_count(arch):
    model = build(arch)
    assert count_parameters(model) == EXPECTED_PARAMS_56[arch]
    assert count_parameters(model) == sum(p.numel() for p in model.parameters())


def test_count_parameters_skips_frozen_weights_and_buffers():
    model = build("simple_cnn")
    total = count_parameters(model)
    head = model.head
    head.weight.requires_grad_(False)
    assert count_parameters(model) == total - head.weight.numel()
    # batch-norm running statistics are buffers, not parameters
    assert all(name not in dict(model.named_parameters()) for name, _ in model.named_buffers())


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_every_model_normalises_its_input_with_batch_norm(arch):
    leaves = [m for m in build(arch).modules() if not list(m.children())]
    assert isinstance(leaves[0], nn.BatchNorm2d) and leaves[0].num_features == 3
    assert not leaves[0].affine and leaves[0].track_running_stats


def test_mlp_has_no_convolution_and_cnns_do():
    assert not any(isinstance(m, nn.Conv2d) for m in build("mlp").modules())
    for arch in ("simple_cnn", "vgg_small", "resnet_small"):
        assert any(isinstance(m, nn.Conv2d) for m in build(arch).modules())


def test_simple_cnn_has_four_conv_relu_layers_and_pooling():
    model = build("simple_cnn")
    layers = list(model.features)
    convs = [i for i, m in enumerate(layers) if isinstance(m, nn.Conv2d)]
    assert len(convs) == 4
    assert all(isinstance(layers[i + 1], nn.ReLU) for i in convs)
    assert any(isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)) for m in layers)
    assert isinstance(model.head, nn.Linear)


def test_vgg_small_uses_only_3x3_convolutions():
    convs = [m for m in build("vgg_small").modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 4 and all(c.kernel_size == (3, 3) for c in convs)


def test_resnet_block_adds_the_skip_connection():
    torch.manual_seed(0)
    block = registry.BasicBlock(8, 8).eval()
    x = torch.randn(2, 8, 6, 6)
    # Silencing the residual branch's last batch-norm leaves relu(x + 0): only the identity path.
    nn.init.zeros_(block.residual[-1].weight)
    nn.init.zeros_(block.residual[-1].bias)
    with torch.no_grad():
        assert torch.equal(block(x), torch.relu(x))
    # With a change of shape the shortcut is a strided 1x1 projection.
    projected = registry.BasicBlock(8, 16, stride=2).eval()
    assert isinstance(projected.shortcut, nn.Sequential)
    with torch.no_grad():
        assert projected(x).shape == (2, 16, 3, 3)
    assert sum(isinstance(m, registry.BasicBlock) for m in build("resnet_small").modules()) == 3


def test_same_seed_same_initial_weights():
    torch.manual_seed(3)
    a = build("resnet_small").state_dict()
    torch.manual_seed(3)
    b = build("resnet_small").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_unknown_architecture_lists_known_names():
    with pytest.raises(ValueError, match="unknown architecture 'alexnet'") as err:
        build("alexnet")
    for name in ARCHITECTURES:
        assert name in str(err.value)


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"num_classes": 1}, "num_classes"),
        ({"in_channels": 0}, "in_channels"),
        ({"image_size": 4}, "image_size"),
        ({"image_size": 56.0}, "image_size"),
    ],
)
def test_invalid_geometry_is_rejected(kwargs, key):
    with pytest.raises(ValueError, match=key):
        build("simple_cnn", **kwargs)
