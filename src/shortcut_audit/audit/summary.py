"""Across models: the long tables of the sweep, the screen's quality and the headline metrics.

Every per-model table of ``data/audit/<dataset_id>/<arch>/`` is stacked with
``dataset_id, p, biased_factors, arch`` prepended (``p`` and the biased factors come
from the dataset id), so a report can plot ``mu*``, ``sigma`` and the verdicts against
the correlation level for every architecture. On top of them:

``verdicts.csv``
    gains ``mu_star_<sampling>`` for every Morris sampling run, and the screening
    verdict at the shipped threshold (``screen_relied_on``; ``screen_agreement`` is
    ``agree``, ``disagree`` or ``inconclusive`` when the interventional verdict is);
``models.csv``
    one row per model: total drop (every factor re-drawn) with its interval, the
    budget the adaptive interventions used, verdict counts, interaction reading,
    background share of the pixel view;
``screen.csv`` and ``metrics.json``
    the quality of Morris as a screen (:mod:`.screening`) per sampling -- AUROC,
    Spearman, leave-one-level-out agreement, the threshold fitted on every level --
    and the headline numbers of the sweep.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from shortcut_audit import schema
from shortcut_audit.audit.screening import auroc, cross_validate, fit_threshold, screen_agreement, spearman
from shortcut_audit.audit.verdicts import VERDICT_OUTPUT
from shortcut_audit.data.biased_mnist import DatasetSpec
from shortcut_audit.io import read_json

__all__ = [
    "TABLES",
    "collect_tables",
    "model_folders",
    "model_table",
    "screen_summary",
    "summary_metrics",
    "with_screen",
]

#: Per-model tables stacked into the summary (``audit/<name>`` -> ``audit_summary/<name>``).
TABLES = ("morris", "verdicts", "interventions", "order_check", "pixel_view", "interaction")


Model = tuple[str, str, int]


def audit_dir(audit_root: str | Path, dataset_id: str, arch: str, seed: int) -> Path:
    """Folder of one model's audit: ``<audit_root>/<dataset_id>/<arch>/seed<seed>``."""
    return Path(audit_root) / dataset_id / arch / f"seed{int(seed)}"


def model_folders(
    audit_root: str | Path, datasets: Sequence[str], architectures: Sequence[str], seeds: Sequence[int] = (0,)
) -> dict[Model, Path]:
    """``(dataset_id, arch, seed) -> folder`` for every model of the sweep; all must exist."""
    folders = {(d, a, s): audit_dir(audit_root, d, a, s) for d in datasets for a in architectures for s in seeds}
    missing = [str(f) for f in folders.values() if not (f / "metrics.json").is_file()]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} model audit(s) missing, e.g. {missing[:3]}; run the audit_factors stages first"
        )
    return folders


def _identity(model: Model, spec: DatasetSpec) -> dict[str, object]:
    dataset_id, arch, seed = model
    return {
        "dataset_id": dataset_id,
        "p": spec.p,
        "biased_factors": "+".join(spec.biased),
        "arch": arch,
        "seed": int(seed),
    }


def collect_tables(folders: Mapping[Model, Path], specs: Mapping[str, DatasetSpec]) -> dict[str, pd.DataFrame]:
    """Stack each per-model table over the models, identity columns (:data:`schema.MODEL_ID`) first."""
    tables = {}
    for name in TABLES:
        parts = []
        for model, folder in folders.items():
            table = schema.read(folder / Path(schema.table(f"audit/{name}").path).name, f"audit/{name}")
            for position, (key, value) in enumerate(_identity(model, specs[model[0]]).items()):
                table.insert(position, key, value)
            parts.append(table)
        tables[name] = pd.concat(parts, ignore_index=True)
    return tables


def with_screen(verdicts: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """``verdicts`` with the screening verdict ``mu* >= threshold`` (``mu_star``: the primary sampling's).

    ``screen_agreement`` is ``agree``/``disagree`` with the interventional verdict, or
    ``inconclusive`` where that verdict is.
    """
    out = verdicts.copy()
    screened = out["mu_star"] >= threshold
    out["screen_relied_on"] = screened
    truth = out["state"] == "relied_on"
    out["screen_agreement"] = np.where(
        out["state"] == "inconclusive", "inconclusive", np.where(screened == truth, "agree", "disagree")
    )
    return out


def mu_star_cells(verdicts: pd.DataFrame, morris: pd.DataFrame, sampling: str) -> pd.DataFrame:
    """The verdict cells with ``mu*`` (true-class output) of one Morris sampling as column ``mu_star``."""
    keys = ["dataset_id", "arch", "seed", "factor"]
    rows = morris[(morris["output"] == VERDICT_OUTPUT) & (morris["sampling"] == sampling)]
    cells = verdicts.drop(columns=["mu_star"]).merge(
        rows[keys + ["mu_star"]], on=keys, how="left", validate="one_to_one"
    )
    if cells["mu_star"].isna().any():
        raise ValueError(f"some verdict cells have no {sampling} Morris row")
    return cells


def screen_summary(
    verdicts: pd.DataFrame, morris: pd.DataFrame, samplings: Sequence[str], shipped: float
) -> tuple[dict, pd.DataFrame]:
    """Quality of the Morris screen per sampling (:mod:`.screening`), and the per-level CV table."""
    summary: dict = {
        "n_cells": int(len(verdicts)),
        "n_inconclusive": int((verdicts["state"] == "inconclusive").sum()),
        "n_relied_on": int((verdicts["state"] == "relied_on").sum()),
        "n_not_relied_on": int((verdicts["state"] == "not_relied_on").sum()),
        "primary_sampling": samplings[0],
        "output": VERDICT_OUTPUT,
        "shipped_threshold": float(shipped),
        "samplings": {},
    }
    tables = []
    for sampling in samplings:
        cells = mu_star_cells(verdicts, morris, sampling)
        conclusive = cells[cells["state"] != "inconclusive"].assign(relied_on=lambda f: f["state"] == "relied_on")
        scores, truth = conclusive["mu_star"].to_numpy(), conclusive["relied_on"].to_numpy()
        per_level, cv = cross_validate(conclusive, "mu_star")
        fit = fit_threshold(scores, truth) if len(conclusive) else None
        summary["samplings"][sampling] = {
            "auroc": auroc(scores, truth),
            "spearman_mu_star_drop": spearman(cells["mu_star"].to_numpy(), cells["drop"].to_numpy()),
            "cv_agreement": cv,
            "fitted_threshold": None if fit is None else fit.threshold,
            "fitted_agreement": None if fit is None else fit.agreement,
            "shipped_agreement": screen_agreement(scores, truth, shipped) if len(conclusive) else None,
        }
        tables.append(per_level.assign(sampling=sampling))
    table = pd.concat(tables, ignore_index=True)
    return summary, table[["sampling", *[c for c in table.columns if c != "sampling"]]]


def model_table(
    tables: Mapping[str, pd.DataFrame], folders: Mapping[Model, Path], specs: Mapping[str, DatasetSpec]
) -> pd.DataFrame:
    """One row per model: total drop, budget, verdict counts, interaction reading, background share."""
    verdicts = tables["verdicts"]
    rows = []
    for model, folder in folders.items():
        metrics = read_json(folder / "metrics.json")
        dataset_id, arch, seed = model
        mine = verdicts[
            (verdicts["dataset_id"] == dataset_id) & (verdicts["arch"] == arch) & (verdicts["seed"] == seed)
        ]
        states = mine["state"].value_counts()
        rows.append(
            {
                **_identity(model, specs[dataset_id]),
                "total_drop": metrics["total_drop"]["drop"],
                "total_ci_low": metrics["total_drop"]["ci_low"],
                "total_ci_high": metrics["total_drop"]["ci_high"],
                "n_relied_on": int(states.get("relied_on", 0)),
                "n_inconclusive": int(states.get("inconclusive", 0)),
                "relied_on": "+".join(mine.loc[mine["state"] == "relied_on", "factor"]),
                "rounds": metrics["budget"]["rounds"],
                "n_items": metrics["budget"]["n_items"],
                "repetitions": metrics["budget"]["repetitions"],
                "n_correct": metrics["budget"]["n_correct"],
                "interaction_reading": metrics["interaction_reading"],
                "background_share": metrics["background_share"],
            }
        )
    return pd.DataFrame(rows, columns=schema.table("audit_summary/models").names)


def seed_table(verdicts: pd.DataFrame) -> pd.DataFrame:
    """Per (level, architecture, factor): the verdict under every training seed and how many agree.

    ``states`` lists ``seed:state`` pairs; ``majority_state`` is the most frequent state
    (ties: the first seed's); ``agreement`` the share of seeds giving it;
    ``seed_dependent`` whether the seeds disagree.
    """
    rows = []
    keys = ["dataset_id", "p", "arch", "factor"]
    for (dataset_id, p, arch, factor), group in verdicts.groupby(keys, sort=False):
        group = group.sort_values("seed", kind="stable")
        states = group["state"].astype(str).tolist()
        counts = pd.Series(states).value_counts()
        top = [s for s in states if counts[s] == counts.max()][0]
        rows.append(
            {
                "dataset_id": dataset_id,
                "p": float(p),
                "arch": arch,
                "factor": factor,
                "n_seeds": len(states),
                "states": " ".join(f"{s}:{x}" for s, x in zip(group["seed"], states)),
                "majority_state": top,
                "agreement": float(counts.max() / len(states)),
                "seed_dependent": len(set(states)) > 1,
            }
        )
    return pd.DataFrame(rows, columns=schema.table("audit_summary/seeds").names)


def summary_metrics(screen: dict, seeds: pd.DataFrame) -> dict:
    """``audit_summary/metrics.json``: the sweep's headline for ``dvc metrics show``.

    Verdict cells by state, the Morris screen's AUROC under the primary sampling and
    how many cells change verdict across training seeds. Small on purpose so that
    ``dvc metrics show`` and ``dvc exp show`` fit a screen; the rest is in the tables.
    """
    screen_auroc = screen["samplings"][screen["primary_sampling"]]["auroc"]
    return {
        "cells": {state: int(screen[f"n_{state}"]) for state in ("relied_on", "not_relied_on", "inconclusive")},
        "screen_auroc": None if screen_auroc is None else round(float(screen_auroc), 4),
        "seed_dependent_cells": int(seeds["seed_dependent"].sum()),
    }
