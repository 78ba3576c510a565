"""Saving and loading trained classifiers as plain state dicts.

A model folder holds ``model.pt`` (the ``state_dict``, tensors only) and
``config.json`` (``arch``, ``num_classes``, ``in_channels``, ``image_size``,
``dataset_id`` plus any extra keys). Loading rebuilds the architecture from the
registry and reads the weights with ``torch.load(..., weights_only=True)``, so a
checkpoint can never execute code.
"""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from shortcut_audit.io import atomic_path, write_json
from shortcut_audit.models.registry import build

WEIGHTS_FILE = "model.pt"
CONFIG_FILE = "config.json"
REQUIRED_CONFIG_KEYS: tuple[str, ...] = ("arch", "num_classes", "in_channels", "image_size", "dataset_id")


class CheckpointError(ValueError):
    """A model folder whose files are corrupt, incomplete or do not match each other."""


def _check_config(config: Mapping, where: str) -> None:
    if not isinstance(config, Mapping):
        raise CheckpointError(f"{where}: config must be a mapping, got {type(config).__name__}")
    missing = [key for key in REQUIRED_CONFIG_KEYS if key not in config]
    if missing:
        raise CheckpointError(f"{where}: config lacks key(s) {missing}; required: {', '.join(REQUIRED_CONFIG_KEYS)}")


def _check_model_matches(model: nn.Module, config: Mapping) -> None:
    """Fail now, not at load time, when ``model`` is not the architecture ``config`` names."""
    with torch.random.fork_rng(devices=[]):  # building initialises weights; keep the caller's RNG intact
        try:
            reference = build(config["arch"], config["num_classes"], config["in_channels"], config["image_size"])
        except ValueError as err:
            raise CheckpointError(f"config {dict(config)}: {err}") from None
    expected = {name: tuple(t.shape) for name, t in reference.state_dict().items()}
    actual = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    if expected != actual:
        differing = sorted(set(expected.items()) ^ set(actual.items()))[:4]
        raise CheckpointError(f"model does not match config {dict(config)}; differing entries: {differing}")


def save_model(model: nn.Module, config: Mapping, folder: str | Path) -> Path:
    """Write ``model``'s state dict and ``config`` into ``folder`` (created if needed).

    Parameters
    ----------
    model : the classifier (any device; weights are saved from the CPU)
    config : at least ``arch``, ``num_classes``, ``in_channels``, ``image_size``, ``dataset_id``
    folder : target folder; each file is written atomically

    Returns
    -------
    Path of the folder.
    """
    folder = Path(folder)
    _check_config(config, str(folder / CONFIG_FILE))
    _check_model_matches(model, config)
    folder.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    # Serialise in memory: torch.save names the zip's root folder after the file, and the
    # temporary name of an atomic write would make identical weights differ byte for byte.
    buffer = io.BytesIO()
    torch.save(state, buffer)
    with atomic_path(folder / WEIGHTS_FILE) as tmp:
        tmp.write_bytes(buffer.getvalue())
    write_json(dict(config), folder / CONFIG_FILE)
    return folder


def read_config(folder: str | Path) -> dict:
    """Read and check ``config.json`` of a model folder."""
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: model config not found; train the model first (dvc repro train)")
    try:
        config = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path}: unreadable JSON ({err}); retrain the model") from None
    _check_config(config, str(path))
    return config


def load_model(folder: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild a saved classifier from its folder.

    Parameters
    ----------
    folder : a folder written by :func:`save_model`
    device : where to put the model

    Returns
    -------
    (model in eval mode on ``device``, config dict)

    Raises
    ------
    FileNotFoundError
        The folder, ``config.json`` or ``model.pt`` is missing.
    CheckpointError
        A file is corrupt or truncated, or the weights do not fit the configured architecture.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: model folder not found; train the model first (dvc repro train)")
    config = read_config(folder)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise FileNotFoundError(f"{weights}: model weights not found; retrain the model")
    try:
        state = torch.load(weights, map_location=device, weights_only=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile) as err:
        raise CheckpointError(f"{weights}: unreadable or truncated checkpoint ({err}); retrain the model") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{weights}: expected a state dict, got {type(state).__name__}")
    try:
        model = build(config["arch"], config["num_classes"], config["in_channels"], config["image_size"])
    except ValueError as err:
        raise CheckpointError(f"{folder / CONFIG_FILE}: {err}") from None
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise CheckpointError(
            f"{weights}: weights do not match architecture {config['arch']!r} of {folder / CONFIG_FILE}: {err}"
        ) from None
    return model.to(device).eval(), config
