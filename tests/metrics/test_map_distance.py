import torch

from shortcut_audit.metrics import l1_distance, max_normalise


def test_scale_invariant_and_zero_for_equal_maps():
    a = torch.randn(2, 5, 5)
    assert torch.allclose(l1_distance(a, 7 * a), torch.zeros(2), atol=1e-6)


def test_known_value_and_range():
    a = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    b = torch.tensor([[[0.0, 0.0], [0.0, 2.0]]])
    assert torch.allclose(l1_distance(a, b), torch.tensor([0.5]))
    assert torch.allclose(l1_distance(a, -a), torch.tensor([0.5]))
    assert torch.allclose(l1_distance(a, -a, absolute=True), torch.tensor([0.0]))


def test_zero_map_stays_finite():
    z = torch.zeros(1, 3, 3)
    assert torch.equal(max_normalise(z), z)
    assert torch.isfinite(l1_distance(z, torch.rand(1, 3, 3))).all()
