"""Faster R-CNN and RetinaNet (the paper's other two detectors), COCO-trained, via torchvision.

No package ships their weights: they come from torch's checkpoint cache (where
torchvision downloads them) or from a file given by path; without them the error says
where to put which file (see ``dasha.perception.weights``). Never random weights.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from dasha.errors import require
from dasha.perception._image import ImageLike, as_rgb
from dasha.perception.detectors.base import Detection, Detector

# torchvision's COCO category names, indexed by label id (91 ids, "N/A" for unused ones);
# renamed to the darknet names where they differ so a --target means the same everywhere
_RENAME = {"motorcycle": "motorbike", "airplane": "aeroplane", "couch": "sofa", "tv": "tvmonitor"}


class TorchvisionDetector(Detector):
    """A torchvision detection model (``builder``) with its COCO ``weights_enum``."""

    builder: str
    weights_enum: str

    def __init__(
        self,
        target: str | None = None,
        weights: str | os.PathLike[str] | None = None,
        score_threshold: float = 0.5,
        download: bool | None = None,
    ) -> None:
        from dasha.perception._torchvision import import_torchvision
        from dasha.perception.encoder import set_torch_threads
        from dasha.perception.weights import apply_state_dict, load_state_dict

        set_torch_threads()
        models = import_torchvision().models.detection
        enum = getattr(models, self.weights_enum).COCO_V1
        categories = enum.meta["categories"]
        self.classes = tuple(
            _RENAME.get(c, c) for c in categories if c not in ("N/A", "__background__")
        )
        self._names = [_RENAME.get(c, c) for c in categories]
        super().__init__(target=target, score_threshold=score_threshold)
        model = getattr(models, self.builder)(
            weights=None, weights_backbone=None, num_classes=len(categories)
        )
        state = load_state_dict(enum, weights, download)
        apply_state_dict(model, state, str(weights or f"torchvision's {self.weights_enum}"))
        self.model = model.eval()

    def _detect_all(self, image: ImageLike) -> list[Detection]:
        torch = require("torch", "perception")
        rgb = as_rgb(image)  # the models normalise internally; they want RGB in [0, 1]
        tensor = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).float() / 255.0
        with torch.inference_mode():
            out: dict[str, Any] = self.model([tensor])[0]
        found = []
        for label, score, box in zip(out["labels"], out["scores"], out["boxes"], strict=True):
            if float(score) >= self.score_threshold:
                coords = tuple(round(float(v), 1) for v in box)
                found.append(Detection(self._names[int(label)], round(float(score), 4), coords))  # type: ignore[arg-type]
        return found


class FasterRCNNDetector(TorchvisionDetector):
    name = "faster-rcnn"
    builder = "fasterrcnn_resnet50_fpn"
    weights_enum = "FasterRCNN_ResNet50_FPN_Weights"


class RetinaNetDetector(TorchvisionDetector):
    name = "retinanet"
    builder = "retinanet_resnet50_fpn"
    weights_enum = "RetinaNet_ResNet50_FPN_Weights"
