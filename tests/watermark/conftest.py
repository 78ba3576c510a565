"""Fixtures of the watermark-audit tests; the known-answer classifiers live in ``synthetic.py``."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

import shortcut_audit  # noqa: F401  (the torchvision shim precedes imagenet_w)

pytest.importorskip("imagenet_w")

_spec = importlib.util.spec_from_file_location("watermark_synthetic", Path(__file__).with_name("synthetic.py"))
synthetic = importlib.util.module_from_spec(_spec)
sys.modules["watermark_synthetic"] = synthetic
_spec.loader.exec_module(synthetic)
