"""The one interface every object detector implements, and the detection record."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from dasha.perception._image import Box, ImageLike


@dataclass(frozen=True)
class Detection:
    """One detected object: its class name, confidence in [0, 1] and box [x1, y1, x2, y2] (px)."""

    class_name: str
    score: float
    box: Box

    def to_dict(self) -> dict[str, object]:
        return {"class": self.class_name, "score": self.score, "box": list(self.box)}


class Detector(ABC):
    """``detect(image)`` -> detections, best first.

    ``target`` is the class the agents focus on (``None``: report every class);
    ``score_threshold`` is the lowest confidence reported. Mono images are replicated to
    three channels before the model sees them.
    """

    name: str = "detector"
    classes: tuple[str, ...] = ()
    # Concrete backends a detector runs on, in the order ``auto`` tries them: fastest first
    # among those that keep the agents' results (``perception.onnx_runtime``);
    # a detector without the attribute has one (its own framework) and takes no ``backend``.
    # One that runs only on ONNX Runtime declares ``(ONNXRUNTIME,)``.
    backends: tuple[str, ...]

    def __init__(self, target: str | None = None, score_threshold: float = 0.25) -> None:
        self.score_threshold = float(score_threshold)
        self.target = target

    @property
    def target(self) -> str | None:
        return self._target

    @target.setter
    def target(self, value: str | None) -> None:
        from dasha.errors import ConfigError

        if value is not None and self.classes and value not in self.classes:
            raise ConfigError(
                f"{self.name} does not know the class {value!r}; it knows: {', '.join(self.classes)}"
            )
        self._target = value

    @abstractmethod
    def _detect_all(self, image: ImageLike) -> list[Detection]:
        """Every detection at or above ``score_threshold``, any class."""

    def detect(self, image: ImageLike) -> list[Detection]:
        found = self._detect_all(image)
        if self.target is not None:
            found = [d for d in found if d.class_name == self.target]
        return sorted(found, key=lambda d: d.score, reverse=True)

    def detect_target(self, image: ImageLike) -> Detection | None:
        """The most confident detection of the target class, or ``None``."""
        return best(self.detect(image), self.target)


def best(detections: Iterable[Detection], class_name: str | None = None) -> Detection | None:
    """The highest-scoring detection (of ``class_name`` if given), or ``None``."""
    pool = [d for d in detections if class_name is None or d.class_name == class_name]
    return max(pool, key=lambda d: d.score, default=None)


def nms(
    boxes: np.ndarray, scores: np.ndarray, threshold: float, by_min: bool = False
) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, best first.

    Overlap is intersection over union, or over the smaller box (``by_min``).
    """
    order = np.argsort(scores)[::-1]
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        lo = np.maximum(boxes[i, :2], boxes[rest, :2])
        hi = np.minimum(boxes[i, 2:4], boxes[rest, 2:4])
        inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
        denom = np.minimum(areas[i], areas[rest]) if by_min else areas[i] + areas[rest] - inter
        order = rest[inter / np.maximum(denom, 1e-9) <= threshold]
    return np.asarray(keep, dtype=int)
