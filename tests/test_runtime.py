import pytest
import torch

from shortcut_audit import runtime
from shortcut_audit.runtime import (
    ComputePath,
    cpu_flags,
    onednn_allows_bf16,
    resolve_device,
    seed_everything,
    select_compute_path,
    to_device,
)


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


# ----------------------------------------------------------------- compute paths
X86_CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
flags\t\t: fpu sse2 avx2 avx512f avx512bw amx_bf16 amx_tile avx512_bf16
bugs\t\t: spectre_v1

processor\t: 1
flags\t\t: fpu sse2
"""
ARM_CPUINFO = "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\nCPU implementer\t: 0x41\n"


def test_cpu_flags_are_read_from_x86_and_arm_cpuinfo(tmp_path):
    (tmp_path / "x86").write_text(X86_CPUINFO)
    (tmp_path / "arm").write_text(ARM_CPUINFO)
    assert {"avx512_bf16", "amx_bf16", "avx2"} <= cpu_flags(tmp_path / "x86")
    assert "bugs" not in cpu_flags(tmp_path / "x86") and "spectre_v1" not in cpu_flags(tmp_path / "x86")
    assert "bf16" in cpu_flags(tmp_path / "arm")
    assert cpu_flags(tmp_path / "missing") == frozenset()


@pytest.mark.parametrize(
    "max_isa, allowed",
    [
        (None, True),
        ("", True),
        ("ALL", True),
        ("avx512_core_amx", True),
        ("AVX512_CORE_BF16", True),
        ("AVX2", False),
        ("AVX512_CORE", False),
        ("AVX512_CORE_VNNI", False),
    ],
)
def test_a_onednn_cap_below_bf16_rules_native_bf16_out(max_isa, allowed):
    assert onednn_allows_bf16(max_isa) is allowed


@pytest.mark.parametrize(
    "flags, max_isa, onednn, native",
    [
        ({"avx2", "avx512_bf16"}, None, True, True),
        ({"avx2", "amx_bf16"}, "ALL", True, True),
        ({"avx2", "fma"}, None, True, False),  # AVX2 only: bf16 would be emulated
        ({"avx512_bf16", "amx_bf16"}, "AVX2", True, False),  # the portable kernel pins
        ({"avx512_bf16"}, None, False, False),  # a torch without oneDNN bf16
    ],
)
def test_cpu_native_bf16_needs_the_flag_an_uncapped_onednn_and_its_support(monkeypatch, flags, max_isa, onednn, native):
    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset(flags))
    monkeypatch.setattr(runtime, "onednn_bf16_supported", lambda: onednn)
    if max_isa is None:
        monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    else:
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", max_isa)
    assert runtime.cpu_has_native_bf16() is native


@pytest.mark.parametrize("native", [True, False])
def test_fast_is_channels_last_float32_and_bf16_only_where_native(monkeypatch, native):
    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: native)
    cpu = torch.device("cpu")
    fast = select_compute_path(cpu, "fast")
    assert fast.channels_last and not fast.bf16_autocast and not fast.compiled
    assert fast.name == "cpu-fp32-channels_last"
    fp32 = select_compute_path(cpu, "fp32")
    assert not fp32.channels_last and not fp32.bf16_autocast and fp32.name == "cpu-fp32"
    if native:
        bf16 = select_compute_path(cpu, "bf16")
        assert bf16.channels_last and bf16.bf16_autocast and bf16.name == "cpu-bf16-channels_last"
    else:  # emulated bfloat16 would be slower than float32: refused, not silently taken
        with pytest.raises(ValueError, match="precision bf16 needs native bfloat16, which this cpu device lacks"):
            select_compute_path(cpu, "bf16")
    assert select_compute_path(cpu, "fast", compile=True).name == "cpu-fp32-channels_last-compiled"
    assert fast.as_dict()["compute_path"] == fast.name and fast.as_dict()["precision"] == "fast"


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="precision must be one of fast, bf16, fp32"):
        select_compute_path(torch.device("cpu"), "fp16")


def test_forward_context_autocasts_only_on_the_bf16_path():
    layer = torch.nn.Linear(4, 3)
    x = torch.rand(2, 4)
    with ComputePath("cpu", "fast", True, True).forward_context():
        assert layer(x).dtype == torch.bfloat16
    with ComputePath("cpu", "fast", True, False).forward_context():
        assert layer(x).dtype == torch.float32


def test_fp32_on_cuda_switches_tf32_off_and_restores_it():
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
    try:
        with ComputePath("cuda", "fp32", False, False).forward_context():
            assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
        assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


def test_to_device_on_the_cpu_keeps_the_values():
    x = torch.rand(2, 3, 4, 4)
    assert torch.equal(to_device(x, torch.device("cpu")), x)
