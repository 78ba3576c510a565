"""Masking curves of MoSIP (Figs. 4, 9, 10), checked against the protocol written out in the test."""

import pytest
import torch

from shortcut_audit.metrics import masked_region_outputs, masking_curve, region_order


class RandomNet(torch.nn.Module):
    """A fixed random 3-class ReLU net on the 4 x 4 region means of 8 x 8 images."""

    def __init__(self, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w1, self.w2 = torch.randn(8, 48, generator=g), torch.randn(3, 8, generator=g)

    def forward(self, x):
        regions = torch.nn.functional.avg_pool2d(x, 2).flatten(1)
        return torch.relu(regions @ self.w1.T) @ self.w2.T


def _paper_curve(model, images, ranking, targets, k_max, which):
    """Correct images only; mask the first k regions of each ranking (black), k = 0..k_max."""
    keep = model(images).argmax(1) == targets
    accuracy, change = [], []
    clean = model(images[keep]).softmax(1)[torch.arange(int(keep.sum())), targets[keep]]
    for k in range(k_max + 1):
        masked = images[keep].clone()
        for row, i in enumerate(keep.nonzero().flatten().tolist()):
            values = (ranking if ranking.ndim == 2 else ranking[i]).flatten().tolist()
            sign = -1 if which == "most" else 1
            order = sorted(range(16), key=lambda j: (sign * values[j], j))[:k]
            for region in order:
                r, c = divmod(region, 4)
                masked[row, :, 2 * r : 2 * r + 2, 2 * c : 2 * c + 2] = 0.0
        out = model(masked)
        accuracy.append((out.argmax(1) == targets[keep]).float().mean().item())
        change.append((out.softmax(1)[torch.arange(len(masked)), targets[keep]] - clean).mean().item())
    return keep, accuracy, change


@pytest.mark.parametrize("shared", [False, True], ids=["local", "global"])
@pytest.mark.parametrize("which", ["most", "least"])
def test_masking_curve_follows_the_paper_protocol(shared, which):
    g = torch.Generator().manual_seed(0)
    images = torch.nn.functional.interpolate(torch.rand(30, 3, 4, 4, generator=g), scale_factor=2)
    model = RandomNet()
    targets = model(images).argmax(1)
    wrong = torch.rand(30, generator=g) < 0.3
    targets[wrong] = (targets[wrong] + 1) % 3
    ranking = torch.rand(4, 4, generator=g) if shared else torch.rand(30, 4, 4, generator=g)
    curve = masking_curve(model, images, ranking, targets, max_fraction=0.2, which=which, batch_size=7)
    keep, accuracy, change = _paper_curve(model, images, ranking, targets, 3, which)  # 20% of 16 = 3 regions
    assert torch.equal(curve.kept, keep) and curve.n_images == int(keep.sum()) < 30
    assert curve.steps.tolist() == [0, 1, 2, 3] and curve.fractions.tolist() == [0, 1 / 16, 2 / 16, 3 / 16]
    assert curve.accuracy.tolist() == pytest.approx(accuracy)
    assert curve.score_change.tolist() == pytest.approx(change, abs=1e-6)
    assert accuracy[0] == 1.0 and max(abs(c) for c in change) > 1e-3  # correct images only; masking bites


def test_most_important_first_kills_accuracy_least_keeps_it(make_quadrant_model):
    model = make_quadrant_model(other=1.0)
    images, targets = torch.ones(2, 3, 8, 8), torch.zeros(2, dtype=torch.long)
    importance = torch.rand(2, 4, 4, generator=torch.Generator().manual_seed(0)) * 0.1
    importance[:, :2, :2] += 1.0  # the quadrant the model reads
    most = masking_curve(model, images, importance, targets, max_fraction=0.25, which="most")
    least = masking_curve(model, images, importance, targets, max_fraction=0.25, which="least")
    assert most.accuracy[-1] == 0.0 and (least.accuracy == 1.0).all()
    assert torch.allclose(least.score_change, torch.zeros(5), atol=1e-6) and most.score_change[-1] < -0.4


def test_subset_all_and_no_correct_image(quadrant_model):
    images, targets = torch.ones(2, 3, 8, 8), torch.ones(2, dtype=torch.long)  # the model predicts class 0
    none = masking_curve(quadrant_model, images, torch.rand(4, 4), targets)
    assert none.n_images == 0 and none.accuracy.tolist() == [0.0] * 4
    every = masking_curve(quadrant_model, images, torch.rand(4, 4), targets, subset="all")
    assert every.n_images == 2 and every.accuracy[0] == 0.0


def test_region_order_and_shared_selections(quadrant_model):
    values = torch.tensor([[[1.0, 3.0], [3.0, 0.0]]])
    assert region_order(values, "most").tolist() == [[1, 2, 0, 3]]
    assert region_order(values, "least").tolist() == [[3, 0, 1, 2]]
    selections = torch.zeros(2, 4, 4, dtype=torch.bool)
    selections[1, :2, :2] = True
    predictions, values = masked_region_outputs(quadrant_model, torch.ones(3, 3, 8, 8), torch.zeros(3), selections)
    assert predictions.shape == (2, 3) and (values[1, :, 1] == 0).all() and (values[0, :, 1] == 10).all()


def test_bad_arguments(quadrant_model):
    images = torch.ones(2, 3, 8, 8)
    with pytest.raises(ValueError, match="which"):
        masking_curve(quadrant_model, images, torch.rand(2, 4, 4), torch.zeros(2), which="middle")
    with pytest.raises(ValueError, match="subset"):
        masking_curve(quadrant_model, images, torch.rand(2, 4, 4), torch.zeros(2), subset="some")
    with pytest.raises(ValueError, match="region_importance"):
        masking_curve(quadrant_model, images, torch.rand(3, 4, 4), torch.zeros(2))
