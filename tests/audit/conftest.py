"""Fixtures of the factor-audit tests; the synthetic digits and models live in ``synthetic.py``."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from torch import nn

_spec = importlib.util.spec_from_file_location("audit_synthetic", Path(__file__).with_name("synthetic.py"))
synthetic = importlib.util.module_from_spec(_spec)
sys.modules["audit_synthetic"] = synthetic
_spec.loader.exec_module(synthetic)

from audit_synthetic import (  # noqa: E402
    BackgroundColourModel,
    ConstantModel,
    DigitColourModel,
    digit_sample,
)

from shortcut_audit.factors.scene import Scene  # noqa: E402


@pytest.fixture()
def bg_model() -> nn.Module:
    return BackgroundColourModel()


@pytest.fixture()
def digit_colour_model() -> nn.Module:
    return DigitColourModel()


@pytest.fixture()
def constant_model() -> nn.Module:
    return ConstantModel()


@pytest.fixture()
def heldout() -> Scene:
    """32 synthetic digits with uniform factors (the role of test_unbiased)."""
    return digit_sample(32, aligned=False, seed=0)


@pytest.fixture()
def aligned() -> Scene:
    """64 synthetic digits with every factor at its class-linked value (test_aligned at p = 1)."""
    return digit_sample(64, aligned=True, seed=1)
