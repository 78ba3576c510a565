import pytest
import torch

from shortcut_audit.runtime import resolve_device, seed_everything


def test_resolve_device_auto_and_explicit(monkeypatch):
    monkeypatch.delenv("SHORTCUT_AUDIT_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu").type == "cpu"
    monkeypatch.setenv("SHORTCUT_AUDIT_DEVICE", "cpu")
    assert resolve_device("auto").type == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_resolve_device_cuda_missing_is_clear():
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        resolve_device("cuda")


def test_seed_everything_repeats():
    g1 = seed_everything(3)
    a = torch.rand(4, generator=g1), torch.rand(2)
    g2 = seed_everything(3)
    b = torch.rand(4, generator=g2), torch.rand(2)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
