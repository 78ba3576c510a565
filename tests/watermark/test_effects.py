"""The effect statistics of do(watermark) against their definitions, and the budget helpers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shortcut_audit.factors.watermark import CARTON
from shortcut_audit.watermark.audit import capped_doublings, seeded_subset
from shortcut_audit.watermark.effects import LABELLED, STATISTICS, effect_rows, image_effects


def _logits(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    clean = torch.randn(n, 1000, generator=generator)
    marked = clean + 0.5 * torch.randn(n, 1000, generator=generator)
    marked[: n // 3, CARTON] += 20.0  # a third of the images turn to carton
    clean[-2:, CARTON] += 20.0  # two were carton already
    labels = clean.argmax(dim=1).clone()
    labels[::4] = 7  # some clean predictions are wrong
    return clean, marked, labels


def test_effects_follow_the_papers_definitions():
    clean, marked, labels = _logits(30, 0)
    images = image_effects([f"i{k}" for k in range(30)], clean, marked, labels)
    rows = effect_rows(images, n_resamples=500).set_index("statistic")
    top_c, top_m = clean.argmax(1).numpy(), marked.argmax(1).numpy()
    y = labels.numpy()
    p_c, p_m = clean.double().softmax(1)[:, CARTON].numpy(), marked.double().softmax(1)[:, CARTON].numpy()
    expected = {
        "top1_change_rate": np.mean(top_c != top_m),
        "carton_share_clean": np.mean(top_c == CARTON),
        "carton_share_watermarked": np.mean(top_m == CARTON),
        "carton_gap": np.mean(top_m == CARTON) - np.mean(top_c == CARTON),
        "carton_prob_shift": np.mean(p_m - p_c),
        "carton_logit_shift": np.mean(marked[:, CARTON].numpy() - clean[:, CARTON].numpy()),
        "accuracy_clean": np.mean(top_c == y),
        "accuracy_watermarked": np.mean(top_m == y),
        "accuracy_drop": np.mean(top_c == y) - np.mean(top_m == y),  # minus the paper's ImageNet-W gap
    }
    assert list(rows.index) == list(STATISTICS)
    for statistic, value in expected.items():
        assert rows.at[statistic, "value"] == pytest.approx(value, abs=1e-6), statistic
        assert rows.at[statistic, "ci_low"] <= rows.at[statistic, "value"] <= rows.at[statistic, "ci_high"]
    assert rows.at["carton_gap", "value"] > 0 and rows.at["accuracy_drop", "ci_high"] > 0


def test_without_labels_there_is_no_accuracy():
    clean, marked, _ = _logits(12, 1)
    rows = effect_rows(image_effects([str(k) for k in range(12)], clean, marked), n_resamples=200)
    assert not set(LABELLED) & set(rows["statistic"])


def test_the_interval_is_the_percentile_bootstrap_over_images():
    clean, marked, _ = _logits(40, 2)
    images = image_effects([str(k) for k in range(40)], clean, marked)
    rows = effect_rows(images, n_resamples=4000, seed=3).set_index("statistic")
    changed = images["changed"].to_numpy(float)
    rng = np.random.default_rng(0)
    means = changed[rng.integers(0, 40, size=(4000, 40))].mean(axis=1)
    low, high = np.quantile(means, [0.025, 0.975])
    assert rows.at["top1_change_rate", "ci_low"] == pytest.approx(low, abs=0.03)
    assert rows.at["top1_change_rate", "ci_high"] == pytest.approx(high, abs=0.03)


def test_doublings_stop_when_the_pool_is_used_up():
    assert capped_doublings(3, 6, 6) == 0  # every correct image already in
    assert capped_doublings(3, 256, 300) == 1  # one doubling reaches all 300
    assert capped_doublings(3, 256, 10_000) == 3  # the param caps it
    assert capped_doublings(3, 100, 350) == 2


def test_seeded_subsets_are_samples_and_pools_extend():
    assert torch.equal(seeded_subset(5, None, 0), torch.arange(5))
    sample = seeded_subset(100, 10, 4)
    assert torch.equal(sample, sample.sort().values) and len(set(sample.tolist())) == 10
    pool = seeded_subset(100, None, 4, ordered=True)
    assert torch.equal(seeded_subset(100, 10, 4, ordered=True), pool[:10])
    assert not torch.equal(pool[:10], pool[:10].sort().values)
