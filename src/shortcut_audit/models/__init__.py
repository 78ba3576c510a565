"""Classifiers: the Biased-MNIST architecture registry and checkpoint files.

``registry`` builds small CNNs/MLPs by name; ``checkpoints`` saves and loads them
as state dicts (``weights_only=True``). Pretrained ImageNet models live in
``imagenet`` and are imported from there directly.
"""

from shortcut_audit.models.checkpoints import CheckpointError, load_model, save_model
from shortcut_audit.models.registry import ARCHITECTURES, build, count_parameters

__all__ = ["ARCHITECTURES", "CheckpointError", "build", "count_parameters", "load_model", "save_model"]
