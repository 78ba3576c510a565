"""From pipeline artefacts to the template context of the report.

Each ``*_section`` function takes the loaded :class:`~shortcut_audit.report.artefacts.Artefacts`
and returns a :class:`Section`: its tables, figures and sentences, or, when its inputs
do not exist yet, the list of what is missing (shown in place of the content).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from shortcut_audit.config import load_params
from shortcut_audit.report import figures, findings
from shortcut_audit.report import imagenet_section as imagenet
from shortcut_audit.report.artefacts import (
    TABLE_PATHS,
    Artefacts,
    imagenet_tables,
    load,
    read_maps,
    validation_documents,
)
from shortcut_audit.report.findings import Finding
from shortcut_audit.report.matrix import VerdictMatrix, build_matrix
from shortcut_audit.report.naming import FACTOR_DESCRIPTIONS, arch_order, dataset_order, factor_label, factor_order
from shortcut_audit.report.provenance import Provenance, collect
from shortcut_audit.report.sections import Section
from shortcut_audit.report.tables import Table, TableStyle, format_number, from_frame
from shortcut_audit.report.watermark_section import watermark_section

LOG = logging.getLogger(__name__)

TITLE = "Shortcut audit: reliance on spurious features"
MNIST_SOURCE = (
    "MNIST handwritten digits by Yann LeCun and Corinna Cortes (and Christopher J. C. Burges), "
    "http://yann.lecun.com/exdb/mnist/."
)
MNIST_LICENCE = (
    "Usually cited as Creative Commons Attribution-Share Alike 3.0 (CC BY-SA 3.0); the offline "
    "package the default run reads declares no licence of its own."
)
#: Settings of the MoSIP paper, against which the run's budget is compared.
PAPER_SETTINGS = {
    "audit.morris.n_trajectories": (100, "Morris trajectories"),
    "audit.morris.levels": (20, "Morris grid levels"),
    "audit.interventions.repetitions": (100, "intervention re-draws per digit"),
    "biased_mnist.n_train": (50000, "training images per dataset"),
    "train.epochs": (20, "training epochs"),
    "imagenet.forwards": (3936, "forward passes per ImageNet explanation (Sobol, 11 x 11, N = 32)"),
}
MORRIS_OUTPUT = "normalised_mean"
GALLERY_IMAGES = 3
#: Long reference tables print this many rows in the PDF (the HTML keeps every row).
PRINT_ROWS = 30
SPLIT_ORDER = ("train", "val", "test_unbiased", "test_aligned")


@dataclass
class Summary:
    """Page one: verdict matrix, gate, findings."""

    matrix: VerdictMatrix | None
    gate: dict | None
    gate_failing: list[dict]
    findings: list[Finding]
    thresholds: dict
    missing: list[str]
    suites: tuple[int, int] | None = None
    screen: ScreenHeadline | None = None


@dataclass(frozen=True)
class ScreenHeadline:
    """The headline about the cheap Morris screen on page one."""

    headline: str
    label: str


def screen_headline(screen: dict | None) -> ScreenHeadline | None:
    """AUROC and cross-validated agreement of the primary sampling's screen (``screen.json``)."""
    if not isinstance(screen, dict):
        return None
    primary = screen.get("primary_sampling")
    numbers = (screen.get("samplings") or {}).get(primary) or {}
    auroc, cv = numbers.get("auroc"), numbers.get("cv_agreement")
    if auroc is None:
        return ScreenHeadline(
            "n/a", f"Morris screen ({primary} mu*): AUROC undefined (the sweep lacks relied-on or not-relied-on cells)"
        )
    label = f"AUROC of the Morris screen ({primary} mu*)"
    if cv is not None:
        label += f"; {100 * cv:.0f}% agreement on held-out levels"
    return ScreenHeadline(f"{auroc:.2f}", label)


@dataclass
class ReportContext:
    title: str
    provenance: Provenance
    summary: Summary
    sections: list[Section]
    notices: list[str]


def _primary_seed(params: dict, *tables: pd.DataFrame | None) -> int:
    """The training seed the report shows (the first of ``train.seeds``, else the smallest in the tables)."""
    seeds = (params.get("train") or {}).get("seeds")
    if isinstance(seeds, list) and seeds:
        return int(seeds[0])
    found = [int(t["seed"].min()) for t in tables if t is not None and "seed" in t and len(t)]
    return min(found) if found else 0


def _primary_sampling(params: dict) -> str:
    sampling = ((params.get("audit") or {}).get("morris") or {}).get("sampling", "global")
    return str(sampling[0] if isinstance(sampling, list) and sampling else sampling)


def _seed_rows(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Rows of one training seed (the table itself when it has no seed column)."""
    if "seed" not in frame:
        return frame
    return frame[frame["seed"] == seed].reset_index(drop=True)


def _of_seed(frame: pd.DataFrame | None, seed: int) -> pd.DataFrame | None:
    """Rows of one training seed of an optional table (None stays None)."""
    return None if frame is None else _seed_rows(frame, seed)


def _params_archs(params: dict) -> list[str]:
    archs = (params.get("train") or {}).get("architectures") or []
    return [str(a) for a in archs]


def _biased_sets(art: Artefacts) -> dict[str, tuple[str, ...]]:
    """dataset_id -> its biased factors, from the training table or else the data table."""
    models = art.table("models")
    if models is not None and "biased_factors" in models:
        pairs = models[["dataset_id", "biased_factors"]].drop_duplicates("dataset_id")
        return {d: tuple(f for f in str(b).split("+") if f) for d, b in pairs.itertuples(index=False)}
    rates = art.table("linked_rates")
    if rates is not None:
        biased = rates[rates["biased"].astype(bool)][["dataset_id", "factor"]].drop_duplicates()
        return {d: tuple(group["factor"]) for d, group in biased.groupby("dataset_id")}
    return {}


def biased_labels(sets: dict[str, tuple[str, ...]], all_factors: list[str]) -> dict[str, str]:
    """dataset_id -> short readable description of which factors it biases."""
    labels = {}
    for dataset_id, factors in sets.items():
        if not factors:
            labels[dataset_id] = "no factor biased"
        elif set(factors) >= set(all_factors):
            labels[dataset_id] = "all factors biased"
        else:
            labels[dataset_id] = ", ".join(factor_label(f) for f in factors) + " only"
    return labels


# ---------------------------------------------------------------- page one


def _seed_notes(seeds: pd.DataFrame | None) -> dict[tuple[str, str, str], str]:
    """``(dataset_id, arch, factor) -> note`` for the cells whose state changes across training seeds."""
    if seeds is None:
        return {}
    dependent = seeds[seeds["seed_dependent"].astype(bool)]
    return {
        (r.dataset_id, r.arch, r.factor): f"state changes across training seeds ({r.states})"
        for r in dependent.itertuples(index=False)
    }


def summary_section(art: Artefacts, params: dict) -> Summary:
    seed = _primary_seed(params, art.table("verdicts"))
    verdicts, gate = _of_seed(art.table("verdicts"), seed), art.document("gate")
    threshold = ((params.get("audit") or {}).get("verdicts") or {}).get("drop_threshold")
    matrix = None
    if verdicts is not None:
        all_factors = (params.get("biased_mnist") or {}).get("biased_factors") or factor_order(verdicts)
        labels = biased_labels(_biased_sets(art), list(all_factors))
        matrix = build_matrix(
            verdicts,
            labels,
            _params_archs(params),
            _of_seed(art.table("audit_models"), seed),
            _seed_notes(art.table("seeds")),
            threshold,
        )
    failing = [c for c in (gate or {}).get("checks", []) if str(c.get("status", "")).lower() != "pass"]
    found: list[Finding] = []
    if gate is not None:
        found += findings.gate_findings(gate)
    if verdicts is not None:
        found += findings.factor_findings(verdicts)
        found += findings.unbiased_findings(verdicts)
        found += findings.strongest_findings(verdicts)
    if isinstance(art.document("screen"), dict):
        found += findings.screen_findings(art.document("screen"))
    morris = _of_seed(art.table("morris"), seed)
    if morris is not None:
        found += findings.easiest_cue_findings(morris, _primary_sampling(params))
    if art.table("seeds") is not None:
        found += findings.seed_findings(art.table("seeds"))
    models = _of_seed(art.table("models"), seed)
    if models is not None:
        found += findings.gap_findings(models)
    if art.table("pixel_view") is not None:
        found += findings.background_findings(_of_seed(art.table("pixel_view"), seed))
    if art.table("validation") is not None:
        found += findings.validation_findings(art.table("validation"))
    thresholds = (params.get("audit") or {}).get("verdicts") or {}
    suites = None
    if art.table("validation") is not None:
        status = findings.suite_statuses(art.table("validation"))
        suites = (int((status == "pass").sum()), len(status))
    return Summary(
        matrix,
        gate,
        failing,
        found,
        thresholds,
        art.missing("verdicts", "gate"),
        suites,
        screen_headline(art.document("screen")),
    )


# ---------------------------------------------------------------- data


def _linked_rate_table(rates: pd.DataFrame) -> Table:
    wide = rates.pivot_table(
        index=["dataset_id", "p", "split"], columns="factor", values="linked_rate", aggfunc="first", sort=False
    ).reset_index()
    datasets = {d: i for i, d in enumerate(dataset_order(rates))}
    splits = {s: i for i, s in enumerate(SPLIT_ORDER)}
    ranks = {"dataset_id": lambda s: s.map(datasets), "split": lambda s: s.map(lambda v: splits.get(v, len(splits)))}
    wide = wide.sort_values(["dataset_id", "split"], key=lambda s: ranks[s.name](s), kind="stable")
    wide.columns.name = None
    return from_frame(
        wide,
        "table-linked-rates",
        "Achieved class-linked rate per dataset, split and factor: the share of samples whose "
        "factor value is the one linked to their label. Biased factors should sit near p in train, "
        "val and test_aligned; unbiased factors and the test_unbiased split near chance (0.1).",
        style=TableStyle(labels={f: factor_label(f) for f in rates["factor"].unique()}),
    )


def data_section(art: Artefacts, params: dict) -> Section:
    section = Section("data", "Data")
    source = art.document("mnist_source")
    section.paragraphs.append(f"Source: {MNIST_SOURCE} Licence: {MNIST_LICENCE}")
    if isinstance(source, dict) and source.get("source"):
        section.paragraphs.append(f"This run read MNIST from: {source['source']}.")
    factors = (params.get("biased_mnist") or {}).get("biased_factors") or list(FACTOR_DESCRIPTIONS)
    section.tables.append(
        from_frame(
            pd.DataFrame(
                {
                    "factor": [factor_label(f) for f in factors],
                    "description": [FACTOR_DESCRIPTIONS.get(f, "") for f in factors],
                }
            ),
            "table-factors",
            "Biased-MNIST factors. For a biased factor, each sample takes the value linked to its "
            "class with probability p and one of the other values uniformly otherwise (Shrestha et al. 2021).",
            sortable=False,
        )
    )
    rates = art.table("linked_rates")
    if rates is None:
        section.missing += art.missing("linked_rates")
    else:
        section.tables.append(_linked_rate_table(rates))
    return section


# ---------------------------------------------------------------- models

MODEL_LABELS = {
    "dataset_id": "data",
    "n_params": "parameters",
    "val_acc": "val",
    "unbiased_acc": "unbiased",
    "aligned_acc": "aligned",
    "aligned_conflicting_gap": "gap",
    "train_seconds": "train s",
    "biased_factors": "biased",
}


def models_section(art: Artefacts, params: dict) -> Section:
    section = Section("models", "Models")
    models = art.table("models")
    if models is None:
        section.missing += art.missing("models")
        return section
    archs = arch_order(models, _params_archs(params))
    sizes = models.groupby("arch", as_index=False)["n_params"].first()
    sizes = sizes.set_index("arch").loc[archs].reset_index()
    section.tables.append(
        from_frame(
            sizes, "table-archs", "Architectures and their parameter counts.", style=TableStyle(labels=MODEL_LABELS)
        )
    )
    columns = [
        c
        for c in (
            "dataset_id",
            "arch",
            "seed",
            "p",
            "biased_factors",
            "n_params",
            "val_acc",
            "unbiased_acc",
            "aligned_acc",
        )
        if c in models
    ]
    columns += [c for c in models.columns if c.startswith("conflicting_acc_")]
    columns += [c for c in ("aligned_conflicting_gap", "epochs", "train_seconds", "device") if c in models]
    labels = {**MODEL_LABELS, **{f"conflicting_acc_{f}": f"conflicting {factor_label(f)}" for f in FACTOR_DESCRIPTIONS}}
    shown = models[columns]
    if "biased_factors" in shown:
        all_factors = (params.get("biased_mnist") or {}).get("biased_factors") or list(FACTOR_DESCRIPTIONS)
        readable = biased_labels(_biased_sets(art), list(all_factors))
        shown = shown.assign(biased_factors=shown["dataset_id"].map(readable).fillna(shown["biased_factors"]))
    section.tables.append(
        from_frame(
            shown,
            "table-models",
            "Accuracy of every model: validation (same bias as training), unbiased test "
            "set, bias-aligned digits and bias-conflicting digits per factor. Sort by a "
            "column to compare architectures.",
            style=TableStyle(labels=labels),
            css="wide",
        )
    )
    if models["p"].nunique() > 1:
        section.figures.append(figures.accuracy_vs_level(_of_seed(models, _primary_seed(params, models)), archs))
    return section


# ---------------------------------------------------------------- MoSIP


def mosip_section(art: Artefacts, params: dict) -> Section:
    section = Section("mosip", "MoSIP results: Morris screening on semantic factors")
    seed, sampling = _primary_seed(params, art.table("morris")), _primary_sampling(params)
    morris = _of_seed(art.table("morris"), seed)
    archs_from = morris if morris is not None else art.table("interventions")
    archs = arch_order(archs_from, _params_archs(params)) if archs_from is not None else []
    if morris is None:
        section.missing += art.missing("morris")
    else:
        main = morris[(morris["output"] == MORRIS_OUTPUT) & (morris["sampling"] == sampling)]
        if main.empty:
            section.missing.append(f"morris.csv: no rows for output {MORRIS_OUTPUT!r} and sampling {sampling!r}")
        else:
            section.figures.append(figures.mu_sigma_scatter(main, archs, MORRIS_OUTPUT))
            if main["p"].nunique() > 1:
                section.figures.append(figures.trends_vs_level(main, archs, MORRIS_OUTPUT))
        section.tables.append(_morris_table(morris))
    interventions = _of_seed(art.table("interventions"), seed)
    if interventions is None:
        section.missing += art.missing("interventions")
    else:
        section.figures.append(figures.intervention_curves(interventions[interventions["sampling"] == sampling], archs))
    order = _of_seed(art.table("order_check"), seed)
    if order is None:
        section.missing += art.missing("order_check")
    else:
        section.tables.append(
            from_frame(
                order[["dataset_id", "arch", "sampling", "order", "area", "ci_low", "ci_high", "holds"]],
                "table-order-check",
                "MoSIP's own check (Fig. 3b) per model and Morris sampling: the mean gap between the accuracy curve "
                "of re-drawing the factors in increasing and in decreasing order of mu*, over the intermediate steps, "
                "with its 95% interval over digits. Positive: the mu* order loses accuracy faster, as it should; "
                "the check holds unless the interval lies below 0.",
                print_rows=PRINT_ROWS,
                source=TABLE_PATHS["order_check"],
            )
        )
    levels = art.table("screen_levels")
    if levels is not None and not levels.empty:
        section.tables.append(
            from_frame(
                levels,
                "table-screen",
                "Leave-one-correlation-level-out screening: for each training set, the mu* threshold fitted on the "
                "verdicts of every other training set, and the share of the held-out cells (inconclusive ones left "
                "out) where 'mu* >= threshold' agrees with the interventional verdict.",
            )
        )
    interaction = _of_seed(art.table("interaction"), seed)
    if interaction is None:
        section.missing += art.missing("interaction")
    else:
        section.tables.append(
            from_frame(
                interaction,
                "table-interaction",
                "Interaction against non-linearity, per model. Under pure non-linearity the drop caused by a factor "
                "scales with its sigma whatever the order it is re-drawn in; a drop that depends on the order "
                "means the factors interact.",
                print_rows=PRINT_ROWS,
                source=TABLE_PATHS["interaction"],
            )
        )
    seeds = art.table("seeds")
    if seeds is not None and int(seeds["n_seeds"].max()) > 1:
        seeds = seeds.sort_values("seed_dependent", ascending=False, kind="stable")
        section.tables.append(
            from_frame(
                seeds,
                "table-seeds",
                "The verdict of every (training set, architecture, factor) under each training "
                "seed, the most frequent state and the share of seeds that give it; seed-dependent cells first.",
                print_rows=PRINT_ROWS,
                source=TABLE_PATHS["seeds"],
            )
        )
    return section


def _morris_table(morris: pd.DataFrame) -> Table:
    """mu*, sigma and the share of mu* per model, factor and sampling, on the true-class probability."""
    rows = morris[morris["output"] == "true_class_prob"]
    shown = [
        c
        for c in (
            "dataset_id",
            "arch",
            "sampling",
            "factor",
            "mu_star",
            "mu_star_conf",
            "sigma",
            "mu_star_share",
            "sigma_over_mu_star",
        )
        if c in rows
    ]
    return from_frame(
        rows[shown],
        "table-morris",
        "Morris statistics per model, factor and sampling on each digit's probability of its own class: mu* is "
        "the mean absolute change of that probability when the factor changes value, sigma the standard deviation "
        "of the changes. Global sampling explores the factor space uniformly (MoSIP Sec. 4); local sampling starts "
        "every trajectory at a digit of the training distribution (the analogue of MoSIP Sec. 5).",
        max_rows=400,
        print_rows=PRINT_ROWS,
        source=TABLE_PATHS["morris"],
    )


# ---------------------------------------------------------------- pixel view


def pixel_section(art: Artefacts, params: dict, n_images: int = 3) -> Section:
    section = Section("pixel", "Pixel view: where the attribution falls")
    pixel = art.table("pixel_view")
    if pixel is None:
        section.missing += art.missing("pixel_view")
        return section
    seed = _primary_seed(params, pixel)
    pixel = _seed_rows(pixel, seed)
    archs = arch_order(pixel, _params_archs(params))
    if pixel["p"].nunique() > 1:
        section.figures.append(figures.background_share_vs_level(pixel, archs))
    means = pixel.groupby(["dataset_id", "arch"], as_index=False, sort=False)["background_share"].mean()
    wide = means.pivot(index="dataset_id", columns="arch", values="background_share")
    wide = wide.loc[dataset_order(pixel), [a for a in archs if a in wide.columns]].reset_index()
    wide.columns.name = None
    section.tables.append(
        from_frame(
            wide,
            "table-background",
            "Mean background share of Sobol attribution per training dataset (rows) and architecture (columns).",
        )
    )
    for arch in archs:
        found = [(d, *read_maps(art.root, d, arch, seed)) for d in dataset_order(pixel[pixel["arch"] == arch])]
        section.missing += [problem for _, _, problem in found if problem]
        examples = [(d, m) for d, m, _ in found if m is not None]
        if examples:
            section.figures.append(figures.pixel_gallery(arch, examples, n_images))
    if not any(f.png for f in section.figures):
        section.paragraphs.append("No attribution maps (data/audit/<dataset>/<arch>/seed<seed>/maps.npz) were found.")
    return section


# ---------------------------------------------------------------- ImageNet


def imagenet_section(art: Artefacts, params: dict | None = None) -> Section | None:
    """The ImageNet section (see :mod:`shortcut_audit.report.imagenet_section`), or None when
    that stage has produced no table."""
    methods = _dotted(params or {}, "imagenet.methods") or []
    return imagenet.imagenet_section(art.root, art.document("imagenet_metrics"), [str(m) for m in methods])


# ---------------------------------------------------------------- validation


def _result_lists(result: dict):
    """(table name, GX results list) pairs of a suite document: GX's own ``results`` at the
    top level, or one entry per validated table under ``tables``."""
    if isinstance(result.get("results"), list):
        yield "", result["results"]
    for table in result.get("tables") or []:
        if isinstance(table, dict) and isinstance(table.get("results"), list):
            yield str(table.get("table", "")), table["results"]


def _failed_expectations(result: dict) -> list[dict]:
    """Failing expectations of one Great Expectations suite result, flattened for a table."""
    rows = []
    for table, results in _result_lists(result):
        for item in results:
            if not isinstance(item, dict) or item.get("success", True):
                continue
            config = item.get("expectation_config") or {}
            kwargs = {k: v for k, v in (config.get("kwargs") or {}).items() if k != "batch_id"}
            outcome = item.get("result") or {}
            unexpected = outcome.get("partial_unexpected_list") or []
            rows.append(
                {
                    "table": table,
                    "check": str(config.get("description") or ""),
                    "expectation": config.get("type") or config.get("expectation_type", "?"),
                    "arguments": ", ".join(f"{k}={v}" for k, v in sorted(kwargs.items())),
                    "observed": str(outcome.get("observed_value", "")),
                    "unexpected examples": ", ".join(map(str, unexpected[:5])),
                }
            )
    return rows


def _drop_empty_columns(df: pd.DataFrame) -> pd.DataFrame:
    return df[[c for c in df.columns if (df[c].astype(str) != "").any()]]


def validation_section(art: Artefacts) -> Section:
    section = Section("validation", "Validation")
    summary = art.table("validation")
    if summary is None:
        section.missing += art.missing("validation")
        return section
    summary = summary.assign(status=findings.suite_statuses(summary))
    first = ["suite", "status"]
    section.tables.append(
        from_frame(
            summary[first + [c for c in summary.columns if c not in first]],
            "table-validation",
            "Every Great Expectations suite of the run: status (pass, fail or skipped "
            "when it evaluated nothing), expectations evaluated and failed.",
            style=TableStyle(status_columns=("status",)),
        )
    )
    for suite, result in validation_documents(art.root).items():
        failed = _failed_expectations(result)
        if failed:
            section.tables.append(
                from_frame(
                    _drop_empty_columns(pd.DataFrame(failed)),
                    f"table-failed-{suite}",
                    f"Failing expectations of suite {suite}.",
                    max_rows=50,
                )
            )
    return section


# ---------------------------------------------------------------- provenance


def _run_seconds(art: Artefacts) -> dict[str, float]:
    seconds = {}
    models = art.table("models")
    if models is not None and "train_seconds" in models:
        seconds["training (sum over models)"] = float(models["train_seconds"].sum())
    for key, label in (("audit_metrics", "factor audit"), ("imagenet_metrics", "ImageNet stage")):
        doc = art.document(key)
        if isinstance(doc, dict):
            total = sum(float(v) for k, v in doc.items() if k.endswith("seconds") and isinstance(v, (int, float)))
            if total:
                seconds[label] = total
    return seconds


def _devices(art: Artefacts, params: dict) -> tuple[str, ...]:
    models = art.table("models")
    if models is not None and "device" in models:
        devices = models["device"].astype(str)
        if "cpu_kernels" in models:
            devices = devices + " (CPU kernels " + models["cpu_kernels"].astype(str) + ")"
        return tuple(sorted(set(devices)))
    return (f"{params.get('device', 'auto')} (requested)",)


def provenance_section(prov: Provenance) -> Section:
    section = Section("provenance", "Provenance")
    git = prov.git
    dirty = {True: "yes (uncommitted changes)", False: "no", None: "unknown"}[git.dirty]
    facts = [
        ("report id", prov.report_id),
        ("git commit", git.commit),
        ("working tree dirty", dirty),
        ("report date", prov.created_iso or "not fixed (SOURCE_DATE_EPOCH unset)"),
        ("device(s)", ", ".join(prov.devices)),
        ("Python", prov.python),
    ]
    facts += [(f"run time: {k}", f"{format_number(v, 1)} s") for k, v in prov.run_seconds.items()]
    section.tables.append(
        from_frame(
            pd.DataFrame(facts, columns=["item", "value"]),
            "table-provenance",
            "What produced this report. The report id hashes the commit, dvc.lock, "
            "the parameters and the package versions.",
            sortable=False,
        )
    )
    section.tables.append(
        from_frame(
            pd.DataFrame(sorted(prov.packages.items()), columns=["package", "version"]),
            "table-packages",
            "Package versions.",
            sortable=False,
        )
    )
    if prov.stages:
        rows = [
            {"stage": s.name, "outputs": "; ".join(f"{p} {h[:12]}" for p, h in s.outs), "digest": s.digest}
            for s in prov.stages
        ]
        section.tables.append(
            from_frame(
                pd.DataFrame(rows),
                "table-stages",
                "Stages recorded in dvc.lock, with the content hash of each output and "
                "a digest over all dependency and output hashes of the stage.",
                max_rows=500,
            )
        )
    else:
        section.missing.append("dvc.lock: not found (the pipeline has not been run with dvc repro)")
    section.paragraphs.append(yaml.safe_dump(prov.params, sort_keys=False, default_flow_style=None).rstrip())
    return section


# ---------------------------------------------------------------- method notes


def _dotted(params: dict, key: str):
    node = params
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def budget_notes(params: dict) -> list[str]:
    """Where the run used a smaller budget than the papers."""
    notes = []
    for key, (paper, what) in PAPER_SETTINGS.items():
        value = _dotted(params, key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < paper:
            notes.append(
                f"{what.capitalize()}: {value} in this run against {paper} in the paper setting "
                f"({key}); estimates are noisier than the paper's."
            )
    return notes


def coverage_notes(art: Artefacts, params: dict) -> list[str]:
    """What the run did not produce: absent stages, models or methods missing from the tables."""
    notes = [f"Not available: {problem}." for problem in art.problems.values() if "not found" in problem]
    expected = {(d, a) for d in (_dotted(params, "biased_mnist.datasets") or []) for a in _params_archs(params)}
    verdicts = art.table("verdicts")
    if verdicts is not None and expected:
        audited = set(zip(verdicts["dataset_id"].astype(str), verdicts["arch"].astype(str)))
        absent = sorted(expected - audited)
        if absent:
            notes.append(
                f"{len(absent)} model(s) of the sweep have no verdicts: "
                + ", ".join(f"{a} on {d}" for d, a in absent[:8])
                + "."
            )
    imagenet = imagenet_tables(art.root)
    if not imagenet:
        notes.append("The ImageNet stage produced no tables; the ImageNet section is omitted.")
    else:
        present = {str(v) for t in imagenet.values() for c in ("method",) if c in t for v in t[c].unique()}
        wanted = [str(m) for m in (_dotted(params, "imagenet.methods") or [])]
        missing = [m for m in wanted if present and m not in present]
        if missing:
            notes.append(f"ImageNet methods requested but absent from the tables: {', '.join(missing)}.")
    return notes


def reproduction_notes(art: Artefacts) -> list[str]:
    """Which of the papers' qualitative results this run reproduces, decided from its numbers."""
    notes = []
    verdicts = art.table("verdicts")
    if verdicts is not None:
        unbiased = findings.unbiased_findings(verdicts)
        if unbiased:
            ok = unbiased[0].kind == "ok"
            notes.append(
                ("Reproduced" if ok else "Not reproduced")
                + ": models trained without correlation rely on no factor (MoSIP, Biased-MNIST at p = 0.1)."
            )
    order = art.table("order_check")
    if order is not None and not order.empty:
        held = int(order["holds"].astype(bool).sum())
        notes.append(
            f"MoSIP's order check (Fig. 3b: re-drawing in mu* order loses accuracy at least as fast) "
            f"holds for {held} of {len(order)} (model, sampling) pairs."
        )
    pixel = art.table("pixel_view")
    if pixel is not None:
        found = findings.background_findings(pixel)
        if found:
            rises = " rises " in found[0].text
            notes.append(
                ("Reproduced" if rises else "Not reproduced")
                + ": attribution moves to the background as the background bias grows."
            )
    return notes


def method_section(art: Artefacts, params: dict) -> Section:
    section = Section("method", "Method notes and limitations")
    audit = params.get("audit") or {}
    threshold = (audit.get("verdicts") or {}).get("drop_threshold", "?")
    interventions = audit.get("interventions") or {}
    section.paragraphs.append(
        "The audit's answer is interventional. On held-out digits from the model's training distribution that it "
        "classifies correctly, every subset of factors is re-drawn independently of the label "
        f"({interventions.get('repetitions', '?')} re-draws per digit, starting from "
        f"{interventions.get('n_digits', '?')} digits); a factor's verdict statistic is its Shapley share of the "
        "accuracy drop (its marginal cost averaged over every order of re-drawing the factors). The 95% interval "
        "is a bootstrap over digits of each digit's mean over its re-draws, which covers both the sample of digits "
        f"and the re-draws. Relied on: the lower bound reaches {threshold}; not relied on: the upper bound stays "
        "below it; inconclusive otherwise. While a verdict is inconclusive the number of digits doubles (then the "
        f"re-draws), up to {interventions.get('max_doublings', '?')} times."
    )
    section.paragraphs.append(
        "Morris screening (MoSIP) is the cheap screen and the explanation, not the verdict: its mu* and sigma are "
        "shown beside each verdict, and its quality is measured against the verdicts (AUROC, Spearman, MoSIP's "
        "order check and a leave-one-correlation-level-out threshold). Global sampling takes elementary effects "
        "at uniformly random factor combinations, where the cues disagree with each other; local sampling starts "
        "at the digits' own, aligned values. The two can disagree with the interventional verdict where models use "
        "several redundant cues partly."
    )
    section.findings += [Finding(n, "info") for n in reproduction_notes(art)]
    section.findings += [Finding(n, "info") for n in budget_notes(params) + coverage_notes(art, params)]
    return section


# ---------------------------------------------------------------- assembly


def build_context(root: Path, environ: dict | None = None) -> ReportContext:
    """Load every artefact under ``root`` and assemble the report context."""
    root = Path(root)
    params = load_params(root / "params.yaml") if (root / "params.yaml").is_file() else {}
    art = load(root)
    prov = collect(root, params, _devices(art, params), _run_seconds(art), environ)
    sections = [
        data_section(art, params),
        models_section(art, params),
        mosip_section(art, params),
        pixel_section(art, params, min(GALLERY_IMAGES, int(_dotted(params, "audit.pixel_view.n_images") or 1))),
    ]
    # ImageNet opens with the real shortcut (the watermark), then how faithful the explainers are.
    sections += [s for s in (watermark_section(root), imagenet_section(art, params)) if s is not None]
    sections += [validation_section(art), provenance_section(prov), method_section(art, params)]
    notices = [] if (root / "params.yaml").is_file() else ["params.yaml: not found; parameters are unknown."]
    return ReportContext(TITLE, prov, summary_section(art, params), sections, notices)
