import pytest
import torch

from shortcut_audit.metrics import masking_selection, region_masking


def _importance(n=2):
    # 4 x 4 grid on 8 x 8 images: the top-left 2 x 2 regions are the quadrant the model reads
    values = torch.rand(n, 4, 4, generator=torch.Generator().manual_seed(0)) * 0.1
    values[:, :2, :2] += 1.0
    return values


def test_masking_most_important_kills_accuracy_least_keeps_it(make_quadrant_model):
    quadrant_model = make_quadrant_model(other=1.0)
    images, targets = torch.ones(2, 3, 8, 8), torch.zeros(2, dtype=torch.long)
    most = region_masking(quadrant_model, images, _importance(), targets, fraction=0.25, which="most")
    least = region_masking(quadrant_model, images, _importance(), targets, fraction=0.25, which="least")
    assert most.clean_correct.all() and most.accuracy == 0.0
    assert least.accuracy == 1.0
    assert torch.allclose(least.score_change, torch.zeros(2), atol=1e-6)
    assert (most.score_change < -0.4).all()


def test_global_scope_uses_one_ranking_for_all_images():
    values = torch.zeros(2, 2, 2)
    values[0, 0, 0], values[1, 1, 1] = 1.0, 0.5
    local = masking_selection(values, 0.25, "most", "local")
    shared = masking_selection(values, 0.25, "most", "global")
    assert local[0, 0, 0] and local[1, 1, 1]
    assert shared[:, 0, 0].all() and shared.sum() == 2


def test_bad_arguments(quadrant_model):
    images = torch.ones(2, 3, 8, 8)
    with pytest.raises(ValueError, match="which"):
        region_masking(quadrant_model, images, _importance(), torch.zeros(2), which="middle")
    with pytest.raises(ValueError, match="scope"):
        region_masking(quadrant_model, images, _importance(), torch.zeros(2), scope="galactic")
    with pytest.raises(ValueError, match="region_importance"):
        region_masking(quadrant_model, images, _importance(3), torch.zeros(2))
