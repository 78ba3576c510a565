"""The ImageNet section of the report: models, method fidelity, convergence,
cross-architecture analyses, region masking, ensembles and a heatmap gallery.

The tables are those of :mod:`shortcut_audit.imagenet.pipeline` (``data/imagenet/``).
Each part of the section needs its own tables; a part whose table is missing or
lacks a documented column shows a notice in its place while the rest still renders.
CSV files outside the documented set are shown as plain tables at the end.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from shortcut_audit.io import ArtefactError, load_npz
from shortcut_audit.report import imagenet_figures as figs
from shortcut_audit.report.artefacts import IMAGENET_DIR, listed, read_optional_table
from shortcut_audit.report.findings import Finding
from shortcut_audit.report.sections import Section
from shortcut_audit.report.tables import Table, TableStyle, format_number, from_frame

LOG = logging.getLogger(__name__)

#: Columns the report reads from each ImageNet table (the stage's documented schema).
COLUMNS = {
    "models": ("model", "status", "reason", "source", "input_size", "n_params", "is_reference", "n_images",
               "target_kind", "top1_accuracy", "mean_target_probability", "forwards", "seconds",
               "forward_seconds"),
    "fidelity": ("model", "method", "image_id", "metric", "value", "direction", "forwards", "explain_seconds",
                 "reference"),
    "curves": ("model", "method", "mode", "step", "fraction", "score"),
    "convergence": ("model", "method", "image_id", "budget", "forwards", "spearman"),
    "overlap": ("model", "reference", "image_id", "top_fraction", "overlap_share", "n_overlapping", "n_differing",
                "mu_star_overlapping", "mu_star_differing", "sigma_overlapping", "sigma_differing"),
    "ratio": ("model", "image_id", "threshold", "n_relevant", "n_ratio", "mean_ratio"),
    "interactions": ("model", "image_id", "region_a", "region_b", "interaction", "interacts"),
    "masking": ("model", "which", "scope", "fraction", "accuracy", "score_change"),
    "ensembles": ("model", "kind", "normalisation", "aggregation", "members", "n_members", "deletion_auc",
                  "insertion_auc"),
}
METRICS = {"deletion_auc": ("deletion AUC", "lower"), "insertion_auc": ("insertion AUC", "higher"),
           "naopc": ("nAOPC", "higher"), "l1_to_white_box": ("L1 to white box", "lower")}
ARROWS = {"lower": "\u2193", "higher": "\u2191"}
GALLERY_IMAGES = 4
BASELINES = ("rise", "occlusion")


def _truthy(values: pd.Series) -> pd.Series:
    """Booleans from a column read from CSV (bool dtype or the strings True/False)."""
    if pd.api.types.is_bool_dtype(values):
        return values
    return values.astype(str).str.strip().str.lower().isin(("true", "1", "yes"))


# ---------------------------------------------------------------- loading

def load_tables(root: Path) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """The ImageNet tables under ``root`` and, per documented table, why it is unavailable.

    Returns
    -------
    (dict, dict)
        Table name -> DataFrame (documented tables that match their schema and have
        rows, plus any other CSV of the folder), and table name -> problem message.
    """
    folder = Path(root) / IMAGENET_DIR
    tables, problems = {}, {}
    for name, required in COLUMNS.items():
        table, problem = read_optional_table(folder / f"{name}.csv", required)
        if table is not None and table.empty:  # e.g. overlap with one model loaded: nothing to draw
            table, problem = None, f"{name}.csv: no rows"
        if table is None:
            problems[name] = f"{IMAGENET_DIR}/{problem}"
        else:
            tables[name] = table
    for path in listed(folder, "*.csv"):
        if path.stem not in COLUMNS:
            table, problem = read_optional_table(path)
            if table is None:
                LOG.warning("report: %s", problem)
            else:
                tables[path.stem] = table
    return tables, problems


def load_gallery(root: Path) -> dict[str, np.ndarray] | None:
    """Images, ids, targets and per-method maps of ``maps.npz``; None when absent or unusable."""
    path = Path(root) / IMAGENET_DIR / "maps.npz"
    if not path.is_file():
        return None
    try:
        arrays = {k: v for k, v in load_npz(path).items()
                  if k in ("images", "image_ids", "targets") or k.startswith("map_")}
    except (OSError, ArtefactError) as err:
        LOG.warning("report: %s", err)
        return None
    if "images" not in arrays or not any(k.startswith("map_") for k in arrays):
        return None
    return arrays


def method_order(tables: dict[str, pd.DataFrame], wanted: list[str]) -> list[str]:
    """Methods of the tables, in params order first, then in order of appearance."""
    seen: list[str] = []
    for name in ("fidelity", "curves", "convergence"):
        if name in tables:
            seen += [str(m) for m in pd.unique(tables[name]["method"]) if str(m) not in seen]
    return [m for m in wanted if m in seen] + [m for m in seen if m not in wanted]


def reference_model(tables: dict[str, pd.DataFrame]) -> str | None:
    """The reference architecture: flagged in models.csv, else the first model explained."""
    models = tables.get("models")
    if models is not None:
        flagged = models[_truthy(models["is_reference"])]
        if len(flagged):
            return str(flagged["model"].iloc[0])
    for name in ("fidelity", "curves"):
        if name in tables and len(tables[name]):
            return str(tables[name]["model"].iloc[0])
    return None


# ---------------------------------------------------------------- tables

def status_table(models: pd.DataFrame) -> Table:
    """Every configured model: loaded or skipped, and why."""
    shown = models.assign(is_reference=np.where(_truthy(models["is_reference"]), "reference", ""))
    return from_frame(shown[["model", "status", "source", "is_reference", "reason"]], "table-imagenet-status",
                      "ImageNet classifiers configured for the run. A skipped model (its weights are not available "
                      "locally; nothing is downloaded) is left out of every other table and figure; the reason "
                      "says where the weights were looked for.",
                      style=TableStyle(labels={"is_reference": "role"}, status_columns=("status",)))


def models_table(models: pd.DataFrame) -> Table | None:
    """Size, accuracy and cost of the loaded models."""
    loaded = models[models["status"].astype(str) == "loaded"]
    if loaded.empty:
        return None
    shown = loaded.assign(
        top1_accuracy=loaded["top1_accuracy"].where(loaded["top1_accuracy"] >= 0),
        forward_share=loaded["forward_seconds"] / loaded["seconds"].where(loaded["seconds"] > 0),
    )
    columns = ["model", "input_size", "n_params", "n_images", "target_kind", "top1_accuracy",
               "mean_target_probability", "forwards", "seconds", "forward_share"]
    labels = {"input_size": "input px", "n_params": "parameters", "n_images": "images", "target_kind": "target",
              "top1_accuracy": "top-1", "mean_target_probability": "target probability",
              "forward_share": "forward share"}
    return from_frame(shown[columns], "table-imagenet-models",
                      "Loaded models: input resolution, size, images explained and the class explained (true, "
                      "or predicted when the images carry no labels; top-1 is then blank), mean probability of "
                      "that class, forward passes and seconds of the whole run, and the share of that time spent "
                      "in forward passes.", style=TableStyle(labels=labels))


def _mark(table: Table, row: int, column: int, css: str) -> None:
    cell = table.rows[row][column]
    table.rows[row][column] = replace(cell, css=f"{cell.css} {css}".strip())


def _mark_best(table: Table, frame: pd.DataFrame, column: str, direction: str, within: str | None = None) -> None:
    """Add the ``best`` class to the best value of ``column`` (per ``within`` group)."""
    position = list(frame.columns).index(column)
    groups = frame.groupby(within, sort=False) if within else [(None, frame)]
    for _, group in groups:
        values = group[column].dropna()
        if values.empty:
            continue
        best = values.min() if direction == "lower" else values.max()
        for index in values.index[values == best]:
            _mark(table, frame.index.get_loc(index), position, "best")


def fidelity_frame(fidelity: pd.DataFrame, methods: list[str]) -> tuple[pd.DataFrame, dict[str, str]]:
    """Mean of every metric per model x method, and each metric's better direction."""
    directions = {m: METRICS.get(m, (m, "higher"))[1] for m in fidelity["metric"].unique()}
    directions.update(fidelity.drop_duplicates("metric").set_index("metric")["direction"].astype(str).to_dict())
    metrics = [m for m in METRICS if m in directions] + sorted(m for m in directions if m not in METRICS)
    wide = fidelity.pivot_table(index=["model", "method"], columns="metric", values="value", aggfunc="mean")
    extra = fidelity.groupby(["model", "method"]).agg(images=("image_id", "nunique"), forwards=("forwards", "mean"),
                                                      seconds=("explain_seconds", "mean"))
    frame = wide.reindex(columns=metrics).join(extra).reset_index()
    rank = {m: i for i, m in enumerate(methods)}
    frame = frame.sort_values(["model", "method"], key=lambda s: s.map(rank) if s.name == "method" else s,
                              kind="stable").reset_index(drop=True)
    frame.columns.name = None
    return frame, directions


def fidelity_table(fidelity: pd.DataFrame, methods: list[str]) -> Table:
    """Mean deletion/insertion AUC, nAOPC and L1-to-white-box per model x method, best in bold."""
    frame, directions = fidelity_frame(fidelity, methods)
    labels = {m: f"{METRICS.get(m, (m.replace('_', ' '), ''))[0]} {ARROWS.get(directions[m], '')}".strip()
              for m in directions}
    labels.update({"forwards": "forwards / image", "seconds": "seconds / image"})
    white = sorted({r for r in fidelity.loc[fidelity["metric"] == "l1_to_white_box", "reference"].astype(str) if r})
    note = f" L1 to white box compares a black-box map with its white-box counterpart ({', '.join(white)})." \
        if white else ""
    table = from_frame(frame, "table-imagenet-fidelity",
                       "Fidelity of each attribution method, mean over the images (arrows: the better direction; "
                       "bold: best method of the model). Deletion AUC is the area under the class score while the "
                       "most important pixels are removed first, insertion AUC while they are added first; nAOPC "
                       "is the normalised area over the perturbation curve." + note,
                       style=TableStyle(labels=labels))
    for metric, direction in directions.items():
        _mark_best(table, frame, metric, direction, within="model")
    return table


def interaction_shares(interactions: pd.DataFrame) -> pd.DataFrame:
    """Per model: images, pairs tested, interacting pairs, their share and the mean |interaction|."""
    data = interactions.assign(interacts=_truthy(interactions["interacts"]),
                               magnitude=interactions["interaction"].abs())
    shares = data.groupby("model", sort=True).agg(images=("image_id", "nunique"), pairs=("interacts", "size"),
                                                  interacting=("interacts", "sum"),
                                                  mean_abs_interaction=("magnitude", "mean")).reset_index()
    shares.insert(4, "share", shares["interacting"] / shares["pairs"].where(shares["pairs"] > 0))
    return shares.assign(interacting=shares["interacting"].astype(int))


def interaction_table(shares: pd.DataFrame) -> Table:
    return from_frame(shares, "table-imagenet-interactions",
                      "Interaction shares: among the top-5 Morris regions of each image, the pairs whose joint "
                      "masking departs from the sum of the single maskings, per model.",
                      style=TableStyle(labels={"pairs": "pairs tested", "interacting": "pairs interacting",
                                               "share": "share interacting",
                                               "mean_abs_interaction": "mean |interaction|"}))


def ensembles_frame(ensembles: pd.DataFrame, model: str) -> pd.DataFrame:
    """Table-1 shape for one model: aggregation rows x (normalisation, metric) columns."""
    data = ensembles[(ensembles["model"] == model) & (ensembles["kind"] == "ensemble")]
    norms = [str(n) for n in pd.unique(data["normalisation"])]
    aggs = [str(a) for a in pd.unique(data["aggregation"])]
    frame = pd.DataFrame({"aggregation": aggs})
    for norm in norms:
        part = data[data["normalisation"] == norm].drop_duplicates("aggregation").set_index("aggregation")
        for metric in ("deletion_auc", "insertion_auc"):
            frame[f"{norm}:{metric}"] = frame["aggregation"].map(part[metric])
    return frame


def best_base(ensembles: pd.DataFrame, model: str) -> dict[str, float]:
    """Best single-method deletion (lowest) and insertion (highest) AUC of ``model``."""
    base = ensembles[(ensembles["model"] == model) & (ensembles["kind"] == "base")]
    if base.empty:
        return {}
    return {"deletion_auc": float(base["deletion_auc"].min()), "insertion_auc": float(base["insertion_auc"].max())}


def ensembles_table(ensembles: pd.DataFrame, model: str) -> Table | None:
    """Every aggregation x normalisation of ``model`` by deletion and insertion; best in bold,
    cells that beat the best single method shaded."""
    frame = ensembles_frame(ensembles, model)
    if frame.empty:
        return None
    base = best_base(ensembles, model)
    labels = {c: f"{c.split(':')[0]} {'del.' if c.endswith('deletion_auc') else 'ins.'} "
                 f"{ARROWS['lower'] if c.endswith('deletion_auc') else ARROWS['higher']}" for c in frame.columns[1:]}
    members = ", ".join(sorted({str(m) for m in ensembles.loc[(ensembles["model"] == model)
                                                                & (ensembles["kind"] == "ensemble"), "members"]}))
    base_text = (f" The best single method scores deletion {format_number(base['deletion_auc'])} and insertion "
                 f"{format_number(base['insertion_auc'])}; shaded cells beat it.") if base else ""
    table = from_frame(frame, f"table-imagenet-ensembles-{_slug(model)}",
                       f"Ensembles of {model} (members: {members.replace('+', ', ')}): rows are aggregations, "
                       "columns normalisations with their deletion (lower is better) and insertion (higher is "
                       f"better) AUC, as in Table 1 of the ensemble paper. Bold: best cell of each metric.{base_text}",
                       style=TableStyle(labels=labels), css="wide")
    for metric, direction in (("deletion_auc", "lower"), ("insertion_auc", "higher")):
        columns = [c for c in frame.columns[1:] if c.endswith(metric)]
        values = frame[columns]
        best = values.min().min() if direction == "lower" else values.max().max()
        for column in columns:
            position = list(frame.columns).index(column)
            for row, value in enumerate(frame[column]):
                if pd.isna(value):
                    continue
                if value == best:
                    _mark(table, row, position, "best")
                if metric in base and (value < base[metric] if direction == "lower" else value > base[metric]):
                    _mark(table, row, position, "beats-base")
    return table


def profile_table(metrics: dict) -> Table | None:
    """Settings of the ImageNet run (``profile`` of metrics.json) and its run time."""
    profile = metrics.get("profile") if isinstance(metrics, dict) else None
    items = dict(profile) if isinstance(profile, dict) else {}
    for key in ("reference_model", "seconds"):
        if isinstance(metrics, dict) and isinstance(metrics.get(key), (int, float, str)):
            items[key] = metrics[key]
    if not items:
        return None
    values = [", ".join(map(str, v)) if isinstance(v, list) else
              format_number(v) if isinstance(v, float) else str(v) for v in items.values()]
    return from_frame(pd.DataFrame({"setting": [k.replace("_", " ") for k in items], "value": values}),
                      "table-imagenet-profile",
                      "Profile of the ImageNet run: image source, resolution, budgets and device. The default "
                      "profile uses fewer images and forward passes than the papers, so its numbers are noisier.",
                      sortable=False)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in str(text).lower()).strip("-") or "model"


# ---------------------------------------------------------------- findings

def fidelity_findings(fidelity: pd.DataFrame, model: str | None) -> list[Finding]:
    """Sobol against RISE and Occlusion by deletion AUC on the reference model."""
    data = fidelity[(fidelity["model"] == model) & (fidelity["metric"] == "deletion_auc")]
    means = data.groupby("method")["value"].mean()
    rivals = [m for m in BASELINES if m in means]
    if "sobol" not in means or not rivals:
        return []
    others = ", ".join(f"{m} {format_number(means[m])}" for m in rivals)
    best = bool(all(means["sobol"] <= means[m] for m in rivals))
    verdict = "lower than" if best else "not lower than every one of"
    return [Finding(f"On {model}, Sobol's mean deletion AUC is {format_number(means['sobol'])}, {verdict} "
                    f"{others} (lower is better; the Sobol paper reports Sobol ahead).", "ok" if best else "alert")]


def convergence_findings(convergence: pd.DataFrame) -> list[Finding]:
    """Sobol against RISE in Spearman-to-converged at the largest budget both reached."""
    means = convergence.groupby(["method", "budget"])[["spearman", "forwards"]].mean()
    if not {"sobol", "rise"} <= set(means.index.get_level_values("method")):
        return []
    budgets = sorted(set(means.loc["sobol"].index) & set(means.loc["rise"].index))
    if not budgets:
        return []
    sobol, rise = means.loc[("sobol", budgets[-1])], means.loc[("rise", budgets[-1])]
    ahead = sobol["spearman"] >= rise["spearman"]
    return [Finding(f"At a budget of {format_number(budgets[-1])} forward passes, Sobol's maps reach a Spearman "
                    f"correlation of {format_number(sobol['spearman'])} with a converged run against "
                    f"{format_number(rise['spearman'])} for RISE (the Sobol paper: 0.8 against 0.65 at 1,000).",
                    "ok" if ahead else "alert")]


# ---------------------------------------------------------------- parts

class _Builder:
    """Adds the parts of the ImageNet section, each guarded by the tables it needs."""

    def __init__(self, section: Section, tables: dict, problems: dict, methods: list[str], reference: str | None):
        self.section, self.tables, self.problems = section, tables, problems
        self.methods, self.reference = methods, reference

    def need(self, *names: str) -> bool:
        """True when every named table is available; adds a notice for those that are not."""
        absent = [self.problems.get(n, f"{IMAGENET_DIR}/{n}.csv: not found") for n in names if n not in self.tables]
        if absent:
            self.section.add("missing", absent)
        return not absent

    def models(self) -> None:
        self.section.add("heading", "Models")
        if self.need("models"):
            self.section.add("table", status_table(self.tables["models"]))
            table = models_table(self.tables["models"])
            if table is not None:
                self.section.add("table", table)

    def fidelity(self) -> None:
        self.section.add("heading", "Fidelity of the attribution methods")
        found = []
        if "fidelity" in self.tables:
            found += fidelity_findings(self.tables["fidelity"], self.reference)
        if "convergence" in self.tables:
            found += convergence_findings(self.tables["convergence"])
        if found:
            self.section.add("findings", found)
        if self.need("fidelity"):
            self.section.add("table", fidelity_table(self.tables["fidelity"], self.methods))
        if self.need("curves"):
            curves = self.tables["curves"]
            model = self.reference if self.reference in set(curves["model"]) else str(curves["model"].iloc[0])
            self.section.add("figure", figs.fidelity_curves(curves, model, self.methods))
        if self.need("convergence"):
            self.section.add("figure", figs.convergence_plot(self.tables["convergence"], self.methods))

    def cross_architecture(self) -> None:
        self.section.add("heading", "Cross-architecture analyses")
        if self.need("overlap"):
            self.section.add("figure", figs.overlap_plot(self.tables["overlap"]))
        if self.need("ratio"):
            self.section.add("figure", figs.ratio_plot(self.tables["ratio"]))
        if self.need("interactions"):
            shares = interaction_shares(self.tables["interactions"])
            self.section.add("figure", figs.interaction_plot(shares))
            self.section.add("table", interaction_table(shares))

    def masking(self) -> None:
        self.section.add("heading", "Region masking")
        if self.need("masking"):
            self.section.add("figure", figs.masking_plot(self.tables["masking"]))

    def ensembles(self) -> None:
        self.section.add("heading", "Ensembles of explanations")
        if not self.need("ensembles"):
            return
        ensembles = self.tables["ensembles"]
        for model in sorted(ensembles["model"].astype(str).unique()):
            table = ensembles_table(ensembles, model)
            if table is not None:
                self.section.add("table", table)
        ablation = ensembles[ensembles["kind"] == "size_ablation"]
        if not ablation.empty:
            models = ablation["model"].unique()
            base = best_base(ensembles, str(models[0])) if len(models) == 1 else {}
            self.section.add("figure", figs.ensemble_size_plot(ablation, base))

    def gallery(self, arrays: dict | None) -> None:
        self.section.add("heading", "Example heatmaps")
        if arrays is None:
            self.section.add("missing", [f"{IMAGENET_DIR}/maps.npz: not found, unreadable or without maps"])
            return
        methods = [m for m in self.methods if f"map_{m}" in arrays]
        methods += sorted(k[4:] for k in arrays if k.startswith("map_") and k[4:] not in methods)
        self.section.add("figure", figs.heatmap_gallery(arrays, methods, GALLERY_IMAGES))

    def profile(self, metrics) -> None:
        table = profile_table(metrics)
        if table is not None:
            self.section.add("heading", "Run profile")
            self.section.add("table", table)

    def others(self) -> None:
        extra = [n for n in self.tables if n not in COLUMNS]
        if extra:
            self.section.add("heading", "Other tables")
        for name in extra:
            self.section.add("table", from_frame(self.tables[name], f"table-imagenet-{_slug(name)}",
                                                 f"ImageNet table {name}.csv."))


def imagenet_section(root: Path, metrics=None, wanted_methods: list[str] | None = None) -> Section | None:
    """The ImageNet section, or None when the stage has written no table at all.

    Parameters
    ----------
    root : Path
        Repository root holding ``data/imagenet/``.
    metrics : dict, optional
        The stage's ``metrics.json`` (its ``profile`` becomes a table).
    wanted_methods : list of str, optional
        Methods of ``imagenet.methods`` in params, which set the method order.
    """
    tables, problems = load_tables(root)
    if not tables:
        return None
    methods = method_order(tables, [str(m) for m in wanted_methods or []])
    section = Section("imagenet", "ImageNet: pretrained classifiers")
    section.paragraphs.append(
        "Attribution methods explained on ImageNet-pretrained classifiers: how faithful each method's map is "
        "(deletion, insertion, nAOPC), how fast it converges, and, as in MoSIP Section 5, whether architectures "
        "rely on the same image regions.")
    build = _Builder(section, tables, problems, methods, reference_model(tables))
    build.models()
    build.fidelity()
    build.cross_architecture()
    build.masking()
    build.ensembles()
    build.gallery(load_gallery(root))
    build.profile(metrics)
    build.others()
    return section
