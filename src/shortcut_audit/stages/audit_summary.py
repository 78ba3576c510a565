"""DVC stage audit_summary: factor audits of every model -> data/audit_summary/.

Long tables (``morris.csv``, ``verdicts.csv``, ``interventions.csv``,
``order_check.csv``, ``pixel_view.csv``, ``interaction.csv``) with the model's identity
prepended, one row per model (``models.csv``), the verdicts across training seeds
(``seeds.csv``), the quality of the Morris screen (``screen.csv``, ``screen.json``) and
headline ``metrics.json`` (schema: :mod:`shortcut_audit.schema`); the folder appears
whole or not at all.
"""

from __future__ import annotations

import argparse

from shortcut_audit import schema
from shortcut_audit.audit.model_audit import AuditConfig
from shortcut_audit.audit.summary import (
    TABLES,
    collect_tables,
    model_folders,
    model_table,
    screen_summary,
    seed_table,
    summary_metrics,
    with_screen,
)
from shortcut_audit.config import load_params, require
from shortcut_audit.data import biased_mnist as bm
from shortcut_audit.io import atomic_dir, write_json
from shortcut_audit.training.settings import check_params as check_train_params


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    parser.add_argument("--audit", default="data/audit", help="per-model audits (default: data/audit)")
    parser.add_argument("--output", default="data/audit_summary", help="output folder (default: data/audit_summary)")
    args = parser.parse_args(argv)

    params = load_params(args.params)
    datasets = bm.check_params(params).datasets
    train = check_train_params(params)
    config = AuditConfig.from_params(params)  # the audits were run with these; fail on a broken section
    shipped = require(params, "audit.screen.mu_star_threshold", float, lambda v: v >= 0.0, "a number >= 0")
    specs = {d: bm.dataset_spec(params, d) for d in datasets}

    folders = model_folders(args.audit, datasets, train.architectures, train.seeds)
    tables = collect_tables(folders, specs)
    tables["verdicts"] = with_screen(tables["verdicts"], shipped)
    screen, per_level = screen_summary(tables["verdicts"], tables["morris"], config.samplings, shipped)
    models = model_table(tables, folders, specs)
    seeds = seed_table(tables["verdicts"])
    metrics = summary_metrics(screen, seeds)
    with atomic_dir(args.output) as tmp:
        for name in TABLES:
            schema.write_into(f"audit_summary/{name}", tables[name], tmp)
        schema.write_into("audit_summary/models", models, tmp)
        schema.write_into("audit_summary/seeds", seeds, tmp)
        schema.write_into("audit_summary/screen", per_level, tmp)
        write_json(screen, tmp / "screen.json")
        write_json(metrics, tmp / "metrics.json")
    primary = screen["samplings"][screen["primary_sampling"]]
    print(
        f"audit_summary: {len(models)} models, {screen['n_cells']} cells: {screen['n_relied_on']} relied on, "
        f"{screen['n_not_relied_on']} not, {screen['n_inconclusive']} inconclusive; Morris screen "
        f"({screen['primary_sampling']}) AUROC {primary['auroc']}, cross-validated agreement {primary['cv_agreement']}"
    )
    return 0
