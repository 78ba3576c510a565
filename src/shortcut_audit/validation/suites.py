"""Great Expectations suites over every artefact of the pipeline, and ``shortcut-audit validate``.

One suite per artefact kind (:data:`SUITES`). A suite builder reads its inputs under
``data/``, derives small tables where a property spans many rows (linked rates per
split, presence of every model of the sweep, reliance across correlation levels) and
returns the tables with their checks; :func:`run_suites` validates them with GX.

Outcome of a suite (``status``): ``passed``, ``failed``, ``skipped`` (an optional input
is absent; the reason is recorded, it never counts as a pass) or ``error`` (a required
input is missing or unreadable: a CSV cut mid-row or holding a value that does not
parse as its declared type, a truncated ``.npz``; the reason names the file).

CSV inputs are read with their declared column types (:mod:`shortcut_audit.artefact_dtypes`),
so a text column that happens to be empty in every row is text, not NaN. Folder
listings skip the temporary siblings an interrupted stage may leave
(:func:`shortcut_audit.io.visible`). Results go to ``<output>/<suite>.json`` (the full GX
result: every expectation, its observed value and unexpected examples) and
``<output>/summary.csv`` with columns :data:`SUMMARY_COLUMNS`.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from shortcut_audit.artefact_dtypes import read_artefact
from shortcut_audit.config import ParamError, load_params
from shortcut_audit.io import ArtefactError, atomic_dir, load_npz, visible, write_json, write_table
from shortcut_audit.validation import checks as C
from shortcut_audit.validation.derived import (
    FACTOR_LEVELS,
    FACTOR_TABLE_COLUMNS,
    N_CLASSES,
    SPLITS,
    array_stats,
    label_share_table,
    linked_rate_table,
    linked_values,
    morris_share_sums,
    presence_table,
    reliance_steps,
)
from shortcut_audit.validation.gx import CheckedTable, validate_tables
from shortcut_audit.validation.settings import ValidationSettings

SUMMARY_COLUMNS = ("suite", "success", "evaluated", "failed", "failed_expectations", "status", "reason")
COLOUR_FACTORS = ("digit_color", "bg_color")
MORRIS_OUTPUTS = ("normalised_mean", "true_class_prob")
MODEL_COLUMNS = (
    "dataset_id", "p", "biased_factors", "arch", "n_params", "val_acc", "unbiased_acc", "aligned_acc",
    *(f"conflicting_acc_{f}" for f in FACTOR_LEVELS), "aligned_conflicting_gap", "epochs", "train_seconds", "device",
)
ACCURACY_COLUMNS = ("val_acc", "unbiased_acc", "aligned_acc", *(f"conflicting_acc_{f}" for f in FACTOR_LEVELS))
MORRIS_COLUMNS = ("dataset_id", "p", "arch", "factor", "output", "mu", "mu_star", "sigma", "mu_star_conf",
                  "mu_star_share", "sigma_over_mu_star")
VERDICT_COLUMNS = ("dataset_id", "arch", "factor", "mu_star_share", "morris_relied_on", "drop",
                   "intervention_relied_on", "agree")
#: Required columns of the audit summary tables (docs/architecture.md).
AUDIT_SUMMARY_COLUMNS = {
    "morris": MORRIS_COLUMNS,
    "verdicts": VERDICT_COLUMNS,
    "interventions": ("dataset_id", "arch", "order", "step", "factor", "accuracy", "ci_low", "ci_high"),
    "single_drop": ("dataset_id", "arch", "factor", "accuracy", "drop", "ci_low", "ci_high"),
    "pixel_view": ("dataset_id", "arch", "image", "label", "background_share", "background_pixel_fraction"),
}
MAP_ARRAYS = ("images", "maps", "digit_mask")
#: Column-name conventions of sensitivity tables: bounds that hold wherever such a column appears.
NON_NEGATIVE = ("mu_star", "sigma", "mu_star_conf", "sigma_over_mu_star", "ci_low", "ci_high")
UNIT_INTERVAL = ("mu_star_share", "accuracy", "drop", "background_share", "background_pixel_fraction", "ci_low", "ci_high")
SOBOL_FIRST = ("S1", "first_order")
SOBOL_TOTAL = ("ST", "total_order")


class SuiteSkipped(Exception):
    """An optional input of the suite is absent; the message says which."""


class MissingInput(Exception):
    """A required input of the suite is missing or unreadable; the message says which."""


@dataclass(frozen=True)
class SuiteOutcome:
    """Status of one suite and its JSON document (see module docstring)."""

    suite: str
    status: str
    evaluated: int = 0
    failed_expectations: tuple[str, ...] = ()
    reason: str = ""
    document: dict = field(default_factory=dict)

    @property
    def success(self) -> bool:
        return self.status == "passed"

    def summary_row(self) -> dict:
        return {"suite": self.suite, "success": self.success, "evaluated": self.evaluated,
                "failed": len(self.failed_expectations), "failed_expectations": "; ".join(self.failed_expectations),
                "status": self.status, "reason": self.reason}


# --------------------------------------------------------------------------- inputs

def _require_file(path: Path) -> Path:
    if not path.is_file():
        raise MissingInput(f"required input {path} is missing")
    return path


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return read_artefact(_require_file(path))
    except (OSError, ValueError) as err:  # ArtefactError is a ValueError and names the row and column
        raise MissingInput(f"{path} is unreadable: {err}") from None


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(_require_file(path))
    except (OSError, ValueError) as err:
        raise MissingInput(f"{path} is unreadable: {err}") from None


def _read_npz(path: Path, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    try:
        return load_npz(path, names)
    except (OSError, ArtefactError) as err:
        raise MissingInput(f"{path} is unreadable: {err}") from None


def _read_npy(path: Path, mmap_mode: str | None = None) -> np.ndarray:
    try:
        return np.load(_require_file(path), mmap_mode=mmap_mode, allow_pickle=False)
    except MissingInput:
        raise
    except Exception as err:  # noqa: BLE001 - a truncated .npy fails in NumPy with errors of many kinds
        raise MissingInput(f"{path} is unreadable: {type(err).__name__}: {err}") from None


def _listed(folder: Path, pattern: str) -> list[Path]:
    """Sorted matches of ``pattern`` below ``folder``, without temporary siblings."""
    return sorted(visible(folder.glob(pattern), folder))


def _keyed(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Copy of ``frame`` with a ``key`` column joining the given id columns that exist."""
    frame = frame.copy()
    present = [c for c in columns if c in frame.columns]
    if present:
        texts = frame[present].apply(lambda column: column.map(lambda v: "" if pd.isna(v) else str(v)))
        frame["key"] = texts.agg("/".join, axis=1)
    else:
        frame["key"] = frame.index.astype(str)
    return frame


# --------------------------------------------------------------------------- mnist

def mnist_suite(data: Path, settings: ValidationSettings) -> list[CheckedTable]:
    """Source MNIST arrays: counts, 28x28 uint8 images, labels 0..9 and their shares."""
    rows, labels = [], {}
    for split in ("train", "test"):
        images = _read_npy(data / "mnist" / f"{split}_images.npy", mmap_mode="r")
        split_labels = _read_npy(data / "mnist" / f"{split}_labels.npy")
        labels[split] = split_labels
        rows.append({
            "key": split, "n_images": images.shape[0] if images.ndim else 0, "expected_n": settings.mnist_counts[split],
            "n_labels": len(split_labels), "image_shape": "x".join(map(str, images.shape[1:])),
            "images_dtype": str(images.dtype), "labels_ndim": split_labels.ndim,
            "labels_min": int(split_labels.min()) if split_labels.size else -1,
            "labels_max": int(split_labels.max()) if split_labels.size else -1,
        })
    arrays = pd.DataFrame(rows)
    low, high = settings.label_share
    return [
        CheckedTable("arrays", arrays, (
            C.pair_equal("arrays", "n_images", "expected_n", "image count as expected"),
            C.pair_equal("arrays", "n_labels", "n_images", "one label per image"),
            C.in_set("arrays", "image_shape", ["28x28"], "images are 28x28"),
            C.in_set("arrays", "images_dtype", ["uint8"], "images are uint8"),
            C.in_set("arrays", "labels_ndim", [1], "labels are a vector"),
            C.between("arrays", "labels_min", 0), C.between("arrays", "labels_max", high=N_CLASSES - 1),
        ), id_columns=("key",)),
        CheckedTable("label_shares", label_share_table(labels), (
            C.between("label_shares", "share", low, high, f"every label's share in [{low:g}, {high:g}]"),
        ), id_columns=("key",)),
    ]




# --------------------------------------------------------------------------- biased mnist

def _factor_tables(data: Path, settings: ValidationSettings) -> dict[tuple[str, str], pd.DataFrame]:
    root = data / "biased_mnist"
    if not root.is_dir():
        raise MissingInput(f"required input {root} is missing")
    return {(spec.dataset_id, split): _read_parquet(root / spec.dataset_id / f"{split}.parquet")
            for spec in settings.datasets for split in SPLITS}


def biased_mnist_suite(data: Path, settings: ValidationSettings) -> list[CheckedTable]:
    """Factor tables: schema, value sets, sizes, label shares and the class-linked rate per
    level, split and factor (biased factors near p, unbiased ones near 1/N)."""
    tables = _factor_tables(data, settings)
    missing = sorted({c for frame in tables.values() for c in FACTOR_TABLE_COLUMNS if c not in frame.columns})
    if missing:
        raise MissingInput(f"{data / 'biased_mnist'}: factor tables lack column(s) {missing}")
    rows = pd.concat(
        [frame.assign(key=f"{d}/{s}", split=s) for (d, s), frame in tables.items()], ignore_index=True
    )
    for factor in FACTOR_LEVELS:
        linked = rows[factor].to_numpy() == linked_values(factor, rows["label"].to_numpy())
        rows[f"{factor}_aligned_consistent"] = linked == rows[f"{factor}_aligned"].to_numpy(dtype=bool)
    source_n = np.where(rows["split"].isin(["train", "val"]), settings.mnist_counts["train"], settings.mnist_counts["test"])
    rows["mnist_index_in_range"] = (rows["mnist_index"] >= 0) & (rows["mnist_index"] < source_n)
    row_checks = [
        C.in_set("rows", "label", range(N_CLASSES)),
        *(C.in_set("rows", f, range(n)) for f, n in FACTOR_LEVELS.items()),
        *(C.all_true("rows", f"{f}_aligned_consistent", f"{f}_aligned == ({f} == linked value)") for f in FACTOR_LEVELS),
        C.all_true("rows", "mnist_index_in_range", "mnist_index within the source split"),
    ]
    sizes = pd.DataFrame([{"key": f"{d}/{s}", "n": len(frame), "expected_n": settings.split_sizes[s]}
                          for (d, s), frame in tables.items()])
    rates = linked_rate_table(tables, settings.specs, settings.tolerance, settings.linked_rate_z)
    shares = label_share_table({f"{d}/{s}": frame["label"].to_numpy() for (d, s), frame in tables.items()})
    low, high = settings.label_share
    return [
        CheckedTable("rows", rows, tuple(row_checks), id_columns=("key",)),
        CheckedTable("split_sizes", sizes, (C.pair_equal("split_sizes", "n", "expected_n", "row count per split as in params"),),
                     id_columns=("key",)),
        CheckedTable("linked_rates", rates, (
            C.pair_at_most("linked_rates", "abs_error", "allowed", "linked rate within tolerance of its expected value"),
        ), id_columns=("key",)),
        CheckedTable("label_shares", shares, (
            C.between("label_shares", "share", low, high, f"every label's share in [{low:g}, {high:g}]"),
        ), id_columns=("key",)),
    ]


# --------------------------------------------------------------------------- training

def training_suite(data: Path, settings: ValidationSettings) -> list[CheckedTable]:
    """Per-model training metrics: schema, accuracies in [0, 1], every model of the sweep once."""
    models = _read_csv(data / "train_summary" / "models.csv")
    present = [c for c in MODEL_COLUMNS if c in models.columns]
    models = _keyed(models, ["dataset_id", "arch"])
    table_checks = [C.non_empty("models"), *C.has_columns("models", MODEL_COLUMNS), C.unique("models", "key"),
                    C.in_set("models", "key", settings.models, "every model belongs to the sweep")]
    for column in ACCURACY_COLUMNS:
        if column in present:
            table_checks += [*C.finite("models", column), C.between("models", column, 0.0, 1.0)]
    if "aligned_conflicting_gap" in present:
        table_checks += [*C.finite("models", "aligned_conflicting_gap"), C.between("models", "aligned_conflicting_gap", -1.0, 1.0)]
    if "n_params" in present:
        table_checks.append(C.between("models", "n_params", 1))
    observed = models["key"].astype(str).tolist()
    return [
        CheckedTable("models", models, tuple(table_checks), id_columns=("key",)),
        CheckedTable("sweep", presence_table(settings.models), (
            C.in_set("sweep", "key", observed, "every model of the sweep is present"),
        ), id_columns=("key",)),
    ]


# --------------------------------------------------------------------------- sensitivity

def sensitivity_checks(table: str, frame: pd.DataFrame, sobol_tolerance: float, abs_tolerance: float
                       ) -> tuple[pd.DataFrame, list]:
    """Checks that hold for any sensitivity table, chosen by the columns it has.

    Returns the frame with derived ``check_*`` columns added and the checks: every
    numeric column finite; non-negative mu*, sigma, confidence widths and bounds;
    shares, accuracies and drops in [0, 1]; ``|mu| <= mu*``; Sobol indices (``S1``/``ST``
    or ``first_order``/``total_order``) in ``[-tol, 1 + tol]`` with first <= total + tol;
    confidence intervals ordered (``ci_low <= ci_high``).
    """
    frame = frame.copy()
    found = [C.non_empty(table), *C.all_numeric_finite(table, frame)]
    found += [C.between(table, c, 0.0) for c in NON_NEGATIVE if c in frame.columns and c not in UNIT_INTERVAL]
    # A Shapley drop is an estimate (a weighted sum of accuracy differences over random re-draws):
    # like a Sobol index, sampling noise can take it just below 0, so it gets the estimator tolerance.
    found += [C.between(table, c, -sobol_tolerance if c == "drop" else 0.0, 1.0)
              for c in UNIT_INTERVAL if c in frame.columns]
    found += [C.between(table, c, 0.0) for c in frame.columns if c.endswith("_conf") and c != "mu_star_conf"]
    if {"mu", "mu_star"} <= set(frame.columns):
        frame["check_abs_mu_minus_mu_star"] = frame["mu"].abs() - frame["mu_star"]
        found.append(C.between(table, "check_abs_mu_minus_mu_star", high=abs_tolerance, label="|mu| <= mu*"))
    if "output" in frame.columns and "mu_star" in frame.columns:
        found.append(C.in_set(table, "output", MORRIS_OUTPUTS))
    sobol = [c for c in (*SOBOL_FIRST, *SOBOL_TOTAL) if c in frame.columns]
    found += [C.between(table, c, -sobol_tolerance, 1.0 + sobol_tolerance,
                        f"{c} in [-{sobol_tolerance:g}, 1 + {sobol_tolerance:g}]") for c in sobol]
    for first, total in zip(SOBOL_FIRST, SOBOL_TOTAL):
        if {first, total} <= set(frame.columns):
            frame[f"check_{first}_minus_{total}"] = frame[first] - frame[total]
            found.append(C.between(table, f"check_{first}_minus_{total}", high=sobol_tolerance,
                                   label=f"{first} <= {total} + {sobol_tolerance:g}"))
    for low in [c for c in frame.columns if c == "ci_low" or c.endswith("_ci_low")]:
        high = low[: -len("low")] + "high"
        if high in frame.columns:
            frame[f"check_{low}_minus_{high}"] = frame[low] - frame[high]
            found.append(C.between(table, f"check_{low}_minus_{high}", high=abs_tolerance, label=f"{low} <= {high}"))
    return frame, found


def _sensitivity_tables(folder: Path, settings: ValidationSettings) -> list[CheckedTable]:
    out = []
    for path in _listed(folder, "*.csv"):
        frame = _keyed(_read_csv(path), ["dataset_id", "arch", "factor", "output", "order", "step", "image", "method"])
        frame, found = sensitivity_checks(path.stem, frame, settings.sobol_tolerance, settings.abs_tolerance)
        schema = []
        if folder.name == "audit_summary":
            schema = C.has_columns(path.stem, AUDIT_SUMMARY_COLUMNS.get(path.stem, ()))
            if path.stem in ("morris", "verdicts", "single_drop") and "factor" in frame.columns:
                schema.append(C.in_set(path.stem, "factor", FACTOR_LEVELS))
        out.append(CheckedTable(f"{folder.name}.{path.stem}", frame, (*schema, *found), id_columns=("key",)))
    return out


def sensitivity_suite(data: Path, settings: ValidationSettings) -> list[CheckedTable]:
    """Sensitivity results of the factor audit (and of the ImageNet audit when present)."""
    morris = _read_csv(data / "audit_summary" / "morris.csv")
    tables = _sensitivity_tables(data / "audit_summary", settings)
    if (data / "imagenet").is_dir():
        tables += _sensitivity_tables(data / "imagenet", settings)
    if set(MORRIS_COLUMNS) <= set(morris.columns):
        tables.append(CheckedTable("morris_share_sums", morris_share_sums(morris), (
            C.between("morris_share_sums", "share_sum_error", high=1e-3,
                      label="mu* shares of a model and output sum to 1 (or all 0)"),
        ), id_columns=("key",)))
    return tables


# --------------------------------------------------------------------------- attribution maps

def attribution_maps_suite(data: Path, settings: ValidationSettings) -> list[CheckedTable]:
    """Per-model ``maps.npz`` of the factor audit: every array finite and of the right shape."""
    paths = _listed(data / "audit", "*/*/maps.npz") if (data / "audit").is_dir() else []
    if not paths:
        raise SuiteSkipped(f"no attribution maps under {data / 'audit'}")
    rows = [array_stats(f"{path.parent.parent.name}/{path.parent.name}", _read_npz(path, MAP_ARRAYS))
            for path in paths]
    stats = pd.DataFrame(rows)
    canvas = settings.canvas
    table_checks = [
        *C.has_columns("maps", [f"{name}_ndim" for name in MAP_ARRAYS]),
        C.in_set("maps", "images_ndim", [4], "images are (n, 3, H, W)"),
        C.in_set("maps", "maps_ndim", [3], "maps are (n, H, W)"),
        C.in_set("maps", "digit_mask_ndim", [3], "digit masks are (n, H, W)"),
    ]
    if {"images_dim0", "maps_dim0", "digit_mask_dim0"} <= set(stats.columns):
        table_checks += [
            C.between("maps", "images_dim0", 1, label="at least one image"),
            C.pair_equal("maps", "maps_dim0", "images_dim0", "one map per image"),
            C.pair_equal("maps", "digit_mask_dim0", "images_dim0", "one digit mask per image"),
        ]
    for column, value in (("images_dim1", 3), ("images_dim2", canvas), ("images_dim3", canvas), ("maps_dim1", canvas),
                          ("maps_dim2", canvas), ("digit_mask_dim1", canvas), ("digit_mask_dim2", canvas)):
        if column in stats.columns:
            table_checks.append(C.in_set("maps", column, [value], f"{column} == {value}"))
    table_checks += [C.in_set("maps", f"{n}_nonfinite", [0], f"{n} finite") for n in ("images", "maps") if f"{n}_nonfinite" in stats]
    if "images_min" in stats:
        table_checks += [C.between("maps", "images_min", 0.0), C.between("maps", "images_max", high=1.0)]
    return [CheckedTable("maps", stats, tuple(table_checks), id_columns=("key",))]


# --------------------------------------------------------------------------- imagenet

def imagenet_suite(data: Path, settings: ValidationSettings) -> list[CheckedTable]:
    """ImageNet audit tables (generic: non-empty, every numeric value finite) and maps."""
    root = data / "imagenet"
    if not root.is_dir():
        raise SuiteSkipped(f"{root} is absent (the ImageNet audit did not run)")
    tables = []
    for path in _listed(root, "*.csv"):
        frame = _read_csv(path)
        tables.append(CheckedTable(path.stem, frame, (C.non_empty(path.stem), *C.all_numeric_finite(path.stem, frame))))
    for path in _listed(root, "*.npz"):
        arrays = _read_npz(path)
        stats = pd.DataFrame([array_stats(name, {"array": array}) for name, array in arrays.items()
                              if array.dtype.kind in "biufc"])  # ids and labels are strings
        if stats.empty:
            raise MissingInput(f"{path} holds no arrays")
        name = f"{path.stem}_npz"
        tables.append(CheckedTable(name, stats, (
            C.in_set(name, "array_nonfinite", [0], "every array finite"),
            C.between(name, "array_size", 1, label="no empty array"),
        ), id_columns=("key",)))
    if not tables:
        raise MissingInput(f"{root} holds no tables or maps")
    return tables


# --------------------------------------------------------------------------- findings

def findings_suite(data: Path, settings: ValidationSettings) -> list[CheckedTable]:
    """Expectations of the science: unbiased (p = 0.1) models do not rely on colour,
    spurious reliance does not fall as p rises, Morris and intervention verdicts agree."""
    morris = _read_csv(data / "audit_summary" / "morris.csv")
    verdicts = _read_csv(data / "audit_summary" / "verdicts.csv")
    for name, frame, columns in (("morris.csv", morris, MORRIS_COLUMNS), ("verdicts.csv", verdicts, VERDICT_COLUMNS)):
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise MissingInput(f"{data / 'audit_summary' / name} lacks column(s) {missing}")
    specs = settings.specs
    verdicts = _keyed(verdicts, ["dataset_id", "arch", "factor"])
    unbiased_ids = [d for d, spec in specs.items() if spec.p <= 1.0 / N_CLASSES + 1e-9]
    unbiased = verdicts[verdicts["dataset_id"].isin(unbiased_ids) & verdicts["factor"].isin(COLOUR_FACTORS)]
    agreement = settings.min_verdict_agreement
    tables = [CheckedTable("verdicts", verdicts, (
        C.non_empty("verdicts"),
        C.in_set("verdicts", "agree", [True, False], "agree is boolean"),
        C.mean_at_least("verdicts", "agree", agreement, f"Morris and intervention verdicts agree in >= {agreement:g} of cells"),
    ), id_columns=("key",))]
    if not unbiased.empty:
        tables.append(CheckedTable("unbiased_colour", unbiased.reset_index(drop=True), (
            C.in_set("unbiased_colour", "morris_relied_on", [False], "p = 0.1 models do not rely on colour"),
        ), id_columns=("key",)))
    steps = reliance_steps(morris, specs, settings.morris_output)
    if not steps.empty:
        tol = settings.monotonic_tolerance
        tables.append(CheckedTable("reliance", steps, (
            C.between("reliance", "drop", high=tol, label=f"spurious reliance does not fall as p rises (tolerance {tol:g})"),
        ), id_columns=("key",)))
    return tables



# --------------------------------------------------------------------------- running

SuiteBuilder = Callable[[Path, ValidationSettings], list[CheckedTable]]

SUITES: dict[str, SuiteBuilder] = {
    "mnist": mnist_suite,
    "biased_mnist": biased_mnist_suite,
    "training": training_suite,
    "sensitivity": sensitivity_suite,
    "attribution_maps": attribution_maps_suite,
    "imagenet": imagenet_suite,
    "findings": findings_suite,
}


def run_suite(name: str, data: Path, settings: ValidationSettings) -> SuiteOutcome:
    """Build and validate one suite; missing inputs become ``skipped`` or ``error``."""
    try:
        tables = SUITES[name](data, settings)
    except SuiteSkipped as skip:
        return SuiteOutcome(name, "skipped", reason=str(skip), document={"suite": name, "success": False, "status": "skipped", "reason": str(skip)})
    except MissingInput as err:
        return SuiteOutcome(name, "error", reason=str(err), document={"suite": name, "success": False, "status": "error", "reason": str(err)})
    result = validate_tables(name, tables)
    status = "passed" if result.success else "failed"
    return SuiteOutcome(name, status, evaluated=result.evaluated, failed_expectations=result.failed_checks,
                        document={**result.document, "status": status, "reason": ""})


def run_suites(data: str | Path, settings: ValidationSettings, names: Sequence[str] = tuple(SUITES)) -> list[SuiteOutcome]:
    """Run the named suites (all by default) over the artefacts under ``data``."""
    unknown = [n for n in names if n not in SUITES]
    if unknown:
        raise ValueError(f"unknown suite(s) {unknown}; known: {', '.join(SUITES)}")
    return [run_suite(name, Path(data), settings) for name in names]


def write_outcomes(outcomes: Sequence[SuiteOutcome], output: str | Path) -> None:
    """Write ``<suite>.json`` per suite and ``summary.csv``, replacing ``output`` atomically."""
    with atomic_dir(output) as tmp:
        for outcome in outcomes:
            write_json(outcome.document, tmp / f"{outcome.suite}.json")
        write_table(pd.DataFrame([o.summary_row() for o in outcomes], columns=list(SUMMARY_COLUMNS)), tmp / "summary.csv")


def read_summary(path: str | Path) -> pd.DataFrame:
    """Read ``summary.csv`` with its declared types (empty texts are ``""``, not NaN).

    Raises ``ValueError`` (an :class:`~shortcut_audit.io.ArtefactError`) when the file
    is malformed or lacks a column of :data:`SUMMARY_COLUMNS`.
    """
    frame = read_artefact(path)
    missing = [c for c in SUMMARY_COLUMNS if c not in frame.columns]
    if missing:
        raise ArtefactError(path, f"missing column(s) {missing}")
    return frame


def format_outcomes(outcomes: Sequence[SuiteOutcome]) -> str:
    """One line per suite, for the terminal."""
    lines = []
    for o in outcomes:
        detail = o.reason or ("; ".join(o.failed_expectations[:3]) + (" ..." if len(o.failed_expectations) > 3 else ""))
        lines.append(f"  {o.status.upper():<8} {o.suite:<17} {o.evaluated:>4} checks  {detail}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``shortcut-audit validate``: exit 0 once results are written (failed suites
    included: the gate decides), 2 on invalid params or when a required input is missing."""
    parser = argparse.ArgumentParser(prog="shortcut-audit validate", description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    parser.add_argument("--data", default="data", help="folder holding the pipeline outputs (default: data)")
    parser.add_argument("--output", default="data/validation", help="results folder (default: data/validation)")
    parser.add_argument("--suite", action="append", choices=list(SUITES), help="run only this suite (repeatable)")
    args = parser.parse_args(argv)
    try:
        settings = ValidationSettings.from_params(load_params(args.params))
    except (ParamError, FileNotFoundError) as err:
        print(f"shortcut-audit validate: {err}", file=sys.stderr)
        return 2
    outcomes = run_suites(args.data, settings, args.suite or tuple(SUITES))
    write_outcomes(outcomes, args.output)
    print(f"validation results in {args.output}:\n{format_outcomes(outcomes)}")
    errors = [o for o in outcomes if o.status == "error"]
    for o in errors:
        print(f"shortcut-audit validate: suite {o.suite}: {o.reason}", file=sys.stderr)
    return 2 if errors else 0
