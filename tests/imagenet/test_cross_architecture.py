"""MoSIP Sec. 5 analyses, each checked against the paper's procedure written out in the test."""

import itertools
import math

import pytest
import torch

from shortcut_audit.imagenet import cross_architecture as X


def _quadrants(x):
    """Means of the four 8 x 8 quadrants of 16 x 16 images, (N, 4) row-major."""
    return x.unfold(2, 8, 8).unfold(3, 8, 8).mean(dim=(1, 4, 5)).flatten(1)


class Additive(torch.nn.Module):
    """Class-0 output adds the means of the four 8 x 8 quadrants; no interactions."""

    def forward(self, x):
        s = _quadrants(x) @ torch.tensor([0.4, 0.3, 0.2, 0.1])
        return torch.stack([s, torch.zeros_like(s)], dim=1)


class Product(Additive):
    """Class-0 output is the product of the two top quadrants: strongly interacting."""

    def forward(self, x):
        q = _quadrants(x)
        s = q[:, 0] * q[:, 1]
        return torch.stack([s, torch.zeros_like(s)], dim=1)


class Gate(torch.nn.Module):
    """Class 0 wins when ``rule`` of the two top quadrants holds ("and": both present, "or": either)."""

    def __init__(self, rule):
        super().__init__()
        self.rule = rule

    def forward(self, x):
        q = _quadrants(x)
        s = torch.minimum(q[:, 0], q[:, 1]) if self.rule == "and" else torch.maximum(q[:, 0], q[:, 1])
        return torch.stack([s, torch.full_like(s, 0.5)], dim=1)


class RandomNet(torch.nn.Module):
    """A fixed random 3-class ReLU net on the 4 x 4 region means of 16 x 16 images."""

    def __init__(self, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w1, self.w2 = torch.randn(8, 48, generator=g), torch.randn(3, 8, generator=g)

    def forward(self, x):
        regions = torch.nn.functional.avg_pool2d(x, 4).flatten(1)
        return torch.relu(regions @ self.w1.T) @ self.w2.T


def _mu_star():
    return torch.tensor([[4.0, 3.0], [2.0, 1.0]])[None].clone()


# ---------------------------------------------------------------- top-K pairs (Fig. 6b)


def test_pairs_follow_delta_gamma_sequence_on_accuracy():
    """delta1 + gamma1 > delta2 + gamma2 from sequential masking, computed literally here."""
    g = torch.Generator().manual_seed(0)
    images = torch.nn.functional.interpolate(torch.rand(60, 3, 4, 4, generator=g), scale_factor=4)
    model = RandomNet()
    targets = model(images).argmax(1)
    wrong = torch.rand(60, generator=g) < 0.3
    targets[wrong] = torch.randint(0, 3, (int(wrong.sum()),), generator=g)
    ranking = torch.rand(4, 4, generator=g)
    k = 5
    rows = X.pair_rows("m", model, images, targets, "true", ranking, top_k=k, baseline="zero", batch_size=16)

    def accuracy(regions, keep):
        masked = images.clone()
        for region in regions:
            r, c = divmod(region, 4)
            masked[:, :, 4 * r : 4 * r + 4, 4 * c : 4 * c + 4] = 0.0
        return (model(masked).argmax(1) == targets)[keep].float().mean().item()

    keep = model(images).argmax(1) == targets
    assert 0 < int(keep.sum()) < 60  # some images are left out: only the correct ones count
    top = sorted(range(16), key=lambda j: (-ranking.flatten()[j].item(), j))[:k]
    expected = []
    for x, y in itertools.combinations(top, 2):
        a0, ax, ay, axy = accuracy([], keep), accuracy([x], keep), accuracy([y], keep), accuracy([x, y], keep)
        delta1, delta2 = a0 - ax, ax - axy  # mask x, then y
        gamma1, gamma2 = a0 - ay, ay - axy  # mask y, then x
        expected.append((x, y, delta1 + gamma1 > delta2 + gamma2 + 1e-12, delta1, gamma1, a0 - axy))
    assert len(rows) == math.comb(k, 2)
    for row, (x, y, interacts, dx, dy, dxy) in zip(rows, expected):
        assert (row["region_x"], row["region_y"]) == (x, y)
        assert row["interacts"] == interacts and row["n_images"] == int(keep.sum())
        assert row["drop_x"] == pytest.approx(dx) and row["drop_y"] == pytest.approx(dy)
        assert row["drop_xy"] == pytest.approx(dxy)
    assert {r["interacts"] for r in rows} == {True, False}  # the inputs exercise both outcomes


@pytest.mark.parametrize("rule, interacts", [("and", True), ("or", False)])
def test_pairs_known_answers(rule, interacts):
    """AND: either region alone already costs all accuracy (D_x + D_y = 2 > D_xy = 1).
    OR: only the pair costs it (0 + 0 < 1), which the paper's one-sided test does not flag."""
    images, targets = torch.ones(3, 3, 16, 16), torch.zeros(3, dtype=torch.long)
    rows = X.pair_rows(
        "m", Gate(rule), images, targets, "predicted", _mu_star()[0], top_k=2, baseline="zero", batch_size=8
    )
    assert len(rows) == 1 and (rows[0]["region_x"], rows[0]["region_y"]) == (0, 1)
    assert rows[0]["interacts"] is interacts and rows[0]["drop_xy"] == 1.0


def test_score_interaction_extension_two_sided():
    images, targets = torch.ones(1, 3, 16, 16), torch.zeros(1, dtype=torch.long)
    additive = X.score_interaction_rows(
        "add", Additive(), images, targets, ["a"], _mu_star(), 3, 0.1, "zero", 8, score="output"
    )
    assert len(additive) == 3 and not any(r["interacts"] for r in additive)
    assert all(abs(r["interaction"]) < 1e-6 for r in additive)
    product = X.score_interaction_rows(
        "prod", Product(), images, targets, ["a"], _mu_star(), 2, 0.1, "zero", 8, score="output"
    )
    # removing either factor kills the product: D_a = D_b = D_ab = 1 -> interaction -1
    assert product[0]["interacts"] and abs(product[0]["interaction"] + 1.0) < 1e-6


# ---------------------------------------------------------------- overlap (Fig. 5)


def _paper_overlap(values, reference, fraction, radius):
    """Top regions of each image, and which are identical to or neighbour a reference top region."""
    n, g, _ = values.shape
    k = int(math.floor(fraction * g * g + 0.5))
    out = []
    for i in range(n):
        top = sorted(range(g * g), key=lambda j: (-values[i].flatten()[j].item(), j))[:k]
        ref = sorted(range(g * g), key=lambda j: (-reference[i].flatten()[j].item(), j))[:k]
        near = {j for j in top if any(max(abs(j // g - q // g), abs(j % g - q % g)) <= radius for q in ref)}
        out.append((top, near))
    return out


def test_overlap_rows_follow_fig5_with_raw_values():
    g = torch.Generator().manual_seed(1)
    stats = {"mu_star": torch.rand(3, 5, 5, generator=g) * 7, "sigma": torch.rand(3, 5, 5, generator=g) * 3}
    ref = {"mu_star": torch.rand(3, 5, 5, generator=g) * 2, "sigma": torch.rand(3, 5, 5, generator=g) * 9}
    for s in (stats, ref):
        s["mu_star_plus_sigma"] = s["mu_star"] + s["sigma"]
    rows = X.overlap_rows("m", "alexnet", "alexnet", ["a", "b", "c"], stats, ref, fraction=0.2, radius=1)
    assert {r["statistic"] for r in rows} == {"mu_star", "sigma", "mu_star_plus_sigma"} and len(rows) == 9
    for statistic in ("mu_star", "sigma", "mu_star_plus_sigma"):
        expected = _paper_overlap(stats[statistic], ref[statistic], 0.2, 1)
        got = [r for r in rows if r["statistic"] == statistic]
        for i, (row, (top, near)) in enumerate(zip(got, expected)):
            differ = [j for j in top if j not in near]
            assert row["overlap_share"] == pytest.approx(len(near) / len(top))
            assert (row["n_overlapping"], row["n_differing"]) == (len(near), len(differ))
            for prefix, source in (("", stats), ("reference_", ref)):
                for value in ("mu_star", "sigma"):
                    flat = source[value][i].flatten()
                    mean = lambda js, flat=flat: float(flat[list(js)].mean()) if js else 0.0  # noqa: E731
                    assert row[f"{prefix}{value}_overlapping"] == pytest.approx(mean(sorted(near)), rel=1e-6)
                    assert row[f"{prefix}{value}_differing"] == pytest.approx(mean(differ), rel=1e-6)


def test_reference_choice_names_the_stand_in():
    assert X.choose_reference("alexnet", ["vgg16", "alexnet"]) == ("alexnet", False)
    assert X.choose_reference("alexnet", ["efficientnet_lite0", "efficientnet_lite1"]) == ("efficientnet_lite0", True)
    with pytest.raises(ValueError, match="no loaded model"):
        X.choose_reference("alexnet", [])


# ---------------------------------------------------------------- ratio (Fig. 6a)


def test_ratio_row_over_relevant_regions():
    g = torch.Generator().manual_seed(2)
    mu, sigma = torch.rand(6, 6, generator=g), torch.rand(6, 6, generator=g)
    sigma[0, 0] = 0.0
    row = X.ratio_row("m", 80, mu, sigma, threshold=0.6)
    ratios = [
        mu[i, j].item() / sigma[i, j].item()
        for i in range(6)
        for j in range(6)
        if (mu[i, j] / mu.max() > 0.6 or sigma[i, j] / sigma.max() > 0.6) and sigma[i, j] > 0
    ]
    relevant = sum(
        1 for i in range(6) for j in range(6) if mu[i, j] / mu.max() > 0.6 or sigma[i, j] / sigma.max() > 0.6
    )
    assert row["n_relevant"] == relevant and row["n_ratio"] == len(ratios) and row["n_images"] == 80
    assert row["mean_ratio"] == pytest.approx(sum(ratios) / len(ratios))


# ---------------------------------------------------------------- masking (Figs. 4, 9, 10)


def test_masking_rows_local_and_global_rankings():
    """The model reads only quadrant 0; the global ranking puts it first, the local ones last."""
    images, targets = torch.ones(2, 3, 16, 16), torch.zeros(2, dtype=torch.long)
    local = {
        s: torch.tensor([[0.0, 1.0], [2.0, 3.0]]).expand(2, 2, 2).clone()
        for s in ("mu_star", "sigma", "mu_star_plus_sigma")
    }
    global_ = {s: torch.tensor([[3.0, 1.0], [2.0, 0.0]]) for s in ("mu_star", "sigma", "mu_star_plus_sigma")}
    model = Gate("and")  # class 0 needs quadrants 0 and 1
    rows = X.masking_rows("m", model, images, targets, "predicted", local, global_, 0.25, "zero", 8)
    assert len(rows) == 2 * 3 * 2 * 2  # scopes x rankings x directions x steps (0 and 1 of 4 regions)
    final = {(r["scope"], r["ranking"], r["which"]): r["accuracy"] for r in rows if r["step"] == 1}
    for ranking in ("mu_star", "sigma", "mu_star_plus_sigma"):
        assert final[("global", ranking, "most")] == 0.0 and final[("global", ranking, "least")] == 1.0
        assert final[("local", ranking, "most")] == 1.0 and final[("local", ranking, "least")] == 0.0
    assert all(r["n_images"] == 2 and r["target_kind"] == "predicted" for r in rows)
    assert all(r["accuracy"] == 1.0 and r["score_change"] == 0.0 for r in rows if r["step"] == 0)


def test_masking_compares_every_ranking_with_a_random_and_a_constant_map():
    """The reference rankings are masked like the statistics: the given noise, and zeros (row-major ties)."""
    images, targets = torch.ones(2, 3, 16, 16), torch.zeros(2, dtype=torch.long)
    local = {s: torch.tensor([[0.0, 1.0], [2.0, 3.0]]).expand(2, 2, 2).clone() for s in X.STATISTICS}
    global_ = {s: torch.tensor([[3.0, 1.0], [2.0, 0.0]]) for s in X.STATISTICS}
    noise = torch.tensor([[[0.1, 0.9], [0.5, 0.2]], [[0.3, 0.1], [0.8, 0.7]]])  # image 0 masks region 1 first
    local_all = X.with_reference_rankings(local, noise)
    global_all = X.with_reference_rankings(global_, torch.tensor([[0.2, 0.1], [0.9, 0.4]]))  # region 2 first
    assert list(local_all) == list(X.MASKING_RANKINGS) and torch.equal(local_all["constant"], torch.zeros(2, 2, 2))
    rows = X.masking_rows("m", Gate("and"), images, targets, "predicted", local_all, global_all, 0.25, "zero", 8)
    final = {(r["scope"], r["ranking"], r["which"]): r["accuracy"] for r in rows if r["step"] == 1}
    assert {r for _, r, _ in final} == set(X.MASKING_RANKINGS)
    # Gate("and") needs quadrants 0 and 1: image 0's noise masks region 1 (fails), image 1's region 2 (passes)
    assert final[("local", "random", "most")] == 0.5
    assert final[("global", "random", "most")] == 1.0  # region 2 for both images
    assert final[("local", "constant", "most")] == 0.0  # every region ties: region 0 goes first
    with pytest.raises(ValueError, match="shape"):
        X.with_reference_rankings(local, torch.zeros(2, 2))
    with pytest.raises(ValueError, match="differ"):
        X.masking_rows("m", Gate("and"), images, targets, "predicted", local_all, global_, 0.25, "zero", 8)
