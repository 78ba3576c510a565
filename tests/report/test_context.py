"""Report context: verdict matrix, generated findings, optional sections."""
from __future__ import annotations

import shutil

import pandas as pd

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


def test_matrix_layout_follows_levels_factors_and_params_order(fx):
    verdicts = fx.verdict_table(fx.morris_table())
    matrix = build_matrix(verdicts, params_archs=["mlp", "simple_cnn"])
    assert [r.dataset_id for r in matrix.rows] == ["p0.1", "p0.5", "p0.9", "bg_color-p0.9"]
    assert matrix.factors == list(fx.FACTORS)
    assert matrix.archs == ["mlp", "simple_cnn"]
    assert matrix.n_cells == len(verdicts) and matrix.n_models == 8
    # cells are factor-major: (digit_color, mlp) is the first cell of a row
    p09 = matrix.rows[2]
    mlp_digit = verdicts[(verdicts.dataset_id == "p0.9") & (verdicts.arch == "mlp")
                         & (verdicts.factor == "digit_color")].iloc[0]
    assert p09.cells[0].share == mlp_digit.mu_star_share and p09.cells[0].state == "relied"


def test_matrix_marks_the_disputed_cell(fx):
    verdicts = fx.verdict_table(fx.morris_table())
    matrix = build_matrix(verdicts, params_archs=list(fx.ARCHS))
    dataset, arch, factor = fx.DISAGREEING_CELL
    row = next(r for r in matrix.rows if r.dataset_id == dataset)
    cell = row.cells[list(fx.FACTORS).index(factor) * len(fx.ARCHS) + list(fx.ARCHS).index(arch)]
    assert cell.state == "morris-only" and cell.disputed
    assert matrix.n_disputed == int((~verdicts["agree"]).sum())


def test_missing_cell_is_none(fx):
    verdicts = fx.verdict_table(fx.morris_table())
    verdicts = verdicts[~((verdicts.dataset_id == "p0.5") & (verdicts.arch == "mlp"))]
    matrix = build_matrix(verdicts, params_archs=list(fx.ARCHS))
    row = next(r for r in matrix.rows if r.dataset_id == "p0.5")
    assert sum(c is None for c in row.cells) == len(fx.FACTORS)


def test_findings_are_computed_from_the_numbers(fx):
    verdicts = fx.verdict_table(fx.morris_table())
    agree = findings.agreement_findings(verdicts)[0].text
    n_agree = int(verdicts["agree"].sum())
    assert f"agree on {n_agree} of {len(verdicts)}" in agree
    assert "mlp on p0.5 / position" in agree
    disputed = verdicts[~verdicts["agree"]]
    n_morris_only = int(disputed["morris_relied_on"].sum())
    assert f"In {n_morris_only} of the {len(disputed)} disputed cells only Morris" in agree
    assert f"in {len(disputed) - n_morris_only} only the intervention" in agree

    by_factor = {f.text.split(" is ")[0]: f for f in findings.factor_findings(verdicts)}
    assert by_factor["Digit colour"].kind == "alert"
    assert "first at p0.5" in by_factor["Digit colour"].text
    assert any("No model relies on position" in f.text for f in findings.factor_findings(verdicts))

    assert findings.unbiased_findings(verdicts)[0].kind == "ok"
    strongest = findings.strongest_findings(verdicts, None)[0].text
    top = verdicts.sort_values("drop").iloc[-1]
    assert f"{top['arch']} trained on {top['dataset_id']}" in strongest


def test_unbiased_reliance_is_flagged(fx):
    verdicts = fx.verdict_table(fx.morris_table())
    hit = (verdicts.p == 0.1) & (verdicts.arch == "mlp") & (verdicts.factor == "bg_color")
    verdicts.loc[hit, ["morris_relied_on", "intervention_relied_on"]] = True
    found = findings.unbiased_findings(verdicts)[0]
    assert found.kind == "alert" and "mlp on background colour" in found.text


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
    assert findings.reliance_rises(art.table("verdicts")) is True


def test_budget_notes_compare_with_paper_settings(fx):
    notes = budget_notes(fx.PARAMS)
    assert any("Morris trajectories: 4 in this run against 100" in n for n in notes)
    assert not budget_notes({"audit": {"morris": {"n_trajectories": 100}}})


def test_biased_labels():
    labels = biased_labels({"p0.5": ("digit_color", "bg_color", "position"), "bg-p0.9": ("bg_color",)},
                           ["digit_color", "bg_color", "position"])
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
    table = pd.read_csv(root / "data/audit_summary/verdicts.csv").drop(columns=["agree"])
    table.to_csv(root / "data/audit_summary/verdicts.csv", index=False)
    art = load(root)
    assert art.table("verdicts") is None
    assert "lacks column(s) agree" in art.problems["verdicts"]


def test_imagenet_section_appears_with_its_tables(tmp_path, fx):
    root = fx.write_tree(tmp_path / "run", validation=False, gate=False)
    section = imagenet_section(load(root))
    assert [t.id for t in section.tables][:3] == ["table-imagenet-status", "table-imagenet-models",
                                                  "table-imagenet-fidelity"]
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

    summary = pd.DataFrame({"suite": ["a", "b", "c", "d"], "success": [True, False, True, False],
                            "status": ["passed", "failed", "skipped", "error"]})
    assert findings.suite_statuses(summary).tolist() == ["pass", "fail", "skipped", "error"]
    text = findings.validation_findings(summary)[0].text
    assert text.startswith("1 of 4 validation suites pass") and "failing: b and d" in text.replace(",", "")
