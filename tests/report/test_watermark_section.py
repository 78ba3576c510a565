"""The watermark section: its content follows the stage's tables, and a missing table becomes a notice."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest

from shortcut_audit.report.tables import format_number
from shortcut_audit.report.watermark_section import aspects_frame, shortcut_findings, shortcut_frame, watermark_section

_spec = importlib.util.spec_from_file_location(
    "watermark_synthetic", Path(__file__).resolve().parents[1] / "watermark" / "synthetic.py"
)
if "watermark_synthetic" not in sys.modules:
    sys.modules["watermark_synthetic"] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules["watermark_synthetic"])
synthetic = sys.modules["watermark_synthetic"]


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    pytest.importorskip("imagenet_w")
    monkeypatch = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("watermark_report")
    try:
        synthetic.tiny_watermark_run(root, monkeypatch)
    finally:
        monkeypatch.undo()
    return root


def _copy(tree: Path, tmp_path: Path) -> Path:
    shutil.copytree(tree / "data", tmp_path / "data")
    return tmp_path


def _findings(section) -> list[str]:
    return [f.text for b in section.blocks if b.kind == "findings" for f in b.item]


def test_the_section_has_every_part(tree):
    section = watermark_section(tree)
    ids = [t.id for t in section.tables]
    model = synthetic.TINY_MODEL
    assert ids[0] == "table-watermark-shortcut" and "table-watermark-aspects" in ids
    assert any(i.startswith("table-watermark-explainers-") for i in ids) and "table-watermark-profile" in ids
    assert [f.id for f in section.figures] == [
        "fig-watermark-heatmap-" + "".join(c if c.isalnum() else "-" for c in model.lower())
    ]
    assert section.figures[0].png.startswith("data:image/png;base64,")
    headings = [b.item for b in section.blocks if b.kind == "heading"]
    assert headings[:3] == [
        "The shortcut across architectures",
        "Do the explainers find the watermark?",
        "Which aspect of the watermark matters",
    ]
    assert not [b for b in section.blocks if b.kind == "missing"]


def test_the_wording_follows_the_data(tree, tmp_path):
    root = _copy(tree, tmp_path)
    path = root / "data" / "watermark" / "verdicts.csv"
    verdicts = pd.read_csv(path)
    for state, ci_low, ci_high, phrase in (
        ("relied_on", 0.25, 1.0, "relies on the watermark"),
        ("not_relied_on", 0.0, 0.05, "does not rely on the watermark"),
        ("inconclusive", 0.0, 0.5, "is inconclusive about"),
    ):
        verdicts.assign(state=state, ci_low=ci_low, ci_high=ci_high, drop=ci_low).to_csv(path, index=False)
        text = " ".join(_findings(watermark_section(root)))
        assert f"{synthetic.TINY_MODEL} {phrase}" in text
        assert f"95% interval [{format_number(ci_low)}, {format_number(ci_high)}]" in text


def test_the_shortcut_frame_reads_each_models_effects():
    effects = pd.DataFrame(
        [
            {
                "model": "a",
                "target_kind": "true",
                "statistic": s,
                "value": v,
                "ci_low": v - 0.1,
                "ci_high": v + 0.1,
                "n_images": 50,
            }
            for s, v in (
                ("carton_gap", 0.3),
                ("top1_change_rate", 0.4),
                ("carton_logit_shift", 2.0),
                ("accuracy_drop", 0.25),
            )
        ]
    )
    verdicts = pd.DataFrame(
        [
            {
                "model": "a",
                "target_kind": "true",
                "factor": "watermark",
                "state": "relied_on",
                "drop": 0.3,
                "ci_low": 0.2,
                "ci_high": 0.4,
                "threshold": 0.1,
                "statistic": "accuracy_drop",
                "n_items": 50,
            }
        ]
    )
    frame = shortcut_frame(effects, verdicts)
    assert frame.loc[0, "carton_gap"] == 0.3 and frame.loc[0, "accuracy_drop_ci"] == "[0.150, 0.350]"
    text = shortcut_findings(frame)[0].text
    assert "+30.0 points" in text and "falls by 25.0 points" in text and "images it classifies correctly" in text


def test_the_aspect_reading_follows_sigma_over_mu_star():
    morris = pd.DataFrame(
        [
            {
                "model": "a",
                "target_kind": "predicted",
                "factor": f,
                "output": "class_478_prob",
                "mu": 0.0,
                "mu_star": m,
                "sigma": r * m,
                "sigma_over_mu_star": r,
            }
            for f, m, r in (
                ("watermark_opacity", 0.2, 0.3),
                ("watermark_y", 0.1, 0.7),
                ("watermark_text", 0.05, 1.5),
                ("border", 0.001, 0.2),
            )
        ]
    )
    readings = dict(zip(aspects_frame(morris)["factor"], aspects_frame(morris)["reading"]))
    assert readings == {
        "watermark_opacity": "steady",
        "watermark_y": "varies with the others",
        "watermark_text": "interaction or non-linearity",
        "border": "no effect",
    }


def test_a_missing_table_becomes_a_notice(tree, tmp_path):
    root = _copy(tree, tmp_path)
    (root / "data" / "watermark" / "explainer_summary.csv").unlink()
    section = watermark_section(root)
    missing = [m for b in section.blocks if b.kind == "missing" for m in b.item]
    assert any("explainer_summary.csv" in m for m in missing)
    assert "table-watermark-shortcut" in [t.id for t in section.tables]
    assert watermark_section(tmp_path / "nothing") is None
