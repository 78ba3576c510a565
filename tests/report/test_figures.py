"""Figures: reproducible inline SVG with scoped ids, PNG galleries, escaped labels."""

from __future__ import annotations

import base64
import re

from shortcut_audit.report import figures


def _morris(fx):
    table = fx.morris_table()
    return table[table["output"] == "normalised_mean"]


def test_svg_is_reproducible_and_carries_no_date(fx):
    first = figures.trends_vs_level(_morris(fx), list(fx.ARCHS)).svg
    second = figures.trends_vs_level(_morris(fx), list(fx.ARCHS)).svg
    assert first == second
    assert first.startswith("<svg ") and "<?xml" not in first and "<dc:date>" not in first


def test_svg_ids_are_scoped_per_figure(fx):
    a = figures.mu_sigma_scatter(_morris(fx), list(fx.ARCHS))
    b = figures.trends_vs_level(_morris(fx), list(fx.ARCHS))
    ids_a = set(re.findall(r'\bid="([^"]+)"', a.svg))
    ids_b = set(re.findall(r'\bid="([^"]+)"', b.svg))
    assert ids_a and ids_b and not ids_a & ids_b
    assert all(i.startswith("fig-mu-sigma-") for i in ids_a)
    refs = set(re.findall(r'(?:url\(#|href="#)([^)"]+)', b.svg))
    assert refs and refs <= ids_b


def test_svg_escapes_hostile_labels(fx):
    table = fx.pixel_view_table()
    table["arch"] = table["arch"].replace("mlp", fx.HOSTILE)
    svg = figures.background_share_vs_level(table, ["simple_cnn", fx.HOSTILE]).svg
    assert fx.HOSTILE not in svg and "&lt;script&gt;" in svg


def test_gallery_is_a_png_data_uri(fx):
    examples = [(d, fx.maps_arrays(d, "mlp")) for d in fx.DATASETS]
    fig = figures.pixel_gallery("mlp", examples, n_images=2)
    assert fig.png.startswith("data:image/png;base64,") and not fig.svg
    assert base64.b64decode(fig.png.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert fig.png == figures.pixel_gallery("mlp", examples, n_images=2).png


def test_outline_marks_only_the_mask_boundary():
    import numpy as np

    mask = np.zeros((6, 6), dtype=bool)
    mask[1:5, 1:5] = True
    edge = figures._outline(mask)[..., 3] > 0
    assert edge.sum() == 12 and not edge[2:4, 2:4].any() and not edge[0].any()
