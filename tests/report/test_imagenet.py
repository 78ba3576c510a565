"""The ImageNet section: its tables, figures and captions from the stage's tables, and a
notice in place of each part whose table is missing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tinyhtml5
from scipy import stats

from shortcut_audit.report.build import render_html
from shortcut_audit.report.context import build_context
from shortcut_audit.report.imagenet_section import (
    convergence_table,
    ensembles_table,
    fidelity_summary_table,
    fidelity_table,
    imagenet_section,
    interaction_shares,
    masking_findings,
    masking_table,
    overlap_findings,
    overlap_summary,
    table_1_findings,
    white_box_table,
)

NS = "{http://www.w3.org/1999/xhtml}"
FIGURES = {
    "fig-imagenet-curves": "deletion curve fall early",
    "fig-imagenet-convergence": "cheaper to trust",
    "fig-imagenet-overlap": "reference architecture (efficientnet_lite0)",
    "fig-imagenet-ratio": "Global analysis",
    "fig-imagenet-interactions": "D_x + D_y > D_xy",
    "fig-imagenet-masking-local": "MoSIP Figs. 4 and 9",
    "fig-imagenet-masking-global": "MoSIP Fig. 10",
    "fig-imagenet-ensemble-size": "best single method",
    "fig-imagenet-gallery": "each column one method",
}
TABLES = (
    "table-imagenet-status",
    "table-imagenet-models",
    "table-imagenet-fidelity",
    "table-imagenet-white-box",
    "table-imagenet-fidelity-vs-random-efficientnet-lite0",
    "table-imagenet-convergence",
    "table-imagenet-overlap",
    "table-imagenet-interactions",
    "table-imagenet-score-interactions",
    "table-imagenet-masking",
    "table-imagenet-ensembles-efficientnet-lite0",
    "table-imagenet-profile",
)


def _imagenet(html: str):
    tree = tinyhtml5.parse(html)
    return next(s for s in tree.iter(NS + "section") if s.get("id") == "imagenet")


def _text(element) -> str:
    return "".join(element.itertext())


def _by_id(element, tag: str) -> dict:
    return {e.get("id"): e for e in element.iter(NS + tag)}


def test_section_shows_every_figure_with_its_caption(report_html):
    section = _imagenet(report_html)
    figures = _by_id(section, "figure")
    assert set(FIGURES) <= set(figures)
    for fig_id, phrase in FIGURES.items():
        caption = _text(figures[fig_id].find(NS + "figcaption"))
        assert phrase in caption, fig_id
    gallery = figures["fig-imagenet-gallery"].find(f".//{NS}img")
    assert gallery.get("src").startswith("data:image/png;base64,")
    assert "Inputs not available" not in _text(section)


def test_section_tables_and_headings(report_html, fx):
    section = _imagenet(report_html)
    tables = _by_id(section, "table")
    assert set(TABLES) <= set(tables)
    status = _text(tables["table-imagenet-status"])
    assert fx.IMAGENET_SKIPPED in status and "skipped" in status and "no local weights" in status
    assert fx.IMAGENET_SKIPPED not in _text(tables["table-imagenet-models"])
    headings = [_text(h) for h in section.iter(NS + "h3")]
    assert headings[:6] == [
        "Models",
        "Fidelity of the attribution methods",
        "Cross-architecture analyses",
        "Region masking",
        "Ensembles of explanations",
        "Example heatmaps",
    ]
    findings = _text(next(e for e in section.iter(NS + "ul") if e.get("class") == "findings"))
    assert "Sobol's mean deletion AUC is 0.155, lower than rise 0.195, occlusion 0.235" in findings


def test_fidelity_table_has_arrows_and_marks_the_best(fx):
    tables = fx.imagenet_tables()
    table = fidelity_table(tables["fidelity"], list(fx.IMAGENET_METHODS), "sobol", tables["fidelity_summary"])
    assert table.columns[2:6] == ["deletion AUC \u2193", "insertion AUC \u2191", "nAOPC \u2191", "images"]
    methods = [row[1].text for row in table.rows]
    assert methods == [*fx.IMAGENET_METHODS, "random", "constant"]  # the reference maps as rows of their own
    best = {
        table.columns[j]: methods[i]
        for i, row in enumerate(table.rows)
        for j, cell in enumerate(row)
        if "best" in cell.css
    }
    assert best["deletion AUC \u2193"] == "sobol" and best["insertion AUC \u2191"] == "sobol"
    assert table.rows[0][2].text == "0.155"  # the sobol protocol only (the region rows are 0.3 higher)
    assert "Protocol: sobol (pixel-wise" in table.caption and "decided" in table.caption
    assert table.columns[-1] == "beats random" and table.rows[-1][-1].text == ""


def test_fidelity_vs_random_table_flags_each_protocol(fx):
    tables = fx.imagenet_tables()
    table = fidelity_summary_table(tables["fidelity_summary"], fx.IMAGENET_MODELS[0], list(fx.IMAGENET_METHODS), 0.95)
    assert [(row[0].text, row[1].text) for row in table.rows][:2] == [("sobol", "sobol"), ("sobol", "rise")]
    assert len(table.rows) == 2 * (len(fx.IMAGENET_METHODS) + 2)
    verdicts = {(row[0].text, row[1].text): row[3].text for row in table.rows}  # deletion AUC vs random
    assert verdicts[("sobol", "random")] == "reference"
    assert verdicts[("sobol", "sobol")] == "better" and "status-better" in table.rows[0][3].css
    assert "95% Student-t interval" in table.caption and "region: region-wise, 6x6 cells" in table.caption


def test_table_1_sentence_is_computed_from_the_data(fx):
    ensembles = fx.imagenet_tables()["ensembles"]
    model = fx.IMAGENET_MODELS[0]
    agree = table_1_findings(ensembles, model)[0]
    assert "agrees with the paper on all three" in agree.text and agree.kind == "ok"
    assert "ranks UCB 1/4 on insertion" in agree.text and "CI 4/4 and 4/4" in agree.text
    swapped = ensembles.copy()
    z_ci = (swapped["normalisation"] == "z") & (swapped["aggregation"] == "ci")
    swapped.loc[z_ci, ["deletion_auc", "insertion_auc"]] = [0.01, 0.99]  # CI now best on both
    disagree = table_1_findings(swapped, model)[0]
    assert "does not reproduce: UCB best on insertion, CI worst on insertion, CI worst on deletion" in disagree.text
    assert disagree.kind == "alert"


def test_white_box_table_has_one_column_per_white_box_map(fx):
    # GEEX paper, Fig. 3: every black-box map against SmoothGrad and Integrated Gradients (and the gradient)
    table = white_box_table(fx.imagenet_tables()["fidelity"], list(fx.IMAGENET_METHODS))
    assert table.columns[2:5] == ["gradient \u2193", "SmoothGrad \u2193", "Integrated Gradients \u2193"]
    assert [row[1].text for row in table.rows] == ["rise", "geex"]
    assert all("best" in cell.css for cell in table.rows[1][2:5])
    assert table.rows[1][3].text == "0.255"  # mean of 0.25 and 0.26 over the two images


def test_convergence_table_reports_mean_variance_and_the_papers_values(fx):
    convergence = fx.imagenet_tables()["convergence"]
    convergence = convergence.assign(forwards=convergence["forwards"].where(convergence["budget"] != 200, 1000))
    table = convergence_table(convergence, list(fx.IMAGENET_METHODS))
    assert table.columns == [
        "model",
        "method",
        "reference",
        "budget",
        "forwards / image",
        "images",
        "mean Spearman \u2191",
        "variance",
        "Sobol paper",
    ]
    rows = {(row[1].text, row[3].text): [cell.text for cell in row[4:]] for row in table.rows}
    assert rows[("sobol", "200")] == ["1000", "2", "0.700", "0", "0.800"]
    assert rows[("rise", "200")][-1] == "0.650" and rows[("rise", "50")][-1] == ""


def test_ensemble_table_has_table_one_shape(fx):
    table = ensembles_table(fx.imagenet_tables()["ensembles"], fx.IMAGENET_MODELS[0])
    assert [row[0].text for row in table.rows] == ["mean", "ucb", "ci", "rbm"]
    assert [row[1].text for row in table.rows][1] == "eps=-0.5"  # the Table 1 setting
    assert table.columns[2:] == ["linear del. \u2193", "linear ins. \u2191", "z del. \u2193", "z ins. \u2191"]
    assert "best" in table.rows[2][2].css and "beats-base" in table.rows[2][2].css  # linear CI, deletion 0.12
    assert "best" in table.rows[1][5].css  # z UCB, insertion 0.72
    assert "best single method scores deletion 0.150 and insertion 0.700" in table.caption
    assert "random map deletion 0.300 [0.280, 0.320]" in table.caption


def test_interaction_shares_per_model(fx):
    shares = interaction_shares(fx.imagenet_tables()["interactions"]).set_index("model")
    lite0, lite1 = fx.IMAGENET_MODELS
    # lite0: drops (0.5, 0.5 | 0, 0.5): D_x + D_y > D_xy for the pairs with a odd -> (1, 2), (1, 3)
    assert shares.loc[lite0, "pairs"] == 3 and shares.loc[lite0, "interacting"] == 2
    assert abs(shares.loc[lite1, "share"] - 1 / 3) < 1e-9 and shares.loc[lite1, "images"] == 2


def test_overlap_summary_interval_and_findings_from_the_data(fx):
    overlap = fx.imagenet_tables()["overlap"]
    summary = overlap_summary(overlap)
    row = summary[summary["statistic"] == "mu_star"].iloc[0]
    shares = overlap.loc[overlap["statistic"] == "mu_star", "overlap_share"].to_numpy()
    half = stats.t.ppf(0.975, len(shares) - 1) * shares.std(ddof=1) / np.sqrt(len(shares))
    assert row["overlap_share"] == pytest.approx(shares.mean())
    assert row["share_high"] == pytest.approx(min(1.0, shares.mean() + half))
    # only the image with a differing region enters the differing mean
    assert row["mu_star_differing"] == pytest.approx(0.5) and row["reference_sigma_overlapping"] == 1.0
    text = [f.text for f in overlap_findings(overlap, summary)]
    assert "alexnet (MoSIP: AlexNet), was not loaded" in text[0] and "efficientnet_lite0 stands in" in text[0]
    assert any("mean sigma is 1.750, higher than efficientnet_lite0's 1 on the same regions" in t for t in text)
    lower = overlap.assign(sigma_overlapping=0.5)
    assert any("lower than" in f.text for f in overlap_findings(lower, overlap_summary(lower)))


def test_masking_table_and_findings_read_the_curves(fx):
    masking = fx.imagenet_tables()["masking"]
    table = masking_table(masking)
    assert "own clean top-1" in table.caption and "clean accuracy is 1 by construction" in table.caption
    assert len(table.rows) == 2 * 2 * 3  # model x scope x ranking
    found = masking_findings(masking)
    assert len(found) == 4 and all(f.kind == "ok" for f in found)  # drops of 80% and 60% beat the 20% masked
    assert "drops accuracy by 80% on 2 correctly predicted images" in found[0].text
    weak = masking.assign(accuracy=masking["accuracy"].where(masking["which"] == "least", 0.9))
    assert all(f.kind == "alert" for f in masking_findings(weak))


def test_masking_findings_flag_a_ranking_that_does_not_beat_a_random_map(fx):
    masking = fx.imagenet_tables()["masking"]
    mu_star = masking[masking["ranking"] == "mu_star"]
    as_good = pd.concat([masking, mu_star.assign(ranking="random")], ignore_index=True)
    found = masking_findings(as_good)
    assert len(found) == 4 and all(f.kind == "alert" and "does not beat chance" in f.text for f in found)
    harmless = pd.concat([masking, mu_star.assign(ranking="random", accuracy=1.0)], ignore_index=True)
    found = masking_findings(harmless)
    assert all(f.kind == "ok" and "random map's ranking drops it by 0%, so mu* beats chance" in f.text for f in found)
    table = masking_table(harmless)
    assert len(table.rows) == 2 * 2 * 4 and "chance level" in table.caption


def test_missing_tables_give_notices_and_the_rest_renders(tmp_path, fx):
    root = fx.write_tree(tmp_path / "run", validation=False, gate=False)
    for name in ("convergence", "ensembles"):
        (root / "data/imagenet" / f"{name}.csv").unlink()
    (root / "data/imagenet/maps.npz").unlink()
    table = root / "data/imagenet/overlap.csv"
    table.write_text(table.read_text().replace("overlap_share", "share", 1))
    section = imagenet_section(root, None, list(fx.IMAGENET_METHODS))
    notices = [m for b in section.blocks if b.kind == "missing" for m in b.item]
    assert any("convergence.csv: not found" in n for n in notices)
    assert any("ensembles.csv: not found" in n for n in notices)
    assert any("overlap.csv: unreadable" in n and "missing ['overlap_share']" in n for n in notices)
    assert any("maps.npz" in n for n in notices)
    ids = {f.id for f in section.figures}
    assert "fig-imagenet-curves" in ids and "fig-imagenet-ratio" in ids
    assert not ids & {"fig-imagenet-convergence", "fig-imagenet-overlap", "fig-imagenet-gallery"}
    html = render_html(build_context(root, {"SOURCE_DATE_EPOCH": "1700000000"}))
    assert "convergence.csv: not found" in _text(_imagenet(html))


def test_only_models_table_present(tmp_path, fx):
    root = tmp_path / "run"
    (root / "data/imagenet").mkdir(parents=True)
    fx.imagenet_tables()["models"].to_csv(root / "data/imagenet/models.csv", index=False)
    section = imagenet_section(root)
    assert [t.id for t in section.tables] == ["table-imagenet-status", "table-imagenet-models"]
    assert not section.figures
    assert sum(len(b.item) for b in section.blocks if b.kind == "missing") >= 8
