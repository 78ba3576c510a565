"""``shortcut-audit gate``: the release gate that CI runs after the pipeline.

The gate reads the validation summary, the training summary and the audit summary,
checks the candidate model(s) named in ``params.yaml`` (``gate`` section) against the
release thresholds and writes ``gate.json``::

    {"status": "pass" | "fail" | "error", "exit_code": 0 | 1 | 2,
     "checks": [{"name", "value", "threshold", "status", "detail"}, ...]}

Exit code 0 = every check passes, 1 = a check fails, 2 = the gate could not be
evaluated (missing or unreadable inputs, invalid params): never a pass. A check's
``status`` is ``pass``, ``fail``, ``warn`` (a failing suite when
``require_all_suites`` is false or the suite is advisory, or an inconclusive verdict on a
forbidden factor under ``gate.inconclusive: warn``), ``skip`` (a suite skipped for an absent optional
input) or ``error`` (its input is missing or cannot be trusted). Any ``error`` makes
the gate ``error``; otherwise any ``fail`` makes it ``fail``.

The gate fails closed. The inputs are read with their declared column types
(:mod:`shortcut_audit.schema`); a file cut mid-row or a value that does not
parse makes the gate ``error``. So does every gated value that is missing, NaN or
infinite, a verdict state outside ``relied_on``/``not_relied_on``/``inconclusive``, a suite status outside
:data:`SUITE_STATUSES`, and a candidate, factor row or suite that appears more than
once (which row would be the truth?). Each such error names the file, row and column.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from shortcut_audit.config import ParamError, load_params
from shortcut_audit.io import ArtefactError, write_json
from shortcut_audit.validation.gate_inputs import (
    INPUT_COLUMNS,
    MODELS_CSV,
    MORRIS_CSV,
    SUITE_STATUSES,
    SUMMARY_CSV,
    VERDICT_STATES,
    VERDICTS_CSV,
    Candidate,
    GateCheck,
    GateSettings,
    _candidate_mask,
    bound_check,
    candidate_metrics,
    gated_number,
    read_input,
    the_row,
)

EXIT_CODES = {"pass": 0, "fail": 1, "error": 2}

# --------------------------------------------------------------------------- checks


def suite_checks(
    summary: pd.DataFrame,
    expected: Sequence[str],
    require_all: bool,
    advisory: Sequence[str] = (),
    path: str | Path = SUMMARY_CSV,
) -> list[GateCheck]:
    """One check per validation suite; an expected suite absent from the summary is an error.

    A failing suite fails the gate, unless ``require_all`` is false or the suite is
    ``advisory`` (then it is a ``warn``: shown everywhere, not blocking). Advisory
    suites are meant for sweep-level findings about the audit itself (e.g. agreement
    of its two verdicts over every model), as opposed to checks of the candidate.
    A suite listed twice, a blank suite name or a status outside
    :data:`SUITE_STATUSES` is an error naming the row.
    """
    names = [str(s) for s in summary["suite"]]
    out = []
    for index, name in enumerate(names):
        if not name.strip():
            out.append(
                GateCheck(
                    "suite:<blank>",
                    None,
                    "passed",
                    "error",
                    str(ArtefactError(path, "blank suite name", row=index + 1, column="suite")),
                )
            )
    seen = [n for n in dict.fromkeys(names) if n.strip()]
    for suite in [*expected, *[s for s in seen if s not in expected]]:
        name = f"suite:{suite}"
        try:
            found = the_row(summary, path, f"suite {suite!r}", summary["suite"].astype(str) == suite)
        except ArtefactError as err:
            out.append(GateCheck(name, None, "passed", "error", str(err)))
            continue
        if found is None:
            out.append(GateCheck(name, None, "passed", "error", "suite missing from the validation summary"))
            continue
        row = summary.loc[found]
        if row["status"] not in SUITE_STATUSES:
            problem = ArtefactError(
                path,
                f"status {row['status']!r} is not one of {', '.join(SUITE_STATUSES)}",
                row=found + 1,
                column="status",
            )
            out.append(GateCheck(name, str(row["status"]), "passed", "error", str(problem)))
            continue
        blocking = require_all and suite not in advisory
        status = {"passed": "pass", "skipped": "skip", "error": "error"}.get(
            row["status"], "fail" if blocking else "warn"
        )
        detail = str(row["reason"]) if row["status"] in ("skipped", "error") else str(row["failed_expectations"])
        out.append(GateCheck(name, str(row["status"]), "passed", status, detail))
    return out


def candidate_checks(
    models: pd.DataFrame,
    morris: pd.DataFrame,
    verdicts: pd.DataFrame,
    candidate: Candidate,
    settings: GateSettings,
    paths: tuple[str | Path, ...] = (MODELS_CSV, MORRIS_CSV, VERDICTS_CSV),
) -> list[GateCheck]:
    """Thresholds of one candidate: accuracy, gap, mu* share per factor, no forbidden reliance."""
    prefix = candidate.name
    models_path, morris_path, verdicts_path = paths
    found = candidate_metrics(
        models, morris, candidate, settings.morris_output, (models_path, morris_path), settings.morris_sampling
    )
    if found is None:
        return [GateCheck(f"{prefix}: model", None, None, "error", f"candidate {prefix} has no row in {models_path}")]
    metrics, problems = found
    bounds = [
        ("unbiased_acc", settings.min_unbiased_accuracy, False),
        ("aligned_conflicting_gap", settings.max_aligned_conflicting_gap, True),
        *((f"mu_star_share[{f}]", limit, True) for f, limit in settings.max_mu_star_share.items()),
    ]
    out = []
    for metric, limit, upper in bounds:
        name = f"{prefix}: {metric}"
        if metric in problems:
            out.append(GateCheck(name, None, limit, "error", problems[metric]))
        elif metric not in metrics:
            factor = metric[len("mu_star_share[") : -1]
            out.append(
                GateCheck(
                    name, None, limit, "error", f"no {settings.morris_output} row for factor {factor} in {morris_path}"
                )
            )
        else:
            out.append(bound_check(name, metrics[metric], limit, upper=upper))
    rows = _candidate_mask(verdicts, candidate)
    for factor in settings.forbidden_reliance:
        out.append(reliance_check(verdicts, verdicts_path, rows, prefix, factor, settings.inconclusive))
    return out


def reliance_check(
    verdicts: pd.DataFrame, path: str | Path, rows: pd.Series, prefix: str, factor: str, inconclusive: str
) -> GateCheck:
    """The interventional verdict of a forbidden factor: ``relied_on`` fails, ``not_relied_on`` passes,
    ``inconclusive`` fails or warns by ``gate.inconclusive``; anything else cannot be evaluated."""
    name = f"{prefix}: relies on {factor}"
    try:
        index = the_row(verdicts, path, f"{prefix} factor {factor}", rows & (verdicts["factor"].astype(str) == factor))
        if index is None:
            return GateCheck(name, None, "not_relied_on", "error", f"no verdict for factor {factor} in {path}")
        state = verdicts.at[index, "state"]
        if state not in VERDICT_STATES:
            raise ArtefactError(
                path, f"verdict {state!r} is not one of {', '.join(VERDICT_STATES)}", row=index + 1, column="state"
            )
        drop, low, high = (gated_number(verdicts, path, index, c) for c in ("drop", "ci_low", "ci_high"))
    except ArtefactError as err:
        return GateCheck(name, None, "not_relied_on", "error", str(err))
    numbers = f"Shapley drop {drop:.3f}, 95% interval [{low:.3f}, {high:.3f}]"
    if state == "relied_on":
        return GateCheck(name, state, "not_relied_on", "fail", f"relied on: {numbers}")
    if state == "not_relied_on":
        return GateCheck(name, state, "not_relied_on", "pass", f"not relied on: {numbers}")
    return GateCheck(
        name,
        state,
        "not_relied_on",
        inconclusive,
        f"inconclusive: {numbers} straddles the threshold even at the largest budget; "
        f"gate.inconclusive = {inconclusive}",
    )


def overall_status(checks: Sequence[GateCheck]) -> str:
    statuses = {c.status for c in checks}
    return "error" if "error" in statuses else ("fail" if "fail" in statuses else "pass")


# --------------------------------------------------------------------------- inputs and output


def _missing_inputs(paths: Sequence[Path]) -> list[str]:
    return [str(p) for p in paths if not p.is_file()]


def evaluate(settings: GateSettings, root: Path = Path("."), baseline: str | None = None) -> list[GateCheck]:
    """All gate checks over the pipeline outputs under ``root``.

    Missing or unreadable inputs yield one ``error`` check naming each of them.
    """
    from shortcut_audit.validation.suites import SUITES

    paths = {rel: root / rel for rel in INPUT_COLUMNS}
    missing = _missing_inputs(list(paths.values()))
    if missing:
        return [GateCheck("inputs", None, None, "error", "missing input(s): " + ", ".join(missing))]
    frames, unreadable = {}, []
    for rel, path in paths.items():
        try:
            frames[rel] = read_input(path, INPUT_COLUMNS[rel])
        except (ValueError, OSError) as err:  # ArtefactError is a ValueError
            unreadable.append(f"{err}")
    if unreadable:
        return [GateCheck("inputs", None, None, "error", "unreadable input: " + "; ".join(unreadable))]
    summary, models, morris, verdicts = (frames[rel] for rel in (SUMMARY_CSV, MODELS_CSV, MORRIS_CSV, VERDICTS_CSV))
    checks = suite_checks(
        summary, list(SUITES), settings.require_all_suites, settings.advisory_suites, paths[SUMMARY_CSV]
    )
    for candidate in settings.candidates:
        checks += candidate_checks(
            models, morris, verdicts, candidate, settings, (paths[MODELS_CSV], paths[MORRIS_CSV], paths[VERDICTS_CSV])
        )
    if settings.imagenet is not None:
        from shortcut_audit.validation.watermark_checks import imagenet_gate_checks

        checks += imagenet_gate_checks(settings.imagenet, root)
    if baseline is not None:
        from shortcut_audit.validation.regression import regression_checks

        checks += regression_checks(settings, models, morris, baseline, root)
    return checks


def gate_document(checks: Sequence[GateCheck]) -> dict:
    status = overall_status(checks)
    return {"status": status, "exit_code": EXIT_CODES[status], "checks": [asdict(c) for c in checks]}


CHECK_STATUSES = ("pass", "fail", "warn", "skip", "error")


def status_counts(document: dict) -> dict[str, int]:
    """Number of checks in each status (``pass``, ``fail``, ``warn``, ``skip``, ``error``)."""
    return {s: sum(c["status"] == s for c in document["checks"]) for s in CHECK_STATUSES}


def headline_metrics(document: dict) -> dict:
    """The gate's DVC metric: status and how many checks fail or cannot be evaluated.

    The checks themselves stay in gate.json; this file is small so that ``dvc metrics
    show`` and ``dvc exp show`` fit a screen.
    """
    counts = status_counts(document)
    return {"status": document["status"], "checks": {s: counts[s] for s in ("fail", "error")}}


def format_summary(document: dict, max_lines: int = 22) -> str:
    """A one-screen summary: verdict line, then problem checks first, passes last."""
    checks = document["checks"]
    counts = status_counts(document)
    head = f"release gate: {document['status'].upper()} (exit {document['exit_code']}) - " + ", ".join(
        f"{n} {s}" for s, n in counts.items() if n
    )
    order = {"error": 0, "fail": 1, "warn": 2, "skip": 3, "pass": 4}
    lines = []
    for c in sorted(checks, key=lambda c: order[c["status"]]):
        value = (
            "-" if c["value"] is None else (f"{c['value']:.4g}" if isinstance(c["value"], float) else str(c["value"]))
        )
        detail = c["detail"] if len(c["detail"]) <= 70 else c["detail"][:67] + "..."
        lines.append(f"  {c['status'].upper():<5} {c['name']:<46} {value:<9} {detail}")
    if len(lines) > max_lines:
        lines = lines[:max_lines] + [f"  ... {len(lines) - max_lines} more in gate.json"]
    return "\n".join([head, *lines])


def main(argv: Sequence[str] | None = None) -> int:
    """``shortcut-audit gate``; returns the exit code (0 pass, 1 fail, 2 could not evaluate)."""
    parser = argparse.ArgumentParser(prog="shortcut-audit gate", description="Evaluate the release gate.")
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    parser.add_argument(
        "--output", default="reports/gate.json", help="where to write gate.json (default: reports/gate.json)"
    )
    parser.add_argument(
        "--baseline", metavar="REV", help="git revision whose metrics the candidates must not regress from"
    )
    parser.add_argument(
        "--metrics",
        metavar="PATH",
        help="also write the headline (status, exit code, check counts) for `dvc metrics show`",
    )
    parser.add_argument(
        "--exit-zero", action="store_true", help="record the status but exit 0 (lets the report render)"
    )
    args = parser.parse_args(argv)
    try:
        settings = GateSettings.from_params(load_params(args.params))
    except (ParamError, FileNotFoundError) as err:
        print(f"shortcut-audit gate: could not evaluate: {err}", file=sys.stderr)
        return 2
    document = gate_document(evaluate(settings, Path("."), args.baseline))
    write_json(document, args.output)
    if args.metrics:
        write_json(headline_metrics(document), args.metrics)
    try:
        print(format_summary(document), flush=True)
    except BrokenPipeError:  # stdout piped into e.g. `head`: the exit code still carries the verdict
        sys.stdout = open(os.devnull, "w")
    if document["status"] == "error":
        problems = [c["detail"] for c in document["checks"] if c["status"] == "error"]
        print("shortcut-audit gate: could not evaluate: " + "; ".join(problems), file=sys.stderr)
    return 0 if args.exit_zero else document["exit_code"]
