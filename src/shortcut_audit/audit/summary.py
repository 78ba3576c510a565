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

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from shortcut_audit.audit.screening import auroc, cross_validate, fit_threshold, screen_agreement, spearman
from shortcut_audit.audit.verdicts import VERDICT_OUTPUT
from shortcut_audit.data.biased_mnist import DatasetSpec
from shortcut_audit.io import read_json, read_table

__all__ = ["TABLES", "collect_tables", "model_folders", "model_table", "screen_summary", "summary_metrics",
           "with_screen"]

# summary csv name -> per-model file
TABLES = {
    "morris": "morris.parquet",
    "verdicts": "verdicts.parquet",
    "interventions": "interventions.parquet",
    "order_check": "order_check.parquet",
    "pixel_view": "pixel_view.parquet",
    "interaction": "interaction.parquet",
}
ID_COLUMNS = ("dataset_id", "p", "biased_factors", "arch")


def model_folders(audit_root: str | Path, datasets: Sequence[str], architectures: Sequence[str]) -> dict[tuple[str, str], Path]:
    """``(dataset_id, arch) -> folder`` for every model of the sweep; all must exist."""
    folders = {(d, a): Path(audit_root) / d / a for d in datasets for a in architectures}
    missing = [str(f) for f in folders.values() if not (f / "metrics.json").is_file()]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} model audit(s) missing, e.g. {missing[:3]}; run the audit_factors stages first"
        )
    return folders


def _identity(dataset_id: str, arch: str, spec: DatasetSpec) -> dict[str, object]:
    return {"dataset_id": dataset_id, "p": spec.p, "biased_factors": "+".join(spec.biased), "arch": arch}


def collect_tables(folders: Mapping[tuple[str, str], Path], specs: Mapping[str, DatasetSpec]) -> dict[str, pd.DataFrame]:
    """Stack each per-model table over the models, identity columns first."""
    tables = {}
    for name, file_name in TABLES.items():
        parts = []
        for (dataset_id, arch), folder in folders.items():
            table = read_table(folder / file_name)
            for position, (key, value) in enumerate(_identity(dataset_id, arch, specs[dataset_id]).items()):
                table.insert(position, key, value)
            parts.append(table)
        tables[name] = pd.concat(parts, ignore_index=True)
    return tables


def with_screen(verdicts: pd.DataFrame, morris: pd.DataFrame, samplings: Sequence[str], threshold: float) -> pd.DataFrame:
    """``verdicts`` with ``mu_star_<sampling>`` columns and the screening verdict at ``threshold``."""
    keys = ["dataset_id", "arch", "factor"]
    out = verdicts.copy()
    rows = morris[morris["output"] == VERDICT_OUTPUT]
    for sampling in samplings:
        part = rows.loc[rows["sampling"] == sampling, keys + ["mu_star"]].rename(columns={"mu_star": f"mu_star_{sampling}"})
        out = out.merge(part, on=keys, how="left", validate="one_to_one")
        if out[f"mu_star_{sampling}"].isna().any():
            raise ValueError(f"some verdict cells have no {sampling} Morris row")
    screened = out[f"mu_star_{samplings[0]}"] >= threshold
    out["screen_relied_on"] = screened
    truth = out["state"] == "relied_on"
    out["screen_agreement"] = np.where(out["state"] == "inconclusive", "inconclusive",
                                       np.where(screened == truth, "agree", "disagree"))
    return out


def screen_summary(verdicts: pd.DataFrame, samplings: Sequence[str], shipped: float) -> tuple[dict, pd.DataFrame]:
    """Quality of the Morris screen per sampling (:mod:`.screening`), and the per-level CV table.

    ``verdicts`` is the output of :func:`with_screen`.
    """
    conclusive = verdicts[verdicts["state"] != "inconclusive"].assign(relied_on=lambda f: f["state"] == "relied_on")
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
        column = f"mu_star_{sampling}"
        per_level, cv = cross_validate(conclusive, column)
        fit = fit_threshold(conclusive[column].to_numpy(), conclusive["relied_on"].to_numpy()) \
            if len(conclusive) else None
        summary["samplings"][sampling] = {
            "auroc": auroc(conclusive[column].to_numpy(), conclusive["relied_on"].to_numpy()),
            "spearman_mu_star_drop": spearman(verdicts[column].to_numpy(), verdicts["drop"].to_numpy()),
            "cv_agreement": cv,
            "fitted_threshold": None if fit is None else fit.threshold,
            "fitted_agreement": None if fit is None else fit.agreement,
            "shipped_agreement": screen_agreement(conclusive[column].to_numpy(), conclusive["relied_on"].to_numpy(),
                                                  shipped) if len(conclusive) else None,
        }
        tables.append(per_level.assign(sampling=sampling))
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    return summary, table[["sampling", *[c for c in table.columns if c != "sampling"]]]


def model_table(tables: Mapping[str, pd.DataFrame], folders: Mapping[tuple[str, str], Path],
                specs: Mapping[str, DatasetSpec]) -> pd.DataFrame:
    """One row per model: total drop, budget, verdict counts, interaction reading, background share."""
    verdicts = tables["verdicts"]
    rows = []
    for (dataset_id, arch), folder in folders.items():
        metrics = read_json(folder / "metrics.json")
        mine = verdicts[(verdicts["dataset_id"] == dataset_id) & (verdicts["arch"] == arch)]
        states = mine["state"].value_counts()
        rows.append({
            **_identity(dataset_id, arch, specs[dataset_id]),
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
        })
    return pd.DataFrame(rows)


def background_trend(pixel_view: pd.DataFrame) -> dict[str, float]:
    """Spearman rho of ``p`` vs mean background share per architecture.

    Over the datasets whose biased factors include ``bg_color`` (the unbiased level
    included); an architecture with fewer than three such levels, or a constant
    series, has no defined correlation and is left out.
    """
    with_bg = pixel_view[pixel_view["biased_factors"].str.split("+").map(lambda f: "bg_color" in f)]
    per_model = with_bg.groupby(["arch", "dataset_id", "p"], as_index=False)["background_share"].mean()
    trend = {}
    for arch, rows in per_model.groupby("arch"):
        rho = spearman(rows["p"].to_numpy(), rows["background_share"].to_numpy())
        if rows["p"].nunique() >= 3 and rho is not None:
            trend[str(arch)] = rho
    return trend


def summary_metrics(tables: Mapping[str, pd.DataFrame], models: pd.DataFrame, screen: dict) -> dict:
    """``audit_summary/metrics.json``: headline numbers of the sweep (small enough for ``dvc metrics show``)."""
    order = tables["order_check"]
    primary = order[order["sampling"] == screen["primary_sampling"]]
    relying = models.loc[models["n_relied_on"] > 0, ["dataset_id", "arch"]]
    checked = primary.merge(relying, on=["dataset_id", "arch"])
    return {
        "n_models": int(len(models)),
        "cells": {k: screen[k] for k in ("n_cells", "n_relied_on", "n_not_relied_on", "n_inconclusive")},
        "first_round_inconclusive": int((tables["verdicts"]["first_round_state"] == "inconclusive").sum()),
        "screen": {s: {k: v for k, v in d.items() if k in ("auroc", "cv_agreement", "spearman_mu_star_drop")}
                   for s, d in screen["samplings"].items()},
        "order_check": {"models_with_reliance": int(len(checked)), "holds": int(checked["holds"].sum())},
        "background_share_spearman": background_trend(tables["pixel_view"]),
    }
