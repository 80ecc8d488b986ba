"""Bracketing autofocus: a coarse scan finds the peak, a fine search pins it down.

The coarse scan (shared by both methods here) follows libcamera's Raspberry Pi contrast
AF (``src/ipa/rpi/controller/rpi/af.cpp``, ``ScanState::Coarse``): start at one end of
the lens range and step towards the other, remembering the highest contrast, and stop
once the contrast has fallen below ``contrast_ratio`` (0.75, libcamera's value) times
that maximum. Two changes fit it to this lens, whose in-focus band (~±0.1 V, ~0.04 dpt)
is far narrower than a phone camera's:

- two speeds: ``flat_step_v`` (1 V) while the contrast is still on the flat tail of the
  focus curve (below ``flat_ratio`` x the lowest contrast seen), then ``coarse_step_v``
  (0.2 V, so the target's peak is sampled within 0.1 V of its top). A 1 V step cannot
  jump over the peak: the curve is already several times its floor ~2 V before it.
- a hold after the drop: the scan goes from far (24 V) to near, so it meets the
  *background's* peak (~36 V for a background at 5 m) before the target's (36.6..37.2 V
  at 140..200 cm), with a dip between them that libcamera's rule would stop in. The scan
  only stops once it is ``past_peak_v`` (1.5 V, more than the background-to-target gap)
  beyond the maximum; a higher peak met meanwhile becomes the new maximum.

Coarse-fine scan (``CoarseFineScan``), then as libcamera's ``ScanState::Fine``: jump to
just above the coarse peak and scan back down in ``fine_step_v`` steps until the contrast
drops below ``contrast_ratio`` x the fine maximum (or ``max_fine_frames``); the answer is
the vertex of the parabola through the best fine sample and its two neighbours
(libcamera's ``findPeak`` approximates the same interpolation).

Re-trigger (``AfMethod.run(..., around=lens position)``, continuous mode after a
sharpness drop): as libcamera's continuous mode rescans from where the lens is rather
than from the end of the range, ``local_scan`` climbs in coarse steps from the current
position towards the higher contrast and stops at the first drop below
``contrast_ratio`` x the best; the fine scan then runs as usual. It falls back to the
full coarse scan when no peak stands out within ``local_span_v`` (2 V, about 1 dpt). It reports ``failed``
when the whole scan saw no real peak: max/min contrast below ``min_contrast_ratio``.

Golden section (``GoldenSection``), as Micro-Manager's OughtaFocus (which runs Brent's
method, golden-section search with parabolic steps): the coarse scan brackets the peak
between the two coarse neighbours of the best coarse sample, and golden-section search
shrinks that bracket to ``tolerance_v``. Why bracket first: over the full 46 V the focus
curve is not unimodal — its tails are flat noise and the background has its own peak —
and golden section on a non-unimodal function converges to whichever local maximum its
first cuts happen to keep. Inside one coarse step around the best coarse sample the
curve is unimodal (the coarse step, 0.2 V, is below the target peak's half-width).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from dasha.baselines.af_base import AfMethod, AfState, FocusProbe, parabola_vertex
from dasha.baselines.af_search import SharpnessTunables, state_of

GOLDEN_RATIO_CONJUGATE = (math.sqrt(5) - 1) / 2  # 0.618...


@dataclass(frozen=True)
class CoarseScanTunables(SharpnessTunables):
    flat_step_v: float = 1.0  # step while the contrast is still on the flat tail
    flat_ratio: float = 4.0  # "flat" = contrast below this x the lowest contrast seen
    coarse_step_v: float = 0.2  # step near the peak (below the peak's half-width)
    contrast_ratio: float = 0.75  # libcamera: a drop below 0.75 x max ends the scan
    past_peak_v: float = 1.5  # ... once this far beyond the maximum
    local_span_v: float = 2.0  # a local re-scan looks this far from the lens, then gives up

    above_one: ClassVar[tuple[str, ...]] = ("min_contrast_ratio", "flat_ratio")


def coarse_scan(probe: FocusProbe, t: CoarseScanTunables) -> tuple[float, float]:
    """The best (focus, measure): locally around ``probe.around`` when that finds a peak,
    else by the full scan up from the low end of the range."""
    if probe.around is not None:
        found = local_scan(probe, t, probe.around)
        if found is not None:
            return found
    return full_scan(probe, t)


def local_scan(
    probe: FocusProbe, t: CoarseScanTunables, start: float
) -> tuple[float, float] | None:
    """Climb from ``start`` in ``coarse_step_v`` steps towards the higher contrast until it
    drops below ``contrast_ratio`` x the best (libcamera's rule, without the full scan's
    hold: the background's peak is not on the way when starting at the target's old
    one); ``None`` when no drop is met within ``local_span_v`` (no peak near: full scan).
    """
    first = len(probe.samples)
    here = probe.at(probe.clamp(start))
    up_x = probe.clamp(start + t.coarse_step_v)
    up = probe.at(up_x)
    direction = 1.0 if up >= here else -1.0
    best_x, best_value = (up_x, up) if up >= here else (probe.clamp(start), here)
    x = best_x
    while abs(x - start) < t.local_span_v:
        x_next = probe.clamp(x + direction * t.coarse_step_v)
        if x_next == x:  # the end of the range: no peak inside it here
            return None
        x = x_next
        value = probe.at(x)
        if value > best_value:
            best_x, best_value = x, value
        elif value < t.contrast_ratio * best_value:
            local = [v for _, v in probe.samples[first:]]
            # A real peak stands out of what was seen around it, as ``state_of`` asks.
            if best_value >= t.min_contrast_ratio * max(min(local), 1e-9):
                return best_x, best_value
            return None
    return None


def full_scan(probe: FocusProbe, t: CoarseScanTunables) -> tuple[float, float]:
    """Scan up from the low end of the range; returns the best (focus, measure) seen."""
    low, high = probe.range
    x = low
    lowest = best_value = probe.at(x)
    best_x = x
    while x < high:
        flat = best_value < t.flat_ratio * lowest
        x = probe.clamp(x + (t.flat_step_v if flat else t.coarse_step_v))
        value = probe.at(x)
        lowest = min(lowest, value)
        if value > best_value:
            best_x, best_value = x, value
        elif value < t.contrast_ratio * best_value and x - best_x >= t.past_peak_v:
            break
    return best_x, best_value


@dataclass(frozen=True)
class CoarseFineTunables(CoarseScanTunables):
    fine_step_v: float = 0.05  # a quarter of the coarse step; half the in-focus band
    max_fine_frames: int = 9  # libcamera stops its fine scan after a few frames too

    ints: ClassVar[tuple[str, ...]] = ("max_fine_frames",)


class CoarseFineScan(AfMethod, name="coarse-fine", tunables=CoarseFineTunables):
    def _search(self, probe: FocusProbe) -> tuple[float, AfState]:
        t: CoarseFineTunables = self.tunables
        peak_x, _ = coarse_scan(probe, t)
        state = state_of(probe, t.min_contrast_ratio)
        fine: list[tuple[float, float]] = []
        x = probe.clamp(peak_x + 3 * t.fine_step_v)  # just above the coarse peak, then down
        while len(fine) < t.max_fine_frames:
            fine.append((x, probe.at(x)))
            best = max(v for _, v in fine)
            past = fine[-1][0] < max(fine, key=lambda s: s[1])[0]
            if (past and fine[-1][1] < t.contrast_ratio * best) or x <= probe.range[0]:
                break
            x = probe.clamp(x - t.fine_step_v)
        fine.sort()
        i = max(range(len(fine)), key=lambda k: fine[k][1])
        if 0 < i < len(fine) - 1:
            xs, ys = zip(*fine[i - 1 : i + 2], strict=True)
            return parabola_vertex(xs, ys), state
        return fine[i][0], state


@dataclass(frozen=True)
class GoldenTunables(CoarseScanTunables):
    tolerance_v: float = 0.02  # stop when the bracket is narrower (a fifth of the band)


class GoldenSection(AfMethod, name="golden", tunables=GoldenTunables):
    def _search(self, probe: FocusProbe) -> tuple[float, AfState]:
        t: GoldenTunables = self.tunables
        peak_x, _ = coarse_scan(probe, t)
        state = state_of(probe, t.min_contrast_ratio)
        a, b = probe.clamp(peak_x - t.coarse_step_v), probe.clamp(peak_x + t.coarse_step_v)
        c = b - GOLDEN_RATIO_CONJUGATE * (b - a)
        d = a + GOLDEN_RATIO_CONJUGATE * (b - a)
        fc, fd = probe.at(c), probe.at(d)
        while b - a > t.tolerance_v:
            if fc >= fd:  # the maximum is in [a, d]
                b, d, fd = d, c, fc
                c = b - GOLDEN_RATIO_CONJUGATE * (b - a)
                fc = probe.at(c)
            else:  # the maximum is in [c, b]
                a, c, fc = c, d, fd
                d = a + GOLDEN_RATIO_CONJUGATE * (b - a)
                fd = probe.at(d)
        return (c if fc >= fd else d), state
