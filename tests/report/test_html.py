"""The rendered HTML: structure, verdict matrix, report id, escaping, self-containment,
reproducibility."""

from __future__ import annotations

import re

import tinyhtml5

from shortcut_audit.report.build import build, render_html
from shortcut_audit.report.context import build_context

NS = "{http://www.w3.org/1999/xhtml}"


def _find(tree, tag, **attrs):
    for element in tree.iter(NS + tag):
        if all(element.get(k) == v for k, v in attrs.items()):
            yield element


def _text(element) -> str:
    return "".join(element.itertext())


def test_html_parses_and_has_the_verdict_matrix(report_html, report_context, fx):
    tree = tinyhtml5.parse(report_html)
    matrix = next(_find(tree, "table", id="verdict-matrix"))
    body_rows = list(matrix.find(NS + "tbody"))
    levels = [_text(r.find(NS + "th")) for r in body_rows]
    assert len(levels) == len(fx.DATASETS)
    assert levels[0].startswith("p0.1") and levels[-1].startswith("bg_color-p0.9")
    cells = [td for r in body_rows for td in r.findall(NS + "td")]
    # one cell per factor and architecture, then one interaction reading per architecture
    assert len(cells) == len(fx.DATASETS) * len(fx.ARCHS) * (len(fx.FACTORS) + 1)
    states = {c.get("class").split()[1] for c in cells}
    assert {"v-relied", "v-not", "v-inconclusive", "v-reading"} <= states
    marks = {c.get("class") for c in cells}
    assert any("screen-disagrees" in m for m in marks) and any("seed-dependent" in m for m in marks)
    header = _text(matrix.find(NS + "thead"))
    assert all(a in header for a in fx.ARCHS) and "background colour" in header


def test_report_id_in_meta_header_and_provenance(report_html, report_context):
    tree = tinyhtml5.parse(report_html)
    rid = report_context.provenance.report_id
    assert next(_find(tree, "meta", name="report-id")).get("content") == rid
    assert _text(next(_find(tree, "span", id="report-id"))) == rid
    assert next(_find(tree, "meta", name="dcterms.created")).get("content") == "2023-11-14T22:13:20Z"
    provenance = _text(next(_find(tree, "table", id="table-provenance")))
    assert rid in provenance


def test_hostile_strings_are_escaped(report_html, fx):
    assert fx.HOSTILE not in report_html
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    # params dump, gate detail, validation summary and failing expectation, ImageNet table
    assert report_html.count(escaped) >= 5
    assert len(re.findall(r"<script\b", report_html)) == 1


def test_html_is_self_contained(report_html):
    assert not re.search(r'(?:src|href)="(?:https?:)?//', report_html)
    assert "<link" not in report_html and "@import" not in report_html
    for src in re.findall(r'<img[^>]+src="([^"]+)"', report_html):
        assert src.startswith("data:image/")


def test_every_figure_has_a_caption_and_sections_are_present(report_html):
    tree = tinyhtml5.parse(report_html)
    figures = list(_find(tree, "figure"))
    assert len(figures) >= 6
    for figure in figures:
        caption = figure.find(NS + "figcaption")
        assert caption is not None and len(_text(caption)) > 60
    ids = {s.get("id") for s in tree.iter(NS + "section")}
    assert {"summary", "data", "models", "mosip", "pixel", "imagenet", "validation", "provenance", "method"} <= ids
    sortable = [t for t in tree.iter(NS + "table") if "sortable" in (t.get("class") or "")]
    assert len(sortable) >= 5


def test_same_inputs_and_epoch_give_identical_html(report_tree, report_html):
    again = render_html(build_context(report_tree, {"SOURCE_DATE_EPOCH": "1700000000"}))
    assert again == report_html


def test_empty_run_renders_with_notices(tmp_path):
    html_path = tmp_path / "out" / "audit.html"
    result = build(tmp_path, html_path, None, {})
    html = html_path.read_text()
    assert result.pdf is None and result.report_id in html
    assert "Inputs not available" in html and "NOT RUN" in html
    assert 'id="verdict-matrix"' not in html
    tinyhtml5.parse(html)
