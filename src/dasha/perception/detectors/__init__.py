"""Object detectors behind one interface, chosen by name with ``load_detector``."""

from __future__ import annotations

import os
from typing import Any

from dasha.errors import ConfigError
from dasha.perception.detectors.base import Detection, Detector, best

DEFAULT_DETECTOR = "yolo"


def _detector_class(name: str) -> type[Detector]:
    # imported on demand: each module pulls in its own heavy dependency
    if name == "yolo":
        from dasha.perception.detectors.yolo import YoloDetector

        return YoloDetector
    if name == "centernet":
        from dasha.perception.detectors.centernet import CenterNetDetector

        return CenterNetDetector
    if name == "faster-rcnn":
        from dasha.perception.detectors.torchvision_models import FasterRCNNDetector

        return FasterRCNNDetector
    if name == "retinanet":
        from dasha.perception.detectors.torchvision_models import RetinaNetDetector

        return RetinaNetDetector
    if name == "mtcnn":
        from dasha.perception.detectors.mtcnn import MtcnnDetector

        return MtcnnDetector
    raise ConfigError(f"unknown detector {name!r}; choose one of: {', '.join(DETECTORS)}")


DETECTORS = ("yolo", "centernet", "faster-rcnn", "retinanet", "mtcnn")


def load_detector(
    name: str = DEFAULT_DETECTOR,
    weights: str | os.PathLike[str] | None = None,
    target: str | None = None,
    **kwargs: Any,
) -> Detector:
    """A detector by name (``yolo``, ``centernet``, ``faster-rcnn``, ``retinanet``, ``mtcnn``).

    ``mtcnn`` finds faces only: its one class is ``face``.
    """
    return _detector_class(name)(target=target, weights=weights, **kwargs)  # type: ignore[call-arg]


__all__ = ["DETECTORS", "Detection", "Detector", "best", "load_detector"]
