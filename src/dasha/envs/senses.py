"""What the agents perceive of a frame, through the shared perception layer, with a cache.

Perception (encoder ~20 ms, detector ~45 ms, BRISQUE) costs far more than rendering a
simulated frame (~4 ms), so on the simulator the results are cached by what determines
the frame up to sensor noise: scene, target distance (1 cm), illuminance (1 lx),
exposure, gain and focus voltage (0.01 V). A cache hit reuses the perception of an
earlier noise realisation of the same frame — a deliberate trade of noise diversity for
a ~15x cheaper training step. Real cameras have no such key and are never cached.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np

from dasha.errors import ConfigError
from dasha.hardware.base import Frame


@dataclass(frozen=True)
class TargetSeen:
    """The detector's verdict on the target and the BRISQUE score of its box (clipped)."""

    detected: bool
    score: float
    box: tuple[float, float, float, float] | None
    brisque: float | None
    clipped_fraction: float = 0.0  # of the box's pixels (``perception.histogram.clipped_fraction``)


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
    )


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


class Senses:
    """Encoder + histogram + target detector + BRISQUE, shared by every env and runner."""

    def __init__(
        self,
        encoder: str = "efficientnet-lite0",
        detector: str | None = "yolo",
        target: str | None = None,
        cache_size: int = 0,
        encoder_weights: str | None = None,
        detector_weights: str | None = None,
    ) -> None:
        from dasha.perception.detectors import load_detector
        from dasha.perception.encoder import load_encoder

        self.encoder = load_encoder(encoder, weights=encoder_weights)
        # None: no detector (the exposure agent alone is judged by the histogram and BRISQUE)
        self.detector = (
            None if detector is None else load_detector(detector, weights=detector_weights)
        )
        self.default_target = target
        self._features = _Lru(cache_size)
        self._targets = _Lru(cache_size)
        self._brisque = _Lru(cache_size)

    def __deepcopy__(self, memo: dict[int, Any]) -> Senses:
        # Models and caches are shared, never copied (gym.make deep-copies env kwargs).
        return self

    @property
    def feature_dim(self) -> int:
        return int(self.encoder.feature_dim)

    def features(self, frame: Frame) -> np.ndarray:
        return self._features.get_or(
            frame_key(frame), lambda: self.encoder.encode(frame.as_uint8())
        )

    def features_batch(self, frames: list[Frame]) -> np.ndarray:
        return self.encoder.encode_batch([f.as_uint8() for f in frames])

    def target(self, frame: Frame, class_name: str | None = None) -> TargetSeen:
        cls = class_name or self.default_target or frame.meta.get("target_class")
        key = frame_key(frame)
        return self._targets.get_or(
            None if key is None else (key, cls), lambda: self._see(frame, cls)
        )

    def frame_brisque(self, frame: Frame) -> float:
        from dasha.perception.brisque import brisque_reward_score

        return self._brisque.get_or(
            frame_key(frame), lambda: brisque_reward_score(frame.as_uint8())
        )

    def _see(self, frame: Frame, class_name: str | None) -> TargetSeen:
        from dasha.perception.brisque import brisque_reward_score
        from dasha.perception.histogram import clipped_fraction

        image = frame.as_uint8()
        if self.detector is None:
            raise ConfigError(
                "these senses have no detector: build them with detector='yolo' (or another)"
            )
        self.detector.target = class_name
        found = self.detector.detect_target(image)
        if found is None:
            return TargetSeen(False, 0.0, None, None)
        x1, y1, x2, y2 = (float(v) for v in found.box)
        box = (x1, y1, x2, y2)
        return TargetSeen(
            True,
            float(found.score),
            box,
            brisque_reward_score(image, box),
            clipped_fraction(image, box),
        )

    def cache_stats(self) -> dict[str, int]:
        return {
            "feature_hits": self._features.hits,
            "feature_misses": self._features.misses,
            "target_hits": self._targets.hits,
            "target_misses": self._targets.misses,
        }
