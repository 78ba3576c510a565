"""Figures of the ImageNet section: fidelity curves, convergence, cross-architecture
analyses, region masking, ensemble size and the heatmap gallery.

Every function takes tidy tables of the ImageNet stage (schemas in
:mod:`shortcut_audit.imagenet.pipeline`) and returns a captioned
:class:`~shortcut_audit.report.figures.Figure`. Colours and markers follow the
Okabe-Ito palette of :mod:`shortcut_audit.report.figures`; a method keeps its colour
in every figure of the section.
"""
from __future__ import annotations

import matplotlib as mpl
import numpy as np
import pandas as pd

from shortcut_audit.report.figures import (
    MAP_CMAP,
    STYLE,
    Figure,
    _normalise,
    _subplots,
    colour,
    marker,
    to_png_uri,
    to_svg,
)

#: Line style and marker of the two masking scopes (colour encodes most/least important).
SCOPE_STYLES = {"local": ("-", "o"), "global": ("--", "s")}
WHICH_LABELS = {"most": "most important masked", "least": "least important masked"}
MODE_LABELS = {"deletion": "Deletion (lower area is better)", "insertion": "Insertion (higher area is better)"}
#: Line styles of the reference maps of the fidelity protocols (shortcut_audit.imagenet.fidelity).
REFERENCE_STYLES = {"random": "--", "constant": ":"}


def method_colours(methods: list[str]) -> dict[str, tuple[str, str]]:
    """method -> (colour, marker), stable across the figures of the section."""
    return {m: (colour(i), marker(i)) for i, m in enumerate(methods)}


def _label_bars(ax, bars, values) -> None:
    for bar, value in zip(bars, values):
        ax.annotate(f"{value:.2f}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    xytext=(0, 2), textcoords="offset points", ha="center", va="bottom", fontsize=6.5)


def fidelity_curves(curves: pd.DataFrame, model: str, methods: list[str], protocol: str = "") -> Figure:
    """Mean deletion and insertion curves of every method on one model under one protocol.

    ``protocol`` (a description) is named in the caption; ``curves`` must hold that protocol only.
    """
    data = curves[curves["model"] == model]
    modes = [m for m in MODE_LABELS if m in set(data["mode"])] or sorted(set(data["mode"]))
    style = method_colours([m for m in methods if m not in REFERENCE_STYLES])
    fig, axes = _subplots(1, len(modes), 2.9 * len(modes) + 1.1, 2.3, sharey=True)
    with mpl.rc_context(STYLE):
        for j, mode in enumerate(modes):
            ax = axes[0][j]
            for method in methods:
                line = data[(data["mode"] == mode) & (data["method"] == method)].sort_values("step")
                if line.empty:
                    continue
                if method in REFERENCE_STYLES:  # maps without information: grey, no marker
                    ax.plot(line["fraction"], line["score"], color="#888888", ls=REFERENCE_STYLES[method], lw=1.0,
                            label=f"{method} map")
                else:
                    ax.plot(line["fraction"], line["score"], color=style[method][0], marker=style[method][1],
                            markersize=2.5, label=method)
            ax.set_title(MODE_LABELS.get(mode, mode))
            ax.set_xlabel("fraction of pixels deleted" if mode == "deletion" else "fraction of pixels inserted")
        axes[0][0].set_ylabel("class score")
        fig.legend(*axes[0][0].get_legend_handles_labels(), loc="outside right center", frameon=False)
    return Figure("fig-imagenet-curves", f"Deletion and insertion curves of {model}",
                  "Mean class score while the pixels are deleted (left) or inserted (right) in the order each "
                  "method ranks them, averaged over the images. A faithful map makes the deletion curve fall "
                  "early and the insertion curve rise early; the area under each curve is the fidelity table's "
                  "deletion and insertion AUC." + (f" Protocol: {protocol}." if protocol else ""),
                  svg=to_svg(fig, "fig-imagenet-curves"))


def convergence_plot(convergence: pd.DataFrame, methods: list[str]) -> Figure:
    """Spearman correlation with a converged explanation against forward passes (Sobol paper, Fig. 2)."""
    means = (convergence.groupby(["model", "method", "budget"], as_index=False, sort=True)
             .agg(forwards=("forwards", "mean"), spearman=("spearman", "mean"),
                  low=("spearman", "min"), high=("spearman", "max")))
    models = sorted(means["model"].unique())
    style = method_colours(methods)
    fig, axes = _subplots(1, len(models), 2.8 * len(models) + 0.9, 2.1, sharey=True)
    with mpl.rc_context(STYLE):
        for j, model in enumerate(models):
            ax = axes[0][j]
            for method in [m for m in methods if m in set(means["method"])]:
                line = means[(means["model"] == model) & (means["method"] == method)].sort_values("forwards")
                ax.fill_between(line["forwards"], line["low"], line["high"], color=style[method][0], alpha=0.18,
                                lw=0)
                ax.plot(line["forwards"], line["spearman"], color=style[method][0], marker=style[method][1],
                        label=method)
            ax.axhline(0, color="#888888", lw=0.6)
            ax.set_title(model)
            ax.set_xlabel("forward passes per image")
        axes[0][0].set_ylabel("Spearman with converged map")
        axes[0][0].set_ylim(min(-0.05, float(means["low"].min()) - 0.05), 1.02)
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside right center", frameon=False)
    return Figure("fig-imagenet-convergence", "Convergence against the forward-pass budget",
                  "Spearman rank correlation of each method's map with an independent, converged run of the "
                  "same method (line: mean over images, band: range). The method whose line climbs towards 1 "
                  "with fewer forward passes is cheaper to trust; the Sobol paper reports about 0.8 for Sobol "
                  "against 0.65 for RISE at 1,000 forwards.",
                  svg=to_svg(fig, "fig-imagenet-convergence"))


def _region_means(overlap: pd.DataFrame) -> pd.DataFrame:
    """Mean mu* and sigma on overlapping and differing regions per model; images whose set is
    empty (stored as 0) are left out of that set's mean."""
    rows = []
    for model, group in overlap.groupby("model", sort=True):
        row = {"model": model}
        for part in ("overlapping", "differing"):
            kept = group[group[f"n_{part}"] > 0]
            for stat in ("mu_star", "sigma"):
                row[f"{stat}_{part}"] = float(kept[f"{stat}_{part}"].mean()) if len(kept) else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def overlap_plot(overlap: pd.DataFrame) -> Figure:
    """Overlap share with the reference and mu*/sigma on overlapping vs differing regions
    (MoSIP Section 5)."""
    shares = overlap.groupby("model", as_index=False, sort=True)["overlap_share"].mean()
    regions = _region_means(overlap)
    models = list(shares["model"])
    reference = ", ".join(sorted(overlap["reference"].astype(str).unique()))
    top = float(overlap["top_fraction"].iloc[0]) if len(overlap) else 0.2
    x = np.arange(len(models))
    fig, axes = _subplots(1, 2, 6.4, 2.3)
    with mpl.rc_context(STYLE):
        ax = axes[0][0]
        bars = ax.bar(x, shares["overlap_share"], color=colour(0), width=0.55)
        _label_bars(ax, bars, shares["overlap_share"])
        ax.set(xticks=x, xticklabels=models, ylim=(0, 1.12), ylabel="overlap share",
               title=f"Top-{top:.0%} regions shared with {reference}")
        ax = axes[0][1]
        width = 0.2
        parts = [("mu_star_overlapping", "mu*, overlapping", 0, None), ("mu_star_differing", "mu*, differing", 1, "//"),
                 ("sigma_overlapping", "sigma, overlapping", 2, None), ("sigma_differing", "sigma, differing", 3, "//")]
        for k, (column, label, slot, hatch) in enumerate(parts):
            values = regions[column].fillna(0.0)
            ax.bar(x + (slot - 1.5) * width, values, width, color=colour(0 if k < 2 else 1), hatch=hatch,
                   edgecolor="white", label=label)
        ax.set(xticks=x, xticklabels=list(regions["model"]), ylim=(0, 1.4), ylabel="normalised value",
               title="mu* and sigma by region set")
        ax.legend(frameon=False, fontsize=6.5, ncols=2, loc="upper center")
        for ax in axes[0]:
            ax.tick_params(axis="x", rotation=15)
    return Figure("fig-imagenet-overlap", "Cross-architecture overlap of important regions",
                  f"Left: share of each model's top-{top:.0%} Morris regions that coincide with, or neighbour, "
                  f"a top region of the reference architecture ({reference}), mean over images. Right: mean "
                  "normalised mu* (blue) and sigma (orange) on the regions that overlap (solid) and on those "
                  "that differ (hatched). MoSIP finds that architectures agree on their most important regions; "
                  "differing regions with low mu* but high sigma are the model-specific, interaction-driven ones.",
                  svg=to_svg(fig, "fig-imagenet-overlap"))


def ratio_plot(ratio: pd.DataFrame) -> Figure:
    """mu*/sigma over the relevant regions, per model and image."""
    models = sorted(ratio["model"].unique())
    threshold = float(ratio["threshold"].iloc[0]) if len(ratio) else 0.6
    fig, axes = _subplots(1, 1, 4.0, 2.1)
    ax = axes[0][0]
    with mpl.rc_context(STYLE):
        for i, model in enumerate(models):
            points = ratio[(ratio["model"] == model) & (ratio["n_ratio"] > 0)].sort_values("image_id")
            jitter = np.linspace(-0.12, 0.12, len(points)) if len(points) > 1 else np.zeros(len(points))
            ax.scatter(i + jitter, points["mean_ratio"], color=colour(i), marker=marker(i), s=16, zorder=3,
                       label="per image" if i == 0 else None)
            if len(points):
                ax.hlines(points["mean_ratio"].mean(), i - 0.25, i + 0.25, color="#000000", lw=1.4,
                          label="model mean" if i == 0 else None)
        ax.axhline(1.0, color="#888888", ls="--", lw=0.8)
        ax.set(xticks=range(len(models)), xticklabels=models, ylabel="mean mu*/sigma", ylim=(0, None))
        fig.legend(*ax.get_legend_handles_labels(), loc="outside right center", frameon=False)
    return Figure("fig-imagenet-ratio", "mu*/sigma on the relevant regions",
                  f"Mean ratio of mu* to sigma over the regions whose normalised mu* or sigma exceeds "
                  f"{threshold:g}, per image (dots) and per model (bar). Above the dashed line (ratio 1) the "
                  "regions act mostly on their own; below it their effect depends on the other regions "
                  "(interaction or non-linearity). Compare the models' levels rather than single images.",
                  svg=to_svg(fig, "fig-imagenet-ratio"))


def interaction_plot(shares: pd.DataFrame) -> Figure:
    """Share of top-region pairs with an interaction, per model (``shares``: model, share)."""
    fig, axes = _subplots(1, 1, 3.4, 1.9)
    ax = axes[0][0]
    with mpl.rc_context(STYLE):
        x = np.arange(len(shares))
        bars = ax.bar(x, shares["share"], color=[colour(i) for i in range(len(shares))], width=0.55)
        _label_bars(ax, bars, shares["share"])
        ax.set(xticks=x, xticklabels=list(shares["model"]), ylim=(0, 1.12), ylabel="share of pairs interacting")
    return Figure("fig-imagenet-interactions", "Interacting region pairs",
                  "Share of the pairs among each model's top-5 Morris regions whose joint masking changes the "
                  "score by more than the sum of the single maskings (the pairwise heuristic of MoSIP). A model "
                  "with a higher share combines regions rather than reading them one by one; read it together "
                  "with the mu*/sigma ratio above.",
                  svg=to_svg(fig, "fig-imagenet-interactions"))


def _from_zero(line: pd.DataFrame) -> pd.DataFrame:
    """Prepend the unmasked point: clean accuracy and no score change at fraction 0."""
    if line.empty or (line["fraction"] <= 0).any() or "clean_accuracy" not in line:
        return line
    start = {"fraction": 0.0, "accuracy": float(line["clean_accuracy"].iloc[0]), "score_change": 0.0}
    return pd.concat([pd.DataFrame([start]), line[list(start)]], ignore_index=True)


def masking_plot(masking: pd.DataFrame) -> Figure:
    """Accuracy and score change against the masked fraction (MoSIP Figs. 4 and 10)."""
    models = sorted(masking["model"].unique())
    whichs = [w for w in WHICH_LABELS if w in set(masking["which"])]
    fig, axes = _subplots(2, len(models), 2.3 * len(models) + 1.9, 3.4, sharex=True, sharey="row")
    with mpl.rc_context(STYLE):
        for j, model in enumerate(models):
            for r, (column, label) in enumerate((("accuracy", "top-1 accuracy"), ("score_change", "score change"))):
                ax = axes[r][j]
                for k, which in enumerate(whichs):
                    for scope, (ls, mark) in SCOPE_STYLES.items():
                        line = masking[(masking["model"] == model) & (masking["which"] == which)
                                       & (masking["scope"] == scope)].sort_values("fraction")
                        line = _from_zero(line)
                        if not line.empty:
                            ax.plot(line["fraction"], line[column], color=colour(5 if k == 0 else 0), ls=ls,
                                    marker=mark, fillstyle="full" if scope == "local" else "none",
                                    label=f"{WHICH_LABELS[which]}, {scope}")
                if r == 0:
                    ax.set_title(model)
                    ax.set_ylim(-0.03, 1.05)
                else:
                    ax.axhline(0, color="#888888", lw=0.6)
                    ax.set_xlabel("fraction of regions masked")
                    ax.set_xlim(left=0)
                if j == 0:
                    ax.set_ylabel(label)
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside right center", frameon=False)
    return Figure("fig-imagenet-masking", "Masking the most and least important regions",
                  "Top-1 accuracy (top) and mean change of the class score (bottom) after masking a fraction "
                  "of the Morris regions, most important first (vermillion) or least important first (blue); "
                  "solid line, filled marker: regions ranked per image (local); dashed, hollow: one ranking for "
                  "all images (global); the first point is the unmasked image. As in MoSIP Figs. 4 and 10, "
                  "masking the most important regions should cost far more than masking the least important ones.",
                  svg=to_svg(fig, "fig-imagenet-masking"))


def ensemble_size_plot(size: pd.DataFrame, references: dict[str, dict[str, float]]) -> Figure:
    """The ensemble-size protocol (Mahlau & Nolde 2022, Sec. 4.4, Fig. 11) of one model.

    ``size`` holds the ``size_protocol`` rows of ``ensembles.csv`` (one model); the left panel
    reads the deletion AUC of the ensembles ordered by deletion, the right one the insertion
    AUC of those ordered by insertion, one line per aggregation. ``references`` maps a label
    (e.g. "random map") to its ``deletion_auc`` / ``insertion_auc``, drawn as horizontal lines.
    """
    fig, axes = _subplots(1, 2, 6.4, 2.7)
    panels = (("deletion_auc", "deletion AUC (lower is better)"), ("insertion_auc", "insertion AUC (higher is better)"))
    with mpl.rc_context(STYLE):
        for j, (metric, label) in enumerate(panels):
            ax = axes[0][j]
            part = size[size["ordered_by"] == metric]
            for k, (aggregation, line) in enumerate(part.groupby("aggregation", sort=False)):
                line = line.sort_values("n_members")
                ax.plot(line["n_members"], line[metric], color=colour(k), marker=marker(k), label=str(aggregation))
            first = part.sort_values("n_members").drop_duplicates("n_members")
            added = [str(m).split("+")[-1] for m in first["members"]]
            ax.set_xticks(list(first["n_members"]), [f"+{m} ({n})" if n > 1 else f"{m} (1)"
                                                     for n, m in zip(first["n_members"], added)],
                          fontsize=6, rotation=30, ha="right")
            for r, (name, values) in enumerate(references.items()):
                if metric in values:
                    ax.axhline(values[metric], color="#888888", ls=("--", ":", "-.")[r % 3], lw=0.8, label=name)
            ax.set(xlabel="ensemble members (method added)", ylabel=label)
        fig.legend(*axes[0][0].get_legend_handles_labels(), loc="outside right center", frameon=False)
    rule = ", ".join(sorted({f"{a} ({s})" if isinstance(s, str) and s else str(a)
                             for a, s in zip(size["aggregation"], size["setting"])}))
    return Figure("fig-imagenet-ensemble-size", "Ensemble size protocol",
                  "Ensembles of the k best base methods, k = 1 .. K, the methods added one by one in descending "
                  "order of their own score, separately for deletion (left, ordered by deletion AUC) and insertion "
                  f"(right, ordered by insertion AUC), as in Fig. 11 of the ensemble paper; aggregations: {rule}. "
                  "Grey lines: the reference maps under the same protocol. The first point is the best single "
                  "method; a falling deletion or rising insertion line means the added method helps.",
                  svg=to_svg(fig, "fig-imagenet-ensemble-size"))


def _photo(image: np.ndarray) -> np.ndarray:
    image = np.clip(np.asarray(image, dtype=np.float32), 0, 1)
    return np.moveaxis(image, 0, -1) if image.ndim == 3 and image.shape[0] in (1, 3) else image


def heatmap_gallery(arrays: dict[str, np.ndarray], methods: list[str], n_images: int = 4) -> Figure:
    """The sample photos next to each method's attribution map (PNG)."""
    n = max(1, min(n_images, len(arrays["images"])))
    ids = [str(i) for i in arrays.get("image_ids", np.arange(n))][:n]
    targets = [int(t) for t in arrays["targets"][:n]] if "targets" in arrays else [None] * n
    fig, axes = _subplots(n, len(methods) + 1, 1.05 * (len(methods) + 1) + 0.2, 1.1 * n + 0.3)
    with mpl.rc_context({**STYLE, "axes.grid": False}):
        for i in range(n):
            photo = _photo(arrays["images"][i])
            axes[i][0].imshow(photo, interpolation="bilinear")
            axes[i][0].set_ylabel(ids[i] if targets[i] is None else f"{ids[i]}\nclass {targets[i]}")
            for k, method in enumerate(methods):
                ax = axes[i][k + 1]
                ax.imshow(photo.mean(axis=-1) if photo.ndim == 3 else photo, cmap="gray", interpolation="bilinear")
                ax.imshow(_normalise(arrays[f"map_{method}"][i]), cmap=MAP_CMAP, alpha=0.7, vmin=0, vmax=1,
                          interpolation="nearest")
                if i == 0:
                    ax.set_title(method)
            if i == 0:
                axes[i][0].set_title("photo")
            for ax in axes[i]:
                ax.set_xticks([])
                ax.set_yticks([])
                for spine in ax.spines.values():
                    spine.set_visible(False)
    return Figure("fig-imagenet-gallery", "Attribution maps of the sample photos",
                  "Each row is one photo (with the explained class) and each column one method's map for the "
                  "reference model, drawn over the grey photo (bright = important, each map scaled to its own "
                  "range). Faithful methods agree on the object; a map bright on the background or the frame "
                  "points at context the model reads, or at noise of a method with too few forward passes.",
                  png=to_png_uri(fig, dpi=100), alt="Sample photos and the attribution map of every method")
