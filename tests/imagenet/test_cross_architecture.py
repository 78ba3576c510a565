import torch

from shortcut_audit.imagenet import cross_architecture as X


class Additive(torch.nn.Module):
    """Class-0 output adds the means of the four 8 x 8 quadrants; no interactions."""

    def forward(self, x):
        q = x.unfold(2, 8, 8).unfold(3, 8, 8).mean(dim=(1, 4, 5)).flatten(1)
        s = q @ torch.tensor([0.4, 0.3, 0.2, 0.1])
        return torch.stack([s, torch.zeros_like(s)], dim=1)


class Product(Additive):
    """Class-0 output is the product of the two top quadrants: strongly interacting."""

    def forward(self, x):
        q = x.unfold(2, 8, 8).unfold(3, 8, 8).mean(dim=(1, 4, 5)).flatten(1)
        s = q[:, 0] * q[:, 1]
        return torch.stack([s, torch.zeros_like(s)], dim=1)


def _mu_star():
    mu = torch.tensor([[4.0, 3.0], [2.0, 1.0]])[None]
    return mu.expand(1, 2, 2).clone()


def test_additive_model_has_no_interactions_product_has():
    images, targets = torch.ones(1, 3, 16, 16), torch.zeros(1, dtype=torch.long)
    additive = X.interaction_rows("add", Additive(), images, targets, ["a"], _mu_star(), 3, 0.1, "zero", 8,
                                  score="output")
    assert len(additive) == 3 and not any(r["interacts"] for r in additive)
    assert all(abs(r["interaction"]) < 1e-6 for r in additive)
    product = X.interaction_rows("prod", Product(), images, targets, ["a"], _mu_star(), 2, 0.1, "zero", 8,
                                 score="output")
    # removing either factor kills the product: D_a = D_b = D_ab = 1 -> interaction -1
    assert product[0]["interacts"] and abs(product[0]["interaction"] + 1.0) < 1e-6


def test_overlap_rows_and_ratio_rows():
    mu = torch.zeros(1, 4, 4)
    mu[0, 0, 0], mu[0, 3, 3] = 1.0, 0.9
    ref = torch.zeros(1, 4, 4)
    ref[0, 0, 1], ref[0, 1, 3] = 1.0, 0.9
    sigma = torch.full((1, 4, 4), 0.5)
    rows = X.overlap_rows("m", "r", ["a"], mu, sigma, ref, fraction=2 / 16, radius=1)
    assert rows[0]["overlap_share"] == 0.5 and rows[0]["n_overlapping"] == 1 and rows[0]["n_differing"] == 1
    assert rows[0]["mu_star_overlapping"] == 1.0 and abs(rows[0]["mu_star_differing"] - 0.9) < 1e-6
    ratio = X.ratio_rows("m", ["a"], mu, sigma, threshold=0.6)
    # every region has normalised sigma 1 > 0.6: all 16 are relevant; mean of mu/sigma = (1 + 0.9) / 0.5 / 16
    assert ratio[0]["n_relevant"] == 16 and abs(ratio[0]["mean_ratio"] - 3.8 / 16) < 1e-6


def test_masking_rows_shape():
    images, targets = torch.ones(2, 3, 16, 16), torch.zeros(2, dtype=torch.long)
    rows = X.masking_rows("m", Additive(), images, targets, _mu_star().expand(2, 2, 2), 0.25, "zero", 8)
    assert {(r["which"], r["scope"]) for r in rows} == {(w, s) for w in ("most", "least") for s in ("local", "global")}
