"""When A_L's search is over: the stop rules, and the memory of the frames a search has seen.

Three rules (``EpisodeConfig.stop_rule``):

- ``"detection"``, the paper's: the search ends at the first frame where the detector finds
  the target (eq. 12), optionally only when the box is sharp by BRISQUE
  (``EpisodeConfig.sharp_brisque_max``, ``envs.rewards.target_found``). That gate is an
  absolute threshold fitted to the four paper photographs: an unseen, dark, perfectly
  focused photo may score above it and the search never ends.
- ``"peak"``: threshold-free on the scene. Sharpness is compared only between frames of
  this search, over one region (the box of the best detection so far), so what the scene
  is cancels out: the search ends once a frame where the target was detected is sharper
  than the nearest frames on both sides of it in lens position, both within
  ``peak_bracket`` of it. Then the peak is behind us: the lens goes back to that frame
  (one more move, counted) and the search ends there.
- ``"defocus"``: the peak rule, and also the search ends on a frame where the target is
  detected and depth from defocus over the search's frames (``perception.defocus``) puts
  focus within ``DEFOCUS_STOP`` of it. The frame need not be bracketed: a search can end
  on the first frame that lands in focus, two moves sooner than the peak rule can. The
  estimate compares frames of one region at known lens positions, so it too holds no
  threshold on the scene.

The bracket is a property of the optics, not of any scene: if the neighbours at +-b are
less sharp, the sharpness maximum lies within about b/2 of the chosen frame. With b two
depths of focus (``PEAK_BRACKET``) the chosen frame is within one, i.e. in focus.
"""

from __future__ import annotations

from collections.abc import Callable, Sized
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np

from dasha.errors import check_choice
from dasha.hardware.base import Frame
from dasha.perception._image import crop
from dasha.perception.defocus import (
    MAX_BLUR_PX,
    FocusEstimate,
    RingPowers,
    clipped_pixels,
    estimate_focus,
    highlight_mask,
    spectrum,
)
from dasha.perception.senses import TargetSeen

STOP_RULES = ("detection", "peak", "defocus")
MEMORY_RULES = ("peak", "defocus")  # the rules that compare the frames of one search

# Two depths of focus as a fraction of the lens's own range: the default optics (25 mm,
# f/2.5, 5.5 um pixels) blur 45.5 px per dioptre, so 2 px (``sim.optics`` in focus) is
# 0.044 dpt, and the Varioptic spans 20 dpt over its range: 2 x 0.044 / 20 = 0.0044.
PEAK_BRACKET = 0.0044
# Sharpness is the gradient energy of the region after a Gaussian of this sigma, which
# keeps sensor noise (its own gradient energy, equal in every frame) from ranking frames.
SHARPNESS_SIGMA_PX = 1.0
# The defocus rule ends a search where depth from defocus puts focus within half a depth of
# focus (a quarter of the bracket, about 1 px of blur): what is left of the estimate's own
# error near focus (about that much on synthetic textures, ``tests/test_defocus.py``) then
# keeps the frame within the 2 px of "in focus".
DEFOCUS_STOP = PEAK_BRACKET / 4
# The defocus rule's own ending needs an estimate resting on this many frames at different
# lens positions within depth from defocus's reach of it (``MAX_BLUR_PX`` of blur): two to
# fit, a third to check the fit. From the factory frame (about 250 px of blur) and one probe,
# the fit rests on the probe alone, and a detected probe 11 px off was taken for focus.
# Measured with the ``dfd`` search (``baselines.dfd``; 120 val conditions of ``full``):
# 65.8 % against 65.0 % with no such need, 6.49 lens moves against 6.48; on ``paper`` 73 %
# against 57 % (two frames gave 65.0 % on val, 73 % on paper).
DEFOCUS_SUPPORT = 3
# While the target has not been detected, a frame taken this close to where depth from
# defocus puts focus (0.6 of a depth of focus, about 1.2 px of blur) saw that plane sharp;
# the target was not there, so that plane is ruled out (``open_focus_estimate``).
RULED_OUT_RADIUS = 0.3 * PEAK_BRACKET
# The next candidate lies at least this far nearer than a ruled-out plane: over a textured
# background the plane's own residual valley is a few brackets wide, and would win again.
NEARER_MARGIN = 2 * PEAK_BRACKET
# The detector finds a target only a few pixels from focus (YOLOv3-tiny: up to about 8 px
# on the simulator's scenes): a detected frame's focus lies within this many ranges of it
# (three brackets, 12 px of blur on the default optics).
DETECTED_REACH = 3 * PEAK_BRACKET
# Depth from defocus fits the lens's blur scale along with focus: factors on the nominal
# blur per range (``EpisodeConfig.blur_px_per_range``), an octave either way, 19 % apart
# and refined between neighbours (the f-number alone moves it by 1/N: f/1.8..f/4 on a
# nominal f/2.5 is x0.63..x1.39).
BLUR_SCALES = tuple(float(s) for s in np.geomspace(0.5, 2.0, 9))


def check_stop_rule(rule: str) -> str:
    return check_choice("stop_rule", rule, STOP_RULES)


def region_sharpness(gray: np.ndarray, box: tuple[float, float, float, float] | None) -> float:
    """Mean squared gradient of the (lightly smoothed) region; the whole frame without a box."""
    import cv2

    region = crop(gray, box)
    smooth = cv2.GaussianBlur(region.astype(np.float32), (0, 0), SHARPNESS_SIGMA_PX)
    gy, gx = np.gradient(smooth)
    return float(np.mean(gx * gx + gy * gy))


Box = tuple[float, float, float, float]
Kept = TypeVar("Kept", bound=Sized)  # a collection with one entry per frame


class _PerRegion(Generic[Kept]):
    """Per-frame work over the current region, kept while the region stays the same:
    ``start()`` makes an empty collection, ``add(kept, gray, box)`` takes one more frame."""

    def __init__(
        self, start: Callable[[], Kept], add: Callable[[Kept, np.ndarray, Box | None], None]
    ) -> None:
        self.start: Callable[[], Kept] = start
        self.add: Callable[[Kept, np.ndarray, Box | None], None] = add
        self.box: Box | None = None
        self.kept: Kept = start()

    def clear(self) -> None:
        self.kept = self.start()

    def of(self, grays: list[np.ndarray], box: Box | None) -> Kept:
        if box != self.box:
            self.kept, self.box = self.start(), box
        for gray in grays[len(self.kept) :]:
            self.add(self.kept, gray, box)
        return self.kept


def _add_sharpness(kept: list[float], gray: np.ndarray, box: Box | None) -> None:
    kept.append(region_sharpness(gray, box))


def _add_spectrum(kept: RingPowers, gray: np.ndarray, box: Box | None) -> None:
    kept.add(spectrum(gray, box))


def _add_clipped(kept: list[np.ndarray], gray: np.ndarray, box: Box | None) -> None:
    kept.append(clipped_pixels(gray, box))


def open_focus_estimate(
    powers: RingPowers, positions: list[float], blur_px_per_range: float
) -> FocusEstimate:
    """Depth from defocus while the target has not been detected in any frame: the best fit
    among the in-focus positions no frame has ruled out.

    Without a box the region holds the target and what is behind it, and the fit settles on
    whichever plane explains most of the region, often the background. A frame taken where
    a plane is in focus (``RULED_OUT_RADIUS``) and showing no target rules that plane out;
    the target stands in front of what is behind it, and on every lens DASHA drives the
    range fraction rises with optical power (nearer focus; ``camera.api.LensMap``), so the
    search looks again only above the ruled-out plane (``NEARER_MARGIN``), fitting each
    candidate together with the plane the region's best fit found (two planes in one
    region). Measured on val (60 scripted searches: probes, then the estimate): within 2 px
    of focus at some move in 100 % of the searches against 67 % with the plain estimate,
    and detected and in focus at the end in 70 % against 50 % (fitting the nearer plane
    alone, without the background's, gave 88 % and 63 %). When every nearer candidate is
    ruled out, the plain estimate stands."""
    first = estimate = estimate_focus(powers, positions, blur_px_per_range)
    for _ in range(len(positions)):
        seen_there = [p for p in positions if abs(p - estimate.position) < RULED_OUT_RADIUS]
        if not seen_there:
            return estimate
        lowest = max(seen_there) + NEARER_MARGIN
        if lowest >= 1.0:
            break
        estimate = estimate_focus(powers, positions, blur_px_per_range, lowest, first.position)
        if estimate.confidence == 0.0:  # nothing nearer fits at all
            break
    return first


@dataclass
class SearchMemory:
    """The frames one A_L search has taken: lens position (a fraction of the lens's range),
    the frame's gray image, and what the detector saw."""

    positions: list[float] = field(default_factory=list)
    grays: list[np.ndarray] = field(default_factory=list)
    seen: list[TargetSeen] = field(default_factory=list)
    # Per-frame measures over the current region: a step's observation and stop rule both
    # read them, and only a new frame or a new best box needs any new work.
    _scores: _PerRegion[list[float]] = field(
        default_factory=lambda: _PerRegion(list, _add_sharpness), repr=False
    )
    _powers: _PerRegion[RingPowers] = field(
        default_factory=lambda: _PerRegion(RingPowers, _add_spectrum), repr=False
    )
    _clipped: _PerRegion[list[np.ndarray]] = field(
        default_factory=lambda: _PerRegion(list, _add_clipped), repr=False
    )
    _masked: tuple[Any, np.ndarray, RingPowers] | None = field(default=None, repr=False)
    _estimate: tuple[Any, FocusEstimate] | None = field(default=None, repr=False)

    def clear(self) -> None:
        self.positions.clear()
        self.grays.clear()
        self.seen.clear()
        self._scores.clear()
        self._powers.clear()
        self._clipped.clear()
        self._masked = None
        self._estimate = None

    def add(self, position: float, frame: Frame, seen: TargetSeen) -> None:
        self.positions.append(float(position))
        self.grays.append(frame.as_uint8())  # frames are monochrome (``hardware.base.Frame``)
        self.seen.append(seen)

    @property
    def region(self) -> tuple[float, float, float, float] | None:
        """The box of the most confident detection so far (``None``: nothing detected)."""
        detected = [s for s in self.seen if s.detected and s.box is not None]
        return max(detected, key=lambda s: s.score).box if detected else None

    def sharpness(self) -> list[float]:
        """Every frame's sharpness over the same region (so only the focus differs)."""
        return list(self._scores.of(self.grays, self.region))

    def ring_powers(self) -> RingPowers:
        """Every frame's spectrum around the same region and their cross powers
        (``perception.defocus``). Over a detected box where some frame has clipped pixels,
        every spectrum is taken with the same mask over them (``highlight_mask``); measured
        with the ``dfd`` search: on the paper set 100 % against 73 %, on val 65.8 % either
        way (6.55 lens moves against 6.49), on val ``mismatch`` 42.5 % against 40.8 %.
        Masking the open estimate's whole frame too cost 2 of 120 on val."""
        box = self.region
        if box is None:
            return self._powers.of(self.grays, box)
        clipped = np.logical_or.reduce(self._clipped.of(self.grays, box))
        if not clipped.any():
            return self._powers.of(self.grays, box)
        # Within one box the union of clipped pixels only grows, so its size names the mask:
        # while it stays, a new frame adds only its own spectrum under the same mask.
        key = (box, int(clipped.sum()))
        if self._masked is None or self._masked[0] != key:
            self._masked = (key, highlight_mask(clipped), RingPowers())
        _, keep, powers = self._masked
        for gray in self.grays[len(powers) :]:
            powers.add(spectrum(gray, box, keep))
        return powers

    def focus_estimate(
        self, blur_px_per_range: float, fit_blur_scale: bool = False
    ) -> FocusEstimate | None:
        """Depth from defocus over every frame of this search and the current region
        (``None`` until two lens positions differ). Asked for by the observation and the
        stop rule after the same move, it is computed once per frame and region.

        ``fit_blur_scale``: over a detected box, fit the lens's blur scale too
        (``BLUR_SCALES``; ``EpisodeConfig.fit_blur_scale``). Measured on val, 60 scripted
        searches (probes, then the estimate): on the ``mismatch`` lenses 47 % ended
        detected in focus against 37 % with the nominal scale, on the nominal lens 67 %
        against 73 %; fitted over the whole frame (the target and its background) the
        scale came out biased low, so it is fitted on boxes only."""
        positions = self.positions
        if not positions or max(positions) - min(positions) < 1e-9:
            return None
        key = (len(positions), self.region, blur_px_per_range, fit_blur_scale)
        if self._estimate is None or self._estimate[0] != key:
            powers = self.ring_powers()
            if self.region is None:  # nothing detected yet: every frame rules its plane out
                estimate = open_focus_estimate(powers, positions, blur_px_per_range)
            else:
                scales = BLUR_SCALES if fit_blur_scale else (1.0,)
                estimate = self._box_estimate(powers, blur_px_per_range, scales)
            self._estimate = (key, estimate)
        return self._estimate[1]

    def _box_estimate(
        self, powers: RingPowers, blur_px_per_range: float, scales: tuple[float, ...]
    ) -> FocusEstimate:
        """Over the box: the target was detected, so its focus lies within
        ``DETECTED_REACH`` of the sharpest detected frame. A fit outside that window is the
        background the box also holds; then the target's plane is fitted inside the
        window, together with that background plane."""
        positions = self.positions
        plain = estimate_focus(powers, positions, blur_px_per_range, scales=scales)
        best = bracket_of(self).best
        if best is None:
            return plain
        low, high = positions[best] - DETECTED_REACH, positions[best] + DETECTED_REACH
        if low <= plain.position <= high:
            return plain
        k = blur_px_per_range * plain.scale
        inside = estimate_focus(
            powers, positions, k, lowest=low, highest=high, behind=plain.position
        )
        return inside._replace(scale=plain.scale)

    def relative_sharpness(self) -> list[float]:
        """log(sharpness / the sharpest so far): 0 at the best frame, scene-independent."""
        values = np.maximum(np.asarray(self.sharpness(), dtype=np.float64), 1e-12)
        return list(np.log(values / values.max()))


@dataclass(frozen=True)
class Bracket:
    """Where a search stands with the peak rule: its best detected frame, and whether a less
    sharp frame within the bracket closes each side of it."""

    best: int | None  # index of the sharpest frame where the target was detected
    below: bool
    above: bool

    @property
    def closed(self) -> bool:
        return self.best is not None and self.below and self.above


def bracket_of(memory: SearchMemory, bracket: float = PEAK_BRACKET) -> Bracket:
    """The candidate is the sharpest frame where the target was detected; a side is closed
    when the nearest frame on that side in lens position is less sharp and within
    ``bracket`` of it (a coarse bracket would stop far from focus)."""
    if memory.region is None:
        return Bracket(None, False, False)
    sharpness = memory.sharpness()
    detected = [i for i, s in enumerate(memory.seen) if s.detected]
    best = max(detected, key=lambda i: sharpness[i])
    here = memory.positions[best]

    def closes(side: list[int], nearest: Any) -> bool:
        if not side:
            return False
        i = nearest(side, key=lambda i: memory.positions[i])
        return abs(memory.positions[i] - here) <= bracket and sharpness[i] < sharpness[best]

    below = [i for i, p in enumerate(memory.positions) if p < here]
    above = [i for i, p in enumerate(memory.positions) if p > here]
    return Bracket(best, closes(below, max), closes(above, min))


def peak_behind(memory: SearchMemory, bracket: float = PEAK_BRACKET) -> int | None:
    """The index of the frame to return to when the peak rule ends the search, else
    ``None``: the best detected frame once both its sides are closed (``bracket_of``)."""
    state = bracket_of(memory, bracket)
    return state.best if state.closed else None


def defocus_here(
    memory: SearchMemory,
    blur_px_per_range: float,
    tolerance: float = DEFOCUS_STOP,
    fit_blur_scale: bool = False,
) -> bool:
    """The defocus rule's own ending: the target is detected in the last frame and depth
    from defocus over the search's frames puts focus within ``tolerance`` (a fraction of
    the lens's range) of where that frame was taken, with ``DEFOCUS_SUPPORT`` frames
    within its reach."""
    if not memory.seen or not memory.seen[-1].detected:
        return False
    estimate = memory.focus_estimate(blur_px_per_range, fit_blur_scale)
    if estimate is None or abs(estimate.position - memory.positions[-1]) > tolerance:
        return False
    reach = MAX_BLUR_PX / (blur_px_per_range * estimate.scale)  # a fraction of the range
    support = {p for p in memory.positions if abs(p - estimate.position) <= reach}
    return len(support) >= DEFOCUS_SUPPORT
