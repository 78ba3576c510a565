"""DVC stage audit_summary: factor audits of every model -> data/audit_summary/.

Long tables (``morris.csv``, ``verdicts.csv``, ``interventions.csv``,
``single_drop.csv``, ``pixel_view.csv``, ``interaction.csv``) with ``dataset_id, p,
biased_factors, arch`` prepended, and ``metrics.json`` with the verdict agreement
(schema in docs/architecture.md); the folder appears whole or not at all.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from shortcut_audit.audit.summary import TABLES, collect_tables, model_folders, summary_metrics
from shortcut_audit.audit.verdicts import VerdictRule
from shortcut_audit.config import ParamError, get, load_params
from shortcut_audit.data import biased_mnist as bm
from shortcut_audit.io import atomic_dir, read_table, write_json, write_table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    parser.add_argument("--audit", default="data/audit", help="per-model audits (default: data/audit)")
    parser.add_argument("--train-summary", default="data/train_summary/models.csv",
                        help="training summary joined into the metrics (default: data/train_summary/models.csv)")
    parser.add_argument("--output", default="data/audit_summary", help="output folder (default: data/audit_summary)")
    args = parser.parse_args(argv)

    params = load_params(args.params)
    datasets = bm.check_params(params).datasets
    architectures = get(params, "train.architectures")
    if not isinstance(architectures, list) or not architectures:
        raise ParamError("train.architectures", f"expected a non-empty list, got {architectures!r}")
    VerdictRule.from_params(params)  # the verdicts were taken with these; fail on a broken section
    specs = {d: bm.dataset_spec(params, d) for d in datasets}

    folders = model_folders(args.audit, datasets, architectures)
    tables = collect_tables(folders, specs)
    train_models = read_table(args.train_summary) if Path(args.train_summary).is_file() else None
    metrics = summary_metrics(tables, folders, train_models)
    with atomic_dir(args.output) as tmp:
        for name in TABLES:
            write_table(tables[name], tmp / f"{name}.csv")
        write_json(metrics, tmp / "metrics.json")
    print(
        f"audit_summary: {metrics['n_models']} models, verdict agreement {metrics['verdict_agreement']:.3f} "
        f"over {metrics['n_cells']} cells, {len(metrics['disagreements'])} disagreement(s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
