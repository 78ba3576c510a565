"""Report context: verdict matrix, generated findings, optional sections."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from shortcut_audit.report import findings
from shortcut_audit.report.artefacts import load
from shortcut_audit.report.context import (
    _failed_expectations,
    biased_labels,
    budget_notes,
    build_context,
    imagenet_section,
    reproduction_notes,
)
from shortcut_audit.report.matrix import build_matrix


def _section(ctx, section_id):
    return next((s for s in ctx.sections if s.id == section_id), None)


def _verdicts(fx, seed: int = 0):
    verdicts = fx.verdict_table(fx.morris_table())
    return verdicts[verdicts["seed"] == seed].reset_index(drop=True)


def test_matrix_layout_follows_levels_factors_and_params_order(fx):
    verdicts = _verdicts(fx)
    matrix = build_matrix(verdicts, params_archs=["mlp", "simple_cnn"], threshold=fx.DROP_THRESHOLD)
    assert [r.dataset_id for r in matrix.rows] == ["p0.1", "p0.5", "p0.9", "bg_color-p0.9"]
    assert matrix.factors == list(fx.FACTORS)
    assert matrix.archs == ["mlp", "simple_cnn"]
    assert matrix.n_cells == len(verdicts) and matrix.n_models == 8
    assert matrix.n_relied == int((verdicts["state"] == "relied_on").sum())
    # cells are factor-major: (digit_color, mlp) is the first cell of a row
    p09 = matrix.rows[2]
    mlp_digit = verdicts[
        (verdicts.dataset_id == "p0.9") & (verdicts.arch == "mlp") & (verdicts.factor == "digit_color")
    ].iloc[0]
    cell = p09.cells[0]
    assert (
        cell.state == "relied_on"
        and cell.css == "relied"
        and cell.drop == mlp_digit["drop"]
        and cell.mu_star == mlp_digit["mu_star"]
    )
    assert cell.drop_points == f"{100 * mlp_digit['drop']:.0f}"
    assert cell.interval_points == f"{100 * mlp_digit['ci_low']:.0f}\u2013{100 * mlp_digit['ci_high']:.0f}"


def test_matrix_marks_inconclusive_screen_disagreement_and_seed_dependence(fx, report_tree):
    from shortcut_audit.report.context import _seed_notes

    art = load(report_tree)
    matrix = build_matrix(
        _verdicts(fx),
        params_archs=list(fx.ARCHS),
        models=_verdicts_models(art),
        seed_notes=_seed_notes(art.table("seeds")),
    )

    def cell(dataset, arch, factor):
        row = next(r for r in matrix.rows if r.dataset_id == dataset)
        return row.cells[list(fx.FACTORS).index(factor) * len(fx.ARCHS) + list(fx.ARCHS).index(arch)]

    assert cell(*fx.INCONCLUSIVE_CELL).state == "inconclusive" and matrix.n_inconclusive == 1
    assert cell(*fx.SCREEN_DISAGREES).screen_disagrees
    dependent = cell(*fx.SEED_DEPENDENT)
    assert dependent.seed_dependent and "0:relied_on 1:not_relied_on" in dependent.explanation
    assert matrix.rows[2].readings[list(fx.ARCHS).index("mlp")].code == "I"


def _verdicts_models(art):
    models = art.table("audit_models")
    return models[models["seed"] == 0]


def test_an_unknown_state_is_refused(fx):
    verdicts = _verdicts(fx)
    verdicts.loc[0, "state"] = "maybe"
    with pytest.raises(ValueError, match="unknown state 'maybe'"):
        build_matrix(verdicts)


def test_missing_cell_is_none(fx):
    verdicts = _verdicts(fx)
    verdicts = verdicts[~((verdicts.dataset_id == "p0.5") & (verdicts.arch == "mlp"))]
    matrix = build_matrix(verdicts, params_archs=list(fx.ARCHS))
    row = next(r for r in matrix.rows if r.dataset_id == "p0.5")
    assert sum(c is None for c in row.cells) == len(fx.FACTORS)


def test_findings_are_computed_from_the_numbers(fx):
    verdicts = _verdicts(fx)
    by_factor = {f.text.split(" is ")[0]: f for f in findings.factor_findings(verdicts)}
    assert by_factor["Digit colour"].kind == "alert"
    assert "first at p0.5" in by_factor["Digit colour"].text
    position = next(f for f in findings.factor_findings(verdicts) if "position" in f.text.lower())
    assert "inconclusive (training set p0.5)" in position.text

    assert findings.unbiased_findings(verdicts)[0].kind == "ok"
    strongest = findings.strongest_findings(verdicts)[0].text
    top = verdicts.sort_values("drop").iloc[-1]
    assert f"{top['arch']} trained on {top['dataset_id']}" in strongest and "95% interval" in strongest

    screen = findings.screen_findings(fx.screen_document(verdicts))
    assert "AUROC 0.93" in screen[0].text and "threshold is 0.021 (shipped: 0.020)" in screen[0].text
    assert "(local sampling): AUROC 0.97" in screen[1].text


def test_unbiased_reliance_and_inconclusive_cells_are_flagged(fx):
    verdicts = _verdicts(fx)
    hit = (verdicts.p == 0.1) & (verdicts.arch == "mlp") & (verdicts.factor == "bg_color")
    verdicts.loc[hit, "state"] = "inconclusive"
    found = findings.unbiased_findings(verdicts)[0]
    assert found.kind == "alert" and "mlp on background colour (inconclusive" in found.text


def test_easiest_cue_and_seed_findings(fx, report_tree):
    art = load(report_tree)
    morris = art.table("morris")
    cue = findings.easiest_cue_findings(morris[morris["seed"] == 0], "global")[0]
    assert "p = 0.5 to p = 0.9" in cue.text  # the fixture's reliance grows with p: nothing falls
    seeds = findings.seed_findings(art.table("seeds"))[0]
    assert seeds.kind == "alert" and "1 of 24 verdict cells change state across the 2 training seeds" in seeds.text


def test_gate_and_validation_findings(fx):
    gate = findings.gate_findings(fx.gate_result())[0]
    assert gate.kind == "alert" and "1 of 3 checks" in gate.text and "all_suites_pass" in gate.text
    passing = {"status": "pass", "checks": [{"name": "a", "status": "pass"}]}
    assert findings.gate_findings(passing)[0].kind == "ok"

    summary, _ = fx.validation_results()
    assert "3 of 4 validation suites pass; failing: findings" in findings.validation_findings(summary)[0].text
    summary.loc[0, "status"] = "skipped"
    assert "skipped: biased_mnist" in findings.validation_findings(summary)[0].text
    legacy = summary.drop(columns=["status"])
    legacy.loc[1, "evaluated"] = 0
    assert list(findings.suite_statuses(legacy))[:2] == ["pass", "skipped"]


def test_background_trend_and_reproduction_notes(report_tree):
    art = load(report_tree)
    text = findings.background_findings(art.table("pixel_view"))[0].text
    assert " rises " in text and "p = 0.1" in text and "p = 0.9" in text
    notes = reproduction_notes(art)
    assert any(n.startswith("Reproduced: models trained without correlation") for n in notes)
    assert any("order check" in n and "holds for 32 of 32" in n for n in notes)


def test_budget_notes_compare_with_paper_settings(fx):
    notes = budget_notes(fx.PARAMS)
    assert any("Morris trajectories: 4 in this run against 100" in n for n in notes)
    assert not budget_notes({"audit": {"morris": {"n_trajectories": 100}}})


def test_biased_labels():
    labels = biased_labels(
        {"p0.5": ("digit_color", "bg_color", "position"), "bg-p0.9": ("bg_color",)},
        ["digit_color", "bg_color", "position"],
    )
    assert labels == {"p0.5": "all factors biased", "bg-p0.9": "background colour only"}


def test_failed_expectations_are_flattened(fx):
    _, results = fx.validation_results()
    rows = _failed_expectations(results["findings"])
    assert len(rows) == 1
    assert rows[0]["table"] == "verdicts" and rows[0]["check"] == "max share"
    assert rows[0]["expectation"] == "expect_column_max_to_be_between"
    top_level = {"results": results["findings"]["tables"][0]["results"]}
    assert _failed_expectations(top_level)[0]["observed"] == "0.62"
    assert "max_value=0.5" in rows[0]["arguments"] and rows[0]["observed"] == "0.62"
    assert _failed_expectations(results["training"]) == []


def test_every_section_says_what_is_missing_on_an_empty_run(tmp_path):
    ctx = build_context(tmp_path, {})
    assert ctx.summary.matrix is None and ctx.summary.gate is None
    assert any("verdicts.csv: not found" in m for m in ctx.summary.missing)
    for section_id in ("models", "mosip", "pixel", "validation"):
        section = _section(ctx, section_id)
        assert section.missing and not section.figures, section_id
    assert _section(ctx, "imagenet") is None
    assert ctx.notices == ["params.yaml: not found; parameters are unknown."]


def test_schema_mismatch_becomes_a_notice(tmp_path, fx):
    root = fx.write_tree(tmp_path / "run", imagenet=False)
    table = pd.read_csv(root / "data/audit_summary/verdicts.csv").drop(columns=["state"])
    table.to_csv(root / "data/audit_summary/verdicts.csv", index=False)
    art = load(root)
    assert art.table("verdicts") is None
    assert "missing ['state']" in art.problems["verdicts"] and "re-run its stage" in art.problems["verdicts"]


def test_imagenet_section_appears_with_its_tables(tmp_path, fx):
    root = fx.write_tree(tmp_path / "run", validation=False, gate=False)
    section = imagenet_section(load(root))
    assert [t.id for t in section.tables][:3] == [
        "table-imagenet-status",
        "table-imagenet-models",
        "table-imagenet-fidelity",
    ]
    assert not [b for b in section.blocks if b.kind == "missing"]
    extra = pd.DataFrame({"model": ["m"], "novel_metric": [0.5]})
    extra.to_csv(root / "data/imagenet/novel.csv", index=False)
    section = imagenet_section(load(root))
    novel = next(t for t in section.tables if t.id == "table-imagenet-novel")
    assert novel.columns == ["model", "novel metric"] and novel.rows[0][1].text == "0.500"
    shutil.rmtree(root / "data/imagenet")
    assert imagenet_section(load(root)) is None


def test_suite_statuses_read_the_validation_stage_vocabulary():
    import pandas as pd

    from shortcut_audit.report import findings

    summary = pd.DataFrame(
        {
            "suite": ["a", "b", "c", "d"],
            "success": [True, False, True, False],
            "status": ["passed", "failed", "skipped", "error"],
        }
    )
    assert findings.suite_statuses(summary).tolist() == ["pass", "fail", "skipped", "error"]
    text = findings.validation_findings(summary)[0].text
    assert text.startswith("1 of 4 validation suites pass") and "failing: b and d" in text.replace(",", "")
