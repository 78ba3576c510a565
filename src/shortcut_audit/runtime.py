"""Device selection, seeding and the arithmetic of forward passes, shared by every stage.

Compute paths
-------------
:func:`select_compute_path` decides how a classifier's forward passes are computed
from the ``precision`` setting and what the hardware offers:

- ``"fp32"``: float32 in the default (contiguous) memory layout; on CUDA with TF32
  switched off, so every product is IEEE float32.
- ``"fast"`` (the default): the same float32 arithmetic with channels_last inputs and
  weights, the layout oneDNN's and cuDNN's fastest convolutions use. Its maps agree
  with fp32's (Spearman 1.000 per image for every method of the default ImageNet
  profile) and EfficientNet-Lite0 runs 1.35x faster on an AVX2 CPU at 128 px
  (``bench/results/precision.json``).
- ``"bf16"``: ``"fast"`` plus bfloat16 autocast, only on a device that computes
  bfloat16 natively (:func:`has_native_bf16`: CUDA compute capability 8.0 or later,
  CPUs with AVX512-BF16 or AMX-BF16, Arm BF16, whose oneDNN is not capped below those
  instructions); elsewhere it is refused, because emulated bfloat16 is an order of
  magnitude slower than float32 (13x measured). Not the default: its maps do not all
  agree with fp32's (min Spearman per image on the default profile: Sobol 0.984, MoSIP
  grid Morris 0.957; both estimate from differences of nearby outputs, which bfloat16
  rounding blurs; RISE 1.000, Occlusion 0.998, GEEX 0.994).

The path taken is a :class:`ComputePath`; its :attr:`ComputePath.name` is what the
stages record.
"""

from __future__ import annotations

import contextlib
import os
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

PRECISIONS = ("fast", "bf16", "fp32")
# processor flags (x86 /proc/cpuinfo "flags", Arm "Features") of native bfloat16 dot products
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})
# ONEDNN_MAX_CPU_ISA values that still let oneDNN use those instructions
_ONEDNN_BF16_ISAS = (
    "ALL",
    "AVX512_CORE_BF16",
    "AVX512_CORE_FP16",
    "AVX512_CORE_AMX",
    "AVX512_CORE_AMX_FP16",
    "AVX10_1_512",
    "AVX10_1_512_AMX",
    "AVX10_1_512_AMX_FP16",
    "AVX10_2_512",
    "AVX10_2_512_AMX_2",
)


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Map ``"auto"``/None to CUDA when available, else CPU; validate explicit names.

    ``SHORTCUT_AUDIT_DEVICE`` in the environment overrides ``"auto"``.
    """
    if isinstance(device, torch.device):
        return device
    if device is None or device == "auto":
        device = os.environ.get("SHORTCUT_AUDIT_DEVICE", "auto")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} requested but CUDA is not available; use 'auto' or 'cpu'")
    return dev


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a CPU ``torch.Generator`` seeded with ``seed``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def cpu_flags(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> frozenset[str]:
    """Instruction-set flags of the first processor in ``cpuinfo`` (x86 ``flags``, Arm ``Features``).

    Empty when the file cannot be read (not Linux).
    """
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def onednn_allows_bf16(max_isa: str | None) -> bool:
    """Whether ``ONEDNN_MAX_CPU_ISA=max_isa`` leaves oneDNN its bfloat16 instructions (unset: yes).

    The portable kernel pins (:mod:`shortcut_audit._cpu_kernels`) cap it at AVX2, which has none.
    """
    return not max_isa or max_isa.strip().upper() in _ONEDNN_BF16_ISAS


def cpu_has_native_bf16() -> bool:
    """True when this CPU computes bfloat16 natively and PyTorch's oneDNN may use it.

    Three conditions: a native bfloat16 instruction set among the processor's flags
    (read from ``/proc/cpuinfo``; elsewhere torch's own AVX512-BF16 / AMX check),
    ``ONEDNN_MAX_CPU_ISA`` not capping oneDNN below it, and oneDNN's bfloat16 support
    (``torch.ops.mkldnn._is_mkldnn_bf16_supported``).
    """
    flags = cpu_flags()
    if flags:
        native = bool(flags & NATIVE_BF16_FLAGS)
    else:
        native = bool(
            getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)()
            or getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()
        )
    return native and onednn_allows_bf16(os.environ.get("ONEDNN_MAX_CPU_ISA")) and onednn_bf16_supported()


def onednn_bf16_supported() -> bool:
    """oneDNN's own bfloat16 check (False when this torch has no oneDNN)."""
    return torch.backends.mkldnn.is_available() and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def cuda_has_native_bf16(device: torch.device) -> bool:
    """True on CUDA devices of compute capability 8.0 (Ampere) or later."""
    return torch.cuda.is_available() and torch.cuda.get_device_capability(device) >= (8, 0)


def has_native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 natively (see :func:`cpu_has_native_bf16`)."""
    if device.type == "cuda":
        return cuda_has_native_bf16(device)
    if device.type == "cpu":
        return cpu_has_native_bf16()
    return False


@dataclass(frozen=True)
class ComputePath:
    """How forward passes are computed on one device.

    Attributes
    ----------
    device_type : str
        ``"cpu"`` or ``"cuda"``.
    precision : str
        The setting asked for, one of :data:`PRECISIONS`.
    channels_last : bool
        Inputs and weights in the channels_last memory layout.
    bf16_autocast : bool
        Forward passes under bfloat16 autocast (only where the device has it natively).
    compiled : bool
        The classifier wrapped in ``torch.compile``.
    """

    device_type: str
    precision: str
    channels_last: bool
    bf16_autocast: bool
    compiled: bool = False

    @property
    def name(self) -> str:
        """``<device>-<bf16|fp32>[-channels_last][-compiled]``, e.g. ``cpu-fp32-channels_last``."""
        parts = [self.device_type, "bf16" if self.bf16_autocast else "fp32"]
        if self.channels_last:
            parts.append("channels_last")
        if self.compiled:
            parts.append("compiled")
        return "-".join(parts)

    def as_dict(self) -> dict:
        return {"compute_path": self.name, **asdict(self)}

    def forward_context(self) -> contextlib.AbstractContextManager:
        """The context forward passes run in: bfloat16 autocast, or IEEE float32 on CUDA."""
        if self.bf16_autocast:
            return torch.autocast(self.device_type, dtype=torch.bfloat16)
        if self.device_type == "cuda":
            return ieee_fp32_on_cuda()
        return contextlib.nullcontext()


@contextlib.contextmanager
def ieee_fp32_on_cuda():
    """Switch TF32 off for cuDNN convolutions and cuBLAS matrix products; restore on exit.

    cuDNN convolutions use TF32 (10-bit mantissa) by default on Ampere and later, so a
    float32 path that must be float32 has to say so.
    """
    cudnn, matmul = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = cudnn, matmul


def select_compute_path(device: torch.device, precision: str = "fast", compile: bool = False) -> ComputePath:
    """The compute path of ``precision`` on ``device`` (see the module docstring).

    Raises
    ------
    ValueError
        For a precision not in :data:`PRECISIONS`, and for ``"bf16"`` on a device
        without native bfloat16.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "fp32":
        return ComputePath(device.type, precision, channels_last=False, bf16_autocast=False, compiled=compile)
    if precision == "bf16" and not has_native_bf16(device):
        raise ValueError(
            f"precision bf16 needs native bfloat16, which this {device.type} device lacks (emulated "
            f"bfloat16 is many times slower than float32); use fast or fp32"
        )
    return ComputePath(device.type, precision, channels_last=True, bf16_autocast=precision == "bf16", compiled=compile)


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Move ``tensor`` to ``device``; CPU -> CUDA through pinned memory with a non-blocking copy."""
    if device.type == "cuda" and tensor.device.type == "cpu":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)
