import pytest

from shortcut_audit.metrics import METRICS, MetricInfo


def test_every_metric_declares_a_direction():
    assert METRICS["deletion_auc"].direction == "lower"
    assert METRICS["insertion_auc"].direction == "higher"
    assert METRICS["deletion_auc"].better(0.1, 0.2)
    assert METRICS["insertion_auc"].better(0.3, 0.2)
    with pytest.raises(ValueError):
        METRICS["top_region_overlap"].better(0.1, 0.2)
    with pytest.raises(ValueError):
        MetricInfo("x", "sideways", None, None, "", "")
