"""Report figures: matplotlib rendered to inline SVG (PNG data URIs for image galleries).

Figures are drawn on :class:`matplotlib.figure.Figure` objects (no pyplot state) under
one style with the Okabe-Ito palette, which stays distinguishable under the common
colour-vision deficiencies; lines also differ by marker. SVG output is made
reproducible: a per-figure hash salt gives stable, unique element ids, and the date
is dropped from the metadata.
"""

from __future__ import annotations

import base64
import io
import re
from dataclasses import dataclass
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.figure import Figure as MplFigure
from matplotlib.typing import RcKeyType

from shortcut_audit.report.naming import (
    ORDER_LABELS,
    dataset_order,
    factor_label,
    factor_order,
    full_bias_levels,
)

#: Okabe & Ito (2008) colour-blind-safe palette, black last.
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
FACTOR_COLOURS = {"digit_color": "#D55E00", "bg_color": "#0072B2", "position": "#009E73"}
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
MAP_CMAP = "cividis"

STYLE: dict[RcKeyType, Any] = {
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#dddddd",
    "grid.linewidth": 0.5,
    "lines.linewidth": 1.4,
    "lines.markersize": 4,
    "svg.fonttype": "none",
    "svg.image_inline": True,
}


@dataclass(frozen=True)
class Figure:
    """A rendered figure: inline ``svg`` markup or a ``png`` data URI, with its caption."""

    id: str
    title: str
    caption: str
    svg: str = ""
    png: str = ""
    alt: str = ""

    @property
    def svg_uri(self) -> str:
        """The SVG as a data URI: the PDF renderer draws it as an image, much faster than inline."""
        return "data:image/svg+xml;base64," + base64.b64encode(self.svg.encode("utf8")).decode("ascii")


def colour(i: int) -> str:
    return OKABE_ITO[i % len(OKABE_ITO)]


def marker(i: int) -> str:
    return MARKERS[i % len(MARKERS)]


_SVG_START = re.compile(r"^.*?(?=<svg\b)", re.S)
_SVG_ID = re.compile(r'\bid="([^"]+)"')
_SVG_REF = re.compile(r'(url\(#|href="#)([^)"]+)')


def _scope_ids(svg: str, scope: str) -> str:
    """Prefix every element id (and reference to it) with ``scope``, so that several
    figures inlined in one page never define the same id twice."""
    svg = _SVG_ID.sub(lambda m: f'id="{scope}-{m.group(1)}"', svg)
    return _SVG_REF.sub(lambda m: f"{m.group(1)}{scope}-{m.group(2)}", svg)


def to_svg(fig: MplFigure, name: str) -> str:
    """Serialise ``fig`` as SVG markup for inlining in HTML, byte-identical across runs.

    The hash salt includes ``name`` so two figures never share element ids.
    """
    buf = io.StringIO()
    with mpl.rc_context({**STYLE, "svg.hashsalt": f"shortcut-audit-{name}"}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    svg = _scope_ids(_SVG_START.sub("", buf.getvalue(), count=1), name)
    return svg.replace("<svg ", f'<svg role="img" aria-labelledby="{name}-title" class="figure-svg" ', 1)


def to_png_uri(fig: MplFigure, dpi: int = 110) -> str:
    """Serialise ``fig`` as a PNG data URI (for pixel galleries, where SVG would be heavy)."""
    buf = io.BytesIO()
    with mpl.rc_context(STYLE):
        fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _new_figure(width: float, height: float) -> MplFigure:
    with mpl.rc_context(STYLE):
        return MplFigure(figsize=(width, height), layout="constrained")


def _subplots(nrows: int, ncols: int, width: float, height: float, **kwargs):
    fig = _new_figure(width, height)
    with mpl.rc_context(STYLE):
        axes = fig.subplots(nrows, ncols, squeeze=False, **kwargs)
    return fig, axes


def mu_sigma_scatter(morris: pd.DataFrame, archs: list[str], output: str = "normalised_mean") -> Figure:
    """Morris mu* against sigma, one panel per model (MoSIP Fig. 2b)."""
    data = morris[morris["output"] == output]
    datasets, factors = dataset_order(data), factor_order(data)
    fig, axes = _subplots(
        len(archs), len(datasets), 1.35 * len(datasets) + 0.6, 1.25 * len(archs) + 0.7, sharex=True, sharey=True
    )
    top = float(max(data["mu_star"].max(), data["sigma"].max(), 1e-6)) * 1.1
    with mpl.rc_context(STYLE):
        for i, arch in enumerate(archs):
            for j, dataset_id in enumerate(datasets):
                ax = axes[i][j]
                ax.plot([0, top], [0, top], ls="--", lw=0.7, color="#888888")
                panel = data[(data["arch"] == arch) & (data["dataset_id"] == dataset_id)]
                for k, factor in enumerate(factors):
                    row = panel[panel["factor"] == factor]
                    ax.scatter(
                        row["mu_star"],
                        row["sigma"],
                        s=22,
                        marker=marker(k),
                        color=FACTOR_COLOURS.get(factor, colour(k + 3)),
                        label=factor_label(factor),
                        zorder=3,
                    )
                ax.set_xlim(0, top)
                ax.set_ylim(0, top)
                if i == 0:
                    ax.set_title(dataset_id)
                if j == 0:
                    ax.set_ylabel(f"{arch}\nsigma")
                if i == len(archs) - 1:
                    ax.set_xlabel("mu*")
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside upper center", ncols=len(factors), frameon=False)
    return Figure(
        "fig-mu-sigma",
        "Morris mu* against sigma per model",
        "Each panel is one model (rows: architecture, columns: training data). A factor far to the "
        "right changes the output strongly (high mu*); a factor high above the dashed line "
        "sigma = mu* has effects that vary with the other factors (interaction or non-linearity). "
        "Look for colour factors moving right as the correlation level grows.",
        svg=to_svg(fig, "fig-mu-sigma"),
    )


def trends_vs_level(morris: pd.DataFrame, archs: list[str], output: str = "normalised_mean") -> Figure:
    """mu* and sigma against correlation level, per factor and architecture (MoSIP Fig. 3a)."""
    data = full_bias_levels(morris[morris["output"] == output])
    factors = factor_order(data)
    fig, axes = _subplots(2, len(factors), 2.5 * len(factors) + 0.4, 4.2, sharex=True, sharey="row")
    with mpl.rc_context(STYLE):
        for j, factor in enumerate(factors):
            for r, (column, label) in enumerate((("mu_star", "mu*"), ("sigma", "sigma"))):
                ax = axes[r][j]
                for k, arch in enumerate(archs):
                    line = data[(data["factor"] == factor) & (data["arch"] == arch)].sort_values("p")
                    err = line["mu_star_conf"] if column == "mu_star" and "mu_star_conf" in line else None
                    ax.errorbar(
                        line["p"], line[column], yerr=err, color=colour(k), marker=marker(k), capsize=2, label=arch
                    )
                if r == 0:
                    ax.set_title(factor_label(factor))
                else:
                    ax.set_xlabel("correlation level p")
                if j == 0:
                    ax.set_ylabel(label)
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside upper center", ncols=min(len(archs), 6), frameon=False)
    return Figure(
        "fig-trends",
        "mu* and sigma against the correlation level",
        "One line per architecture, datasets that bias every factor (error bars: bootstrap "
        "confidence of mu*). A factor the models learn as a shortcut rises with p; lines that "
        "rise earlier belong to architectures that pick the shortcut up at weaker correlation.",
        svg=to_svg(fig, "fig-trends"),
    )


def intervention_curves(interventions: pd.DataFrame, archs: list[str]) -> Figure:
    """Accuracy while factors are re-drawn one after another, both orders, with 95% CI bands
    (MoSIP Fig. 3b)."""
    datasets = dataset_order(interventions)
    fig, axes = _subplots(
        len(datasets), len(archs), 1.9 * len(archs) + 0.6, 1.15 * len(datasets) + 0.8, sharex=True, sharey=True
    )
    orders = [o for o in ORDER_LABELS if o in set(interventions["order"])] or sorted(set(interventions["order"]))
    with mpl.rc_context(STYLE):
        for i, dataset_id in enumerate(datasets):
            for j, arch in enumerate(archs):
                ax = axes[i][j]
                model = interventions[(interventions["dataset_id"] == dataset_id) & (interventions["arch"] == arch)]
                for k, order in enumerate(orders):
                    curve = model[model["order"] == order].sort_values("step")
                    ax.fill_between(curve["step"], curve["ci_low"], curve["ci_high"], color=colour(k), alpha=0.25, lw=0)
                    ax.plot(
                        curve["step"],
                        curve["accuracy"],
                        color=colour(k),
                        marker=marker(k),
                        label=ORDER_LABELS.get(order, order),
                    )
                ax.set_ylim(0, 1.02)
                if i == 0:
                    ax.set_title(arch)
                if j == 0:
                    ax.set_ylabel(f"{dataset_id}\naccuracy")
                if i == len(datasets) - 1:
                    ax.set_xlabel("factors re-drawn")
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside upper center", ncols=2, frameon=False)
    return Figure(
        "fig-interventions",
        "Interventional curves",
        "Accuracy on correctly classified held-out digits while the factors are re-drawn at random, "
        "one after another, in decreasing (blue) and increasing (orange) order of Morris importance; "
        "bands are 95% confidence intervals. A model that uses no factor stays near 1. If the blue "
        "curve falls first and the orange curve only at the last step, the Morris ranking is right; "
        "drops larger than the single-factor drops add up to indicate interactions.",
        svg=to_svg(fig, "fig-interventions"),
    )


def accuracy_vs_level(models: pd.DataFrame, archs: list[str]) -> Figure:
    """Unbiased accuracy and aligned-conflicting gap against the correlation level."""
    data = full_bias_levels(models)
    fig, axes = _subplots(1, 2, 6.4, 2.4, sharex=True)
    with mpl.rc_context(STYLE):
        for k, arch in enumerate(archs):
            line = data[data["arch"] == arch].sort_values("p")
            axes[0][0].plot(line["p"], line["unbiased_acc"], color=colour(k), marker=marker(k), label=arch)
            axes[0][1].plot(line["p"], line["aligned_conflicting_gap"], color=colour(k), marker=marker(k))
        axes[0][0].set(xlabel="correlation level p", ylabel="unbiased test accuracy")
        axes[0][1].set(xlabel="correlation level p", ylabel="aligned - conflicting accuracy")
        fig.legend(*axes[0][0].get_legend_handles_labels(), loc="outside right center", frameon=False)
    return Figure(
        "fig-accuracy",
        "Accuracy against the correlation level",
        "Left: accuracy on the unbiased test set (every factor random). Right: accuracy on bias-aligned "
        "digits minus accuracy on bias-conflicting digits. A model that uses a shortcut loses unbiased "
        "accuracy and opens a gap as p grows.",
        svg=to_svg(fig, "fig-accuracy"),
    )


def background_share_vs_level(pixel_view: pd.DataFrame, archs: list[str]) -> Figure:
    """Mean share of Sobol mass on background pixels against the correlation level."""
    data = full_bias_levels(pixel_view)
    means = data.groupby(["arch", "p"], as_index=False)[["background_share", "background_pixel_fraction"]].mean()
    fig, axes = _subplots(1, 1, 4.6, 2.6)
    ax = axes[0][0]
    with mpl.rc_context(STYLE):
        for k, arch in enumerate(archs):
            line = means[means["arch"] == arch].sort_values("p")
            ax.plot(line["p"], line["background_share"], color=colour(k), marker=marker(k), label=arch)
        area = means.groupby("p")["background_pixel_fraction"].mean()
        ax.plot(area.index, area.values, ls="--", color="#555555", lw=1, label="background area")
        ax.set(xlabel="correlation level p", ylabel="background share of attribution", ylim=(0, 1))
        ax.legend(loc="best", frameon=False)
    return Figure(
        "fig-background",
        "Background share of attribution",
        "Share of the positive Sobol total-index mass that falls on background pixels, averaged over "
        "the explained held-out images. The dashed line is the share of pixels that are background: "
        "a model indifferent to the background stays well below it; a curve rising towards or above "
        "it means the model looks at the background colour.",
        svg=to_svg(fig, "fig-background"),
    )


def _outline(mask: np.ndarray) -> np.ndarray:
    """RGBA overlay marking the boundary pixels of a boolean mask in white."""
    mask = np.asarray(mask, dtype=bool)
    padded = np.pad(mask, 1, mode="edge")
    interior = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    edge = mask & ~interior
    overlay = np.zeros((*mask.shape, 4), dtype=np.float32)
    overlay[edge] = (1.0, 1.0, 1.0, 0.9)
    return overlay


def _normalise(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float32)
    span = float(a.max() - a.min())
    return (a - a.min()) / span if span > 0 else np.zeros_like(a)


def pixel_gallery(arch: str, examples: list[tuple[str, dict]], n_images: int = 3) -> Figure:
    """Held-out images next to their Sobol maps, one row per training dataset of ``arch``."""
    n_images = max(1, min([n_images, *[len(e["images"]) for _, e in examples]]))
    fig, axes = _subplots(len(examples), 2 * n_images, 1.0 * 2 * n_images + 0.8, 1.05 * len(examples) + 0.3)
    with mpl.rc_context({**STYLE, "axes.grid": False}):
        for i, (dataset_id, arrays) in enumerate(examples):
            for k in range(n_images):
                image = np.clip(np.asarray(arrays["images"][k], dtype=np.float32), 0, 1)
                image = np.moveaxis(image, 0, -1) if image.ndim == 3 else image
                ax_img, ax_map = axes[i][2 * k], axes[i][2 * k + 1]
                ax_img.imshow(image.squeeze(), interpolation="nearest", cmap="gray")
                ax_map.imshow(_normalise(arrays["maps"][k]), cmap=MAP_CMAP, interpolation="nearest", vmin=0, vmax=1)
                if "digit_mask" in arrays:
                    ax_map.imshow(_outline(arrays["digit_mask"][k]), interpolation="nearest")
                for ax in (ax_img, ax_map):
                    ax.set_xticks([])
                    ax.set_yticks([])
                    for spine in ax.spines.values():
                        spine.set_visible(False)
                if i == 0:
                    ax_img.set_title(f"image {k + 1}")
                    ax_map.set_title("Sobol map")
            axes[i][0].set_ylabel(dataset_id)
    slug = re.sub(r"[^a-z0-9]+", "-", arch.lower()).strip("-") or "model"
    return Figure(
        f"fig-gallery-{slug}",
        f"Pixel attributions of {arch}",
        f"Held-out images and their Sobol total-index maps for {arch} (rows: training data, bright = "
        "important, white outline = digit pixels). Attribution inside the outline means the model "
        "reads the digit; attribution spread over the background means it reads the background colour.",
        png=to_png_uri(fig),
        alt=f"Held-out images and attribution maps of {arch}",
    )
