"""Fidelity protocols of the ImageNet audit: every score next to a random and a constant map, with
Student-t intervals over images, and a region-wise protocol that does not reward scattered maps."""

import math

import pandas as pd
import pytest
import torch
from scipy import stats

from shortcut_audit.imagenet.fidelity import (
    build_protocols,
    not_beating_random,
    protocol_rows,
    reference_maps,
    summary_rows,
)


class EdgeSensitiveModel(torch.nn.Module):
    """Class-0 logit = 20 * mean of the top-left quadrant - 40 * total variation - 8.

    The object is the quadrant; isolated deleted pixels anywhere add edges (total variation)
    and destroy the score faster than removing a compact region does.
    """

    def forward(self, x):
        h, w = x.shape[-2:]
        quadrant = x[:, :, : h // 2, : w // 2].mean(dim=(1, 2, 3))
        tv = x.diff(dim=-1).abs().mean(dim=(1, 2, 3)) + x.diff(dim=-2).abs().mean(dim=(1, 2, 3))
        logit = 20 * quadrant - 40 * tv - 8
        return torch.stack([logit, torch.zeros_like(logit)], dim=1)


def _run(protocols, n=6, size=16):
    images, targets = torch.ones(n, 3, size, size), torch.zeros(n, dtype=torch.long)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    compact = (-(yy**2 + xx**2).float().sqrt()).expand(n, size, size).clone()  # grows from the corner
    ids = [f"img{i}" for i in range(n)]
    rows = []
    for name, maps in {"compact": compact, **reference_maps((n, size, size), seed=0)}.items():
        rows += protocol_rows("m", name, EdgeSensitiveModel(), images, maps, targets, ids, protocols, 64, 0)[0]
    return pd.DataFrame(rows)


def test_pixel_deletion_to_black_rewards_scatter_and_the_region_protocol_does_not():
    protocols = build_protocols(
        ["rise", "region"],
        steps=16,
        deletion_baseline="zero",
        insertion_baseline="blur",
        region_grid=4,
        region_baseline="zero",
    )
    summary = pd.DataFrame(summary_rows(_run(protocols), protocols, 0.95)).set_index(["protocol", "method", "metric"])
    pixel, region = summary.loc[("rise", "compact", "deletion_auc")], summary.loc[("region", "compact", "deletion_auc")]
    assert pixel["mean"] > pixel["random_mean"] and pixel["vs_random"] == "worse"  # the flaw, flagged
    assert region["mean"] < region["random_mean"] and region["vs_random"] == "better"
    assert bool(region["beats_random"]) and not bool(pixel["beats_random"])
    flagged = not_beating_random(summary.reset_index())
    assert "compact" in flagged["rise"] and "region" not in flagged
    assert "region-wise, 4x4 cells" in region["protocol_detail"]


def test_summary_is_a_student_t_interval_and_a_paired_gain_over_images():
    values = {"a": [0.10, 0.14, 0.12, 0.20], "random": [0.30, 0.25, 0.28, 0.35], "constant": [0.3, 0.2, 0.3, 0.3]}
    fidelity = pd.DataFrame(
        [
            {
                "model": "m",
                "protocol": "sobol",
                "method": method,
                "image_id": f"i{i}",
                "metric": "deletion_auc",
                "value": v,
            }
            for method, vs in values.items()
            for i, v in enumerate(vs)
        ]
    )
    protocols = build_protocols(["sobol"], 10, "zero", "blur", 4, "gray")
    rows = {r["method"]: r for r in summary_rows(fidelity, protocols, 0.9)}

    def t_interval(xs, level):
        n, mean = len(xs), sum(xs) / len(xs)
        sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
        half = stats.t.ppf(0.5 + level / 2, n - 1) * sd / math.sqrt(n)
        return mean, mean - half, mean + half

    mean, low, high = t_interval(values["a"], 0.9)
    assert (rows["a"]["mean"], rows["a"]["ci_low"], rows["a"]["ci_high"]) == pytest.approx((mean, low, high))
    gains = [r - a for a, r in zip(values["a"], values["random"])]  # deletion: lower is better
    g, g_low, g_high = t_interval(gains, 0.9)
    assert (rows["a"]["gain_vs_random"], rows["a"]["gain_ci_low"], rows["a"]["gain_ci_high"]) == pytest.approx(
        (g, g_low, g_high)
    )
    assert rows["a"]["vs_random"] == ("better" if g_low > 0 else "inconclusive")
    assert rows["random"]["vs_random"] == "reference" and not rows["random"]["beats_random"]
    assert rows["a"]["constant_mean"] == pytest.approx(0.275) and rows["a"]["n_images"] == 4


def test_protocols_take_their_papers_baselines():
    named = {
        p.name: p for p in build_protocols(["rise", "sobol", "ensemble", "region"], 224, "zero", "blur", 11, "gray")
    }
    assert (named["rise"].deletion_baseline, named["rise"].insertion_baseline) == ("zero", "blur")
    assert (named["sobol"].deletion_baseline, named["sobol"].insertion_baseline) == ("gray", "gray")
    assert named["ensemble"].deletion_baseline == named["ensemble"].insertion_baseline == "random_normal"
    assert named["region"].region_wise and named["region"].steps == 11
    with pytest.raises(ValueError, match="unknown fidelity protocol"):
        build_protocols(["pixel"], 10, "zero", "blur", 4, "gray")


def test_reference_maps_are_seeded_noise_and_a_constant():
    maps = reference_maps((2, 5, 5), seed=3)
    assert torch.equal(maps["random"], reference_maps((2, 5, 5), seed=3)["random"])
    assert not torch.equal(maps["random"], reference_maps((2, 5, 5), seed=4)["random"])
    assert (maps["constant"] == 0).all()


def _two_image_fidelity(metric, values):
    return pd.DataFrame(
        [
            {"model": "m", "protocol": "sobol", "method": method, "image_id": f"i{i}", "metric": metric, "value": v}
            for method, vs in values.items()
            for i, v in enumerate(vs)
        ]
    )


def test_intervals_over_two_images_stay_in_what_the_metric_can_attain():
    """With two images the Student-t factor is 12.7: unclipped, an AUC interval leaves [0, 1] and a
    gain of two AUCs leaves [-1, 1]. The normalised AOPC has no lower bound, so its interval keeps
    its Student-t lower end."""
    protocols = build_protocols(["sobol"], 10, "zero", "blur", 4, "gray")
    auc = {"a": [0.05, 0.9], "random": [0.6, 0.1], "constant": [0.5, 0.5]}
    rows = {r["method"]: r for r in summary_rows(_two_image_fidelity("deletion_auc", auc), protocols, 0.95)}
    half = stats.t.ppf(0.975, 1) * pd.Series(auc["a"]).std() / math.sqrt(2)
    assert rows["a"]["mean"] - half < 0 and rows["a"]["mean"] + half > 1  # the raw interval leaves [0, 1]
    assert (rows["a"]["ci_low"], rows["a"]["ci_high"]) == (0.0, 1.0)
    assert (rows["a"]["gain_ci_low"], rows["a"]["gain_ci_high"]) == (-1.0, 1.0)
    assert rows["a"]["vs_random"] == "inconclusive"

    naopc = {"a": [-3.0, 0.9], "random": [0.2, 0.1], "constant": [0.1, 0.1]}
    rows = {r["method"]: r for r in summary_rows(_two_image_fidelity("naopc", naopc), protocols, 0.95)}
    mean = -1.05
    half = stats.t.ppf(0.975, 1) * pd.Series(naopc["a"]).std() / math.sqrt(2)
    assert rows["a"]["ci_low"] == pytest.approx(mean - half) and rows["a"]["ci_high"] == 1.0
    assert rows["a"]["gain_ci_low"] < -1  # unbounded below, as the metric is
