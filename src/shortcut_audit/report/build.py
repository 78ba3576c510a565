"""Render the audit report as HTML (Jinja2, autoescaped) and PDF (WeasyPrint).

``shortcut-audit report`` builds ``reports/audit.html`` and ``reports/audit.pdf`` from
the artefacts under the repository root. The HTML is self-contained (inline CSS,
JavaScript, SVG and PNG; no network resource). With ``SOURCE_DATE_EPOCH`` set, the
same inputs give byte-identical HTML; the PDF carries the report id, title and
creation date as metadata and has ``params.yaml`` and ``dvc.lock`` attached.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import jinja2
from markupsafe import Markup

from shortcut_audit.io import atomic_path
from shortcut_audit.report.context import ReportContext, build_context

LOG = logging.getLogger(__name__)
ATTACHED_FILES = ("params.yaml", "dvc.lock")


@dataclass(frozen=True)
class BuildResult:
    report_id: str
    html: Path
    pdf: Path | None
    seconds: float


def _static(name: str) -> str:
    return resources.files("shortcut_audit.report").joinpath("static", name).read_text(encoding="utf8")


def breakable(text) -> Markup:
    """Escape ``text`` and allow line breaks after underscores (long identifiers in narrow
    table headers)."""
    return Markup.escape(str(text)).replace("_", Markup("_<wbr>"))


def environment() -> jinja2.Environment:
    """The Jinja2 environment of the report templates (autoescape on, undefined is an error)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("shortcut_audit.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=False,
        lstrip_blocks=False,
        keep_trailing_newline=True,
    )
    env.filters["breakable"] = breakable
    return env


def render_html(ctx: ReportContext, for_print: bool = False) -> str:
    """Render the report page; ``for_print`` drops the script and viewport (PDF input)."""
    template = environment().get_template("report.html.j2")
    return template.render(
        title=ctx.title,
        prov=ctx.provenance,
        summary=ctx.summary,
        sections=ctx.sections,
        notices=ctx.notices,
        for_print=for_print,
        css=Markup(_static("report.css")),
        js=Markup(_static("sort.js")),
    )


def _attachments(root: Path, ctx: ReportContext) -> list:
    from weasyprint import Attachment

    created = ctx.provenance.created
    found = []
    for name in ATTACHED_FILES:
        path = root / name
        if path.is_file():
            found.append(
                Attachment(
                    string=path.read_bytes(),
                    name=name,
                    description=f"{name} of this run",
                    created=created,
                    modified=created,
                )
            )
        else:
            LOG.warning("report: %s not found, not attached to the PDF", name)
    return found


@contextlib.contextmanager
def _quiet(logger_names: tuple[str, ...] = ("weasyprint", "fontTools")):
    """Silence the renderer's progress messages and its notes on screen-only CSS."""
    loggers = [logging.getLogger(name) for name in logger_names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def render_pdf(ctx: ReportContext, root: Path) -> bytes:
    """Render the print version of the report to PDF bytes with metadata and attachments."""
    with _quiet():
        import weasyprint

        html = weasyprint.HTML(string=render_html(ctx, for_print=True), base_url=str(root))
        return html.write_pdf(
            attachments=_attachments(root, ctx),
            custom_metadata=True,
            pdf_identifier=ctx.provenance.report_id.encode("ascii"),
        )


def build(root: Path, html_path: Path, pdf_path: Path | None, environ: dict | None = None) -> BuildResult:
    """Build the report of the run under ``root``; each output file is written atomically.

    Parameters
    ----------
    root : Path
        Repository root holding ``params.yaml``, ``dvc.lock``, ``data/`` and ``reports/``.
    html_path, pdf_path : Path
        Output files; ``pdf_path=None`` skips the PDF.
    environ : dict, optional
        Environment to read ``SOURCE_DATE_EPOCH`` from (default: the process environment).
    """
    start = time.perf_counter()
    root = Path(root)
    ctx = build_context(root, environ)
    html = render_html(ctx)
    pdf = render_pdf(ctx, root) if pdf_path is not None else None
    with atomic_path(html_path) as tmp:
        tmp.write_text(html, encoding="utf8")
    if pdf is not None and pdf_path is not None:
        with atomic_path(pdf_path) as tmp:
            tmp.write_bytes(pdf)
    return BuildResult(
        ctx.provenance.report_id, Path(html_path), pdf_path and Path(pdf_path), time.perf_counter() - start
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="shortcut-audit report", description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=Path("."), help="repository root (default: .)")
    parser.add_argument("--html", type=Path, default=Path("reports/audit.html"), help="HTML output")
    parser.add_argument("--pdf", type=Path, default=Path("reports/audit.pdf"), help="PDF output")
    parser.add_argument("--no-pdf", action="store_true", help="render the HTML only")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``shortcut-audit report``; returns the exit code."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parse_args(argv)
    result = build(args.root, args.html, None if args.no_pdf else args.pdf)
    outputs = ", ".join(str(p) for p in (result.html, result.pdf) if p is not None)
    print(f"report {result.report_id}: {outputs} ({result.seconds:.1f} s)")
    return 0
