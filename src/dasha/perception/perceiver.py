"""``Perceiver``: everything the agents and the baselines see of a frame, in one call.

Envs, baselines and benchmarks all go through this facade (or the functions it calls),
so that they observe and score frames identically.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from dasha.perception._image import ImageLike, as_gray
from dasha.perception.brisque import brisque_score, clip_brisque
from dasha.perception.detectors import DEFAULT_DETECTOR, Detection, Detector, best, load_detector
from dasha.perception.encoder import DEFAULT_ENCODER, Encoder, load_encoder
from dasha.perception.focus import all_focus_measures
from dasha.perception.histogram import Histogram, histogram

T = TypeVar("T")


@dataclass
class Percept:
    """What one frame looks like to DASHA.

    ``target`` is the best detection of the target class (``None``: not detected);
    ``brisque`` is the raw BRISQUE of the target box (of the whole frame when there is
    no target), ``brisque_clipped`` the same clipped to [0, 100] as the rewards use it.
    """

    features: np.ndarray | None
    histogram: Histogram
    detections: list[Detection]
    target: Detection | None
    brisque: float | None
    focus: dict[str, float]
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def brisque_clipped(self) -> float | None:
        return None if self.brisque is None else clip_brisque(self.brisque)

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature_dim": None if self.features is None else int(self.features.shape[0]),
            "histogram": self.histogram.counts.tolist(),
            "bin_edges": self.histogram.bin_edges.tolist(),
            "peak": self.histogram.peak,
            "detections": [d.to_dict() for d in self.detections],
            "target": None if self.target is None else self.target.to_dict(),
            "brisque": self.brisque,
            "brisque_clipped": self.brisque_clipped,
            "focus": self.focus,
            "timings_ms": self.timings_ms,
        }


def timed(timings_ms: dict[str, float], key: str, fn: Callable[[], T]) -> T:
    start = time.perf_counter()
    result = fn()
    timings_ms[key] = round((time.perf_counter() - start) * 1e3, 2)
    return result


class Perceiver:
    """Encoder + histogram + detector + BRISQUE + focus measures, loaded once, run per frame.

    Args:
        encoder: encoder name (``None``: no features), see ``load_encoder``.
        detector: detector name (``None``: no detection), see ``load_detector``.
        target: class the detector looks for (``None``: all classes; no target then).
        encoder_weights / detector_weights: optional local weights files.
        detector_options: extra keyword arguments of the detector (e.g. ``score_threshold``).
    """

    def __init__(
        self,
        encoder: str | None = DEFAULT_ENCODER,
        detector: str | None = DEFAULT_DETECTOR,
        target: str | None = None,
        encoder_weights: str | os.PathLike[str] | None = None,
        detector_weights: str | os.PathLike[str] | None = None,
        detector_options: dict[str, Any] | None = None,
    ) -> None:
        self.encoder: Encoder | None = (
            load_encoder(encoder, encoder_weights) if encoder is not None else None
        )
        self.detector: Detector | None = (
            load_detector(detector, detector_weights, target, **(detector_options or {}))
            if detector is not None
            else None
        )

    @property
    def target(self) -> str | None:
        return self.detector.target if self.detector is not None else None

    def encode_batch(self, images: Sequence[ImageLike]) -> np.ndarray:
        """Encoder features of several frames in one forward pass."""
        if self.encoder is None:
            raise ValueError("this Perceiver has no encoder")
        return self.encoder.encode_batch(images)

    def perceive(self, image: ImageLike, with_focus: bool = True) -> Percept:
        """Run every part on one frame; ``timings_ms`` says how long each took."""
        gray = as_gray(image)
        ms: dict[str, float] = {}
        encoder, detector = self.encoder, self.detector
        features = timed(ms, "encoder", lambda: encoder.encode(gray)) if encoder else None
        hist = timed(ms, "histogram", lambda: histogram(gray))
        detections = timed(ms, "detector", lambda: detector.detect(gray)) if detector else []
        target = best(detections, self.target) if self.target is not None else None
        box = target.box if target is not None else None
        score = timed(ms, "brisque", lambda: brisque_score(gray, box))
        focus = timed(ms, "focus", lambda: all_focus_measures(gray, box)) if with_focus else {}
        ms["total"] = round(sum(ms.values()), 2)
        return Percept(features, hist, detections, target, score, focus, ms)
