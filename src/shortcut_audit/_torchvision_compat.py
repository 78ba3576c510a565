"""Make ``import torchvision`` work when its compiled extension cannot load.

torchvision 0.28.0 is built against torch 2.13.0 with CUDA. With the CPU wheel of
torch its ``_C`` extension fails to load, and ``import torchvision`` raises
``operator torchvision::nms does not exist`` because ``torchvision/_meta_registrations``
registers fake kernels for ops whose schemas were never declared.

:func:`install` declares the ``torchvision::nms`` and ``torchvision::qnms`` schemas
(with a pure-torch CPU ``nms``) *only* when torchvision's extension is not loadable,
so with a working CUDA build it does nothing. It must run before torchvision is
imported; ``shortcut_audit/__init__`` calls it.
"""

from __future__ import annotations

import importlib.util
import os
import sys

import torch

_LIB = None  # keeps the torch.library.Library alive for the life of the process


def _nms_cpu(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression (same contract as ``torchvision.ops.nms``)."""
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    order = scores.argsort(descending=True)
    x1, y1, x2, y2 = boxes.unbind(1)
    areas = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    keep = []
    suppressed = torch.zeros(boxes.shape[0], dtype=torch.bool, device=boxes.device)
    for i in order.tolist():
        if suppressed[i]:
            continue
        keep.append(i)
        xx1 = torch.maximum(x1[i], x1)
        yy1 = torch.maximum(y1[i], y1)
        xx2 = torch.minimum(x2[i], x2)
        yy2 = torch.minimum(y2[i], y2)
        inter = (xx2 - xx1).clamp(min=0) * (yy2 - yy1).clamp(min=0)
        iou = inter / (areas[i] + areas - inter).clamp(min=1e-12)
        suppressed |= iou > iou_threshold
    return torch.tensor(keep, dtype=torch.int64, device=boxes.device)


def _extension_loads() -> bool:
    """True when torchvision's compiled ``_C`` extension can be loaded by this torch."""
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return True  # torchvision absent: nothing to patch
    folder = list(spec.submodule_search_locations)[0]
    libs = [f for f in os.listdir(folder) if f.startswith("_C") and f.endswith((".so", ".pyd"))]
    if not libs:
        return False
    try:
        torch.ops.load_library(os.path.join(folder, libs[0]))
    except (OSError, RuntimeError):
        return False
    return hasattr(torch.ops.torchvision, "nms")


def install() -> bool:
    """Declare the missing torchvision op schemas if (and only if) they are needed.

    Returns
    -------
    bool
        True if the shim was installed, False if torchvision works on its own
        (or was already imported).
    """
    global _LIB
    if _LIB is not None or "torchvision" in sys.modules:
        return False
    if _extension_loads():
        return False
    lib = torch.library.Library("torchvision", "DEF")
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.impl("nms", _nms_cpu, "CPU")
    _LIB = lib
    return True
