"""The gate and validate fail closed: a value, row or file they cannot trust is exit 2, never a pass.

Each test corrupts one input of the healthy tree the way a real failure would (a blank or
unrecognised cell, a duplicated row, a file cut mid-row, a params typo or syntax error)
and checks that the gate reports ``error`` naming the file, row and column.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from shortcut_audit import cli

MODELS = "data/train_summary/models.csv"
MORRIS = "data/audit_summary/morris.csv"
VERDICTS = "data/audit_summary/verdicts.csv"
SUMMARY = "data/validation/summary.csv"


def _frame(tree: Path, rel: str) -> pd.DataFrame:
    return pd.read_csv(tree / rel, keep_default_na=False, dtype=str)


def _write(tree: Path, rel: str, frame: pd.DataFrame) -> None:
    frame.to_csv(tree / rel, index=False, lineterminator="\n")


def _candidate_row(frame: pd.DataFrame, **match: str) -> int:
    selected = (frame["dataset_id"] == "p0.1") & (frame["arch"] == "simple_cnn")
    for column, value in match.items():
        selected &= frame[column] == value
    (index,) = frame.index[selected]
    return int(index)


def _set_cell(tree: Path, rel: str, column: str, value: str, **match: str) -> int:
    """Set one cell of the candidate's row (text as written in the file); return the data row number."""
    frame = _frame(tree, rel)
    index = _candidate_row(frame, **match) if rel != SUMMARY else int(frame.index[frame["suite"] == match["suite"]][0])
    frame.loc[index, column] = value
    _write(tree, rel, frame)
    return index + 1


CELLS = [
    # (file, column, text written, row selector): each was read as a pass or a plain fail before
    pytest.param(VERDICTS, "state", "", {"factor": "bg_color"}, id="blank-verdict"),
    pytest.param(VERDICTS, "state", "maybe", {"factor": "digit_color"}, id="unrecognised-verdict"),
    pytest.param(VERDICTS, "ci_high", "nan", {"factor": "digit_color"}, id="nan-interval"),
    pytest.param(MODELS, "unbiased_acc", "", {}, id="blank-accuracy"),
    pytest.param(MODELS, "aligned_conflicting_gap", "n/a", {}, id="text-in-a-number-column"),
    pytest.param(
        MORRIS,
        "mu_star_share",
        "",
        {"factor": "bg_color", "output": "normalised_mean", "sampling": "global"},
        id="blank-share",
    ),
    pytest.param(
        MORRIS,
        "mu_star_share",
        "inf",
        {"factor": "position", "output": "normalised_mean", "sampling": "global"},
        id="infinite-share",
    ),
    pytest.param(SUMMARY, "status", "passd", {"suite": "training"}, id="unknown-suite-status"),
]


@pytest.mark.parametrize("rel, column, text, match", CELLS)
def test_a_gated_value_that_is_missing_or_malformed_cannot_be_evaluated(tree, run_gate, rel, column, text, match):
    row = _set_cell(tree, rel, column, text, **match)
    gate = run_gate(tree)
    assert gate.code == 2 and gate.document["status"] == "error"
    assert f"{rel}, row {row} (line {row + 1}), column '{column}'" in gate.stderr


@pytest.mark.parametrize(
    "rel, match, column, worse",
    [
        pytest.param(MODELS, {}, "unbiased_acc", "0.1", id="candidate"),
        pytest.param(
            MORRIS,
            {"factor": "bg_color", "output": "normalised_mean", "sampling": "global"},
            "mu_star_share",
            "0.99",
            id="factor-row",
        ),
        pytest.param(VERDICTS, {"factor": "bg_color"}, "state", "relied_on", id="verdict"),
    ],
)
def test_a_duplicated_row_with_failing_numbers_cannot_pass(tree, run_gate, rel, match, column, worse):
    frame = _frame(tree, rel)
    index = _candidate_row(frame, **match)
    duplicate = frame.loc[[index]].assign(**{column: worse})
    # before and after the original, so that neither "first wins" nor "last wins" can pass it
    _write(tree, rel, pd.concat([duplicate, frame, duplicate], ignore_index=True))
    gate = run_gate(tree)
    assert gate.code == 2 and gate.document["status"] == "error"
    assert rel in gate.stderr and "appears in 3 rows (row 1 (line 2), " in gate.stderr


def test_a_suite_listed_twice_cannot_be_evaluated(tree, run_gate):
    frame = _frame(tree, SUMMARY)
    failed = frame[frame["suite"] == "training"].assign(
        status="failed", success="False", failed="1", failed_expectations="models: unbiased_acc in [0, 1]"
    )
    _write(tree, SUMMARY, pd.concat([failed, frame], ignore_index=True))
    gate = run_gate(tree)
    assert gate.code == 2
    assert gate.checks("error")["suite:training"]["detail"].endswith(
        "suite 'training' appears in 2 rows (row 1 (line 2), row 4 (line 5)); expected exactly one"
    )


@pytest.mark.parametrize("rel", [MODELS, MORRIS, VERDICTS, SUMMARY])
def test_a_file_cut_mid_row_cannot_be_evaluated(tree, run_gate, rel):
    text = (tree / rel).read_text()
    last_line_start = text.rstrip("\n").rfind("\n") + 1
    (tree / rel).write_text(text[: last_line_start + 12])  # the last row keeps its first 12 characters
    gate = run_gate(tree)
    assert gate.code == 2 and gate.document["status"] == "error"
    assert rel in gate.stderr and "cut mid-row" in gate.stderr


def test_a_row_cut_short_is_named(tree, run_gate):
    lines = (tree / MODELS).read_text().splitlines(keepends=True)
    lines[3] = ",".join(lines[3].split(",")[:5]) + "\n"
    (tree / MODELS).write_text("".join(lines))
    gate = run_gate(tree)
    assert gate.code == 2
    n_columns = len(lines[0].split(","))
    assert f"{MODELS}, row 3 (line 4): 5 field(s) where the header has {n_columns}" in gate.stderr


def test_yaml_syntax_error_in_params_cannot_be_evaluated(tree, run_gate, monkeypatch, capsys):
    params = (tree / "params.yaml").read_text().splitlines()
    index = next(i for i, line in enumerate(params) if line.startswith("gate:"))
    params.insert(index + 1, "  candidates: [{dataset_id: p0.1, arch: simple_cnn}")
    (tree / "params.yaml").write_text("\n".join(params) + "\n")
    gate = run_gate(tree)
    assert gate.code == 2 and gate.document is None
    assert "params.yaml: line " in gate.stderr and "YAML syntax error" in gate.stderr
    monkeypatch.chdir(tree)
    assert cli.main(["validate", "--suite", "training"]) == 2
    assert "YAML syntax error" in capsys.readouterr().err


def test_a_misspelt_gate_key_cannot_be_evaluated(tree, run_gate):
    params = yaml.safe_load((tree / "params.yaml").read_text())
    params["gate"]["min_unbiased_acuracy"] = 0.99  # meant to tighten the threshold
    (tree / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    gate = run_gate(tree)
    assert gate.code == 2
    assert "gate.min_unbiased_acuracy: unknown key; did you mean gate.min_unbiased_accuracy?" in gate.stderr


# ---------------------------------------------------------------- validate: declared types, unreadable files


def test_a_text_column_empty_in_every_row_is_text_not_nan(healthy, tree):
    """Small ImageNet runs: every model loads (``reason`` empty) and no method has a white-box
    reference (``reference`` empty); pandas alone reads both as all-NaN float columns."""
    from shortcut_audit.imagenet.pipeline import COLUMNS
    from shortcut_audit.validation.suites import run_suite

    models = pd.DataFrame(
        [
            {
                "model": m,
                "status": "loaded",
                "reason": "",
                "source": "package",
                "weights_path": "",
                "input_size": 64,
                "n_params": 1000,
                "is_reference": i == 0,
                "n_images": 1,
                "target_kind": "predicted",
                "top1_accuracy": -1.0,
                "mean_target_probability": 0.3,
                "forwards": 500,
                "seconds": 2.0,
                "forward_seconds": 1.0,
            }
            for i, m in enumerate(("efficientnet_lite0", "efficientnet_lite1"))
        ],
        columns=COLUMNS["models"],
    )
    fidelity = pd.DataFrame(
        [
            {
                "model": "efficientnet_lite0",
                "method": m,
                "image_id": "chelsea",
                "target": 285,
                "metric": "deletion_auc",
                "value": 0.2,
                "direction": "lower",
                "forwards": 80.0,
                "explain_seconds": 0.5,
                "reference": "",
            }
            for m in ("sobol", "rise")
        ],
        columns=COLUMNS["fidelity"],
    )
    _write(tree, "data/imagenet/models.csv", models)
    _write(tree, "data/imagenet/fidelity.csv", fidelity)
    assert pd.read_csv(tree / "data/imagenet/models.csv")["reason"].isna().all()
    outcome = run_suite("imagenet", tree / "data", healthy.settings)
    assert outcome.status == "passed", outcome.failed_expectations


def test_a_half_written_temporary_folder_is_not_validated(healthy, tree):
    """A stage killed mid-write left ``.tmp-seed<k>-<pid>-<random>/maps.npz`` beside its output."""
    from shortcut_audit.validation.suites import run_suite

    leftover = tree / "data/audit/p0.5/mlp/.tmp-seed0-4242-abcd1234"
    leftover.mkdir()
    good = (tree / "data/audit/p0.5/mlp/seed0/maps.npz").read_bytes()
    (leftover / "maps.npz").write_bytes(good[: len(good) // 2])
    (tree / "data/imagenet/.tmp-models.csv-4242-abcd1234.csv").write_text("model,status\nx,")
    outcomes = {s: run_suite(s, tree / "data", healthy.settings) for s in ("attribution_maps", "imagenet")}
    assert {s: o.status for s, o in outcomes.items()} == {"attribution_maps": "passed", "imagenet": "passed"}
    assert outcomes["attribution_maps"].document["tables"][0]["rows"] == 8  # the 8 real models, not 9


@pytest.mark.parametrize(
    "rel, suite",
    [
        ("data/audit/p0.5/mlp/seed0/maps.npz", "attribution_maps"),
        ("data/imagenet/maps.npz", "imagenet"),
        ("data/mnist/test_labels.npy", "mnist"),
    ],
)
def test_a_truncated_array_file_is_a_clear_error_not_a_traceback(tree, monkeypatch, capsys, rel, suite):
    path = tree / rel
    path.write_bytes(path.read_bytes()[:60])
    monkeypatch.chdir(tree)
    assert cli.main(["validate", "--suite", suite]) == 2
    err = capsys.readouterr().err
    assert f"suite {suite}: " in err and str(Path(rel).name) in err and "unreadable" in err
