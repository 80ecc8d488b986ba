"""A simulated clock: actuator latencies add up to "seconds since start" without sleeping.

The original notebooks slept 5 s after each exposure change and 2 s after each lens move;
here each latency is a parameter (``Timing``) and the clock only advances a number, so
"seconds to focus" is reported exactly and costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Timing:
    """Actuator and sensor timing of a simulated camera + lens (seconds).

    Defaults: a Basler acA2000-50gm region at 50 fps, a new exposure taking effect one
    frame after it is written, and a liquid lens settling in ~15 ms (Varioptic's response
    time order of magnitude). Override them to model a slower rig.
    """

    frame_period_s: float = 0.02
    exposure_latency_frames: int = 1
    lens_settle_s: float = 0.015


class SimClock:
    """Simulated time and event counters. Only ever moves forward."""

    def __init__(self) -> None:
        self.now_s = 0.0
        self.frames = 0
        self.lens_moves = 0
        self.exposure_changes = 0

    def advance_to(self, t_s: float) -> None:
        self.now_s = max(self.now_s, t_s)

    def snapshot(self) -> dict[str, float | int]:
        return {
            "sim_time_s": self.now_s,
            "frames": self.frames,
            "lens_moves": self.lens_moves,
            "exposure_changes": self.exposure_changes,
        }
