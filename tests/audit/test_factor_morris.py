"""Factor Morris (MoSIP global analysis) on known-answer models."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from shortcut_audit.audit.factor_morris import COLUMNS, OUTPUTS, factor_morris, output_changes, summarise
from shortcut_audit.factors.scene import ProbabilityReader
from shortcut_audit.sensitivity.morris import grid_step, trajectory_design


def _run(model, sample, **kwargs):
    kwargs = {"n_trajectories": 12, "levels": 20, **kwargs}
    return factor_morris(ProbabilityReader(model, batch_size=256), sample, **kwargs)


def _row(table: pd.DataFrame, factor: str, output: str) -> pd.Series:
    return table[(table["factor"] == factor) & (table["output"] == output)].iloc[0]


@pytest.mark.parametrize("design", ["trajectory", "radial"])
def test_background_model_depends_on_background_only(bg_model, heldout, design):
    table = _run(bg_model, heldout, design=design).table
    assert list(table.columns) == list(COLUMNS)
    assert set(table["output"]) == set(OUTPUTS)
    assert np.isfinite(table.select_dtypes("number").to_numpy()).all()
    for output in OUTPUTS:
        bg = _row(table, "bg_color", output)
        assert bg["mu_star"] > 0.05 and bg["mu_star_share"] == 1.0
        for inert in ("digit_color", "position"):
            row = _row(table, inert, output)
            # a factor the output does not depend on: exactly zero, never NaN
            assert row[["mu", "mu_star", "sigma", "mu_star_conf", "mu_star_share", "sigma_over_mu_star"]].eq(0).all()
    # per-output normalisation: bg is the top factor of every output that moves
    assert _row(table, "bg_color", "normalised_mean")["mu_star"] == pytest.approx(1.0)


def test_digit_colour_model_depends_on_digit_colour(digit_colour_model, heldout):
    table = _run(digit_colour_model, heldout).table
    shares = table[table["output"] == "true_class_prob"].set_index("factor")["mu_star_share"]
    assert shares["digit_color"] > 0.99
    assert shares["position"] == 0.0


def test_constant_model_gives_zeros_and_a_warning(constant_model, heldout):
    with pytest.warns(RuntimeWarning, match="constant model"):
        table = _run(constant_model, heldout).table
    assert (table.select_dtypes("number") == 0).all().all()


def test_unknown_factor_is_refused_with_the_known_names(bg_model, heldout):
    with pytest.raises(ValueError, match="it can set digit_color, bg_color, position"):
        _run(bg_model, heldout, factors=("digit_color", "texture"))


def test_a_subset_of_factors_keeps_the_others_at_the_digits_values(bg_model, heldout):
    table = _run(bg_model, heldout, factors=("bg_color",)).table
    assert table["factor"].tolist() == ["bg_color", "bg_color"]
    assert (table["mu_star_share"] == 1.0).all()


def test_same_seed_same_result_and_batching_does_not_matter(bg_model, heldout):
    first = factor_morris(ProbabilityReader(bg_model, batch_size=64), heldout, n_trajectories=8, seed=3)
    second = factor_morris(ProbabilityReader(bg_model, batch_size=1000), heldout, n_trajectories=8, seed=3)
    pd.testing.assert_frame_equal(first.table, second.table)
    other = factor_morris(ProbabilityReader(bg_model, batch_size=64), heldout, n_trajectories=8, seed=4)
    assert not first.table.equals(other.table)


def test_no_forward_pass_exceeds_the_batch_size(bg_model, heldout):
    sizes = []

    def recording(images):
        sizes.append(images.shape[0])
        return bg_model(images)

    result = factor_morris(ProbabilityReader(recording, batch_size=70), heldout, n_trajectories=5)
    assert max(sizes) <= 70
    assert sum(sizes) == result.n_evaluations == 5 * 4 * len(heldout)


def test_output_changes_are_the_engine_effects_times_the_step():
    design = trajectory_design(6, 3, levels=20, seed=0, device="cpu")
    outputs = torch.randn(design.n_points, 2, dtype=torch.float64)
    changes = output_changes(design, outputs)
    effects = design.effects(outputs)
    torch.testing.assert_close(changes.abs(), effects.abs() * grid_step(20))
    # the change of a move is literally y(after) - y(before)
    y = outputs.view(6, 4, 2)
    t, moved_first = 0, int(design.moved_group[0, 0])
    torch.testing.assert_close(changes[t, moved_first], y[t, 1] - y[t, 0])


def test_summaries_by_hand():
    # r = 2 moves per factor, d = 2 factors, n = 1 digit of label 1, C = 2 classes
    changes = torch.zeros(2, 2, 1, 2, dtype=torch.float64)
    changes[:, 0, 0, 1] = torch.tensor([0.4, -0.2])  # factor a moves the true class
    changes[:, 1, 0, 1] = torch.tensor([0.1, 0.1])  # factor b moves it less
    changes[:, 0, 0, 0] = torch.tensor([0.0, 0.2])  # class 0: only factor a
    table = summarise(changes, torch.tensor([1]), ("a", "b"), n_resamples=10).set_index(["output", "factor"])
    true_a, true_b = table.loc[("true_class_prob", "a")], table.loc[("true_class_prob", "b")]
    assert true_a["mu"] == pytest.approx(0.1) and true_a["mu_star"] == pytest.approx(0.3)
    assert true_a["sigma"] == pytest.approx(math.sqrt(0.18))
    assert true_b["mu_star"] == pytest.approx(0.1) and true_b["sigma"] == 0
    assert true_a["mu_star_share"] == pytest.approx(0.75)
    assert true_a["sigma_over_mu_star"] == pytest.approx(math.sqrt(0.18) / 0.3)
    # normalised: class 1 divides by 0.3 (a: 1, b: 1/3), class 0 by 0.1 (a: 1, b: 0)
    assert table.loc[("normalised_mean", "a"), "mu_star"] == pytest.approx(1.0)
    assert table.loc[("normalised_mean", "b"), "mu_star"] == pytest.approx((1 / 3 + 0) / 2)
    assert table.loc[("normalised_mean", "a"), "mu"] == pytest.approx((0.1 / 0.3 + 0.1 / 0.1) / 2)


def test_true_class_effects_are_not_cancelled_across_labels(bg_model, heldout):
    # the mean of p(y) over a balanced sample barely moves with the background, but
    # each digit's own p(y) does: the audit must see the per-digit effect
    result = _run(bg_model, heldout)
    per_digit = result.changes[:, 1, torch.arange(len(heldout)), heldout.labels].abs().mean()
    mean_over_digits = result.changes[:, 1, torch.arange(len(heldout)), heldout.labels].mean(dim=-1).abs().mean()
    assert _row(result.table, "bg_color", "true_class_prob")["mu_star"] == pytest.approx(float(per_digit))
    assert float(mean_over_digits) < 0.5 * float(per_digit)


def test_local_trajectories_start_at_own_values_and_move_one_factor_to_another_level(aligned):
    from shortcut_audit.audit.factor_morris import local_trajectories

    points, orders = local_trajectories(aligned, ["digit_color", "bg_color", "position"], n_trajectories=3, seed=1)
    assert points.shape == (3, 4, len(aligned), 3)
    assert torch.equal(points[:, 0], aligned.own_values[None].expand(3, -1, -1))
    for t in range(3):
        for k in range(3):
            changed = points[t, k + 1] != points[t, k]
            assert bool((changed.sum(dim=1) == 1).all())  # exactly one factor moves, and it changes value
            assert torch.equal(changed.float().argmax(dim=1), orders[t, :, k])
        assert bool((orders[t].sort(dim=1).values == torch.arange(3)).all())  # every factor moves once


def test_local_sampling_sees_the_full_effect_of_leaving_the_training_distribution(bg_model, heldout, aligned):
    reader = ProbabilityReader(bg_model, batch_size=256)
    local = factor_morris(reader, aligned, n_trajectories=4, sampling="local").mu_star()
    global_ = factor_morris(reader, heldout, n_trajectories=20, levels=20).mu_star()
    # from the aligned state every background move flips the decision (p(y) from ~0.94 to ~0)
    assert local["bg_color"] > 0.85
    # in the uniform factor space a move enters or leaves the linked colour about 2 times in 10
    assert global_["bg_color"] == pytest.approx(0.2 * local["bg_color"], abs=0.08)
    assert local["digit_color"] == local["position"] == 0.0


def test_a_fixed_class_output_reads_that_class(bg_model, heldout):
    from shortcut_audit.audit.factor_morris import class_output

    table = _run(bg_model, heldout, n_trajectories=6, outputs=[class_output(3)]).table
    assert set(table["output"]) == {"class_3_prob"}
    row = table.set_index("factor").loc["bg_color"]
    # p(class 3) changes by ~1 when the background enters or leaves colour 3: 2 moves in 10 at most
    assert 0.0 < row["mu_star"] <= 0.3
    with pytest.raises(ValueError, match="unknown Morris output"):
        _run(bg_model, heldout, n_trajectories=2, outputs=["class_12_prob"])
