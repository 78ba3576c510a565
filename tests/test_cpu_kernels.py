"""Importing the package pins PyTorch's CPU kernels to AVX2 unless the environment says otherwise."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

PROBE = (
    "import shortcut_audit, json, torch; from shortcut_audit._cpu_kernels import kernel_settings; "
    "torch.ones(3).add(1); print(json.dumps(kernel_settings()))"
)


def _settings(**env) -> dict:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_CBWR", "SHORTCUT_AUDIT_CPU_KERNELS")
    }
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _has_avx2() -> bool:
    try:
        return "avx2" in open("/proc/cpuinfo").read()
    except OSError:
        return False


@pytest.mark.skipif(not _has_avx2(), reason="the processor has no AVX2")
def test_import_pins_every_kernel_family_to_avx2():
    settings = _settings()
    assert settings == {
        "SHORTCUT_AUDIT_CPU_KERNELS": "portable",
        "ATEN_CPU_CAPABILITY": "avx2",
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "MKL_CBWR": "AVX2,STRICT",
        "aten_capability": "AVX2",
    }


def test_a_value_in_the_environment_wins():
    settings = _settings(ATEN_CPU_CAPABILITY="default")
    assert settings["ATEN_CPU_CAPABILITY"] == "default" and settings["aten_capability"] == "DEFAULT"


def test_native_mode_pins_nothing():
    settings = _settings(SHORTCUT_AUDIT_CPU_KERNELS="native")
    assert settings["ATEN_CPU_CAPABILITY"] == settings["ONEDNN_MAX_CPU_ISA"] == settings["MKL_CBWR"] == ""


def test_the_label_names_mode_and_capability(monkeypatch):
    import torch

    from shortcut_audit._cpu_kernels import MODE_VARIABLE, kernel_label

    monkeypatch.delenv(MODE_VARIABLE, raising=False)
    assert kernel_label() == f"portable: ATen {torch.backends.cpu.get_cpu_capability()}"
