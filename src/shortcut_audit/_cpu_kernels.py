"""Pin the instruction sets of PyTorch's CPU kernels, so that results do not depend on the processor.

PyTorch picks its CPU kernels at run time from what the processor offers: ATen's
vectorised kernels (``ATEN_CPU_CAPABILITY``: default, avx2, avx512), oneDNN's
convolutions (``ONEDNN_MAX_CPU_ISA``) and MKL's BLAS (``MKL_CBWR``, Intel's
conditional numerical reproducibility). Different kernels sum in different orders,
so the same training on an AVX-512 machine and on an AVX2-only one ends with
slightly different weights. Pinning all three to AVX2 -- which every x86-64 machine
of the last decade has -- makes them use the same kernels everywhere.

The variables are read when each library first runs, so :func:`pin` must run before
the first tensor operation; importing :mod:`shortcut_audit` does it (it is imported
first by every stage). A value already in the environment wins: set, for example,
``ATEN_CPU_CAPABILITY=avx512`` to trade reproducibility across processors for speed.
``SHORTCUT_AUDIT_CPU_KERNELS=native`` skips the pins altogether, for speed on a processor
with wider instructions (AVX-512, AMX; bfloat16 on CPU needs it), at the price of
results that are no longer bitwise equal across processors. :func:`kernel_label` names
what was in effect: the training stage records it per model (``cpu_kernels`` of
``train_summary/models.csv``) and the report's provenance shows it.
"""

from __future__ import annotations

import os

__all__ = ["MODE_VARIABLE", "PINNED", "kernel_label", "kernel_settings", "pin"]

MODE_VARIABLE = "SHORTCUT_AUDIT_CPU_KERNELS"
MODES = ("portable", "native")

PINNED = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_CBWR": "AVX2,STRICT",
}


def pin() -> None:
    """Set the pinned instruction sets unless the environment already names them.

    Nothing is pinned when ``SHORTCUT_AUDIT_CPU_KERNELS=native``.
    """
    mode = os.environ.get(MODE_VARIABLE, "portable")
    if mode not in MODES:
        raise ValueError(f"{MODE_VARIABLE}={mode!r}: expected one of {', '.join(MODES)}")
    if mode == "native":
        return
    for key, value in PINNED.items():
        os.environ.setdefault(key, value)


def kernel_settings() -> dict[str, str]:
    """The kernel settings in effect: the variables and ATen's capability as torch reports it."""
    import torch

    return {
        MODE_VARIABLE: os.environ.get(MODE_VARIABLE, "portable"),
        **{key: os.environ.get(key, "") for key in PINNED},
        "aten_capability": str(torch.backends.cpu.get_cpu_capability()),
    }


def kernel_label() -> str:
    """One line for provenance, e.g. ``portable: ATen AVX2``."""
    settings = kernel_settings()
    return f"{settings[MODE_VARIABLE]}: ATen {settings['aten_capability']}"
