"""One registry of factors: built-ins plus the user's functions named in params."""

from __future__ import annotations

import textwrap

import pytest
import torch

from shortcut_audit.config import ParamError
from shortcut_audit.factors import FactorError, builtin_registry, factor_registry

BORDER = textwrap.dedent("""
    import torch

    WIDTHS = (0, 2, 4)  # level index -> frame width in pixels

    def red_border(images, level):
        out = images.clone()
        for k in level.unique().tolist():
            w = WIDTHS[k]
            if w > 0:
                rows = level == k
                frame = torch.ones(out.shape[-2:], dtype=torch.bool)
                frame[w:-w, w:-w] = False
                red = torch.tensor([1.0, 0.0, 0.0])[:, None, None]
                out[rows] = torch.where(frame, red, out[rows])
        return out
""")


@pytest.fixture()
def border_file(tmp_path):
    (tmp_path / "my_factors.py").write_text(BORDER)
    return tmp_path


def test_builtin_factors_are_the_renderers():
    registry = builtin_registry()
    assert registry.renderer_names == ("digit_color", "bg_color", "position")
    assert registry.display_name("bg_color") == "background colour"


def test_a_user_factor_is_one_function_named_in_params(border_file):
    params = {
        "factors": {
            "red_border": {
                "function": "my_factors.py:red_border",
                "levels": ["none", "thin", "thick"],
                "intervention": ["thick"],
                "description": "a red frame",
            }
        }
    }
    registry = factor_registry(params, root=border_file)
    assert "red_border" in registry.names
    (group,) = registry.image_factors(["digit_color", "red_border"])
    images = group.apply(torch.zeros(2, 3, 8, 8), {"red_border": torch.tensor([0, 1])})
    assert float(images[0].sum()) == 0.0 and float(images[1, 0, 0, 0]) == 1.0
    assert registry.factor("red_border").intervention == (2.0,)


@pytest.mark.parametrize(
    "spec, key, message",
    [
        ({"function": "my_factors.py:red_border"}, "factors.red_border", "either levels"),
        ({"function": "my_factors.py:nothing", "levels": ["a"]}, "factors.red_border", "has no function 'nothing'"),
        ({"function": "missing.py:f", "levels": ["a"]}, "factors.red_border", "not found"),
        (
            {"function": "my_factors.py:red_border", "levels": ["a"], "colour": 1},
            "factors.red_border.colour",
            "unknown key",
        ),
        ({"function": "my_factors.py:red_border", "range": [1.0]}, "factors.red_border.range", r"\[low, high\]"),
        ({"levels": ["a"]}, "factors.red_border.function", "missing"),
    ],
)
def test_bad_user_factors_name_their_key(border_file, spec, key, message):
    with pytest.raises(ParamError, match=rf"{key}: .*{message}"):
        factor_registry({"factors": {"red_border": spec}}, root=border_file)


def test_a_user_factor_cannot_shadow_a_builtin(border_file):
    with pytest.raises(ParamError, match="built-in"):
        factor_registry(
            {"factors": {"bg_color": {"function": "my_factors.py:red_border", "levels": ["a"]}}}, root=border_file
        )


def test_unknown_names_get_a_suggestion():
    with pytest.raises(ParamError, match=r"audit.factors: unknown factor 'bg_colour' \(did you mean 'bg_color'\?\)"):
        builtin_registry().check(["bg_colour"], key="audit.factors")
    with pytest.raises(FactorError, match="listed twice"):
        builtin_registry().check(["position", "position"])
