"""Factors: named properties of an image that the audit can set, and scenes that render them.

:mod:`.base` defines the interface (a :class:`Factor` with its domain, and the
:class:`ImageFactor` function that applies values to images), :mod:`.scene` the
samples of digits or photos rendered under chosen values, :mod:`.registry` the one
registry of built-in and user-defined factors; :mod:`.biased_mnist` and
:mod:`.watermark` hold the built-in factors.
"""

from shortcut_audit.factors.base import Categorical, Continuous, Factor, FactorError, ImageFactor, image_factor
from shortcut_audit.factors.registry import FactorRegistry, builtin_registry, factor_registry
from shortcut_audit.factors.scene import ProbabilityReader, Scene, digit_scene, image_scene

__all__ = [
    "Categorical",
    "Continuous",
    "Factor",
    "FactorError",
    "FactorRegistry",
    "ImageFactor",
    "ProbabilityReader",
    "Scene",
    "builtin_registry",
    "digit_scene",
    "factor_registry",
    "image_factor",
    "image_scene",
]
