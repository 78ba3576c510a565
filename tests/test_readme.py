"""The README's worked example of a custom factor runs as written.

The Python and YAML blocks are read from ``README.md`` itself, so the example cannot
drift from the code: the function is saved as ``my_factors.py``, the YAML is merged
into the default ``params.yaml``, and the factor goes through the same registry and
params check every stage uses, then through the Biased-MNIST scene the audit renders.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from shortcut_audit.factors import factor_registry
from shortcut_audit.params_schema import check_known_keys

ROOT = Path(__file__).resolve().parents[1]


def _blocks(language: str) -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    pattern = rf"^(?P<indent>[ \t]*)```{language}\n(?P<body>.*?)^(?P=indent)```"
    blocks = []
    for match in re.finditer(pattern, text, flags=re.MULTILINE | re.DOTALL):
        indent = len(match.group("indent"))
        blocks.append("\n".join(line[indent:] for line in match.group("body").splitlines()))
    return blocks


@pytest.fixture()
def example(tmp_path):
    """(params with the README's factors section, the folder holding my_factors.py)."""
    code = [b for b in _blocks("python") if b.startswith("# my_factors.py")]
    config = [b for b in _blocks("yaml") if b.startswith("factors:")]
    assert len(code) == 1 and len(config) == 1, "README must hold one my_factors.py block and one factors: block"
    (tmp_path / "my_factors.py").write_text(code[0], encoding="utf-8")
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    snippet = yaml.safe_load(config[0])
    params["factors"] = snippet["factors"]
    params["audit"]["factors"] = snippet["audit"]["factors"]
    return params, tmp_path


def test_the_readme_factor_is_accepted_by_the_params_check_and_the_registry(example):
    params, root = example
    check_known_keys(params)
    registry = factor_registry(params, root=root)
    assert "red_border" in registry.factors
    factor = registry.factors["red_border"]
    assert list(factor.domain.levels) == ["none", "thin", "thick"]
    for name in params["audit"]["factors"]:
        assert name in registry.factors


def test_the_readme_factor_paints_the_frame_it_promises(example):
    params, root = example
    applier = factor_registry(params, root=root).appliers["red_border"]
    assert applier is not None
    images = torch.full((3, 3, 16, 16), 0.5)
    levels = torch.tensor([0, 1, 2])
    out = applier.apply(images, {"red_border": levels}).numpy()
    assert np.array_equal(out[0], images[0].numpy())  # none: untouched
    red = np.array([1.0, 0.0, 0.0])[:, None]
    for index, width in ((1, 2), (2, 4)):
        frame = np.zeros((16, 16), dtype=bool)
        frame[:width, :] = frame[-width:, :] = frame[:, :width] = frame[:, -width:] = True
        assert np.array_equal(out[index][:, frame], np.broadcast_to(red, (3, int(frame.sum()))))
        assert np.all(out[index][:, ~frame] == 0.5)
