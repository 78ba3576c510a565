"""One model's whole audit, its params validation, artefacts and the cross-model summary."""

from __future__ import annotations

import copy
import importlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from shortcut_audit.audit.model_audit import AuditConfig, audit_model, write_model_audit
from shortcut_audit.audit.summary import (
    audit_dir,
    collect_tables,
    model_folders,
    model_table,
    screen_summary,
    seed_table,
    summary_metrics,
    with_screen,
)
from shortcut_audit.config import ParamError
from shortcut_audit.data.biased_mnist import parse_dataset_id
from shortcut_audit.io import read_json

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = {
    "morris.parquet": [
        "sampling",
        "factor",
        "output",
        "mu",
        "mu_star",
        "sigma",
        "mu_star_conf",
        "mu_star_share",
        "sigma_over_mu_star",
    ],
    "interventions.parquet": ["sampling", "order", "step", "factor", "accuracy", "ci_low", "ci_high"],
    "order_check.parquet": ["sampling", "order", "area", "ci_low", "ci_high", "holds"],
    "verdicts.parquet": [
        "factor",
        "state",
        "drop",
        "ci_low",
        "ci_high",
        "first_round_state",
        "single_drop",
        "single_ci_low",
        "single_ci_high",
        "sampling",
        "mu_star",
        "sigma",
        "mu_star_share",
        "n_items",
        "repetitions",
    ],
    "pixel_view.parquet": ["image", "label", "background_share", "background_pixel_fraction"],
    "interaction.parquet": [
        "factor",
        "mu_star",
        "sigma",
        "sigma_over_mu_star",
        "drop_alone",
        "drop_last",
        "order_gap",
        "gap_ci_low",
        "gap_ci_high",
        "order_dependent",
        "reading",
    ],
}


def _stage(name: str):
    """The library module of a DVC stage (``stages/<name>.py`` only calls its ``main``)."""
    return importlib.import_module(f"shortcut_audit.stages.{name}")


@pytest.fixture()
def params() -> dict:
    """The repository's params with the audit shrunk to the synthetic samples."""
    params = copy.deepcopy(yaml.safe_load((REPO / "params.yaml").read_text()))
    params["audit"].update(n_digits=32, batch_size=512)
    params["audit"]["morris"].update(n_trajectories=8)
    params["audit"]["interventions"].update(n_digits=64, repetitions=4, n_bootstrap=500)
    params["audit"]["pixel_view"].update(n_images=2, grid_size=4, nb_design=4)
    return params


def _identity(dataset_id: str, arch: str) -> dict:
    spec = parse_dataset_id(dataset_id)
    return {
        "dataset_id": dataset_id,
        "p": spec.p,
        "biased_factors": "+".join(spec.biased),
        "arch": arch,
        "seed": 0,
        "device": "cpu",
    }


def test_config_reads_the_repository_params():
    config = AuditConfig.from_params(yaml.safe_load((REPO / "params.yaml").read_text()))
    assert config.factors == ("digit_color", "bg_color", "position")
    assert config.design in ("trajectory", "radial")


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("audit.factors", ["digit_color", "texture"], "unknown factor .texture.; known factors"),
        ("audit.factors", "bg_color", "expected a list"),
        ("audit.morris.design", "spiral", "unknown value"),
        ("audit.morris.levels", 5, "even integer"),
        ("audit.morris.n_trajectories", 1, "integer >= 2"),
        ("audit.interventions.repetitions", 0, "integer >= 1"),
        ("audit.interventions.max_doublings", -1, r"integer in \[0, 10\]"),
        ("audit.morris.sampling", ["global", "nearby"], "expected one of"),
        ("audit.morris.sampling", ["local", "local"], "without repeats"),
        ("audit.pixel_view.n_images", 33, r"in \[1, 32\]"),
        ("audit.n_digits", 0, "integer in"),
        ("audit.batch_size", 2.5, "integer"),
    ],
)
def test_bad_params_name_their_key(params, key, value, message):
    node = params
    *parents, last = key.split(".")
    for part in parents:
        node = node[part]
    node[last] = value
    with pytest.raises(ParamError, match=rf"{key}: .*{message}"):
        AuditConfig.from_params(params)


def test_audit_of_the_background_model_writes_every_artefact(bg_model, heldout, aligned, params, tmp_path):
    config = AuditConfig.from_params(params)
    audit = audit_model(bg_model, heldout, aligned, config)
    folder = write_model_audit(audit, _identity("bg_color-p0.9", "simple_cnn"), tmp_path / "bg")
    for name, columns in SCHEMAS.items():
        table = pd.read_parquet(folder / name)
        assert list(table.columns) == columns, name
        assert np.isfinite(table.select_dtypes("number").to_numpy()).all(), name
    verdicts = pd.read_parquet(folder / "verdicts.parquet").set_index("factor")
    assert verdicts["state"].tolist() == ["not_relied_on", "relied_on", "not_relied_on"]
    morris = pd.read_parquet(folder / "morris.parquet")
    assert list(pd.unique(morris["sampling"])) == list(config.samplings)
    order = pd.read_parquet(folder / "order_check.parquet")
    assert order["holds"].all() and (order["order"].str.startswith("bg_color")).all()
    metrics = read_json(folder / "metrics.json")
    assert metrics["relied_on"] == ["bg_color"] and metrics["inconclusive"] == []
    assert metrics["factors"]["bg_color"]["state"] == "relied_on"
    assert metrics["budget"]["rounds"] == 1
    with np.load(folder / "maps.npz") as arrays:
        assert set(arrays.files) == {"images", "maps", "digit_mask"}
    # deterministic for a seed: a second run writes identical tables
    again = write_model_audit(
        audit_model(bg_model, heldout, aligned, config), _identity("bg_color-p0.9", "simple_cnn"), tmp_path / "again"
    )
    for name in SCHEMAS:
        pd.testing.assert_frame_equal(pd.read_parquet(folder / name), pd.read_parquet(again / name))
    assert (folder / "metrics.json").read_text() == (again / "metrics.json").read_text()


def test_a_failing_audit_leaves_no_folder(bg_model, heldout, aligned, params, tmp_path):
    config = AuditConfig.from_params(params)
    audit = audit_model(bg_model, heldout, aligned, config)
    with pytest.raises(TypeError):
        write_model_audit(audit, {"dataset_id": object()}, tmp_path / "broken")
    assert not (tmp_path / "broken").exists()


@pytest.fixture()
def sweep(bg_model, digit_colour_model, heldout, aligned, params, tmp_path) -> Path:
    """data/audit with two synthetic 'models' under two dataset ids."""
    config = AuditConfig.from_params(params)
    root = tmp_path / "audit"
    for dataset_id, model in (("p0.1", digit_colour_model), ("bg_color-p0.9", bg_model)):
        audit = audit_model(model, heldout, aligned, config)
        write_model_audit(audit, _identity(dataset_id, "simple_cnn"), audit_dir(root, dataset_id, "simple_cnn", 0))
    return root


def test_summary_stacks_tables_and_measures_the_screen(sweep):
    datasets = ["p0.1", "bg_color-p0.9"]
    specs = {d: parse_dataset_id(d) for d in datasets}
    folders = model_folders(sweep, datasets, ["simple_cnn"])
    tables = collect_tables(folders, specs)
    for name, table in tables.items():
        assert list(table.columns[:5]) == ["dataset_id", "p", "biased_factors", "arch", "seed"], name
    assert set(tables["morris"]["dataset_id"]) == set(datasets)
    tables["verdicts"] = with_screen(tables["verdicts"], 0.1)
    assert {"screen_relied_on", "screen_agreement"} <= set(tables["verdicts"])
    screen, per_level = screen_summary(tables["verdicts"], tables["morris"], ("global", "local"), 0.1)
    assert screen["n_cells"] == 6 and screen["n_relied_on"] == 2 and screen["n_inconclusive"] == 0
    # each synthetic model reads exactly one factor, and Morris ranks it first: a perfect screen
    assert screen["samplings"]["local"]["auroc"] == 1.0
    assert set(per_level["dataset_id"]) == set(datasets)
    models = model_table(tables, folders, specs).set_index("dataset_id")
    assert models.loc["bg_color-p0.9", "relied_on"] == "bg_color" and models.loc["p0.1", "relied_on"] == "digit_color"
    seeds = seed_table(tables["verdicts"])
    assert len(seeds) == 6 and not seeds["seed_dependent"].any() and (seeds["n_seeds"] == 1).all()
    metrics = summary_metrics(screen, seeds)
    assert metrics == {
        "cells": {"relied_on": 2, "not_relied_on": 4, "inconclusive": 0},
        "screen_auroc": 1.0,
        "seed_dependent_cells": 0,
    }


def test_summary_names_missing_audits(sweep):
    with pytest.raises(FileNotFoundError, match="model audit"):
        model_folders(sweep, ["p0.1", "p0.5"], ["simple_cnn"])


def test_summary_stage_writes_the_summary_folder(sweep, params, tmp_path):
    params["biased_mnist"]["datasets"] = ["p0.1", "bg_color-p0.9"]
    params["train"]["architectures"] = ["simple_cnn"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    out = tmp_path / "audit_summary"
    code = _stage("audit_summary").main(
        ["--params", str(tmp_path / "params.yaml"), "--audit", str(sweep), "--output", str(out)]
    )
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [
            "morris.csv",
            "verdicts.csv",
            "interventions.csv",
            "order_check.csv",
            "pixel_view.csv",
            "interaction.csv",
            "models.csv",
            "seeds.csv",
            "screen.csv",
            "screen.json",
            "metrics.json",
        ]
    )
    assert sum(json.loads((out / "metrics.json").read_text())["cells"].values()) == 6


def test_factor_stage_validates_params_before_any_work(params, tmp_path):
    params["audit"]["factors"] = ["digit_color", "stroke_width"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ParamError, match="audit.factors"):
        _stage("audit_factors").main(
            [
                "--dataset",
                "p0.1",
                "--arch",
                "simple_cnn",
                "--params",
                str(tmp_path / "params.yaml"),
                "--data",
                str(tmp_path / "absent"),
                "--output",
                str(tmp_path / "audit"),
            ]
        )
    assert not (tmp_path / "audit").exists()


def test_seed_table_counts_the_seeds_that_agree():
    verdicts = pd.DataFrame(
        [
            {"dataset_id": "p0.9", "p": 0.9, "arch": "mlp", "seed": seed, "factor": factor, "state": state}
            for seed, states in (
                (0, ("relied_on", "not_relied_on")),
                (1, ("relied_on", "inconclusive")),
                (2, ("relied_on", "relied_on")),
            )
            for factor, state in zip(("bg_color", "position"), states)
        ]
    )
    table = seed_table(verdicts).set_index("factor")
    assert not table.loc["bg_color", "seed_dependent"] and table.loc["bg_color", "agreement"] == 1.0
    position = table.loc["position"]
    assert position["seed_dependent"] and position["n_seeds"] == 3
    assert position["states"] == "0:not_relied_on 1:inconclusive 2:relied_on"
    assert position["majority_state"] == "not_relied_on" and position["agreement"] == pytest.approx(1 / 3)
