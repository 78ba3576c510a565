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

WHICH_LABELS = {"most": "most important masked", "least": "least important masked"}
MODE_LABELS = {"deletion": "Deletion (lower area is better)", "insertion": "Insertion (higher area is better)"}
#: Line styles of the reference maps of the fidelity protocols (shortcut_audit.imagenet.fidelity).
REFERENCE_STYLES = {"random": "--", "constant": ":"}


def method_colours(methods: list[str]) -> dict[str, tuple[str, str]]:
    """method -> (colour, marker), stable across the figures of the section."""
    return {m: (colour(i), marker(i)) for i, m in enumerate(methods)}


def _label_bars(ax, bars, values) -> None:
    for bar, value in zip(bars, values):
        ax.annotate(
            f"{value:.2f}",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            xytext=(0, 2),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=6.5,
        )


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
                    ax.plot(
                        line["fraction"],
                        line["score"],
                        color="#888888",
                        ls=REFERENCE_STYLES[method],
                        lw=1.0,
                        label=f"{method} map",
                    )
                else:
                    ax.plot(
                        line["fraction"],
                        line["score"],
                        color=style[method][0],
                        marker=style[method][1],
                        markersize=2.5,
                        label=method,
                    )
            ax.set_title(MODE_LABELS.get(mode, mode))
            ax.set_xlabel("fraction of pixels deleted" if mode == "deletion" else "fraction of pixels inserted")
        axes[0][0].set_ylabel("class score")
        fig.legend(*axes[0][0].get_legend_handles_labels(), loc="outside right center", frameon=False)
    return Figure(
        "fig-imagenet-curves",
        f"Deletion and insertion curves of {model}",
        "Mean class score while the pixels are deleted (left) or inserted (right) in the order each "
        "method ranks them, averaged over the images. A faithful map makes the deletion curve fall "
        "early and the insertion curve rise early; the area under each curve is the fidelity table's "
        "deletion and insertion AUC." + (f" Protocol: {protocol}." if protocol else ""),
        svg=to_svg(fig, "fig-imagenet-curves"),
    )


def convergence_plot(convergence: pd.DataFrame, methods: list[str]) -> Figure:
    """Spearman correlation with a converged explanation against forward passes (Sobol paper, Fig. 2)."""
    means = convergence.groupby(["model", "method", "budget"], as_index=False, sort=True).agg(
        forwards=("forwards", "mean"), spearman=("spearman", "mean"), low=("spearman", "min"), high=("spearman", "max")
    )
    models = sorted(means["model"].unique())
    style = method_colours(methods)
    fig, axes = _subplots(1, len(models), 2.8 * len(models) + 0.9, 2.1, sharey=True)
    with mpl.rc_context(STYLE):
        for j, model in enumerate(models):
            ax = axes[0][j]
            for method in [m for m in methods if m in set(means["method"])]:
                line = means[(means["model"] == model) & (means["method"] == method)].sort_values("forwards")
                ax.fill_between(line["forwards"], line["low"], line["high"], color=style[method][0], alpha=0.18, lw=0)
                ax.plot(
                    line["forwards"], line["spearman"], color=style[method][0], marker=style[method][1], label=method
                )
            ax.axhline(0, color="#888888", lw=0.6)
            ax.set_title(model)
            ax.set_xlabel("forward passes per image")
        axes[0][0].set_ylabel("Spearman with converged map")
        axes[0][0].set_ylim(min(-0.05, float(means["low"].min()) - 0.05), 1.02)
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside right center", frameon=False)
    return Figure(
        "fig-imagenet-convergence",
        "Convergence against the forward-pass budget",
        "Spearman rank correlation of each method's map with an independent, converged run of the "
        "same method (line: mean over images, band: range). The method whose line climbs towards 1 "
        "with fewer forward passes is cheaper to trust; the Sobol paper reports about 0.8 for Sobol "
        "against 0.65 for RISE at 1,000 forwards.",
        svg=to_svg(fig, "fig-imagenet-convergence"),
    )


#: Display names of the MoSIP ranking statistics, in the paper's order.
STATISTIC_LABELS = {"mu_star": "mu*", "sigma": "sigma", "mu_star_plus_sigma": "mu* + sigma"}
#: Rankings of the masking curves: the statistics, then the uninformative references.
RANKING_LABELS = {**STATISTIC_LABELS, "random": "a random map", "constant": "a constant map"}


def _model_colours(models: list[str]) -> dict[str, str]:
    return {m: colour(i) for i, m in enumerate(models)}


def overlap_plot(summary: pd.DataFrame, reference: str) -> Figure:
    """MoSIP Fig. 5: overlap with the reference per ranking, and raw mu*/sigma on the regions.

    ``summary`` is :func:`~shortcut_audit.report.imagenet_section.overlap_summary`.
    """
    models = list(pd.unique(summary["model"]))
    statistics = [s for s in STATISTIC_LABELS if s in set(summary["statistic"])]
    x = np.arange(len(models))
    fig, axes = _subplots(1, 3, 9.0, 2.4)
    with mpl.rc_context(STYLE):
        ax = axes[0][0]
        width = 0.8 / max(1, len(statistics))
        for k, statistic in enumerate(statistics):
            part = summary[summary["statistic"] == statistic].set_index("model").reindex(models)
            error = np.vstack([part["overlap_share"] - part["share_low"], part["share_high"] - part["overlap_share"]])
            ax.bar(
                x + (k - (len(statistics) - 1) / 2) * width,
                part["overlap_share"],
                width,
                yerr=error,
                color=colour(k),
                capsize=2,
                error_kw={"lw": 0.8},
                label=STATISTIC_LABELS[statistic],
            )
        ax.set(
            xticks=x,
            xticklabels=models,
            ylim=(0, 1.3),
            ylabel="overlap share",
            title=f"Top regions shared with {reference}",
        )
        ax.legend(frameon=False, fontsize=6.5, ncols=len(statistics), loc="upper center")
        for j, value in enumerate(("mu_star", "sigma"), start=1):
            ax = axes[0][j]
            part = summary[summary["statistic"] == value].set_index("model").reindex(models)
            bars = (
                (f"{value}_overlapping", "overlapping", None, colour(j - 1)),
                (f"{value}_differing", "differing", "//", colour(j - 1)),
                (f"reference_{value}_overlapping", f"{reference}, same regions", None, "#000000"),
            )
            for k, (column, label, hatch, fill) in enumerate(bars):
                ax.bar(
                    x + (k - 1) * 0.26,
                    part[column].fillna(0.0),
                    0.26,
                    color=fill,
                    hatch=hatch,
                    edgecolor="white",
                    label=label,
                )
            ax.set(
                xticks=x,
                xticklabels=models,
                ylabel=f"raw {STATISTIC_LABELS[value]}",
                title=f"{STATISTIC_LABELS[value]} (regions ranked by {STATISTIC_LABELS[value]})",
            )
            top = float(np.nanmax(part[[b[0] for b in bars]].to_numpy(dtype=float), initial=0.0))
            ax.set_ylim(0, 1.6 * top if top > 0 else 1.0)  # room for the legend above the bars
            ax.legend(frameon=False, fontsize=6.5, loc="upper center")
        for ax in axes[0]:
            ax.tick_params(axis="x", rotation=15)
    return Figure(
        "fig-imagenet-overlap",
        "Cross-architecture overlap of important regions (MoSIP Fig. 5)",
        f"Local analysis. Left: share of each model's top regions, ranked by mu*, sigma or mu* + sigma, "
        f"that coincide with or neighbour a top region of the reference architecture ({reference}) "
        "ranked the same way, mean over images with a 95% interval. Middle and right: the model's raw "
        "(not normalised) mean mu* and sigma on its overlapping (solid) and differing (hatched) top "
        f"regions, and {reference}'s own values on the same overlapping regions (black). Raw values "
        "are in each model's output units, so compare the bars of one model with its reference bar.",
        svg=to_svg(fig, "fig-imagenet-overlap"),
    )


def ratio_plot(ratio: pd.DataFrame) -> Figure:
    """MoSIP Fig. 6a: mu*/sigma over the relevant regions of the global analysis, per model."""
    models = list(ratio["model"])
    threshold = float(ratio["threshold"].iloc[0]) if len(ratio) else 0.6
    fig, axes = _subplots(1, 1, 1.1 * len(models) + 2.6, 2.2)
    ax = axes[0][0]
    with mpl.rc_context(STYLE):
        x = np.arange(len(models))
        bars = ax.bar(
            x,
            ratio["mean_ratio"],
            color=[colour(i) for i in range(len(models))],
            width=0.55,
            label="mean over relevant regions",
        )
        _label_bars(ax, bars, ratio["mean_ratio"])
        ax.scatter(x, ratio["median_ratio"], color="#000000", marker="_", s=120, zorder=3, label="median")
        ax.axhline(1.0, color="#888888", ls="--", lw=0.8)
        ax.set(xticks=x, xticklabels=models, ylabel="mu*/sigma", ylim=(0, None))
        ax.tick_params(axis="x", rotation=15)
        fig.legend(*ax.get_legend_handles_labels(), loc="outside right center", frameon=False)
    return Figure(
        "fig-imagenet-ratio",
        "mu*/sigma on the relevant regions (MoSIP Fig. 6a)",
        f"Global analysis (lumped values sampled between their minimum and maximum over all images, "
        f"statistics averaged over images): mean ratio of mu* to sigma over the regions whose "
        f"normalised mu* or sigma exceeds {threshold:g} (bar) and its median (dash). Above the dashed "
        "line (ratio 1) the regions act mostly on their own; below it their effect depends on the "
        "other regions (interaction or non-linearity).",
        svg=to_svg(fig, "fig-imagenet-ratio"),
    )


def interaction_plot(shares: pd.DataFrame) -> Figure:
    """Share of top-K region pairs that interact by MoSIP's test, per model (``shares``: model, share)."""
    fig, axes = _subplots(1, 1, 3.4, 1.9)
    ax = axes[0][0]
    with mpl.rc_context(STYLE):
        x = np.arange(len(shares))
        bars = ax.bar(x, shares["share"], color=[colour(i) for i in range(len(shares))], width=0.55)
        _label_bars(ax, bars, shares["share"])
        ax.set(xticks=x, xticklabels=list(shares["model"]), ylim=(0, 1.12), ylabel="share of pairs interacting")
    return Figure(
        "fig-imagenet-interactions",
        "Interacting region pairs (MoSIP Fig. 6b)",
        "Share of the pairs among each model's top-K regions of the global analysis that interact by "
        "the pairwise heuristic of MoSIP: on the correctly predicted images, masking x then y and y "
        "then x gives accuracy changes with delta1 + gamma1 > delta2 + gamma2, which is D_x + D_y > "
        "D_xy for the accuracy drops D. A higher share means more pairs whose regions each need the "
        "other (interaction) rather than acting non-linearly on their own.",
        svg=to_svg(fig, "fig-imagenet-interactions"),
    )


MASKING_PANELS = (("accuracy", "accuracy"), ("score_change", "target score change"))
SCOPE_TEXT = {
    "local": ("each image's own ranking (local analysis)", "MoSIP Figs. 4 and 9"),
    "global": ("one ranking for every image (global analysis)", "MoSIP Fig. 10"),
}


def masking_plot(masking: pd.DataFrame, scope: str) -> Figure:
    """Accuracy and target-score change against the masked share, per ranking (MoSIP Figs. 4, 9, 10)."""
    data = masking[masking["scope"] == scope]
    models = sorted(data["model"].unique())
    rankings = [r for r in RANKING_LABELS if r in set(data["ranking"])]
    colours = _model_colours(models)
    fig, axes = _subplots(2, len(rankings), 2.3 * len(rankings) + 1.9, 3.4, sharex=True, sharey="row")
    with mpl.rc_context(STYLE):
        for j, ranking in enumerate(rankings):
            for r, (column, label) in enumerate(MASKING_PANELS):
                ax = axes[r][j]
                for model in models:
                    for which, ls in (("most", "-"), ("least", "--")):
                        line = data[
                            (data["model"] == model) & (data["ranking"] == ranking) & (data["which"] == which)
                        ].sort_values("step")
                        if not line.empty:
                            ax.plot(
                                line["fraction"],
                                line[column],
                                color=colours[model],
                                ls=ls,
                                marker="o",
                                markersize=2.5,
                                fillstyle="full" if which == "most" else "none",
                                label=f"{model}, {WHICH_LABELS[which]}",
                            )
                if r == 0:
                    ax.set_title(f"ranked by {RANKING_LABELS[ranking]}")
                    ax.set_ylim(-0.03, 1.05)
                else:
                    ax.axhline(0, color="#888888", lw=0.6)
                    ax.set_xlabel("share of regions masked")
                    ax.set_xlim(left=0)
                if j == 0:
                    ax.set_ylabel(label)
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside right center", frameon=False)
    how, paper = SCOPE_TEXT.get(scope, (scope, "MoSIP"))
    return Figure(
        f"fig-imagenet-masking-{scope}",
        f"Masking the most and least important regions, {scope}",
        f"{paper}: accuracy (top) and mean change of the target probability (bottom) of the correctly "
        f"predicted images while regions are masked one by one in {how}, ranked by mu*, sigma or "
        "mu* + sigma, and, for comparison, by a random map and a constant map (ties masked in row order): "
        "most important first (solid) or least important first (dashed); the first point is the clean "
        "image. A faithful ranking makes the solid lines fall far below the dashed ones, and below the "
        "random map's.",
        svg=to_svg(fig, f"fig-imagenet-masking-{scope}"),
    )


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
            ax.set_xticks(
                list(first["n_members"]),
                [f"+{m} ({n})" if n > 1 else f"{m} (1)" for n, m in zip(first["n_members"], added)],
                fontsize=6,
                rotation=30,
                ha="right",
            )
            for r, (name, values) in enumerate(references.items()):
                if metric in values:
                    ax.axhline(values[metric], color="#888888", ls=("--", ":", "-.")[r % 3], lw=0.8, label=name)
            ax.set(xlabel="ensemble members (method added)", ylabel=label)
        fig.legend(*axes[0][0].get_legend_handles_labels(), loc="outside right center", frameon=False)
    rule = ", ".join(
        sorted(
            {f"{a} ({s})" if isinstance(s, str) and s else str(a) for a, s in zip(size["aggregation"], size["setting"])}
        )
    )
    return Figure(
        "fig-imagenet-ensemble-size",
        "Ensemble size protocol",
        "Ensembles of the k best base methods, k = 1 .. K, the methods added one by one in descending "
        "order of their own score, separately for deletion (left, ordered by deletion AUC) and insertion "
        f"(right, ordered by insertion AUC), as in Fig. 11 of the ensemble paper; aggregations: {rule}. "
        "Grey lines: the reference maps under the same protocol. The first point is the best single "
        "method; a falling deletion or rising insertion line means the added method helps.",
        svg=to_svg(fig, "fig-imagenet-ensemble-size"),
    )


def _photo(image: np.ndarray) -> np.ndarray:
    image = np.clip(np.asarray(image, dtype=np.float32), 0, 1)
    return np.moveaxis(image, 0, -1) if image.ndim == 3 and image.shape[0] in (1, 3) else image


def heatmap_gallery(arrays: dict[str, np.ndarray], methods: list[str], n_images: int = 4) -> Figure:
    """The sample photos next to each method's attribution map (PNG)."""
    n = max(1, min(n_images, len(arrays["images"])))
    ids = [str(i) for i in arrays.get("image_ids", np.arange(n))][:n]
    targets: list[int | None] = [int(t) for t in arrays["targets"][:n]] if "targets" in arrays else [None] * n
    fig, axes = _subplots(n, len(methods) + 1, 1.05 * (len(methods) + 1) + 0.2, 1.1 * n + 0.3)
    with mpl.rc_context({**STYLE, "axes.grid": False}):
        for i in range(n):
            photo = _photo(arrays["images"][i])
            axes[i][0].imshow(photo, interpolation="bilinear")
            axes[i][0].set_ylabel(ids[i] if targets[i] is None else f"{ids[i]}\nclass {targets[i]}")
            for k, method in enumerate(methods):
                ax = axes[i][k + 1]
                ax.imshow(photo.mean(axis=-1) if photo.ndim == 3 else photo, cmap="gray", interpolation="bilinear")
                ax.imshow(
                    _normalise(arrays[f"map_{method}"][i]),
                    cmap=MAP_CMAP,
                    alpha=0.7,
                    vmin=0,
                    vmax=1,
                    interpolation="nearest",
                )
                if i == 0:
                    ax.set_title(method)
            if i == 0:
                axes[i][0].set_title("photo")
            for ax in axes[i]:
                ax.set_xticks([])
                ax.set_yticks([])
                for spine in ax.spines.values():
                    spine.set_visible(False)
    return Figure(
        "fig-imagenet-gallery",
        "Attribution maps of the sample photos",
        "Each row is one photo (with the explained class) and each column one method's map for the "
        "reference model, drawn over the grey photo (bright = important, each map scaled to its own "
        "range). Faithful methods agree on the object; a map bright on the background or the frame "
        "points at context the model reads, or at noise of a method with too few forward passes.",
        png=to_png_uri(fig, dpi=100),
        alt="Sample photos and the attribution map of every method",
    )
