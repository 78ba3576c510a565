"""``shortcut-audit gate``: the release gate that CI runs after the pipeline.

The gate reads the validation summary, the training summary and the audit summary,
checks the candidate model(s) named in ``params.yaml`` (``gate`` section) against the
release thresholds and writes ``gate.json``::

    {"status": "pass" | "fail" | "error", "exit_code": 0 | 1 | 2,
     "checks": [{"name", "value", "threshold", "status", "detail"}, ...]}

Exit code 0 = every check passes, 1 = a check fails, 2 = the gate could not be
evaluated (missing or unreadable inputs, invalid params): never a pass. A check's
``status`` is ``pass``, ``fail``, ``warn`` (a failing suite when
``require_all_suites`` is false), ``skip`` (a suite skipped for an absent optional
input) or ``error`` (its input is missing). Any ``error`` makes the gate ``error``;
otherwise any ``fail`` makes it ``fail``.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from shortcut_audit.config import ParamError, load_params, require
from shortcut_audit.io import write_json

MODELS_CSV = Path("data/train_summary/models.csv")
MORRIS_CSV = Path("data/audit_summary/morris.csv")
VERDICTS_CSV = Path("data/audit_summary/verdicts.csv")
SUMMARY_CSV = Path("data/validation/summary.csv")
EXIT_CODES = {"pass": 0, "fail": 1, "error": 2}
_MORRIS_OUTPUTS = ("normalised_mean", "true_class_prob")
_KNOWN_FACTORS = ("digit_color", "bg_color", "position")


@dataclass(frozen=True)
class Candidate:
    dataset_id: str
    arch: str

    @property
    def name(self) -> str:
        return f"{self.dataset_id}/{self.arch}"


@dataclass(frozen=True)
class GateCheck:
    """One row of ``gate.json``."""

    name: str
    value: Any
    threshold: Any
    status: str
    detail: str = ""


@dataclass(frozen=True)
class GateSettings:
    """The ``gate`` section of ``params.yaml``, validated."""

    candidates: tuple[Candidate, ...]
    morris_output: str
    max_mu_star_share: dict[str, float]
    min_unbiased_accuracy: float
    max_aligned_conflicting_gap: float
    forbidden_reliance: tuple[str, ...]
    require_all_suites: bool
    regression_tolerance: float
    advisory_suites: tuple[str, ...] = ()

    @classmethod
    def from_params(cls, params: dict) -> "GateSettings":
        """Validate the ``gate`` section; raise :class:`ParamError` naming the bad key."""
        raw = require(params, "gate.candidates", list, lambda v: len(v) > 0, "a non-empty list of {dataset_id, arch}")
        candidates = []
        for i, item in enumerate(raw):
            if not (isinstance(item, dict) and set(item) == {"dataset_id", "arch"}
                    and all(isinstance(v, str) and v for v in item.values())):
                raise ParamError(f"gate.candidates[{i}]", f"expected {{dataset_id: <id>, arch: <name>}}, got {item!r}")
            candidates.append(Candidate(item["dataset_id"], item["arch"]))
        shares = require(params, "gate.max_mu_star_share", dict, lambda v: len(v) > 0, "a mapping factor -> max share")
        for factor in shares:
            if factor not in _KNOWN_FACTORS:
                raise ParamError(f"gate.max_mu_star_share.{factor}", f"unknown factor; known: {', '.join(_KNOWN_FACTORS)}")
            require(params, f"gate.max_mu_star_share.{factor}", float, lambda v: 0 <= v <= 1, "a share in [0, 1]")
        forbidden = require(params, "gate.forbidden_reliance", list,
                            lambda v: all(f in _KNOWN_FACTORS for f in v), f"a list of factors among {list(_KNOWN_FACTORS)}")
        fraction = (float, lambda v: 0 <= v <= 1, "a number in [0, 1]")
        from shortcut_audit.validation.suites import SUITES

        return cls(
            candidates=tuple(candidates),
            morris_output=require(params, "gate.morris_output", str, lambda v: v in _MORRIS_OUTPUTS, " or ".join(_MORRIS_OUTPUTS)),
            max_mu_star_share={f: float(v) for f, v in shares.items()},
            min_unbiased_accuracy=require(params, "gate.min_unbiased_accuracy", *fraction),
            max_aligned_conflicting_gap=require(params, "gate.max_aligned_conflicting_gap", *fraction),
            forbidden_reliance=tuple(forbidden),
            require_all_suites=require(params, "gate.require_all_suites", bool),
            regression_tolerance=require(params, "gate.regression_tolerance", *fraction),
            advisory_suites=tuple(require(
                params, "gate.advisory_suites", list, lambda v: all(x in SUITES for x in v),
                f"a list of suites among {list(SUITES)}", default=[])),
        )


# --------------------------------------------------------------------------- checks

def bound_check(name: str, value: Any, threshold: float, upper: bool) -> GateCheck:
    """``value <= threshold`` (``upper``) or ``value >= threshold``; a non-finite value fails."""
    op = "<=" if upper else ">="
    try:
        number = float(value)
    except (TypeError, ValueError):
        return GateCheck(name, None, threshold, "fail", f"value {value!r} is not a number")
    if not math.isfinite(number):
        return GateCheck(name, None, threshold, "fail", f"value is not finite ({number})")
    ok = number <= threshold if upper else number >= threshold
    return GateCheck(name, round(number, 6), threshold, "pass" if ok else "fail", f"must be {op} {threshold:g}")


def suite_checks(summary: pd.DataFrame, expected: Sequence[str], require_all: bool,
                 advisory: Sequence[str] = ()) -> list[GateCheck]:
    """One check per validation suite; an expected suite absent from the summary is an error.

    A failing suite fails the gate, unless ``require_all`` is false or the suite is
    ``advisory`` (then it is a ``warn``: shown everywhere, not blocking). Advisory
    suites are meant for sweep-level findings about the audit itself (e.g. agreement
    of its two verdicts over every model), as opposed to checks of the candidate.
    """
    rows = {str(r.suite): r for r in summary.itertuples(index=False)}
    out = []
    for suite in [*expected, *[s for s in rows if s not in expected]]:
        name = f"suite:{suite}"
        if suite not in rows:
            out.append(GateCheck(name, None, "passed", "error", "suite missing from the validation summary"))
            continue
        row = rows[suite]
        blocking = require_all and suite not in advisory
        status = {"passed": "pass", "skipped": "skip", "error": "error"}.get(row.status, "fail" if blocking else "warn")
        detail = str(row.reason) if row.status in ("skipped", "error") else str(row.failed_expectations)
        out.append(GateCheck(name, str(row.status), "passed", status, detail))
    return out


def _candidate_rows(frame: pd.DataFrame, candidate: Candidate) -> pd.DataFrame:
    return frame[(frame["dataset_id"].astype(str) == candidate.dataset_id) & (frame["arch"].astype(str) == candidate.arch)]


def candidate_metrics(models: pd.DataFrame, morris: pd.DataFrame, candidate: Candidate, output: str) -> dict[str, float] | None:
    """The gated metrics of one candidate (None when it has no training row):
    ``unbiased_acc``, ``aligned_conflicting_gap`` and ``mu_star_share[<factor>]``."""
    row = _candidate_rows(models, candidate)
    if row.empty:
        return None
    metrics = {"unbiased_acc": row["unbiased_acc"].iloc[0], "aligned_conflicting_gap": row["aligned_conflicting_gap"].iloc[0]}
    shares = _candidate_rows(morris, candidate)
    shares = shares[shares["output"] == output]
    metrics.update({f"mu_star_share[{f}]": v for f, v in zip(shares["factor"], shares["mu_star_share"])})
    return metrics


def candidate_checks(models: pd.DataFrame, morris: pd.DataFrame, verdicts: pd.DataFrame, candidate: Candidate,
                     settings: GateSettings) -> list[GateCheck]:
    """Thresholds of one candidate: accuracy, gap, mu* share per factor, no forbidden reliance."""
    prefix = candidate.name
    metrics = candidate_metrics(models, morris, candidate, settings.morris_output)
    if metrics is None:
        return [GateCheck(f"{prefix}: model", None, None, "error", f"candidate {prefix} has no row in {MODELS_CSV}")]
    out = [
        bound_check(f"{prefix}: unbiased_acc", metrics["unbiased_acc"], settings.min_unbiased_accuracy, upper=False),
        bound_check(f"{prefix}: aligned_conflicting_gap", metrics["aligned_conflicting_gap"],
                    settings.max_aligned_conflicting_gap, upper=True),
    ]
    for factor, limit in settings.max_mu_star_share.items():
        key = f"mu_star_share[{factor}]"
        if key not in metrics:
            out.append(GateCheck(f"{prefix}: {key}", None, limit, "error",
                                 f"no {settings.morris_output} row for factor {factor} in {MORRIS_CSV}"))
        else:
            out.append(bound_check(f"{prefix}: {key}", metrics[key], limit, upper=True))
    rows = _candidate_rows(verdicts, candidate)
    for factor in settings.forbidden_reliance:
        verdict = rows[rows["factor"] == factor]
        name = f"{prefix}: relies on {factor}"
        if verdict.empty:
            out.append(GateCheck(name, None, False, "error", f"no verdict for factor {factor} in {VERDICTS_CSV}"))
            continue
        morris_says, intervention_says = (_as_bool(verdict[c].iloc[0]) for c in ("morris_relied_on", "intervention_relied_on"))
        relied = morris_says or intervention_says
        out.append(GateCheck(name, relied, False, "fail" if relied else "pass",
                             f"Morris verdict {morris_says}, intervention verdict {intervention_says}"))
    return out


def _as_bool(value: Any) -> bool:
    """A verdict cell as read from CSV (bool, or the text True/False)."""
    return value is True or str(value).strip().lower() in ("true", "1")


def overall_status(checks: Sequence[GateCheck]) -> str:
    statuses = {c.status for c in checks}
    return "error" if "error" in statuses else ("fail" if "fail" in statuses else "pass")


# --------------------------------------------------------------------------- inputs and output

def _missing_inputs(paths: Sequence[Path]) -> list[str]:
    return [str(p) for p in paths if not p.is_file()]


def _read_inputs(root: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    from shortcut_audit.validation.suites import read_summary

    summary = read_summary(root / SUMMARY_CSV)
    models, morris, verdicts = (pd.read_csv(root / p) for p in (MODELS_CSV, MORRIS_CSV, VERDICTS_CSV))
    for path, frame, columns in (
        (MODELS_CSV, models, ("dataset_id", "arch", "unbiased_acc", "aligned_conflicting_gap")),
        (MORRIS_CSV, morris, ("dataset_id", "arch", "factor", "output", "mu_star_share")),
        (VERDICTS_CSV, verdicts, ("dataset_id", "arch", "factor", "morris_relied_on", "intervention_relied_on")),
    ):
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ValueError(f"{path}: missing column(s) {missing}")
    return summary, models, morris, verdicts


def evaluate(settings: GateSettings, root: Path = Path("."), baseline: str | None = None) -> list[GateCheck]:
    """All gate checks over the pipeline outputs under ``root``.

    Missing or unreadable inputs yield a single ``error`` check naming them.
    """
    from shortcut_audit.validation.suites import SUITES

    missing = _missing_inputs([root / p for p in (SUMMARY_CSV, MODELS_CSV, MORRIS_CSV, VERDICTS_CSV)])
    if missing:
        return [GateCheck("inputs", None, None, "error", "missing input(s): " + ", ".join(missing))]
    try:
        summary, models, morris, verdicts = _read_inputs(root)
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        return [GateCheck("inputs", None, None, "error", f"unreadable input: {err}")]
    checks = suite_checks(summary, list(SUITES), settings.require_all_suites, settings.advisory_suites)
    for candidate in settings.candidates:
        checks += candidate_checks(models, morris, verdicts, candidate, settings)
    if baseline is not None:
        from shortcut_audit.validation.regression import regression_checks

        checks += regression_checks(settings, models, morris, baseline, root)
    return checks


def gate_document(checks: Sequence[GateCheck]) -> dict:
    status = overall_status(checks)
    return {"status": status, "exit_code": EXIT_CODES[status], "checks": [asdict(c) for c in checks]}


def format_summary(document: dict, max_lines: int = 22) -> str:
    """A one-screen summary: verdict line, then problem checks first, passes last."""
    checks = document["checks"]
    counts = {s: sum(c["status"] == s for c in checks) for s in ("pass", "fail", "warn", "skip", "error")}
    head = (f"release gate: {document['status'].upper()} (exit {document['exit_code']}) - "
            + ", ".join(f"{n} {s}" for s, n in counts.items() if n))
    order = {"error": 0, "fail": 1, "warn": 2, "skip": 3, "pass": 4}
    lines = []
    for c in sorted(checks, key=lambda c: order[c["status"]]):
        value = "-" if c["value"] is None else (f"{c['value']:.4g}" if isinstance(c["value"], float) else str(c["value"]))
        detail = c["detail"] if len(c["detail"]) <= 70 else c["detail"][:67] + "..."
        lines.append(f"  {c['status'].upper():<5} {c['name']:<46} {value:<9} {detail}")
    if len(lines) > max_lines:
        lines = lines[:max_lines] + [f"  ... {len(lines) - max_lines} more in gate.json"]
    return "\n".join([head, *lines])


def main(argv: Sequence[str] | None = None) -> int:
    """``shortcut-audit gate``; returns the exit code (0 pass, 1 fail, 2 could not evaluate)."""
    parser = argparse.ArgumentParser(prog="shortcut-audit gate", description="Evaluate the release gate.")
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    parser.add_argument("--output", default="reports/gate.json", help="where to write gate.json (default: reports/gate.json)")
    parser.add_argument("--baseline", metavar="REV", help="git revision whose metrics the candidates must not regress from")
    parser.add_argument("--exit-zero", action="store_true", help="record the status but exit 0 (lets the report render)")
    args = parser.parse_args(argv)
    try:
        settings = GateSettings.from_params(load_params(args.params))
    except (ParamError, FileNotFoundError) as err:
        print(f"shortcut-audit gate: could not evaluate: {err}", file=sys.stderr)
        return 2
    document = gate_document(evaluate(settings, Path("."), args.baseline))
    write_json(document, args.output)
    try:
        print(format_summary(document), flush=True)
    except BrokenPipeError:  # stdout piped into e.g. `head`: the exit code still carries the verdict
        sys.stdout = open(os.devnull, "w")
    if document["status"] == "error":
        problems = [c["detail"] for c in document["checks"] if c["status"] == "error"]
        print("shortcut-audit gate: could not evaluate: " + "; ".join(problems), file=sys.stderr)
    return 0 if args.exit_zero else document["exit_code"]
