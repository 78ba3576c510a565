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

from shortcut_audit import schema
from shortcut_audit.io import ArtefactError, load_npz
from shortcut_audit.report import imagenet_figures as figs
from shortcut_audit.report.artefacts import IMAGENET_DIR, listed, read_optional_table
from shortcut_audit.report.findings import Finding
from shortcut_audit.report.sections import Section
from shortcut_audit.report.tables import Table, TableStyle, format_number, from_frame
from shortcut_audit.stats import mean_interval

LOG = logging.getLogger(__name__)

#: Columns the report reads from each ImageNet table (the stage's documented schema).
#: The ImageNet stage's tables (declared in :mod:`shortcut_audit.schema`), by file stem.
COLUMNS = {
    key.split("/", 1)[1]: tuple(schema.table(key).columns) for key in schema.TABLES if key.startswith("imagenet/")
}
METRICS = {
    "deletion_auc": ("deletion AUC", "lower"),
    "insertion_auc": ("insertion AUC", "higher"),
    "naopc": ("nAOPC", "higher"),
    "l1_to_white_box": ("L1 to white box", "lower"),
}
ARROWS = {"lower": "\u2193", "higher": "\u2191"}
GALLERY_IMAGES = 4
BASELINES = ("rise", "occlusion")
#: White-box maps of the L1 comparison (GEEX paper, Fig. 3), in display order, with their labels.
WHITE_BOX = {"gradient": "gradient", "smoothgrad": "SmoothGrad", "integrated_gradients": "Integrated Gradients"}
#: Spearman to the converged map the Sobol paper reads off Fig. 2 (Sec. 4.3), by method and forwards.
PAPER_CONVERGENCE = {("sobol", 1000): 0.8, ("rise", 1000): 0.65, ("sobol", 7000): 0.97, ("rise", 7000): 0.73}
REFERENCE_MAPS = ("random", "constant")
SCORES = ("deletion_auc", "insertion_auc", "naopc")
#: Mahlau & Nolde (2022) Table 1, ImageNet column (z-score normalisation): (insertion AUC, deletion AUC).
PAPER_TABLE_1 = {
    "mean": (0.3808, 0.0296),
    "rbm": (0.3827, 0.0301),
    "var": (0.3819, 0.0296),
    "ucb": (0.3896, 0.0298),
    "percentile": (0.3713, 0.0295),
    "pi": (0.3098, 0.0304),
    "ei": (0.3397, 0.0298),
    "ci": (0.2646, 0.0324),
    "api": (0.3546, 0.0299),
    "aei": (0.3692, 0.0298),
}


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
    for name in COLUMNS:
        table, problem = read_optional_table(folder / f"{name}.csv")
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
        arrays = {
            k: v for k, v in load_npz(path).items() if k in ("images", "image_ids", "targets") or k.startswith("map_")
        }
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
    return from_frame(
        shown[["model", "status", "source", "is_reference", "reason"]],
        "table-imagenet-status",
        "ImageNet classifiers configured for the run. A skipped model (its weights are not available "
        "locally; nothing is downloaded) is left out of every other table and figure; the reason "
        "says where the weights were looked for.",
        style=TableStyle(labels={"is_reference": "role"}, status_columns=("status",)),
    )


def models_table(models: pd.DataFrame) -> Table | None:
    """Size, accuracy and cost of the loaded models."""
    loaded = models[models["status"].astype(str) == "loaded"]
    if loaded.empty:
        return None
    shown = loaded.assign(
        top1_accuracy=loaded["top1_accuracy"].where(loaded["top1_accuracy"] >= 0),
        forward_share=loaded["forward_seconds"] / loaded["seconds"].where(loaded["seconds"] > 0),
    )
    columns = [
        "model",
        "input_size",
        "n_params",
        "n_images",
        "target_kind",
        "top1_accuracy",
        "mean_target_probability",
        "forwards",
        "seconds",
        "forward_share",
    ]
    labels = {
        "input_size": "input px",
        "n_params": "parameters",
        "n_images": "images",
        "target_kind": "target",
        "top1_accuracy": "top-1",
        "mean_target_probability": "target probability",
        "forward_share": "forward share",
    }
    return from_frame(
        shown[columns],
        "table-imagenet-models",
        "Loaded models: input resolution, size, images explained and the class explained (true, "
        "or predicted when the images carry no labels; top-1 is then blank), mean probability of "
        "that class, forward passes and seconds of the whole run, and the share of that time spent "
        "in forward passes.",
        style=TableStyle(labels=labels),
    )


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
    extra = fidelity.groupby(["model", "method"]).agg(
        images=("image_id", "nunique"), forwards=("forwards", "mean"), seconds=("explain_seconds", "mean")
    )
    frame = wide.reindex(columns=metrics).join(extra).reset_index()
    rank = {m: i for i, m in enumerate(methods)}
    frame = frame.sort_values(
        ["model", "method"], key=lambda s: s.map(rank) if s.name == "method" else s, kind="stable"
    ).reset_index(drop=True)
    frame.columns.name = None
    return frame, directions


def headline_protocol(tables: dict[str, pd.DataFrame], metrics=None) -> str:
    """Protocol of the headline numbers: ``metrics.json``'s, else the first in fidelity.csv ("" if none)."""
    if isinstance(metrics, dict) and isinstance(metrics.get("headline_protocol"), str):
        return metrics["headline_protocol"]
    fidelity = tables.get("fidelity")
    if fidelity is not None:
        named = [str(p) for p in pd.unique(fidelity["protocol"].fillna("").astype(str)) if str(p)]
        if named:
            return named[0]
    return ""


def rows_of_protocol(frame: pd.DataFrame, protocol: str) -> pd.DataFrame:
    """Rows of ``protocol`` plus the protocol-free ones (the L1 distance to a white-box map)."""
    return frame[frame["protocol"].fillna("").astype(str).isin([protocol, ""])]


def protocol_details(summary: pd.DataFrame | None) -> dict[str, str]:
    """protocol -> its description, from fidelity_summary.csv."""
    if summary is None or summary.empty:
        return {}
    return summary.drop_duplicates("protocol").set_index("protocol")["protocol_detail"].astype(str).to_dict()


def beats_random(summary: pd.DataFrame | None, protocol: str) -> dict[tuple[str, str], bool]:
    """(model, method) -> better than the random map on every score of ``protocol`` (methods only)."""
    if summary is None or summary.empty:
        return {}
    part = summary[(summary["protocol"].astype(str) == protocol) & ~summary["method"].isin(REFERENCE_MAPS)]
    flags = part.assign(beats=_truthy(part["beats_random"])).groupby(["model", "method"])["beats"].all()
    return {key: bool(value) for key, value in flags.items()}


def fidelity_table(
    fidelity: pd.DataFrame, methods: list[str], protocol: str = "", summary: pd.DataFrame | None = None
) -> Table:
    """Mean deletion/insertion AUC and nAOPC per model x method under ``protocol`` (L1 to white box:
    :func:`white_box_table`).

    The random and constant reference maps are rows of their own; bold marks the best
    method (references excluded); "beats random" comes from ``summary`` (fidelity_summary.csv).
    """
    data = rows_of_protocol(fidelity, protocol) if protocol else fidelity
    data = data[data["metric"] != "l1_to_white_box"]  # white_box_table shows the L1 distances
    frame, directions = fidelity_frame(data, [*methods, *REFERENCE_MAPS])
    flags = beats_random(summary, protocol)
    if flags:
        frame["beats_random"] = [flags.get((str(m), str(x))) for m, x in zip(frame["model"], frame["method"])]
    labels = {
        m: f"{METRICS.get(m, (m.replace('_', ' '), ''))[0]} {ARROWS.get(directions[m], '')}".strip() for m in directions
    }
    labels.update({"forwards": "forwards / image", "seconds": "seconds / image", "beats_random": "beats random"})
    detail = protocol_details(summary).get(protocol, "")
    used = f" Protocol: {protocol}" + (f" ({detail})." if detail else ".") if protocol else ""
    references = (
        (
            " The rows random (uniform noise) and constant (every pixel tied, so ranked in random order) "
            "are maps without information scored the same way; 'beats random' means better than the random "
            "map on every score by a paired interval over images (next table)."
        )
        if flags
        else ""
    )
    table = from_frame(
        frame,
        "table-imagenet-fidelity",
        "Fidelity of each attribution method, mean over the images (arrows: the better direction; "
        "bold: best method of the model). Deletion AUC is the area under the class score while the "
        "most important pixels are removed first, insertion AUC while they are added first; nAOPC "
        "is the normalised area over the perturbation curve of the class the model decided on the "
        "clean image (as in the GEEX paper)." + used + references,
        style=TableStyle(labels=labels),
    )
    marking = frame.copy()
    marking.loc[marking["method"].isin(REFERENCE_MAPS), list(directions)] = np.nan
    for metric, direction in directions.items():
        _mark_best(table, marking, metric, direction, within="model")
    return table


def white_box_table(fidelity: pd.DataFrame, methods: list[str]) -> Table | None:
    """Mean L1 distance of each black-box map to each white-box map (GEEX paper, Fig. 3); None without rows."""
    data = fidelity[fidelity["metric"] == "l1_to_white_box"]
    if data.empty:
        return None
    wide = data.pivot_table(index=["model", "method"], columns="reference", values="value", aggfunc="mean")
    references = [r for r in WHITE_BOX if r in wide.columns] + sorted(r for r in wide.columns if r not in WHITE_BOX)
    frame = wide[references].join(data.groupby(["model", "method"]).agg(images=("image_id", "nunique")))
    rank = {m: i for i, m in enumerate(methods)}
    frame = frame.reset_index().sort_values(
        ["model", "method"], kind="stable", key=lambda s: s.map(rank) if s.name == "method" else s
    )
    frame = frame.reset_index(drop=True)
    frame.columns.name = None
    labels = {r: f"{WHITE_BOX.get(r, r.replace('_', ' '))} {ARROWS['lower']}" for r in references}
    table = from_frame(
        frame,
        "table-imagenet-white-box",
        "Black-box against white-box maps, as in Fig. 3 of the GEEX paper: mean per-pixel L1 "
        "difference between a black-box map and a white-box map of the same output, each divided by "
        "its largest absolute value (0: identical, 2: opposite; lower is closer). The white-box maps "
        "are the plain gradient, SmoothGrad (the paper's white-box baseline) and Integrated "
        "Gradients, all signed channel sums; RISE is the paper's black-box contrast. Bold: closest "
        "method of the model for each white-box map.",
        style=TableStyle(labels=labels),
    )
    for reference in references:
        _mark_best(table, frame, reference, "lower", within="model")
    return table


def convergence_frame(convergence: pd.DataFrame, methods: list[str]) -> pd.DataFrame:
    """Mean and variance over images of the Spearman correlation per model, method, reference kind and budget,
    with the value the Sobol paper reports at that budget (NaN where it reports none)."""
    frame = convergence.groupby(["model", "method", "reference_kind", "budget"], as_index=False, sort=True).agg(
        forwards=("forwards", "mean"),
        images=("image_id", "nunique"),
        mean=("spearman", "mean"),
        variance=("spearman", lambda v: float(v.var(ddof=0))),
    )
    frame["paper"] = [
        PAPER_CONVERGENCE.get((m, int(round(f))), np.nan) for m, f in zip(frame["method"], frame["forwards"])
    ]
    rank = {m: i for i, m in enumerate(methods)}
    return frame.sort_values(
        ["model", "method"], kind="stable", key=lambda s: s.map(rank) if s.name == "method" else s
    ).reset_index(drop=True)


def convergence_table(convergence: pd.DataFrame, methods: list[str]) -> Table:
    """Spearman-to-converged per budget: mean, variance and the paper's value (Sobol paper, Sec. 4.3)."""
    frame = convergence_frame(convergence, methods)
    reference = convergence.get("reference_forwards")
    against = (
        f" computed with {format_number(float(reference.max()))} forward passes"
        if reference is not None and len(reference)
        else ""
    )
    labels = {
        "reference_kind": "reference",
        "forwards": "forwards / image",
        "mean": "mean Spearman \u2191",
        "variance": "variance",
        "paper": "Sobol paper",
    }
    return from_frame(
        frame,
        "table-imagenet-convergence",
        "Convergence as in Sec. 4.3 of the Sobol paper: Spearman rank correlation between a map "
        f"computed with a budget of forward passes and a converged map of the same method{against}, "
        "mean and variance over the images (reference \u201cindependent\u201d: the converged run "
        "uses another seed; \u201cnested\u201d: the same seed). The paper reads 0.8 for Sobol "
        "against 0.65 for RISE at 1,000 forwards and 0.97 against 0.73 at 7,000, with 7 x 7 masks "
        "for both, a 10,000-forward reference and 500 images; its values appear at those budgets.",
        style=TableStyle(labels=labels),
    )


def _interval_text(row) -> str:
    return f"{format_number(row['mean'])} [{format_number(row['ci_low'])}, {format_number(row['ci_high'])}]"


def fidelity_summary_table(summary: pd.DataFrame, model: str, methods: list[str], level=None) -> Table | None:
    """Every score under every protocol with its interval and its verdict against the random map."""
    data = summary[summary["model"].astype(str) == model]
    if data.empty:
        return None
    scores = [m for m in SCORES if m in set(data["metric"])]
    order = {m: i for i, m in enumerate([*methods, *REFERENCE_MAPS])}
    keys = data.drop_duplicates(["protocol", "method"])[["protocol", "method"]]
    appearance = {p: i for i, p in enumerate(pd.unique(data["protocol"]))}
    keys = keys.sort_values("method", key=lambda s: s.map(order), kind="stable")
    keys = keys.sort_values("protocol", key=lambda s: s.map(appearance), kind="stable")
    indexed = data.set_index(["protocol", "method", "metric"])
    frame = keys.reset_index(drop=True)
    labels = {}
    for metric in scores:
        name = f"{METRICS[metric][0]} {ARROWS[METRICS[metric][1]]}"
        value, verdict = f"{metric}_value", f"{metric}_vs_random"
        frame[value] = [
            _interval_text(indexed.loc[(p, m, metric)]) if (p, m, metric) in indexed.index else ""
            for p, m in zip(keys["protocol"], keys["method"])
        ]
        frame[verdict] = [
            str(indexed.loc[(p, m, metric), "vs_random"]) if (p, m, metric) in indexed.index else ""
            for p, m in zip(keys["protocol"], keys["method"])
        ]
        labels.update({value: f"{name} [interval]", verdict: f"{METRICS[metric][0]} vs random"})
    images = int(data["n_images"].max())
    share = f"{float(level):.0%} " if isinstance(level, (int, float)) else ""
    protocols = "; ".join(f"{name}: {text}" for name, text in protocol_details(data).items())
    return from_frame(
        frame,
        f"table-imagenet-fidelity-vs-random-{_slug(model)}",
        f"Every fidelity score of {model} under every protocol, mean over {images} image(s) with its "
        f"{share}Student-t interval of the mean, next to the random and the constant map. 'vs random' "
        "reads the per-image gain over the random map (paired Student-t interval): better or worse "
        "when the interval excludes 0, inconclusive otherwise (with few images most intervals are "
        f"wide). Protocols: {protocols}.",
        style=TableStyle(labels=labels, status_columns=tuple(f"{m}_vs_random" for m in scores)),
        css="wide",
    )


def interaction_shares(interactions: pd.DataFrame) -> pd.DataFrame:
    """Per model (MoSIP Fig. 6b): correctly predicted images, pairs tested, pairs interacting by
    ``D_x + D_y > D_xy`` and their share."""
    data = interactions.assign(interacts=_truthy(interactions["interacts"]))
    shares = (
        data.groupby("model", sort=True)
        .agg(images=("n_images", "max"), pairs=("interacts", "size"), interacting=("interacts", "sum"))
        .reset_index()
    )
    shares["share"] = shares["interacting"] / shares["pairs"].where(shares["pairs"] > 0)
    return shares.assign(interacting=shares["interacting"].astype(int))


def interaction_table(shares: pd.DataFrame) -> Table:
    return from_frame(
        shares,
        "table-imagenet-interactions",
        "Pairwise heuristic of MoSIP (Sec. 5, Fig. 6b): every pair of each model's top-K regions of "
        "the global analysis; a pair interacts when, on the correctly predicted images, the accuracy "
        "drops satisfy D_x + D_y > D_xy (the paper's delta1 + gamma1 > delta2 + gamma2), with no "
        "threshold. Pairs whose regions are redundant (either suffices, D_xy > D_x + D_y) are not "
        "counted by this one-sided test.",
        style=TableStyle(
            labels={
                "images": "correct images",
                "pairs": "pairs tested",
                "interacting": "pairs interacting",
                "share": "share interacting",
            }
        ),
    )


def score_interaction_table(score_interactions: pd.DataFrame) -> Table:
    """The two-sided per-image score test (an extension, not MoSIP's statistic)."""
    data = score_interactions.assign(
        interacts=_truthy(score_interactions["interacts"]), magnitude=score_interactions["interaction"].abs()
    )
    shares = (
        data.groupby("model", sort=True)
        .agg(
            images=("image_id", "nunique"),
            pairs=("interacts", "size"),
            interacting=("interacts", "sum"),
            mean_abs_interaction=("magnitude", "mean"),
        )
        .reset_index()
    )
    shares.insert(4, "share", shares["interacting"] / shares["pairs"].where(shares["pairs"] > 0))
    return from_frame(
        shares.assign(interacting=shares["interacting"].astype(int)),
        "table-imagenet-score-interactions",
        "Extension, not the paper's statistic: per image, the top-K regions of the local analysis, "
        "a pair counted as interacting when the drop of the target probability under joint masking "
        "departs from the sum of the single drops, in either direction, by more than "
        "interaction_threshold times the clean probability.",
        style=TableStyle(
            labels={
                "pairs": "pairs tested",
                "interacting": "pairs interacting",
                "share": "share interacting",
                "mean_abs_interaction": "mean |interaction|",
            }
        ),
    )


def overlap_summary(overlap: pd.DataFrame) -> pd.DataFrame:
    """Per model and ranking statistic (MoSIP Fig. 5): mean overlap share with its 95% Student-t
    interval over images, and the raw mean mu*/sigma of the model and the reference on the
    overlapping and differing regions (images whose set is empty are left out of that mean)."""
    rows = []
    order = {s: i for i, s in enumerate(figs.STATISTIC_LABELS)}
    for (model, statistic), group in overlap.groupby(["model", "statistic"], sort=False):
        share, low, high = mean_interval(group["overlap_share"].to_numpy(dtype=float), low=0.0, high=1.0)
        row = {
            "model": model,
            "reference": str(group["reference"].iloc[0]),
            "statistic": statistic,
            "images": group["image_id"].nunique(),
            "overlap_share": share,
            "share_low": low,
            "share_high": high,
        }
        for part in ("overlapping", "differing"):
            kept = group[group[f"n_{part}"] > 0]
            for value in ("mu_star", "sigma", "reference_mu_star", "reference_sigma"):
                column = f"{value}_{part}"
                if column in group:
                    row[column] = float(kept[column].mean()) if len(kept) else np.nan
        rows.append(row)
    frame = pd.DataFrame(rows)
    return frame.sort_values(
        ["model", "statistic"], key=lambda c: c.map(order) if c.name == "statistic" else c, kind="stable"
    ).reset_index(drop=True)


def overlap_table(summary: pd.DataFrame, reference: str) -> Table:
    columns = [
        "model",
        "statistic",
        "images",
        "overlap_share",
        "share_low",
        "share_high",
        "mu_star_overlapping",
        "mu_star_differing",
        "reference_mu_star_overlapping",
        "sigma_overlapping",
        "sigma_differing",
        "reference_sigma_overlapping",
    ]
    shown = summary.assign(statistic=summary["statistic"].map(figs.STATISTIC_LABELS).fillna(summary["statistic"]))
    labels = {
        "statistic": "ranked by",
        "overlap_share": "overlap share",
        "share_low": "95% low",
        "share_high": "95% high",
        "mu_star_overlapping": "mu* overlapping",
        "mu_star_differing": "mu* differing",
        "reference_mu_star_overlapping": f"{reference} mu* (same regions)",
        "sigma_overlapping": "sigma overlapping",
        "sigma_differing": "sigma differing",
        "reference_sigma_overlapping": f"{reference} sigma (same regions)",
    }
    return from_frame(
        shown[[c for c in columns if c in shown]],
        "table-imagenet-overlap",
        f"MoSIP Fig. 5 (local analysis): share of each model's top regions that coincide with or "
        f"neighbour a top region of {reference} (mean over images, 95% Student-t interval), and the "
        f"raw mean mu* and sigma on the overlapping and differing regions, next to {reference}'s own "
        "values on the same overlapping regions.",
        style=TableStyle(labels=labels),
        css="wide",
    )


def _masking_final(masking: pd.DataFrame) -> pd.DataFrame:
    """Rows of the largest masked share of every curve."""
    last = masking.groupby(["model", "scope", "ranking", "which"])["step"].transform("max")
    return masking[masking["step"] == last]


def masking_frame(masking: pd.DataFrame) -> pd.DataFrame:
    """Per model, scope and ranking: accuracy and score change after masking the largest share,
    most and least important first."""
    final = _masking_final(masking)
    wide = final.pivot_table(
        index=["model", "scope", "ranking"], columns="which", values=["accuracy", "score_change"], aggfunc="mean"
    )
    wide.columns = [f"{value}_{which}" for value, which in wide.columns]
    extra = final.groupby(["model", "scope", "ranking"]).agg(
        images=("n_images", "max"), fraction=("fraction", "max"), target_kind=("target_kind", "first")
    )
    frame = extra.join(wide).reset_index()
    order = {s: i for i, s in enumerate(figs.RANKING_LABELS)}
    scopes = {"local": 0, "global": 1}
    frame = frame.sort_values(
        ["model", "scope", "ranking"],
        kind="stable",
        key=lambda c: c.map(order) if c.name == "ranking" else c.map(scopes) if c.name == "scope" else c,
    )
    return frame.reset_index(drop=True)


def masking_table(masking: pd.DataFrame) -> Table:
    frame = masking_frame(masking)
    kinds = set(frame["target_kind"].astype(str))
    correct = (
        'Images carry no labels here (the sample photos): "correct" means the model\'s own clean top-1, '
        "so every image is kept and clean accuracy is 1 by construction. "
        if "predicted" in kinds
        else ""
    )
    correct += "With labels, correct means the true class. " if "true" in kinds else ""
    shown = frame.assign(
        ranking=frame["ranking"].map(figs.RANKING_LABELS).fillna(frame["ranking"]),
        target_kind=frame["target_kind"]
        .map({"true": "true class", "predicted": "own clean top-1"})
        .fillna(frame["target_kind"]),
    )
    columns = [
        "model",
        "scope",
        "ranking",
        "target_kind",
        "images",
        "fraction",
        "accuracy_most",
        "accuracy_least",
        "score_change_most",
        "score_change_least",
    ]
    labels = {
        "ranking": "ranked by",
        "target_kind": "correct means",
        "images": "correct images",
        "fraction": "share masked",
        "accuracy_most": "accuracy, most masked",
        "accuracy_least": "accuracy, least masked",
        "score_change_most": "score change, most",
        "score_change_least": "score change, least",
    }
    return from_frame(
        shown[[c for c in columns if c in shown]],
        "table-imagenet-masking",
        "MoSIP masking validation (Figs. 4, 9 local; Fig. 10 global) on the correctly predicted "
        "images: accuracy and mean change of the target probability after masking the largest share "
        "of regions, most important first and least important first; the rows ranked by a random map "
        "and by a constant map are the chance level every ranking must beat. " + correct,
        style=TableStyle(labels=labels),
    )


def ensembles_frame(ensembles: pd.DataFrame, model: str) -> pd.DataFrame:
    """Table-1 shape for one model: aggregation rows (with their setting) x (normalisation, metric) columns."""
    data = ensembles[(ensembles["model"] == model) & (ensembles["kind"] == "ensemble")]
    norms = [str(n) for n in pd.unique(data["normalisation"])]
    aggs = [str(a) for a in pd.unique(data["aggregation"])]
    settings = data.drop_duplicates("aggregation").set_index("aggregation")["setting"].fillna("").astype(str)
    frame = pd.DataFrame({"aggregation": aggs, "setting": [settings.get(a, "") for a in aggs]})
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


def ensemble_references(ensembles: pd.DataFrame, model: str) -> dict[str, dict[str, float]]:
    """The reference maps of the ensemble protocol: ``{"random map": {metric: mean, ...}, ...}``."""
    rows = ensembles[(ensembles["model"] == model) & (ensembles["kind"] == "reference")]
    return {
        f"{r['members']} map": {c: float(r[c]) for c in rows.columns if c.startswith(("deletion_", "insertion_"))}
        for _, r in rows.iterrows()
    }


def _reference_text(references: dict[str, dict[str, float]]) -> str:
    parts = [
        f"{name} deletion {format_number(v['deletion_auc'])} [{format_number(v['deletion_ci_low'])}, "
        f"{format_number(v['deletion_ci_high'])}], insertion {format_number(v['insertion_auc'])} "
        f"[{format_number(v['insertion_ci_low'])}, {format_number(v['insertion_ci_high'])}]"
        for name, v in references.items()
    ]
    return f" Under the same protocol the {'; the '.join(parts)} (Student-t intervals over images)." if parts else ""


def ensembles_table(ensembles: pd.DataFrame, model: str) -> Table | None:
    """Every aggregation x normalisation of ``model`` by deletion and insertion; best in bold,
    cells that beat the best single method shaded."""
    frame = ensembles_frame(ensembles, model)
    if frame.empty:
        return None
    base = best_base(ensembles, model)
    values = frame.columns[2:]
    labels = {
        c: f"{c.split(':')[0]} {'del.' if c.endswith('deletion_auc') else 'ins.'} "
        f"{ARROWS['lower'] if c.endswith('deletion_auc') else ARROWS['higher']}"
        for c in values
    }
    members = ", ".join(
        sorted(
            {
                str(m)
                for m in ensembles.loc[(ensembles["model"] == model) & (ensembles["kind"] == "ensemble"), "members"]
            }
        )
    )
    base_text = (
        (
            f" The best single method scores deletion {format_number(base['deletion_auc'])} and insertion "
            f"{format_number(base['insertion_auc'])}; shaded cells beat it."
        )
        if base
        else ""
    )
    table = from_frame(
        frame,
        f"table-imagenet-ensembles-{_slug(model)}",
        f"Ensembles of {model} (members: {members.replace('+', ', ')}): rows are aggregations with the "
        "settings of Table 1 of the ensemble paper, columns normalisations with their deletion "
        "(lower is better) and insertion (higher is better) AUC, mean over the images; the paper's "
        "protocol (random-normal baseline, ties in random order). Bold: best cell of each metric."
        f"{base_text}{_reference_text(ensemble_references(ensembles, model))}",
        style=TableStyle(labels=labels),
        css="wide",
    )
    for metric, direction in (("deletion_auc", "lower"), ("insertion_auc", "higher")):
        columns = [c for c in values if c.endswith(metric)]
        block = frame[columns]
        best = block.min().min() if direction == "lower" else block.max().max()
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


def _ranks(values: dict[str, float], direction: str) -> dict[str, int]:
    """1 = best; ties share the better rank."""
    ordered = sorted(values.values(), reverse=direction == "higher")
    return {k: ordered.index(v) + 1 for k, v in values.items()}


def table_1_comparison(ensembles: pd.DataFrame, model: str, normalisation: str = "z") -> dict | None:
    """This run's ordering of the aggregations against the paper's Table 1 (ImageNet, z-score).

    Returns, per metric, the ranks (1 = best) here and in the paper of the aggregations both
    have, the best and worst aggregation here, and Kendall's tau between the two sets of
    scores; None when fewer than three aggregations are comparable.
    """
    from scipy.stats import kendalltau

    data = ensembles[
        (ensembles["model"] == model)
        & (ensembles["kind"] == "ensemble")
        & (ensembles["normalisation"].astype(str) == normalisation)
    ]
    data = data[data["aggregation"].isin(list(PAPER_TABLE_1))].drop_duplicates("aggregation")
    if len(data) < 3:
        return None
    out = {"normalisation": normalisation, "n": len(data)}
    for column, metric, direction in ((0, "insertion_auc", "higher"), (1, "deletion_auc", "lower")):
        here = dict(zip(data["aggregation"].astype(str), data[metric].astype(float)))
        paper = {a: PAPER_TABLE_1[a][column] for a in here}
        ranks, paper_ranks = _ranks(here, direction), _ranks(paper, direction)
        tau = kendalltau([here[a] for a in here], [paper[a] for a in here]).statistic
        out[metric] = {
            "ranks": ranks,
            "paper_ranks": paper_ranks,
            "tau": float(tau) if tau == tau else 0.0,
            "best": min(ranks, key=ranks.__getitem__),
            "worst": max(ranks, key=ranks.__getitem__),
        }
    return out


def table_1_findings(ensembles: pd.DataFrame, model: str) -> list[Finding]:
    """One sentence: does this run reproduce the paper's ordering (UCB best, average close, CI worst)?"""
    comparison = table_1_comparison(ensembles, model)
    if comparison is None:
        return []
    n, ins, dele = comparison["n"], comparison["insertion_auc"], comparison["deletion_auc"]

    def rank(entry, name):
        return f"{entry['ranks'][name]}/{n}" if name in entry["ranks"] else "absent"

    checks = {
        "UCB best on insertion": ins["ranks"].get("ucb") == 1,
        "CI worst on insertion": ins["worst"] == "ci" if "ci" in ins["ranks"] else False,
        "CI worst on deletion": dele["worst"] == "ci" if "ci" in dele["ranks"] else False,
    }
    agree = [k for k, v in checks.items() if v]
    disagree = [k for k, v in checks.items() if not v]
    verdict = (
        "agrees with the paper on all three"
        if not disagree
        else f"does not reproduce: {', '.join(disagree)}" + (f" (holds: {', '.join(agree)})" if agree else "")
    )
    return [
        Finding(
            f"Against Table 1 of the ensemble paper (ImageNet, z-score: UCB best on insertion, the average close "
            f"behind, CI worst on both metrics), {model} with z-score normalisation ranks UCB {rank(ins, 'ucb')} "
            f"on insertion and "
            f"{rank(dele, 'ucb')} on deletion, the average {rank(ins, 'mean')} and {rank(dele, 'mean')}, CI "
            f"{rank(ins, 'ci')} and {rank(dele, 'ci')}; best here: {ins['best']} (insertion), {dele['best']} "
            f"(deletion). This run {verdict}; Kendall's tau with the paper's scores is {ins['tau']:.2f} on insertion "
            f"and {dele['tau']:.2f} on deletion over {n} aggregations.",
            "ok" if not disagree else "alert",
        )
    ]


def profile_table(metrics: dict) -> Table | None:
    """Settings of the ImageNet run (``profile`` of metrics.json) and its run time."""
    profile = metrics.get("profile") if isinstance(metrics, dict) else None
    items = dict(profile) if isinstance(profile, dict) else {}
    for key in ("reference_model", "seconds"):
        if isinstance(metrics, dict) and isinstance(metrics.get(key), (int, float, str)):
            items[key] = metrics[key]
    if not items:
        return None
    values = [
        ", ".join(map(str, v)) if isinstance(v, list) else format_number(v) if isinstance(v, float) else str(v)
        for v in items.values()
    ]
    return from_frame(
        pd.DataFrame({"setting": [k.replace("_", " ") for k in items], "value": values}),
        "table-imagenet-profile",
        "Profile of the ImageNet run: image source, resolution, budgets and device. The default "
        "profile uses fewer images and forward passes than the papers, so its numbers are noisier.",
        sortable=False,
    )


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in str(text).lower()).strip("-") or "model"


# ---------------------------------------------------------------- findings


def fidelity_findings(fidelity: pd.DataFrame, model: str | None, protocol: str = "") -> list[Finding]:
    """Sobol against RISE and Occlusion by deletion AUC on the reference model, under ``protocol``."""
    data = rows_of_protocol(fidelity, protocol) if protocol else fidelity
    data = data[(data["model"] == model) & (data["metric"] == "deletion_auc")]
    means = data.groupby("method")["value"].mean()
    rivals = [m for m in BASELINES if m in means]
    if "sobol" not in means or not rivals:
        return []
    others = ", ".join(f"{m} {format_number(means[m])}" for m in rivals)
    best = bool(all(means["sobol"] <= means[m] for m in rivals))
    verdict = "lower than" if best else "not lower than every one of"
    under = f" under the {protocol} protocol" if protocol else ""
    return [
        Finding(
            f"On {model}, Sobol's mean deletion AUC is {format_number(means['sobol'])}, {verdict} "
            f"{others}{under} (lower is better; the Sobol paper reports Sobol ahead).",
            "ok" if best else "alert",
        )
    ]


def random_findings(summary: pd.DataFrame, model: str | None) -> list[Finding]:
    """Per protocol: the methods not shown to beat a random map, and those worse than it on average."""
    data = summary[(summary["model"].astype(str) == str(model)) & ~summary["method"].isin(REFERENCE_MAPS)]
    found = []
    for protocol, part in data.groupby("protocol", sort=False):
        methods = list(pd.unique(part["method"].astype(str)))
        flagged = [m for m in methods if not _truthy(part.loc[part["method"] == m, "beats_random"]).all()]
        lower_better = part["direction"].astype(str) == "lower"
        worse = part[
            (part["mean"] > part["random_mean"]) & lower_better | (part["mean"] < part["random_mean"]) & ~lower_better
        ]
        worse_text = "; ".join(
            f"{m} ({', '.join(METRICS[x][0] for x in g['metric'])})" for m, g in worse.groupby("method", sort=False)
        )
        images = int(part["n_images"].max())
        if not flagged:
            found.append(
                Finding(
                    f"Under the {protocol} protocol every method beats a random map on every score "
                    f"({images} images, paired intervals).",
                    "ok",
                )
            )
            continue
        found.append(
            Finding(
                f"Under the {protocol} protocol {len(flagged)} of {len(methods)} methods are not shown to beat a "
                f"random map on every score over {images} image(s): {', '.join(flagged)}."
                + (
                    f" On the mean, worse than the random map: {worse_text}."
                    if worse_text
                    else " On the mean, every method scores better than the random map; the intervals are too wide "
                    "to tell."
                ),
                "alert",
            )
        )
    return found


def convergence_findings(convergence: pd.DataFrame) -> list[Finding]:
    """Sobol against RISE in Spearman-to-converged at the largest budget both reached (independent
    reference when there is one)."""
    kinds = set(convergence["reference_kind"].astype(str))
    kind = "independent" if "independent" in kinds else sorted(kinds)[0] if kinds else ""
    convergence = convergence[convergence["reference_kind"].astype(str) == kind]
    means = convergence.groupby(["method", "budget"])[["spearman", "forwards"]].mean()
    if not {"sobol", "rise"} <= set(means.index.get_level_values("method")):
        return []
    budgets = sorted(set(means.loc["sobol"].index) & set(means.loc["rise"].index))
    if not budgets:
        return []
    sobol, rise = means.loc[("sobol", budgets[-1])], means.loc[("rise", budgets[-1])]
    ahead = sobol["spearman"] >= rise["spearman"]
    return [
        Finding(
            f"At a budget of {format_number(budgets[-1])} forward passes, Sobol's maps reach a Spearman "
            f"correlation of {format_number(sobol['spearman'])} with a converged run against "
            f"{format_number(rise['spearman'])} for RISE (the Sobol paper: 0.8 against 0.65 at 1,000).",
            "ok" if ahead else "alert",
        )
    ]


def _percent(value: float) -> str:
    return f"{100 * value:.0f}%"


def overlap_findings(overlap: pd.DataFrame, summary: pd.DataFrame) -> list[Finding]:
    """MoSIP Fig. 5 in words: stand-in reference, overlap shares, sigma against the reference's."""
    found = []
    reference = str(overlap["reference"].iloc[0])
    requested = str(overlap["requested_reference"].iloc[0])
    if requested != reference:
        found.append(
            Finding(
                f"The requested reference architecture, {requested} (MoSIP: AlexNet), was not loaded "
                f"(not configured, or its weights are not available locally); {reference} stands in, "
                f"so the overlap below compares the models with {reference}, not with {requested}.",
                "alert",
            )
        )
    top = float(overlap["top_fraction"].iloc[0])
    for model, part in summary.groupby("model", sort=False):
        by = part.set_index("statistic")
        shares = ", ".join(
            f"{_percent(by.loc[s, 'overlap_share'])} by {label}"
            for s, label in figs.STATISTIC_LABELS.items()
            if s in by.index
        )
        found.append(
            Finding(
                f"{model}: of its top-{_percent(top)} regions, {shares} coincide with or neighbour "
                f"{reference}'s (mean over {int(part['images'].max())} images; MoSIP reports at least "
                "80% for every architecture against AlexNet)."
            )
        )
        if "sigma" in by.index and not pd.isna(by.loc["sigma", "sigma_overlapping"]):
            own, ref = by.loc["sigma", "sigma_overlapping"], by.loc["sigma", "reference_sigma_overlapping"]
            verdict = "higher than" if own > ref else "lower than" if own < ref else "equal to"
            found.append(
                Finding(
                    f"On the regions {model} shares with {reference} (ranked by sigma), {model}'s mean "
                    f"sigma is {format_number(own)}, {verdict} {reference}'s {format_number(ref)} on the "
                    "same regions (raw values in each model's output units; MoSIP reads higher sigma "
                    "than AlexNet as stronger use of interactions or non-linearity)."
                )
            )
    return found


def ratio_findings(ratio: pd.DataFrame) -> list[Finding]:
    """MoSIP Fig. 6a in words: the models ordered by mu*/sigma of the global analysis."""
    data = ratio[ratio["n_ratio"] > 0].sort_values("mean_ratio", ascending=False)
    if data.empty:
        return []
    listed = ", ".join(f"{m} {format_number(v)}" for m, v in zip(data["model"], data["mean_ratio"]))
    return [
        Finding(
            f"Global analysis, mu*/sigma over the relevant regions, highest first: {listed}. A lower ratio "
            "means the relevant regions act more through interactions or non-linearity than on their own "
            "(MoSIP finds it falling from AlexNet to ResNet-50)."
        )
    ]


def interaction_findings(shares: pd.DataFrame) -> list[Finding]:
    """MoSIP Fig. 6b in words: the share of interacting top-K pairs per model."""
    if shares.empty:
        return []
    listed = ", ".join(
        f"{row.model} {row.interacting} of {row.pairs} ({_percent(row.share)}, {row.images} correct images)"
        for row in shares.itertuples()
    )
    return [Finding(f"Top-K region pairs interacting by MoSIP's test (D_x + D_y > D_xy on accuracy): {listed}.")]


def masking_findings(masking: pd.DataFrame) -> list[Finding]:
    """MoSIP's validation in words: masking the most important regions by mu* must cost more than
    the masked share of accuracy, and more than masking the least important ones."""
    frame = masking_frame(masking)
    random_most = frame[frame["ranking"] == "random"].set_index(["model", "scope"])["accuracy_most"]
    found = []
    for row in frame[frame["ranking"] == "mu_star"].itertuples():
        if row.images == 0:
            found.append(Finding(f"{row.model} ({row.scope}): no correctly predicted image, nothing to mask.", "alert"))
            continue
        drop_most, drop_least = 1 - row.accuracy_most, 1 - row.accuracy_least
        passes = drop_most > row.fraction and drop_most > drop_least
        chance = ""
        if (row.model, row.scope) in random_most.index:
            drop_random = 1 - float(random_most.loc[(row.model, row.scope)])
            passes = passes and drop_most > drop_random
            verdict = "beats" if drop_most > drop_random else "does not beat"
            chance = f"; a random map's ranking drops it by {_percent(drop_random)}, so mu* {verdict} chance"
        found.append(
            Finding(
                f"{row.model}, {row.scope} analysis: masking the {_percent(row.fraction)} most important regions by "
                f"mu* drops accuracy by {_percent(drop_most)} on {row.images} correctly predicted images, the least "
                f"important by {_percent(drop_least)}{chance} (MoSIP expects more than {_percent(row.fraction)} for "
                "the most important and little for the least).",
                "ok" if passes else "alert",
            )
        )
    return found


# ---------------------------------------------------------------- parts


class _Builder:
    """Adds the parts of the ImageNet section, each guarded by the tables it needs."""

    def __init__(
        self, section: Section, tables: dict, problems: dict, methods: list[str], reference: str | None, metrics=None
    ):
        self.section, self.tables, self.problems = section, tables, problems
        self.methods, self.reference = methods, reference
        self.metrics = metrics if isinstance(metrics, dict) else {}
        self.protocol = headline_protocol(tables, metrics)

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
        summary = self.tables.get("fidelity_summary")
        if "fidelity" in self.tables:
            found += fidelity_findings(self.tables["fidelity"], self.reference, self.protocol)
        if summary is not None:
            found += random_findings(summary, self.reference)
        if "convergence" in self.tables:
            found += convergence_findings(self.tables["convergence"])
        if found:
            self.section.add("findings", found)
        if self.need("fidelity"):
            self.section.add("table", fidelity_table(self.tables["fidelity"], self.methods, self.protocol, summary))
            white = white_box_table(self.tables["fidelity"], self.methods)
            if white is not None:
                self.section.add("table", white)
        if self.need("fidelity_summary"):
            summary = self.tables["fidelity_summary"]
            level = self.metrics.get("profile", {}).get("interval_level") if self.metrics else None
            for model in pd.unique(summary["model"].astype(str)):
                table = fidelity_summary_table(summary, model, self.methods, level)
                if table is not None:
                    self.section.add("table", table)
        if self.need("curves"):
            curves = self.tables["curves"]
            curves = curves[curves["protocol"].fillna("").astype(str) == self.protocol] if self.protocol else curves
            if not curves.empty:
                reference = self.reference
                model = (
                    reference
                    if reference is not None and reference in set(curves["model"])
                    else str(curves["model"].iloc[0])
                )
                detail = protocol_details(summary).get(self.protocol, self.protocol)
                self.section.add("figure", figs.fidelity_curves(curves, model, self.methods, detail))
        if self.need("convergence"):
            self.section.add("figure", figs.convergence_plot(self.tables["convergence"], self.methods))
            self.section.add("table", convergence_table(self.tables["convergence"], self.methods))

    def cross_architecture(self) -> None:
        self.section.add("heading", "Cross-architecture analyses")
        if self.need("overlap"):
            overlap = self.tables["overlap"]
            summary = overlap_summary(overlap)
            reference = str(overlap["reference"].iloc[0])
            self.section.add("findings", overlap_findings(overlap, summary))
            self.section.add("figure", figs.overlap_plot(summary, reference))
            self.section.add("table", overlap_table(summary, reference))
        if self.need("ratio"):
            ratio = self.tables["ratio"]
            found = ratio_findings(ratio)
            if found:
                self.section.add("findings", found)
            self.section.add("figure", figs.ratio_plot(ratio))
        if self.need("interactions"):
            shares = interaction_shares(self.tables["interactions"])
            found = interaction_findings(shares)
            if found:
                self.section.add("findings", found)
            self.section.add("figure", figs.interaction_plot(shares))
            self.section.add("table", interaction_table(shares))
        if "score_interactions" in self.tables:
            self.section.add("table", score_interaction_table(self.tables["score_interactions"]))

    def masking(self) -> None:
        self.section.add("heading", "Region masking")
        if self.need("masking"):
            masking = self.tables["masking"]
            found = masking_findings(masking)
            if found:
                self.section.add("findings", found)
            for scope in ("local", "global"):
                if scope in set(masking["scope"]):
                    self.section.add("figure", figs.masking_plot(masking, scope))
            self.section.add("table", masking_table(masking))

    def ensembles(self) -> None:
        self.section.add("heading", "Ensembles of explanations")
        if not self.need("ensembles"):
            return
        ensembles = self.tables["ensembles"]
        models = sorted(ensembles["model"].astype(str).unique())
        found = [f for model in models for f in table_1_findings(ensembles, model)]
        if found:
            self.section.add("findings", found)
        for model in models:
            table = ensembles_table(ensembles, model)
            if table is not None:
                self.section.add("table", table)
        for model in models:
            size = ensembles[(ensembles["kind"] == "size_protocol") & (ensembles["model"].astype(str) == model)]
            if not size.empty:
                self.section.add("figure", figs.ensemble_size_plot(size, ensemble_references(ensembles, model)))

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
            self.section.add(
                "table", from_frame(self.tables[name], f"table-imagenet-{_slug(name)}", f"ImageNet table {name}.csv.")
            )


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
    section = Section("imagenet", "ImageNet: how faithful the explainers are")
    section.paragraphs.append(
        "Attribution methods explained on ImageNet-pretrained classifiers: how faithful each method's map is "
        "(deletion, insertion, nAOPC), how fast it converges, and, as in MoSIP Section 5, whether architectures "
        "rely on the same image regions."
    )
    build = _Builder(section, tables, problems, methods, reference_model(tables), metrics)
    build.models()
    build.fidelity()
    build.cross_architecture()
    build.masking()
    build.ensembles()
    build.gallery(load_gallery(root))
    build.profile(metrics)
    build.others()
    return section
