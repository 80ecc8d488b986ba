"""The camera and lens as an AF cycle sees them: every frame observed, every move recorded,
time and moves bounded.

``WatchedCamera`` / ``WatchedLens`` wrap a rig's devices and are what the algorithms
(classical ``AfMethod``, auto-exposure, DASHA's hierarchical episode) drive, so they all
get the same books: each grab passes through ``on_frame`` (per-frame metadata, the
scenario's clock), each lens or exposure move is appended to ``moves`` with who made it,
and a cycle's limits (camera-clock deadline, lens-move budget) raise ``CycleLimitError`` from
inside whatever algorithm runs, which the caller turns into ``Failed``.

The watched camera is deliberately not a ``SimCamera``: an episode's ``reset_rig`` then
only sets the factory exposure and lens position, and never resets the simulated world
or its clock under a running camera.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from dasha.errors import DashaError
from dasha.hardware.base import Camera, Frame, Lens, Range, Roi


class CycleLimitError(DashaError):
    """A cycle ran out of time or lens moves (``reason``: ``timeout`` / ``move budget``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class WatchedCamera(Camera):
    """A ``Camera`` that reports every frame to ``on_frame`` and enforces a deadline."""

    def __init__(self, inner: Camera, on_frame: Callable[[Frame], None]) -> None:
        self.inner = inner
        self.name = inner.name
        self.on_frame = on_frame
        self.before_grab: Callable[[], None] = lambda: None
        self.deadline_s: float | None = None  # on ``now_s``'s clock
        self.who = "user"
        self.moves: list[dict[str, Any]] = []
        self.frame_index = 0
        self._last_frame_s = 0.0
        clock = getattr(inner, "clock", None)
        self.clock = clock  # FocusProbe reports simulated time when there is one

    def now_s(self) -> float:
        """The camera's clock: simulated time on the simulator, monotonic time elsewhere."""
        clock = getattr(self.inner, "clock", None)
        return float(clock.now_s) if clock is not None else time.monotonic()

    @property
    def exposure_range_us(self) -> Range:
        return self.inner.exposure_range_us

    @property
    def gain_range_db(self) -> Range:
        return self.inner.gain_range_db

    @property
    def exposure_us(self) -> float:
        return self.inner.exposure_us

    def set_exposure_us(self, exposure_us: float) -> float:
        before = self.inner.exposure_us
        value = self.inner.set_exposure_us(exposure_us)
        if value != before:
            self.moves.append(
                {
                    "frame": self.frame_index,
                    "who": self.who,
                    "what": "exposure",
                    "from": before,
                    "to": value,
                    "unit": "us",
                }
            )
        return value

    @property
    def gain_db(self) -> float:
        return self.inner.gain_db

    def set_gain_db(self, gain_db: float) -> float:
        return self.inner.set_gain_db(gain_db)

    @property
    def roi(self) -> Roi:
        return self.inner.roi

    def grab(self, timeout_s: float = 5.0) -> Frame:
        if self.deadline_s is not None and self.now_s() + self._last_frame_s > self.deadline_s:
            raise CycleLimitError("timeout")
        self.before_grab()
        start = self.now_s()
        frame = self.inner.grab(timeout_s)
        self._last_frame_s = max(self.now_s() - start, 0.0)
        self.frame_index += 1
        self.on_frame(frame)
        return frame

    def close(self) -> None:
        self.inner.close()


class WatchedLens(Lens):
    """A ``Lens`` limited to ``focus_range`` (AfRange), counting moves against a budget."""

    def __init__(self, inner: Lens, camera: WatchedCamera) -> None:
        self.inner = inner
        self.name, self.unit = inner.name, inner.unit
        self.camera = camera
        self.limits: Range = inner.focus_range
        self.budget: int | None = None
        self.cycle_moves = 0

    @property
    def focus_range(self) -> Range:
        return self.limits

    @property
    def full_range(self) -> Range:
        return self.inner.focus_range

    @property
    def focus(self) -> float:
        return self.inner.focus

    @property
    def settle_s(self) -> float:
        return self.inner.settle_s

    @property
    def safe_focus(self) -> float:
        return self.inner.safe_focus

    def set_focus(self, value: float, *, park: bool = False) -> float:
        """Move within the limits (clamped); ``park``: a move the budget does not count."""
        target = self.limits.clamp(value)
        before = self.inner.focus
        if target == before:
            return before
        if not park and self.budget is not None and self.cycle_moves >= self.budget:
            raise CycleLimitError("move budget")
        value = self.inner.set_focus(target)
        self.cycle_moves += 0 if park else 1
        cam = self.camera
        cam.moves.append(
            {
                "frame": cam.frame_index,
                "who": "park" if park else cam.who,
                "what": "lens",
                "from": before,
                "to": value,
                "unit": self.unit,
            }
        )
        return value

    def close(self) -> None:
        self.inner.close()
