"""The watermark section of the report: a real shortcut in real pretrained models.

Reads the tables of ``data/watermark/`` (schema: :mod:`shortcut_audit.watermark.pipeline`)
and lays out, in reading order:

1. the shortcut across architectures -- carton gap, top-1 change rate, carton logit
   shift, accuracy drop (with labels) and the verdict "relies on the watermark", each
   with its 95 % interval;
2. the explainer benchmark -- how much of each method's positive attribution of the
   carton logit falls on the watermark's pixels, and the pointing game, against the
   chance level (the mask's area share), with the best explainer's map on two photos;
3. the watermark's aspects -- Morris ``mu*``, ``sigma`` and ``sigma / mu*`` of the
   opacity, height and text on the carton probability and on each image's class.

Every sentence is computed from the tables (nothing is a fixed claim); a part whose
table is missing or lacks a documented column shows a notice in its place.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd

from shortcut_audit.report.artefacts import read_optional_json, read_optional_table
from shortcut_audit.report.figures import MAP_CMAP, STYLE, Figure, _normalise, _outline, _subplots, to_png_uri
from shortcut_audit.report.findings import Finding
from shortcut_audit.report.sections import Section
from shortcut_audit.report.tables import Table, TableStyle, format_number, from_frame

LOG = logging.getLogger(__name__)

WATERMARK_DIR = "data/watermark"
#: The watermark tables the report reads (columns and types: :mod:`shortcut_audit.schema`).
TABLES = ("models", "effects", "verdicts", "morris", "explainer_summary")
CARTON_OUTPUT = "class_478_prob"
STATE_TEXT = {
    "relied_on": "relies on the watermark",
    "not_relied_on": "does not rely on the watermark",
    "inconclusive": "is inconclusive about the watermark",
}
KIND_LABELS = {"black_box": "black box", "white_box": "white box", "ensemble": "ensemble"}
GALLERY_IMAGES = 2
#: sigma / mu* readings. MoSIP (Sec. 2) reads sigma only qualitatively (high sigma: interaction
#: and/or non-linearity); these thresholds are this report's choice, in line with common practice
#: for Morris screening: below 0.5 the effect keeps its sign and size across the other inputs'
#: values, above 1 it changes strongly with them.
STEADY_RATIO, VARYING_RATIO = 0.5, 1.0
#: mu* below this share of the largest mu* of an output counts as no effect.
NEGLIGIBLE_SHARE = 0.05


def _percent(value: float) -> str:
    return f"{100 * value:.0f}%"


def _points(value: float) -> str:
    return f"{100 * value:+.1f} points"


def _interval(low: float, high: float, points: bool = False) -> str:
    if points:
        return f"[{100 * low:+.1f}, {100 * high:+.1f}]"
    return f"[{format_number(low)}, {format_number(high)}]"


# ---------------------------------------------------------------- loading


def load_tables(root: Path) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """The documented watermark tables under ``root`` and, per table, why it is unavailable."""
    folder = Path(root) / WATERMARK_DIR
    tables, problems = {}, {}
    for name in TABLES:
        table, problem = read_optional_table(folder / f"{name}.csv")
        if table is None:
            problems[name] = f"{WATERMARK_DIR}/{problem}"
        else:
            tables[name] = table
    return tables, problems


def load_maps(root: Path) -> dict[str, np.ndarray] | None:
    """The arrays of ``maps.npz`` (watermarked photos, masks, maps); None when absent or unreadable."""
    path = Path(root) / WATERMARK_DIR / "maps.npz"
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as err:
        LOG.warning("report: %s unreadable (%s)", path, err)
        return None


# ---------------------------------------------------------------- shortcut across architectures


def shortcut_frame(effects: pd.DataFrame, verdicts: pd.DataFrame, models: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per model: the headline effects and the verdict, each with its interval."""
    rows = []
    order = list(models["model"]) if models is not None else list(pd.unique(verdicts["model"]))
    for model in [m for m in order if m in set(verdicts["model"])]:
        own = effects[effects["model"] == model].set_index("statistic")
        verdict = verdicts[verdicts["model"] == model].iloc[0]
        row = {
            "model": model,
            "images": int(own["n_images"].max()) if len(own) else 0,
            "target": str(verdict["target_kind"]),
        }
        for statistic in ("carton_gap", "top1_change_rate", "carton_logit_shift", "accuracy_drop"):
            has = statistic in own.index
            row[statistic] = float(own.at[statistic, "value"]) if has else np.nan
            row[f"{statistic}_ci"] = _interval(own.at[statistic, "ci_low"], own.at[statistic, "ci_high"]) if has else ""
        row.update(
            {
                "verdict": str(verdict["state"]),
                "drop": float(verdict["drop"]),
                "drop_ci": _interval(verdict["ci_low"], verdict["ci_high"]),
                "threshold": float(verdict["threshold"]),
                "statistic": str(verdict["statistic"]),
            }
        )
        rows.append(row)
    return pd.DataFrame(rows)


def shortcut_table(frame: pd.DataFrame) -> Table:
    columns = [
        "model",
        "images",
        "target",
        "carton_gap",
        "carton_gap_ci",
        "top1_change_rate",
        "top1_change_rate_ci",
        "carton_logit_shift",
        "carton_logit_shift_ci",
    ]
    if frame["accuracy_drop"].notna().any():
        columns += ["accuracy_drop", "accuracy_drop_ci"]
    columns += ["verdict", "drop", "drop_ci"]
    labels = {
        "target": "class of an image",
        "carton_gap": "carton gap",
        "carton_gap_ci": "95% interval",
        "top1_change_rate": "top-1 change rate",
        "top1_change_rate_ci": "95% interval",
        "carton_logit_shift": "carton logit shift",
        "carton_logit_shift_ci": "95% interval",
        "accuracy_drop": "accuracy drop",
        "accuracy_drop_ci": "95% interval",
        "drop": "verdict drop",
        "drop_ci": "95% interval",
    }
    threshold = format_number(float(frame["threshold"].iloc[0])) if len(frame) else ""
    return from_frame(
        frame[columns],
        "table-watermark-shortcut",
        "The ImageNet-W watermark (Li et al. 2023) drawn on every image, per architecture. Carton "
        "gap: share of images predicted carton with the watermark minus without; top-1 change rate: "
        "share of images whose top-1 class changes; carton logit shift: mean change of the carton "
        "logit; accuracy drop (images with true classes only): clean minus watermarked accuracy, the "
        "negative of the paper's ImageNet-W gap. Class of an image: true, or predicted (the model's "
        "clean top-1 class, for photos without labels). Verdict: on the images the model gets right, "
        "the accuracy the watermark costs (without labels: the top-1 change rate) is relied on when "
        f"the lower bound of its 95% interval reaches {threshold}, not relied on when the upper bound "
        "stays below it, inconclusive otherwise. Intervals: percentile bootstrap over images.",
        style=TableStyle(labels=labels, status_columns=("verdict",)),
    )


def shortcut_findings(frame: pd.DataFrame) -> list[Finding]:
    """The verdict and the carton gap of every model in words."""
    found = []
    for row in frame.itertuples(index=False):
        statistic = (
            "top-1 change rate"
            if row.statistic == "top1_change_rate"
            else "accuracy drop on the images it classifies correctly"
        )
        text = (
            f"{row.model} {STATE_TEXT.get(row.verdict, row.verdict)}: the watermark changes the top-1 class of "
            f"{_percent(row.top1_change_rate)} of {row.images} images; the verdict's {statistic} is "
            f"{format_number(row.drop)} (95% interval {row.drop_ci}, threshold {format_number(row.threshold)}). "
            f"Carton gap {_points(row.carton_gap)}, mean carton logit shift "
            f"{format_number(row.carton_logit_shift)}."
        )
        if not np.isnan(row.accuracy_drop):
            change = "falls" if row.accuracy_drop >= 0 else "rises"
            text += f" Accuracy {change} by {abs(100 * row.accuracy_drop):.1f} points with the watermark."
        kind = "alert" if row.verdict == "relied_on" else "ok" if row.verdict == "not_relied_on" else "info"
        found.append(Finding(text, kind))
    relied = [r.model for r in frame.itertuples() if r.verdict == "relied_on"]
    if len(frame) > 1:
        found.append(
            Finding(
                f"{len(relied)} of {len(frame)} architectures rely on the watermark"
                + (f" ({', '.join(relied)})." if relied else "."),
                "alert" if relied else "ok",
            )
        )
    return found


# ---------------------------------------------------------------- explainer benchmark


def explainer_frame(summary: pd.DataFrame, model: str) -> pd.DataFrame:
    """One model's methods sorted by mean mask share, with intervals and whether each beats chance."""
    data = summary[summary["model"] == model].copy()
    data["above_chance"] = data["mask_share_ci_low"] > data["chance"]
    data["share_ci"] = [_interval(a, b) for a, b in zip(data["mask_share_ci_low"], data["mask_share_ci_high"])]
    data["pointing_ci"] = [_interval(a, b) for a, b in zip(data["pointing_ci_low"], data["pointing_ci_high"])]
    data["kind"] = data["kind"].map(lambda k: KIND_LABELS.get(str(k), str(k)))
    return data.sort_values(["mask_share", "pointing"], ascending=False, kind="stable").reset_index(drop=True)


def explainer_table(summary: pd.DataFrame, model: str) -> Table:
    frame = explainer_frame(summary, model)
    columns = [
        "method",
        "kind",
        "forwards",
        "mask_share",
        "share_ci",
        "pointing",
        "pointing_ci",
        "chance",
        "above_chance",
    ]
    labels = {
        "forwards": "passes / image",
        "mask_share": "mask share \u2191",
        "share_ci": "95% interval",
        "pointing": "pointing \u2191",
        "pointing_ci": "95% interval",
        "chance": "chance level",
        "above_chance": "above chance",
    }
    images = int(frame["n_images"].max()) if len(frame) else 0
    table = from_frame(
        frame[columns],
        f"table-watermark-explainers-{_slug(model)}",
        f"Explainers of {model}'s carton logit on {images} watermarked photos, best first. Mask "
        "share: share of a map's positive attribution on the watermark's pixels (dilated); pointing: "
        "whether the map's maximum lies on them (ties share the point). Chance level: the mask's "
        "share of the image, what a map that knows nothing scores. Above chance: the lower bound "
        "of the mask share's 95% interval (bootstrap over photos) exceeds it. Passes: forward passes "
        "per photo (black box; white box: forward and backward; an ensemble costs all its members).",
        style=TableStyle(labels=labels),
    )
    if len(frame):
        position = columns.index("mask_share")
        cell = table.rows[0][position]
        table.rows[0][position] = replace(cell, css=f"{cell.css} best".strip())
    return table


def explainer_findings(summary: pd.DataFrame, model: str) -> list[Finding]:
    frame = explainer_frame(summary, model)
    if frame.empty:
        return []
    chance = float(frame["chance"].iloc[0])
    best = frame.iloc[0]
    above = frame[frame["above_chance"]]
    base = frame[frame["kind"] != KIND_LABELS["ensemble"]]
    found = [
        Finding(
            f"On {model}, {best['method']} ({best['kind']}) puts the largest share of its positive "
            f"attribution of the carton logit on the watermark: {_percent(best['mask_share'])} "
            f"(95% interval {best['share_ci']}) against a chance level of {_percent(chance)}.",
            "ok" if bool(best["above_chance"]) else "alert",
        )
    ]
    found.append(
        Finding(
            f"{len(above)} of {len(frame)} methods are above chance with 95% confidence"
            + (
                f"; of the single methods: {', '.join(base[base['above_chance']]['method'])}."
                if base["above_chance"].any()
                else "; no single method is."
            ),
            "info",
        )
    )
    hits = base[base["pointing"] >= 0.5]
    if len(base):
        found.append(
            Finding(
                f"Pointing game: {len(hits)} of {len(base)} single methods put their maximum on the "
                "watermark on at least half of the photos" + (f" ({', '.join(hits['method'])})." if len(hits) else ".")
            )
        )
    return found


def best_heatmap(
    arrays: dict[str, np.ndarray], summary: pd.DataFrame, model: str, n_images: int = GALLERY_IMAGES
) -> Figure | None:
    """The watermarked photos next to the map of the method with the largest mask share (PNG)."""
    from shortcut_audit.watermark.pipeline import map_key

    frame = explainer_frame(summary, model)
    stored = [m for m in frame["method"] if map_key("map", model, m) in arrays]
    images_key, mask_key = map_key("images", model), map_key("mask", model)
    if not stored or images_key not in arrays or mask_key not in arrays:
        return None
    method = stored[0]
    maps, images, mask = arrays[map_key("map", model, method)], arrays[images_key], arrays[mask_key]
    ids = [str(i) for i in arrays.get(map_key("image_ids", model), np.arange(len(images)))]
    n = max(1, min(n_images, len(images)))
    fig, axes = _subplots(n, 2, 2 * 1.5 + 0.4, 1.5 * n + 0.3)
    with mpl.rc_context({**STYLE, "axes.grid": False}):
        for i in range(n):
            photo = np.moveaxis(np.clip(np.asarray(images[i], dtype=np.float32), 0, 1), 0, -1)
            axes[i][0].imshow(photo, interpolation="bilinear")
            axes[i][0].set_ylabel(ids[i])
            axes[i][1].imshow(photo.mean(axis=-1), cmap="gray", interpolation="bilinear")
            axes[i][1].imshow(_normalise(maps[i]), cmap=MAP_CMAP, alpha=0.7, vmin=0, vmax=1, interpolation="nearest")
            axes[i][1].imshow(_outline(mask), interpolation="nearest")
            if i == 0:
                axes[i][0].set_title("watermarked photo")
                axes[i][1].set_title(method)
            for ax in axes[i]:
                ax.set_xticks([])
                ax.set_yticks([])
                for spine in ax.spines.values():
                    spine.set_visible(False)
    share = float(frame.set_index("method").at[method, "mask_share"])
    return Figure(
        f"fig-watermark-heatmap-{_slug(model)}",
        f"Where {method} finds {model}'s carton evidence",
        f"Watermarked photos and the map of the carton logit by {method}, the method with the largest "
        f"mean mask share on {model} ({_percent(share)}); bright = important, each map scaled to its "
        "own range, white outline = the watermark's (dilated) pixels.",
        png=to_png_uri(fig, dpi=100),
        alt=f"Watermarked photos and {method}'s map of the carton logit",
    )


# ---------------------------------------------------------------- aspects


def aspects_frame(morris: pd.DataFrame) -> pd.DataFrame:
    """Morris statistics of every aspect on the carton and class outputs, with a reading of sigma / mu*."""
    data = morris.copy()
    largest = data.groupby(["model", "output"])["mu_star"].transform("max")
    negligible = data["mu_star"] <= NEGLIGIBLE_SHARE * largest.where(largest > 0, np.inf)
    data["reading"] = np.select(
        [negligible, data["sigma_over_mu_star"] < STEADY_RATIO, data["sigma_over_mu_star"] < VARYING_RATIO],
        ["no effect", "steady", "varies with the others"],
        default="interaction or non-linearity",
    )
    data["output"] = data["output"].map(
        lambda o: "carton" if o == CARTON_OUTPUT else "own class" if o == "true_class_prob" else o
    )
    return data[["model", "output", "factor", "mu", "mu_star", "sigma", "sigma_over_mu_star", "reading"]]


def aspects_table(morris: pd.DataFrame) -> Table:
    labels = {"mu_star": "mu*", "sigma_over_mu_star": "sigma / mu*", "output": "probability of"}
    return from_frame(
        aspects_frame(morris),
        "table-watermark-aspects",
        "Which aspect of the watermark matters: MoSIP's factor Morris on watermarked photos over the "
        "text's opacity, height and text (the paper's Chinese text against a Latin text of the same "
        "font and size), on the carton probability and on the probability of each photo's class "
        "(true, or its clean top-1). mu*: mean absolute change of the probability when the aspect "
        f"moves; sigma: its spread. Reading of sigma / mu*: below {STEADY_RATIO:g} the aspect's "
        f"effect is steady whatever the other aspects are, above {VARYING_RATIO:g} it depends on "
        "them (interaction) or on its own value (non-linearity), which Morris cannot tell apart; "
        f"no effect: mu* under {_percent(NEGLIGIBLE_SHARE)} of the largest of that output.",
        style=TableStyle(labels=labels),
    )


def aspect_findings(morris: pd.DataFrame) -> list[Finding]:
    frame = aspects_frame(morris)
    carton = frame[frame["output"] == "carton"]
    found = []
    for model, group in carton.groupby("model", sort=False):
        top = group.loc[group["mu_star"].idxmax()]
        found.append(
            Finding(
                f"{model}: the {str(top['factor']).replace('_', ' ')} moves the carton probability "
                f"most (mu* {format_number(top['mu_star'])}, sigma / mu* "
                f"{format_number(top['sigma_over_mu_star'])}: {top['reading']})."
            )
        )
    tops = carton.loc[carton.groupby("model")["mu_star"].idxmax(), "factor"] if len(carton) else pd.Series([])
    if carton["model"].nunique() > 1 and tops.nunique() == 1:
        found.append(
            Finding(
                f"Every architecture's carton probability is moved most by the {str(tops.iloc[0]).replace('_', ' ')}."
            )
        )
    return found


# ---------------------------------------------------------------- section


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in str(text).lower()).strip("-") or "model"


def skipped_findings(models: pd.DataFrame) -> list[Finding]:
    skipped = models[models["status"].astype(str) == "skipped"]
    return [Finding(f"{row.model} was not audited: {row.reason}", "alert") for row in skipped.itertuples()]


def watermark_section(root: Path, metrics: dict | None = None) -> Section | None:
    """The watermark section, or None when the stage has written no table at all.

    Parameters
    ----------
    root : Path
        Repository root holding ``data/watermark/``.
    metrics : dict, optional
        The stage's ``metrics.json`` (read from the folder when not given); its
        ``profile`` becomes a table.
    """
    tables, problems = load_tables(root)
    if not tables:
        return None
    if metrics is None:
        document, _ = read_optional_json(Path(root) / WATERMARK_DIR / "metrics.json")
        metrics = document if isinstance(document, dict) else None
    section = Section("watermark", "ImageNet: the watermark shortcut (ImageNet-W)")
    section.paragraphs.append(
        "A translucent text watermark pushes ImageNet classifiers towards \u201ccarton\u201d (Li et al., CVPR "
        "2023, ImageNet-W). The audit draws it on every photo (do(watermark)), asks whether each architecture "
        "relies on it with the same interventional rule as the Biased-MNIST audit, which of its aspects matter, "
        "and whether each explainer finds its pixels: a real shortcut whose location is known exactly."
    )

    def need(*names: str) -> bool:
        absent = [problems.get(n, f"{WATERMARK_DIR}/{n}.csv: not found") for n in names if n not in tables]
        if absent:
            section.add("missing", absent)
        return not absent

    section.add("heading", "The shortcut across architectures")
    if "models" in tables:
        skipped = skipped_findings(tables["models"])
        if skipped:
            section.add("findings", skipped)
    if need("effects", "verdicts"):
        frame = shortcut_frame(tables["effects"], tables["verdicts"], tables.get("models"))
        section.add("findings", shortcut_findings(frame))
        section.add("table", shortcut_table(frame))

    section.add("heading", "Do the explainers find the watermark?")
    if need("explainer_summary"):
        summary = tables["explainer_summary"]
        arrays = load_maps(root)
        for model in pd.unique(summary["model"]):
            section.add("findings", explainer_findings(summary, str(model)))
            section.add("table", explainer_table(summary, str(model)))
            figure = best_heatmap(arrays, summary, str(model)) if arrays is not None else None
            if figure is not None:
                section.add("figure", figure)
            elif arrays is None:
                section.add("missing", [f"{WATERMARK_DIR}/maps.npz: not found or unreadable"])

    section.add("heading", "Which aspect of the watermark matters")
    if need("morris"):
        found = aspect_findings(tables["morris"])
        if found:
            section.add("findings", found)
        section.add("table", aspects_table(tables["morris"]))

    profile = metrics.get("profile") if isinstance(metrics, dict) else None
    if isinstance(profile, dict) and profile:
        values = [
            ", ".join(map(str, v)) if isinstance(v, list) else format_number(v) if isinstance(v, float) else str(v)
            for v in profile.values()
        ]
        section.add("heading", "Run profile")
        section.add(
            "table",
            from_frame(
                pd.DataFrame({"setting": [k.replace("_", " ") for k in profile], "value": values}),
                "table-watermark-profile",
                "Profile of the watermark run: image source, budgets and the explained "
                "models. The default profile uses the few offline sample photos, so its "
                "intervals are wide.",
                sortable=False,
            ),
        )
    return section
