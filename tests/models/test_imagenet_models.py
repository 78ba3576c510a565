"""ImageNet model registry: local-weights loading end to end, errors, preprocessing."""

import pytest
import torch
from PIL import Image

from shortcut_audit.models import imagenet as M  # first: installs the torchvision shim

from torchvision.models.resnet import BasicBlock, ResNet  # noqa: E402  isort: skip


def _tiny_resnet(input_size: int = 32) -> torch.nn.Module:
    return ResNet(BasicBlock, [1, 1, 1, 1], num_classes=1000)


@pytest.fixture
def tiny_spec():
    spec = M.ModelSpec("tiny_resnet", "torchvision", M.Preprocessing(32, 36), _tiny_resnet, ("tiny_resnet-0000.pth",))
    M.register_model(spec)
    yield spec
    M.REGISTRY.pop("tiny_resnet")


def test_local_weights_load_end_to_end(tiny_spec, tmp_path):
    torch.manual_seed(0)
    saved = _tiny_resnet()
    torch.save(saved.state_dict(), tmp_path / "tiny_resnet-0000.pth")
    loaded = M.load_imagenet_model("tiny_resnet", weights_dir=tmp_path)
    assert loaded.weights_path.endswith("tiny_resnet-0000.pth") and loaded.source == "torchvision"
    images = torch.rand(2, 3, 32, 32)
    expected = saved.eval()((images - loaded.model.mean) / loaded.model.std)
    assert torch.allclose(loaded.model(images), expected, atol=1e-5)
    assert not loaded.model.training


def test_wrapped_state_dict_is_unwrapped(tiny_spec, tmp_path):
    torch.save({"state_dict": _tiny_resnet().state_dict(), "epoch": torch.tensor(3)}, tmp_path / "tiny_resnet-0000.pth")
    assert M.load_imagenet_model("tiny_resnet", weights_dir=tmp_path).n_params > 0


def test_missing_weights_never_download(tiny_spec, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub_home"))
    with pytest.raises(M.WeightsNotFoundError, match="nothing is downloaded"):
        M.load_imagenet_model("tiny_resnet", weights_dir=tmp_path)
    with pytest.raises(M.WeightsNotFoundError, match="resnet50-0676ba61.pth"):
        M.load_imagenet_model("resnet50", weights_dir=tmp_path)


def test_hub_cache_is_searched(tiny_spec, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(_tiny_resnet().state_dict(), tmp_path / "hub" / "checkpoints" / "tiny_resnet-0000.pth")
    assert "checkpoints" in M.load_imagenet_model("tiny_resnet").weights_path


def test_corrupt_file_gives_clear_error(tiny_spec, tmp_path):
    torch.save(_tiny_resnet().state_dict(), tmp_path / "tiny_resnet-0000.pth")
    data = (tmp_path / "tiny_resnet-0000.pth").read_bytes()
    (tmp_path / "tiny_resnet-0000.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(M.WeightsError, match="cannot read weights file"):
        M.load_imagenet_model("tiny_resnet", weights_dir=tmp_path)


def test_mismatched_file_gives_clear_error(tiny_spec, tmp_path):
    other = ResNet(BasicBlock, [1, 1, 1, 1], num_classes=10)
    torch.save(other.state_dict(), tmp_path / "tiny_resnet-0000.pth")
    with pytest.raises(M.WeightsError, match="wrong shape.*fc.weight"):
        M.load_imagenet_model("tiny_resnet", weights_dir=tmp_path)
    torch.save({"a": torch.zeros(1)}, tmp_path / "tiny_resnet-0000.pth")
    with pytest.raises(M.WeightsError, match="missing"):
        M.load_imagenet_model("tiny_resnet", weights_dir=tmp_path)


def test_pickled_objects_are_refused(tiny_spec, tmp_path):
    torch.save(_tiny_resnet(), tmp_path / "tiny_resnet-0000.pth")  # a whole module, not a state dict
    with pytest.raises(M.WeightsError, match="cannot read"):
        M.load_imagenet_model("tiny_resnet", weights_dir=tmp_path)


def test_unknown_name_and_import_path(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="unknown ImageNet model"):
        M.model_spec("lenet_9000")
    with pytest.raises(ValueError, match="package.module:factory"):
        M.model_spec("just:")
    module = tmp_path / "tiny_factory_module.py"
    module.write_text(
        "import torch\n\ndef build():\n    return torch.nn.Sequential(torch.nn.Flatten(), "
        "torch.nn.Linear(3 * 224 * 224, 1000))\n\ndef not_a_module():\n    return 3\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    loaded = M.load_imagenet_model("tiny_factory_module:build")
    assert loaded.source == "import" and loaded.model(torch.rand(1, 3, 224, 224)).shape == (1, 1000)
    with pytest.raises(ValueError, match="not a torch.nn.Module"):
        M.load_imagenet_model("tiny_factory_module:not_a_module")


def test_efficientnet_lite0_packaged_weights_at_reduced_size():
    loaded = M.load_imagenet_model("efficientnet_lite0", input_size=64)
    assert loaded.preprocessing.input_size == 64 and loaded.preprocessing.resize_size == 73
    assert loaded.preprocessing.mean == M.TF_LITE_MEAN
    with torch.no_grad():
        out = loaded.model(torch.rand(2, 3, 64, 64))
    assert out.shape == (2, 1000) and torch.isfinite(out).all()


def test_categories_and_preprocess():
    categories = M.imagenet_categories()
    assert len(categories) == 1000 and categories[281] == "tabby"
    image = Image.new("RGB", (80, 40), (255, 0, 0))
    tensor = M.preprocess(image, M.Preprocessing(32, 36))
    assert tensor.shape == (3, 32, 32) and tensor[0].min() == 1.0 and tensor[1].max() == 0.0
