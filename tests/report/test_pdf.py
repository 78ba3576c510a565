"""The DVC stage end to end: HTML and PDF outputs, PDF text, metadata and attachments."""

from __future__ import annotations

import shutil
import subprocess

import pandas as pd
import pypdf
import pytest

pytestmark = pytest.mark.slow


def _pdftotext(path) -> str:
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed; `make system-deps` installs it")
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout


def test_stage_writes_both_reports_and_nothing_half_written(stage_outputs):
    assert (stage_outputs / "audit.html").stat().st_size > 10_000
    assert (stage_outputs / "audit.pdf").read_bytes()[:5] == b"%PDF-"
    assert not [p.name for p in stage_outputs.iterdir() if p.name.startswith(".tmp-")]


def test_pdf_page_count_and_verdict_table_text(stage_outputs, report_tree, fx):
    reader = pypdf.PdfReader(stage_outputs / "audit.pdf")
    assert 6 <= len(reader.pages) <= 20
    text = _pdftotext(stage_outputs / "audit.pdf")
    first_page = text.split("\f")[0]
    assert "Verdict matrix" in first_page and "Release gate" in first_page and "FAIL" in first_page
    assert all(a in first_page for a in fx.ARCHS) and "bg_color-p0.9" in first_page
    verdicts = pd.read_csv(report_tree / "data/audit_summary/verdicts.csv")
    strongest = verdicts.loc[verdicts["drop"].idxmax()]
    cell = f"{100 * strongest['drop']:.0f} [{100 * strongest['ci_low']:.0f}\u2013{100 * strongest['ci_high']:.0f}]"
    assert "background colour" in first_page and cell in first_page
    assert f"Page 1 of {len(reader.pages)}" in first_page


def test_pdf_metadata_and_attachments(stage_outputs, report_tree):
    html = (stage_outputs / "audit.html").read_text()
    report_id = html.split('<meta name="report-id" content="')[1].split('"')[0]
    reader = pypdf.PdfReader(stage_outputs / "audit.pdf")
    info = reader.metadata
    assert info.title == "Shortcut audit: reliance on spurious features"
    assert info["/reportid"] == report_id and report_id in info.subject
    assert info["/CreationDate"].startswith("D:20231114221320")
    attachments = reader.attachments
    assert set(attachments) == {"params.yaml", "dvc.lock"}
    assert attachments["params.yaml"][0] == (report_tree / "params.yaml").read_bytes()
    assert attachments["dvc.lock"][0] == (report_tree / "dvc.lock").read_bytes()
    assert report_id in _pdftotext(stage_outputs / "audit.pdf").split("\f")[1]


def test_pdf_first_page_renders(stage_outputs, tmp_path):
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed")
    subprocess.run(
        [
            "pdftoppm",
            "-png",
            "-r",
            "40",
            "-f",
            "1",
            "-l",
            "1",
            str(stage_outputs / "audit.pdf"),
            str(tmp_path / "page"),
        ],
        check=True,
    )
    from PIL import Image, ImageStat

    page = Image.open(next(tmp_path.glob("page*.png"))).convert("L")
    assert ImageStat.Stat(page).stddev[0] > 20
