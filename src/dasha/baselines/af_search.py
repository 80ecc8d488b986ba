"""Two textbook contrast autofocus searches: the full sweep and the hill climb.

Full sweep (``FullSweep``) — the "TEN" method of Yu et al. (2018) that the DASHA paper
compares with (Table I, 366 s on the real rig): put the lens at every position of a grid
over its whole range, measure the contrast (Tenengrad by default) of each frame, and go
to the best one. It cannot be fooled by local maxima, and it is as slow as a search can
be. The default grid step is 0.1 V: the in-focus band of the liquid lens at 140..200 cm
is about ±0.1 V wide (depth of field), so a 0.1 V grid always puts a sample within
0.05 V of the peak, inside the band; a coarser grid can miss the band, a finer one only
costs frames (461 frames over 24..70 V at 0.1 V).

Hill climb (``HillClimb``) — the classic "climb while it rises" search: from where the
lens is, step towards the larger part of the range; keep going while the measure rises;
on a drop (or at the end of the range) reverse and shrink the step by ``shrink_ratio``;
stop when the step is below ``min_step_v``. On the flat tails of the focus curve the
measure only wanders by noise, so while the step is still the initial one a change within
±``plateau_ratio`` counts as a plateau and the climb walks on instead of reversing;
once the step has shrunk, any rise is a climb. It is cheap (tens of frames) and greedy: it
settles on the first local maximum it climbs, which in a central window can be the
background's (the background is in focus at a lower voltage than the target) or a noise
bump on the flat tails of the focus curve. It is the baseline that shows why the others
bracket first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from dasha.baselines.af_base import AfMethod, AfState, AfTunables, FocusProbe


@dataclass(frozen=True)
class SharpnessTunables(AfTunables):
    """A run is reported ``failed`` when max/min of its measures is below this ratio:
    a flat curve (featureless scene, lens cap on) has no peak worth trusting."""

    min_contrast_ratio: float = 2.0

    above_one: ClassVar[tuple[str, ...]] = ("min_contrast_ratio",)


def state_of(probe: FocusProbe, min_contrast_ratio: float) -> AfState:
    """``focused`` when the sampled curve has a real peak (max/min above the ratio)."""
    values = [v for _, v in probe.samples]
    low = max(min(values), 1e-9)
    return "focused" if max(values) / low >= min_contrast_ratio else "failed"


@dataclass(frozen=True)
class SweepTunables(SharpnessTunables):
    step_v: float = 0.1  # grid step over the whole lens range (see the module docstring)


class FullSweep(AfMethod, name="sweep", tunables=SweepTunables):
    def _search(self, probe: FocusProbe) -> tuple[float, AfState]:
        t: SweepTunables = self.tunables
        low, high = probe.range
        for focus in np.arange(low, high + t.step_v / 2, t.step_v):
            probe.at(round(float(focus), 6))
        return probe.best()[0], state_of(probe, t.min_contrast_ratio)


@dataclass(frozen=True)
class HillClimbTunables(SharpnessTunables):
    initial_step_v: float = 1.0  # first step; ~the half-width of the focus curve's shoulder
    min_step_v: float = 0.02  # stop below this step (a fifth of the in-focus band)
    shrink_ratio: float = 0.5  # step multiplier on each reversal
    plateau_ratio: float = 0.1  # a change within ±10 % is a plateau: keep walking, same step
    max_frames: int = 200  # safety limit

    ints: ClassVar[tuple[str, ...]] = ("max_frames",)


class HillClimb(AfMethod, name="hill-climb", tunables=HillClimbTunables):
    def _search(self, probe: FocusProbe) -> tuple[float, AfState]:
        t: HillClimbTunables = self.tunables
        low, high = probe.range
        x = probe.clamp(probe.lens.focus)
        fx = probe.at(x)
        direction = 1.0 if x - low <= high - x else -1.0
        step = t.initial_step_v
        while step >= t.min_step_v and probe.frames < t.max_frames:
            candidate = probe.clamp(x + direction * step)
            if candidate != x:
                value = probe.at(candidate)
                plateau = step == t.initial_step_v and value >= fx * (1 - t.plateau_ratio)
                if value > fx or plateau:
                    x, fx = candidate, value
                    continue
            direction, step = -direction, step * t.shrink_ratio
        return x, state_of(probe, t.min_contrast_ratio)
