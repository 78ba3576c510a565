"""Checkpoints: state-dict round trip with weights_only loading, and clear errors."""

from __future__ import annotations

import json

import pytest
import torch

import shortcut_audit  # noqa: F401
from shortcut_audit.models.checkpoints import CheckpointError, load_model, read_config, save_model
from shortcut_audit.models.registry import ARCHITECTURES, build


def _config(arch: str, **extra) -> dict:
    return {"arch": arch, "num_classes": 10, "in_channels": 3, "image_size": 56, "dataset_id": "p0.5", **extra}


def _trained_like(arch: str) -> torch.nn.Module:
    """A model whose batch-norm statistics moved away from their initial values."""
    torch.manual_seed(1)
    model = build(arch)
    model.train()
    with torch.no_grad():
        model(torch.rand(8, 3, 56, 56))
    return model


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_round_trip_is_bit_identical(arch, tmp_path):
    model = _trained_like(arch).eval()
    save_model(model, _config(arch, seed=7), tmp_path / "m")
    loaded, config = load_model(tmp_path / "m", device="cpu")
    assert config == _config(arch, seed=7)
    assert not loaded.training
    original, restored = model.state_dict(), loaded.state_dict()
    assert original.keys() == restored.keys()
    for name in original:
        assert original[name].dtype == restored[name].dtype
        assert torch.equal(original[name], restored[name]), name
    x = torch.rand(3, 3, 56, 56)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))


def test_files_are_a_plain_state_dict_and_json(tmp_path):
    save_model(build("mlp"), _config("mlp"), tmp_path)
    state = torch.load(tmp_path / "model.pt", weights_only=True)
    assert isinstance(state, dict) and all(isinstance(v, torch.Tensor) for v in state.values())
    assert json.loads((tmp_path / "config.json").read_text())["arch"] == "mlp"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.pt"]


def test_loading_refuses_pickled_code(tmp_path):
    save_model(build("mlp"), _config("mlp"), tmp_path)
    # A full pickle with a non-tensor object: weights_only loading must refuse it.
    torch.save({"state": build("mlp")}, tmp_path / "model.pt")
    with pytest.raises(CheckpointError, match="unreadable"):
        load_model(tmp_path)


def test_save_keeps_the_global_rng(tmp_path):
    model = build("simple_cnn")
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    save_model(model, _config("simple_cnn"), tmp_path)  # builds a reference model to check shapes
    assert torch.equal(torch.rand(3), expected)


def test_missing_folder_and_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="model folder not found"):
        load_model(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_model(tmp_path / "empty")
    save_model(build("mlp"), _config("mlp"), tmp_path / "m")
    (tmp_path / "m" / "model.pt").unlink()
    with pytest.raises(FileNotFoundError, match="model.pt"):
        load_model(tmp_path / "m")


def test_truncated_weights(tmp_path):
    save_model(build("simple_cnn"), _config("simple_cnn"), tmp_path)
    data = (tmp_path / "model.pt").read_bytes()
    (tmp_path / "model.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="unreadable or truncated"):
        load_model(tmp_path)


def test_corrupt_or_incomplete_config(tmp_path):
    save_model(build("mlp"), _config("mlp"), tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="unreadable JSON"):
        load_model(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"arch": "mlp"}))
    with pytest.raises(CheckpointError, match="num_classes"):
        read_config(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(_config("transformer")))
    with pytest.raises(CheckpointError, match="unknown architecture 'transformer'"):
        load_model(tmp_path)


def test_weights_that_do_not_fit_the_configured_architecture(tmp_path):
    save_model(build("simple_cnn"), _config("simple_cnn"), tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(_config("resnet_small")))
    with pytest.raises(CheckpointError, match="do not match architecture 'resnet_small'"):
        load_model(tmp_path)


def test_saving_a_model_under_the_wrong_config_fails(tmp_path):
    with pytest.raises(CheckpointError, match="does not match config"):
        save_model(build("simple_cnn"), _config("mlp"), tmp_path)
    with pytest.raises(CheckpointError, match="lacks key"):
        save_model(build("mlp"), {"arch": "mlp"}, tmp_path)
    assert not (tmp_path / "model.pt").exists()


def test_saving_the_same_weights_twice_gives_identical_bytes(tmp_path):
    from shortcut_audit.models.checkpoints import save_model
    from shortcut_audit.models.registry import build

    torch.manual_seed(0)
    model = build("simple_cnn")
    config = {"arch": "simple_cnn", "num_classes": 10, "in_channels": 3, "image_size": 56, "dataset_id": "p0.1"}
    first = save_model(model, config, tmp_path / "a") / "model.pt"
    second = save_model(model, config, tmp_path / "b") / "model.pt"
    assert first.read_bytes() == second.read_bytes()
