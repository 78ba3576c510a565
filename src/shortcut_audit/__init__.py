"""shortcut-audit: audit image classifiers for reliance on spurious features.

Importing the package first installs the torchvision compatibility shim (see
:mod:`shortcut_audit._torchvision_compat`) so that ``import torchvision`` works
with the CPU build of torch.
"""
from shortcut_audit import _torchvision_compat as _tv_compat

_tv_compat.install()

__version__ = "0.1.0"
