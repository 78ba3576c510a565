"""DVC stage audit_summary: factor audits of every model -> data/audit_summary/.

Long tables (``morris.csv``, ``verdicts.csv``, ``interventions.csv``,
``order_check.csv``, ``pixel_view.csv``, ``interaction.csv``) with ``dataset_id, p,
biased_factors, arch`` prepended, one row per model (``models.csv``), the quality of
the Morris screen (``screen.csv``, ``screen.json``) and headline ``metrics.json``
(schema in docs/architecture.md); the folder appears whole or not at all.
"""
from __future__ import annotations

import argparse
import sys

from shortcut_audit.audit.model_audit import AuditConfig
from shortcut_audit.audit.summary import (
    TABLES,
    collect_tables,
    model_folders,
    model_table,
    screen_summary,
    summary_metrics,
    with_screen,
)
from shortcut_audit.config import ParamError, get, load_params, require
from shortcut_audit.data import biased_mnist as bm
from shortcut_audit.io import atomic_dir, write_json, write_table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    parser.add_argument("--audit", default="data/audit", help="per-model audits (default: data/audit)")
    parser.add_argument("--output", default="data/audit_summary", help="output folder (default: data/audit_summary)")
    args = parser.parse_args(argv)

    params = load_params(args.params)
    datasets = bm.check_params(params).datasets
    architectures = get(params, "train.architectures")
    if not isinstance(architectures, list) or not architectures:
        raise ParamError("train.architectures", f"expected a non-empty list, got {architectures!r}")
    config = AuditConfig.from_params(params)  # the audits were run with these; fail on a broken section
    shipped = require(params, "audit.screen.mu_star_threshold", float, lambda v: v >= 0.0, "a number >= 0")
    specs = {d: bm.dataset_spec(params, d) for d in datasets}

    folders = model_folders(args.audit, datasets, architectures)
    tables = collect_tables(folders, specs)
    tables["verdicts"] = with_screen(tables["verdicts"], tables["morris"], config.samplings, shipped)
    screen, per_level = screen_summary(tables["verdicts"], config.samplings, shipped)
    models = model_table(tables, folders, specs)
    metrics = summary_metrics(tables, models, screen)
    with atomic_dir(args.output) as tmp:
        for name in TABLES:
            write_table(tables[name], tmp / f"{name}.csv")
        write_table(models, tmp / "models.csv")
        write_table(per_level, tmp / "screen.csv")
        write_json(screen, tmp / "screen.json")
        write_json(metrics, tmp / "metrics.json")
    primary = screen["samplings"][screen["primary_sampling"]]
    print(
        f"audit_summary: {metrics['n_models']} models, {screen['n_cells']} cells: {screen['n_relied_on']} relied on, "
        f"{screen['n_not_relied_on']} not, {screen['n_inconclusive']} inconclusive; Morris screen "
        f"({screen['primary_sampling']}) AUROC {primary['auroc']}, cross-validated agreement {primary['cv_agreement']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
