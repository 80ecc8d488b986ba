"""Continuous autofocus: watch every frame, re-trigger a cycle only when the scene changed.

Method (after libcamera's RPi AF, ``af.cpp``: once focused it keeps the lens still and
re-triggers a scan when the contrast falls below ``retriggerRatio`` of the value it
focused at for ``retriggerDelay`` frames). Each frame gives, in the AF window:

- a *contrast* figure of merit: Tenengrad divided by the window's squared mean level, so
  an exposure or light change alone does not look like defocus;
- a small thumbnail, compared with the one taken when the cycle ended (normalised cross
  correlation): a scene cut or a target leaving the frame changes it even when the new
  content happens to be as sharp. It is taken over the scene's window (``AfWindows``, else
  the central half), not over a target's box: a target that walks changes what its old
  box holds with nothing to refocus, and the target check below follows the target;
- the histogram peak P: outside the hand-over band [50, 150] the exposure is no longer
  suitable (DASHA's A_H condition, eq. 11); and the frame's mean level against the one at
  the end of the cycle (``light_change_ratio``), since P, taken over the frame's own
  min..max, can stay in the band while highlights clip.

A reason holds only after ``*_delay_frames`` consecutive frames (a passing shadow or one
noisy frame does not move anything). Focus reasons re-run the whole cycle; a light reason
re-runs the exposure alone and then re-references the contrast, so light that ramps does
not refocus the lens while the image stays sharp. With a target (``AfTarget``, or the
``dasha`` algorithm), it is looked for every ``detect_every_frames``: lost for
``target_lost_frames`` checks re-triggers, and so does seeing it again after a Failed
cycle. Otherwise nothing moves: no hunting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import cv2
import numpy as np

from dasha.baselines.af_base import AfTunables
from dasha.envs.rewards import is_suitable_peak
from dasha.perception.focus import tenengrad

Box = tuple[float, float, float, float]

SHARPNESS = "sharpness drop"
SCENE = "scene change"
TARGET_LOST = "target lost"
TARGET_FOUND = "target found"  # after a Failed cycle, the target is seen again
LIGHT = "light change"
THUMB_PX = 32


@dataclass(frozen=True)
class RetriggerTunables(AfTunables):
    """libcamera-like tunables of continuous mode (units in the names)."""

    retrigger_ratio: float = 0.75  # af.cpp's retriggerRatio: contrast below 0.75 x focused
    retrigger_delay_frames: int = 3  # af.cpp's retriggerDelay is 10 at 30 fps; 3 at ~10 fps
    scene_correlation_min_ratio: float = 0.6  # thumbnail correlation below this: a new scene
    light_delay_frames: int = 2  # frames with an unsuitable histogram before re-exposing
    light_change_ratio: float = 1.3  # ... or a mean level off the focused one by this factor
    target_lost_frames: int = 3  # consecutive target checks without the target
    detect_every_frames: int = 5  # how often the target is looked for (the detector is slow)
    cycle_timeout_s: float = 5.0  # each re-triggered cycle's timeout (camera clock)
    cycle_max_lens_moves: int = 60  # ... and its lens-move budget
    # A classical re-trigger scans locally around the lens position first (libcamera's
    # continuous-mode rescan), falling back to the full scan when no peak is near.
    local_rescan: bool = True
    # A dasha re-trigger resumes from the current frame, lens and exposure (A_H skipped
    # when the histogram is suitable) instead of the paper's factory reset.
    dasha_warm_retrigger: bool = True

    above_one: ClassVar[tuple[str, ...]] = ("light_change_ratio",)
    ints: ClassVar[tuple[str, ...]] = (
        "retrigger_delay_frames",
        "light_delay_frames",
        "target_lost_frames",
        "detect_every_frames",
        "cycle_max_lens_moves",
    )


def contrast(image: np.ndarray, box: Box) -> float:
    """Tenengrad over the squared mean level in ``box``: invariant to exposure and gain."""
    x1, y1, x2, y2 = (round(v) for v in box)
    mean = float(image[y1:y2, x1:x2].mean())
    return tenengrad(image, box) / max(mean, 1.0) ** 2


def thumbnail(image: np.ndarray, box: Box) -> np.ndarray:
    """The window at THUMB_PX x THUMB_PX, zero-mean and unit-norm (for a correlation)."""
    x1, y1, x2, y2 = (round(v) for v in box)
    window = image[y1:y2, x1:x2].astype(np.float32)
    small = np.asarray(
        cv2.resize(window, (THUMB_PX, THUMB_PX), interpolation=cv2.INTER_AREA), np.float32
    ).ravel()
    centred = small - np.float32(small.mean())
    return centred / max(float(np.linalg.norm(centred)), 1e-6)


class Retrigger:
    """Frame-by-frame watcher; ``reference`` after each cycle, ``update`` on every frame.

    ``update`` returns ``None`` (keep still) or the reason to act (``SHARPNESS``,
    ``SCENE``, ``TARGET_LOST``: a focus cycle; ``LIGHT``: exposure only).
    """

    def __init__(self, tunables: RetriggerTunables | None = None) -> None:
        self.tunables = tunables or RetriggerTunables()
        self.reference_contrast: float | None = None
        self.reference_level = 1.0
        self._peak_was_ok = True
        self._thumb: np.ndarray | None = None
        self._low = self._scene = self._dark = self._lost = 0
        self.last_contrast = 0.0
        self.last_correlation = 1.0

    def reference(
        self,
        image: np.ndarray,
        box: Box,
        peak: float = 100.0,
        keep_scene: bool = False,
        scene_box: Box | None = None,
    ) -> None:
        """The frame the watcher compares with (the end of a cycle). When its histogram is
        already unsuitable (the exposure could do no better), only a change of the mean
        level re-triggers the exposure, so a failed exposure is not retried every frame.
        ``scene_box``: where the scene thumbnail is taken (default ``box``)."""
        self._peak_was_ok = is_suitable_peak(peak)
        self.reference_contrast = contrast(image, box)
        self.reference_level = max(float(image.mean()), 1.0)
        if not keep_scene or self._thumb is None:
            self._thumb = thumbnail(image, scene_box or box)
        self._low = self._scene = self._dark = self._lost = 0

    def update(
        self,
        image: np.ndarray,
        box: Box,
        peak: float,
        target_seen: bool | None = None,
        scene_box: Box | None = None,
    ) -> str | None:
        """``target_seen``: this frame's target check (``None``: not checked this frame);
        ``scene_box``: the scene thumbnail's window, as given to ``reference``."""
        t = self.tunables
        if self.reference_contrast is None or self._thumb is None:
            return None
        self.last_contrast = value = contrast(image, box)
        self.last_correlation = float(np.dot(thumbnail(image, scene_box or box), self._thumb))
        self._scene = (
            self._scene + 1 if self.last_correlation < t.scene_correlation_min_ratio else 0
        )
        self._low = self._low + 1 if value < t.retrigger_ratio * self.reference_contrast else 0
        level = max(float(image.mean()), 1.0) / self.reference_level
        steady = 1 / t.light_change_ratio <= level <= t.light_change_ratio
        suitable = is_suitable_peak(peak) or not self._peak_was_ok
        self._dark = 0 if suitable and steady else self._dark + 1
        if target_seen is not None:
            self._lost = 0 if target_seen else self._lost + 1
        if self._scene >= t.retrigger_delay_frames:
            return SCENE
        if self._lost >= t.target_lost_frames:
            return TARGET_LOST
        if self._dark >= t.light_delay_frames:
            return LIGHT
        if self._low >= t.retrigger_delay_frames:
            return SHARPNESS
        return None
