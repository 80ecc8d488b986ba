"""``Senses``: everything DASHA sees of a frame, through one facade with a cache.

Envs, agents, baselines, benchmarks and ``dasha perceive`` all go through it, so they
observe and score frames identically: encoder features E(I), the histogram, the target
detector and BRISQUE.

Perception (encoder ~20 ms, detector ~45 ms, BRISQUE) costs far more than rendering a
simulated frame (~4 ms), so on the simulator the results are cached by what determines
the frame up to sensor noise: scene, target distance (1 cm), illuminance (1 lx),
exposure, gain and focus voltage (0.01 V). A cache hit reuses the perception of an
earlier noise realisation of the same frame — a deliberate trade of noise diversity for
a ~15x cheaper training step. Real cameras have no such key and are never cached.
``perceive`` (the full report of one image, with timings) never uses the cache.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from dasha.errors import ConfigError
from dasha.hardware.base import Frame
from dasha.perception._image import ImageLike, as_gray
from dasha.perception.detectors import DEFAULT_DETECTOR, Detection, Detector, best
from dasha.perception.encoder import DEFAULT_ENCODER, Encoder
from dasha.perception.histogram import Histogram, histogram
from dasha.perception.onnx_runtime import AUTO, DEFAULT_BACKEND

T = TypeVar("T")


@dataclass(frozen=True)
class TargetSeen:
    """The detector's verdict on the target and the BRISQUE score of its box (clipped)."""

    detected: bool
    score: float
    box: tuple[float, float, float, float] | None
    brisque: float | None
    clipped_fraction: float = 0.0  # of the box's pixels (``perception.histogram.clipped_fraction``)


@dataclass
class Percept:
    """What one image looks like to DASHA (``Senses.perceive``).

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
        from dasha.perception.brisque import clip_brisque

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


def frame_key(frame: Frame) -> Hashable | None:
    """A cache key for a simulated frame (``None`` for frames without simulator ground truth)."""
    meta = frame.meta
    if "scene" not in meta:
        return None
    return (
        meta["scene"],
        round(float(meta["distance_cm"])),
        round(float(meta["illuminance_lux"])),
        round(float(meta.get("background_cm", 0.0))),
        round(frame.exposure_us),
        round(frame.gain_db, 2),
        round(float(meta["focus_v"]), 2),
        # The library's sets also draw the target's size and the optics' truth.
        None if meta.get("target_size_cm") is None else round(float(meta["target_size_cm"]), 2),
        tuple(sorted((meta.get("variation") or {}).items())),
    )


def _backend_option(detector: str, backend: str) -> dict[str, str]:
    """The detector's ``backend`` keyword: detectors with one backend only (torch: MTCNN,
    Faster R-CNN, RetinaNet) take none, and ``auto`` leaves them on it."""
    from dasha.perception.detectors import _detector_class

    if hasattr(_detector_class(detector), "backends"):
        return {"backend": backend}
    if backend != AUTO:
        from dasha.perception.onnx_runtime import REFERENCE

        if backend != REFERENCE:
            raise ConfigError(
                f"detector {detector} runs on its reference backend only; choose --backend auto or reference"
            )
    return {}


class _Lru(OrderedDict[Any, Any]):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self.hits = self.misses = 0

    def get_or(self, key: Hashable | None, compute: Any) -> Any:
        if key is None or self.size <= 0:
            return compute()
        if key in self:
            self.hits += 1
            self.move_to_end(key)
            return self[key]
        self.misses += 1
        value = self[key] = compute()
        if len(self) > self.size:
            self.popitem(last=False)
        return value


def timed(timings_ms: dict[str, float], key: str, fn: Callable[[], T]) -> T:
    start = time.perf_counter()
    result = fn()
    timings_ms[key] = round((time.perf_counter() - start) * 1e3, 2)
    return result


class Senses:
    """Encoder + histogram + target detector + BRISQUE, loaded once, shared by every user.

    Args:
        encoder: encoder name (``None``: no features), see ``perception.encoder.load_encoder``.
        detector: detector name (``None``: no detector; the exposure agent alone is judged by
            the histogram and BRISQUE), see ``perception.detectors.load_detector``.
        target: class the detector looks for (``None``: the frame's own target class on
            the simulator; every class in ``perceive``).
        cache_size: entries per cache (0: no caching), see the module docstring.
        encoder_weights / detector_weights: optional local weights files.
        detector_options: extra keyword arguments of the detector (e.g. ``score_threshold``).
    """

    def __init__(
        self,
        encoder: str | None = DEFAULT_ENCODER,
        detector: str | None = DEFAULT_DETECTOR,
        target: str | None = None,
        cache_size: int = 0,
        encoder_weights: str | os.PathLike[str] | None = None,
        detector_weights: str | os.PathLike[str] | None = None,
        detector_options: dict[str, Any] | None = None,
        backend: str = DEFAULT_BACKEND,
    ) -> None:
        from dasha.perception.detectors import load_detector
        from dasha.perception.encoder import load_encoder

        self.encoder: Encoder | None = (
            None
            if encoder is None
            else load_encoder(encoder, weights=encoder_weights, backend=backend)
        )
        self.detector: Detector | None = (
            None
            if detector is None
            else load_detector(
                detector,
                detector_weights,
                target,
                **_backend_option(detector, backend),
                **(detector_options or {}),
            )
        )
        self.default_target = target
        self.backend = backend  # also picks BRISQUE's feature code (``perception.brisque``)
        self._features = _Lru(cache_size)
        self._targets = _Lru(cache_size)
        self._brisque = _Lru(cache_size)

    def __deepcopy__(self, memo: dict[int, Any]) -> Senses:
        # Models and caches are shared, never copied (gym.make deep-copies env kwargs).
        return self

    def _encoder(self) -> Encoder:
        if self.encoder is None:
            raise ConfigError("these senses have no encoder: build them with an encoder name")
        return self.encoder

    def _detector(self) -> Detector:
        if self.detector is None:
            raise ConfigError(
                "these senses have no detector: build them with detector='yolo' (or another)"
            )
        return self.detector

    @property
    def feature_dim(self) -> int:
        return int(self._encoder().feature_dim)

    def features(self, frame: Frame) -> np.ndarray:
        return self._features.get_or(
            frame_key(frame), lambda: self._encoder().encode(frame.as_uint8())
        )

    def encode(self, frame: Frame) -> np.ndarray:
        """E(I) of a frame, never cached (what a camera pays per decision)."""
        return self._encoder().encode(frame.as_uint8())

    def features_batch(self, frames: list[Frame]) -> np.ndarray:
        return self._encoder().encode_batch([f.as_uint8() for f in frames])

    def features_batch_images(self, images: list[np.ndarray]) -> np.ndarray:
        return self._encoder().encode_batch(images)

    def target(self, frame: Frame, class_name: str | None = None) -> TargetSeen:
        cls = class_name or self.default_target or frame.meta.get("target_class")
        key = frame_key(frame)
        return self._targets.get_or(
            None if key is None else (key, cls), lambda: self._see(frame, cls)
        )

    def frame_brisque(self, frame: Frame) -> float:
        from dasha.perception.brisque import brisque_reward_score

        return self._brisque.get_or(
            frame_key(frame), lambda: brisque_reward_score(frame.as_uint8(), backend=self.backend)
        )

    def _see(self, frame: Frame, class_name: str | None) -> TargetSeen:
        from dasha.perception.brisque import brisque_reward_score
        from dasha.perception.histogram import clipped_fraction

        image = frame.as_uint8()
        detector = self._detector()
        detector.target = class_name
        found = detector.detect_target(image)
        if found is None:
            return TargetSeen(False, 0.0, None, None)
        x1, y1, x2, y2 = (float(v) for v in found.box)
        box = (x1, y1, x2, y2)
        return TargetSeen(
            True,
            float(found.score),
            box,
            brisque_reward_score(image, box, self.backend),
            clipped_fraction(image, box),
        )

    def perceive(self, image: ImageLike, with_focus: bool = True) -> Percept:
        """Every part on one image, uncached; ``timings_ms`` says how long each took.

        Detections are of ``target`` only when the senses have one, else of every class.
        """
        from dasha.perception.brisque import brisque_score
        from dasha.perception.focus import all_focus_measures

        gray = as_gray(image)
        ms: dict[str, float] = {}
        encoder, detector, target_class = self.encoder, self.detector, self.default_target
        features = timed(ms, "encoder", lambda: encoder.encode(gray)) if encoder else None
        hist = timed(ms, "histogram", lambda: histogram(gray))
        detections: list[Detection] = []
        if detector is not None:
            detector.target = target_class
            detections = timed(ms, "detector", lambda: detector.detect(gray))
        target = best(detections, target_class) if target_class is not None else None
        box = target.box if target is not None else None
        score = timed(ms, "brisque", lambda: brisque_score(gray, box, backend=self.backend))
        focus = timed(ms, "focus", lambda: all_focus_measures(gray, box)) if with_focus else {}
        ms["total"] = round(sum(ms.values()), 2)
        return Percept(features, hist, detections, target, score, focus, ms)

    def cache_stats(self) -> dict[str, int]:
        return {
            "feature_hits": self._features.hits,
            "feature_misses": self._features.misses,
            "target_hits": self._targets.hits,
            "target_misses": self._targets.misses,
        }
