"""Import torchvision even when its compiled ops cannot load (a CUDA wheel on CPU torch).

The only torchvision matching torch 2.13 on the registry is built for CUDA; on a CPU
torch its ``_C`` library does not load, and ``import torchvision`` then fails with
"operator torchvision::nms does not exist". The models DASHA uses need just one of those
ops, ``nms`` (``roi_align`` has a pure-PyTorch fallback that torchvision picks itself),
so when ``_C`` cannot load we define ``torchvision::nms`` (and the ``qnms`` schema that
torchvision's import registers a fake kernel for) with a CPU kernel written in PyTorch,
then import torchvision. With a working ``_C`` nothing is changed.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

from dasha.errors import require

_NMS_SCHEMA = "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"
_shim_library = None  # kept alive: dropping a torch.library.Library unregisters its ops


def nms_reference(boxes: Any, scores: Any, iou_threshold: float) -> Any:
    """Greedy non-maximum suppression: indices kept, by decreasing score (torchvision's rule).

    A box is dropped when its IoU with an already kept box is strictly above the threshold.
    """
    import numpy as np
    import torch

    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    order = torch.argsort(scores, descending=True, stable=True)
    b = boxes[order].to(torch.float64)
    area = (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)
    lt = torch.maximum(b[:, None, :2], b[None, :, :2])
    rb = torch.minimum(b[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=2)
    iou = (inter / (area[:, None] + area[None, :] - inter)).nan_to_num(0.0)
    over = np.triu((iou > iou_threshold).cpu().numpy(), k=1)  # only lower-scored boxes
    suppressed = np.zeros(len(order), dtype=bool)
    keep = []
    for i in range(len(order)):  # n is at most a few thousand; each row test is vectorised
        if not suppressed[i]:
            keep.append(i)
            suppressed |= over[i]
    return order[torch.tensor(keep, dtype=torch.long, device=boxes.device)]


def _compiled_ops_load() -> bool:
    import torch

    spec = importlib.util.find_spec("torchvision")
    if spec is None or spec.origin is None:
        return True  # not installed: let the normal import report it
    candidates = sorted(Path(spec.origin).parent.glob("_C*.so")) + sorted(
        Path(spec.origin).parent.glob("_C*.pyd")
    )
    if not candidates:
        return False
    try:
        torch.ops.load_library(str(candidates[0]))
    except (OSError, RuntimeError):
        return False
    return True


def import_torchvision() -> ModuleType:
    """``torchvision``, with a CPU ``nms`` registered first when its compiled ops are missing."""
    global _shim_library
    torch = require("torch", "perception")
    if _shim_library is None and not _compiled_ops_load():
        if not hasattr(torch.ops.torchvision, "nms"):
            lib = torch.library.Library("torchvision", "DEF")
            lib.define("nms" + _NMS_SCHEMA)
            lib.define("qnms" + _NMS_SCHEMA)
            lib.impl("nms", nms_reference, "CPU")
            _shim_library = lib
        torchvision = require("torchvision", "perception")
        # torchvision.ops.nms asks "did _C load?" before calling the op; ours is there now
        import torchvision.ops.boxes as tv_boxes

        tv_boxes._assert_has_ops = lambda: None
        return torchvision
    return require("torchvision", "perception")
