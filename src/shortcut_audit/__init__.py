"""shortcut-audit: audit image classifiers for reliance on spurious features.

Importing the package first pins the instruction sets of PyTorch's CPU kernels (see
:mod:`shortcut_audit._cpu_kernels`: the same numbers on every x86-64 processor), then
installs the torchvision compatibility shim (see :mod:`shortcut_audit._torchvision_compat`)
so that ``import torchvision`` works with the CPU build of torch.
"""

from shortcut_audit import _cpu_kernels

_cpu_kernels.pin()

from shortcut_audit import _torchvision_compat as _tv_compat  # noqa: E402  (after the pins)

_tv_compat.install()

__version__ = "0.1.0"
