"""Depth from defocus: where focus is, from two or more frames at known lens positions.

One defocused frame gives its blur only up to what the scene is (a smooth wall and a
blurred poster look alike). Two frames of the same scene at lens positions ``p1`` and
``p2`` do not: with ``F_i`` their spectra, ``S`` the scene's and ``H_i`` the lens's
optical transfer functions, ``F_i = S H_i + noise``, so at every spatial frequency the
pair ``(F_1, F_2)`` lies along ``(H_1, H_2)`` whatever ``S`` is (Subbarao & Surya 1994;
the "blur equalisation" form of Pentland 1987). For a candidate focus position ``c`` the
blur diameters are ``b_i = k |p_i - c|`` (``k``: blur in pixels per unit of the lens's
range, a property of the optics) and the OTF of a disk of diameter ``b`` is

    H(b, rho) = 2 J1(pi b rho) / (pi b rho)       (rho in cycles per pixel).

The estimate is the ``c``, among those that leave at least one frame measurably sharp
(``MAX_BLUR_PX``), whose direction ``(H_1, H_2)`` explains most of the two frames'
energy: the least-squares residual after projecting ``(F_1, F_2)`` on it (the
maximum-likelihood criterion under white noise with the scene's spectrum unknown), as a
fraction of each frequency ring's energy, summed over the rings. More frames fit the
same way, along ``(H_1, ..., H_n)``. The scene cancels; the answer is a lens position,
as a fraction of the lens's own range, so it serves any lens whose blur per unit of
range is known.

It is perception (images in, a number out), never ground truth; the agents observe it.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from dasha.perception.histogram import CLIPPED_LEVEL

# Frames are compared over a square window of this many pixels (regions are resampled to
# it, and the blur scale with them): 256 px keeps a 150 px blur inside the window.
WINDOW_PX = 256
# Candidate focus positions: a coarse pass over the whole range, then a fine one around
# its best (fractions of the lens's range).
COARSE_STEP = 0.002
FINE_STEP = 0.0001
# A candidate that blurs both frames by more than this (window pixels) is not considered:
# so blurred, both frames are nearly flat and any far candidate explains them as well as
# the truth (measured: frames 75 px out of focus then matched a candidate 0.37 away).
MAX_BLUR_PX = WINDOW_PX / 2
# A clipped highlight is left out of the fit with this margin (``highlight_mask``): more
# than the blur radius (6 px) of a frame at the detector's reach (``envs.stop.DETECTED_REACH``),
# where the frames of a box estimate lie.
HIGHLIGHT_MARGIN_PX = 8


class Spectrum(NamedTuple):
    """One frame's windowed spectrum over a region, and the scale it was resampled by."""

    coefficients: np.ndarray  # rfft2 of the zero-mean, Hann-windowed region
    scale: float  # window pixels per frame pixel (blur diameters scale by it)


class FocusEstimate(NamedTuple):
    position: float
    """Estimated in-focus lens position, a fraction of the lens's range."""
    confidence: float
    """1 - best residual / median residual over the candidates: near 0, the frames could
    not tell the candidates apart (too little texture, or both frames far out of focus)."""
    scale: float = 1.0
    """The factor on the assumed blur scale that fitted best (``estimate_focus(scales=)``)."""


def spectrum(
    gray: np.ndarray,
    box: tuple[float, float, float, float] | None = None,
    keep: np.ndarray | None = None,
) -> Spectrum:
    """The spectrum of a square around ``box`` of a monochrome frame (``None``: the frame's
    central square). The square is at least the window (small boxes are not upsampled:
    interpolation would blur them beyond the model) and square, so resampling keeps a disk
    a disk. ``keep``: weights over the square (``highlight_mask``), the same for every frame
    of a fit; what they leave out is set to the region's mean."""
    import cv2

    region = np.asarray(_square_around(gray, box), dtype=np.float32)
    if keep is not None:
        mean = float((region * keep).sum() / max(float(keep.sum()), 1e-6))
        region = mean + (region - mean) * keep
    scale = WINDOW_PX / region.shape[0]
    if scale != 1.0:  # larger than the window, or a frame smaller than it
        interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
        region = np.asarray(cv2.resize(region, (WINDOW_PX, WINDOW_PX), interpolation=interpolation))
    return Spectrum(np.fft.rfft2((region - region.mean()) * _window()), scale)


def clipped_pixels(gray: np.ndarray, box: tuple[float, float, float, float] | None) -> np.ndarray:
    """Where the square around ``box`` is at or above ``CLIPPED_LEVEL`` (bool)."""
    return np.asarray(_square_around(gray, box)) >= CLIPPED_LEVEL


def highlight_mask(clipped: np.ndarray) -> np.ndarray:
    """Weights over a region that leave out its clipped pixels (the union over the frames of
    one fit, ``clipped_pixels``) and ``HIGHLIGHT_MARGIN_PX`` around them, tapered.

    The model ``F = S H`` holds only for a linear sensor: a clipped highlight's true level is
    unknown, and its blur in another frame spreads more light than the clipped frame shows.
    Where such highlights are small bright details the error lands in the rings the fit
    weighs: on grace_hopper, with 2-3 % of the box clipped at the auto-exposure's level,
    frames 2 and 3 brackets from focus put it 1.4-2.3 brackets off, and 0.02 with this mask
    (cameraman and motorcycle: 0.02 either way, up to 18 % clipped)."""
    import cv2

    size = 2 * HIGHLIGHT_MARGIN_PX + 1
    grown = cv2.dilate(clipped.astype(np.uint8), np.ones((size, size), np.uint8))
    return np.asarray(
        cv2.GaussianBlur(1.0 - grown.astype(np.float32), (0, 0), HIGHLIGHT_MARGIN_PX / 2)
    )


def _square_around(gray: np.ndarray, box: tuple[float, float, float, float] | None) -> np.ndarray:
    h, w = gray.shape[:2]
    frame_side = min(h, w)
    if box is None:
        side, cx, cy = frame_side, w / 2, h / 2
    else:
        x1, y1, x2, y2 = (float(v) for v in box)
        side = min(max(min(x2 - x1, y2 - y1), WINDOW_PX), frame_side)
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    side = int(side)
    x = int(np.clip(round(cx - side / 2), 0, w - side))
    y = int(np.clip(round(cy - side / 2), 0, h - side))
    return gray[y : y + side, x : x + side]


@dataclass(frozen=True)
class _Rings:
    index: np.ndarray  # ring of every rfft2 coefficient
    rho: np.ndarray  # centre frequency of each ring, cycles per pixel
    count: int


def _rings() -> _Rings:
    fy = np.fft.fftfreq(WINDOW_PX)[:, None]
    fx = np.fft.rfftfreq(WINDOW_PX)[None, :]
    count = WINDOW_PX // 2 + 1
    index = np.minimum((np.hypot(fx, fy) * WINDOW_PX).astype(int), count - 1).ravel()
    return _Rings(index, (np.arange(count) + 0.5) / WINDOW_PX, count)


_RINGS = _rings()


@functools.cache
def _window() -> np.ndarray:
    return np.outer(np.hanning(WINDOW_PX), np.hanning(WINDOW_PX)).astype(np.float32)


# Every candidate needs the disk's OTF, 2 J1(pi b rho) / (pi b rho), at each frame's blur
# and every ring: tabulated once per blur diameter (window pixels, 0.05 px apart: far finer
# than the 2 px of "in focus"), a candidate's directions are rows looked up, not J1
# evaluated per candidate. Diameter x frequency is rounded to 0.005 cycles per disk (far
# finer than J1's wiggles), as every figure of depth from defocus was measured with.
_RING_OTF_STEP_PX = 0.05
_RING_OTF_MAX_PX = 1024.0
_OTF_CYCLES_STEP = 0.005


@functools.cache
def _ring_otf_table() -> np.ndarray:
    from scipy.special import j1

    diameters = np.arange(0.0, _RING_OTF_MAX_PX + _RING_OTF_STEP_PX, _RING_OTF_STEP_PX)
    cycles = np.rint(diameters[:, None] * _RINGS.rho[None, 1:] / _OTF_CYCLES_STEP)
    x = np.pi * np.maximum(cycles * _OTF_CYCLES_STEP, 1e-9)
    return np.asarray(2.0 * j1(x) / x, dtype=np.float32)  # [diameter, ring]


def ring_otf(diameter_px: np.ndarray) -> np.ndarray:
    """The disk OTF at every frequency ring but DC for each diameter (window pixels; any
    shape, one more axis of rings); diameters beyond the table take its last row."""
    table = _ring_otf_table()
    index = np.minimum(np.rint(np.asarray(diameter_px) / _RING_OTF_STEP_PX), len(table) - 1)
    return table[index.astype(np.intp)]


class RingPowers:
    """Spectra of one region at several lens positions and their cross powers per frequency
    ring, ``[i, j, ring]``; a new frame adds only its own pairs (a search's estimate is
    asked for after every move)."""

    def __init__(self, spectra: Sequence[Spectrum] = ()) -> None:
        self.coefficients: list[np.ndarray] = []
        self.scale = 1.0
        self.power = np.zeros((0, 0, _RINGS.count - 1))
        for one in spectra:
            self.add(one)

    def __len__(self) -> int:
        return len(self.coefficients)

    def add(self, one: Spectrum) -> None:
        new = one.coefficients.ravel()
        self.coefficients.append(new)
        self.scale = one.scale
        # ring 0 (DC) carries no blur
        row = np.stack(
            [
                np.bincount(_RINGS.index, (new * np.conj(c)).real, _RINGS.count)[1:]
                for c in self.coefficients
            ]
        )
        n = len(self.coefficients)
        power = np.zeros((n, n, row.shape[-1]))
        power[:-1, :-1] = self.power
        power[-1], power[:, -1] = row, row
        self.power = power


def estimate_focus(
    spectra: Sequence[Spectrum] | RingPowers,
    positions: Sequence[float],
    blur_px_per_range: float,
    lowest: float = 0.0,
    behind: float | None = None,
    scales: Sequence[float] = (1.0,),
    highest: float = 1.0,
) -> FocusEstimate:
    """Where focus is, from spectra of the same region at two or more lens positions
    (fractions of the range); ``blur_px_per_range``: the blur diameter, in frame pixels, of
    a defocus as large as the lens's whole range; ``lowest``: no candidate below this
    position is considered (the search has ruled those out, ``envs.stop``), nor any above
    ``highest``; ``behind``: the
    region also holds a plane in focus there (the background around an undetected target),
    fitted together with each candidate; ``scales``: factors on ``blur_px_per_range`` to
    fit along with focus (a lens whose f-number or calibration is not the nominal one),
    the best reported as ``FocusEstimate.scale``.

    With n frames the candidate's direction is ``(H_1, ..., H_n)``: every frame is the same
    scene blurred by its own disk, so all of them are fitted at once; far frames (nearly
    flat) weigh little and near ones carry the precision.
    """
    powers = spectra if isinstance(spectra, RingPowers) else RingPowers(spectra)
    if len(powers) != len(positions) or len(powers) < 2:
        raise ValueError("depth from defocus needs two or more spectra, one per lens position")
    if not scales or min(scales) <= 0:
        raise ValueError(f"blur scales {tuple(scales)} must be positive, at least one")
    total = np.trace(powers.power)  # per ring
    ring_power = powers.power.transpose(2, 0, 1)  # [r, i, j]
    # Each ring's residual as a fraction of its energy: natural images put most energy in
    # the lowest rings, where the window's edges and a second depth in the region (the
    # background around a target) disturb the model most; whitened, every frequency band
    # has its say (measured: on a synthetic plane 75 px out of focus, the error fell from
    # 0.0073 to 0.0015 of the range).
    weight = 1.0 / (total + 1e-9)
    where = np.asarray(positions, dtype=np.float64)

    def explained_along(by_ring: np.ndarray) -> np.ndarray:  # [r, n, c] -> [c, r]
        projected = np.matmul(ring_power, by_ring)  # [r, n, c]
        return ((by_ring * projected).sum(1) / ((by_ring * by_ring).sum(1) + 1e-12)).T

    def residual(candidates: np.ndarray, k: float) -> np.ndarray:
        def directions(at: np.ndarray) -> np.ndarray:  # [r, n, c]
            return np.asarray(ring_otf(k * np.abs(where[None, :] - at[:, None])).transpose(2, 1, 0))

        by_ring = directions(candidates)
        explained: np.ndarray | float = 0.0
        if behind is not None:
            # two planes: the energy in span(other, candidate) is other's share plus that
            # of the candidate's direction made orthogonal to it (Gram-Schmidt per ring)
            other = directions(np.array([float(behind)]))
            along = (by_ring * other).sum(1, keepdims=True) / (
                (other * other).sum(1, keepdims=True) + 1e-12
            )
            by_ring = by_ring - along * other
            explained = explained_along(other)
        explained = explained + explained_along(by_ring)
        return np.asarray(((total - explained) * weight).sum(-1))

    all_candidates = np.arange(0.0, 1.0 + COARSE_STEP / 2, COARSE_STEP)
    nearest = np.abs(where[:, None] - all_candidates[None]).min(0)

    def coarse_at(scale: float) -> np.ndarray:
        k = blur_px_per_range * scale * powers.scale
        allowed = (all_candidates >= lowest) & (all_candidates <= highest)
        return np.asarray(all_candidates[(k * nearest <= MAX_BLUR_PX) & allowed])

    scale = float(scales[0])
    if len(scales) > 1:  # the scale first, on every other coarse candidate (half the cost)
        best_cost = np.inf
        for one in scales:
            candidates = coarse_at(one)[::2]
            if len(candidates):
                cost = float(residual(candidates, blur_px_per_range * one * powers.scale).min())
                if cost < best_cost:
                    best_cost, scale = cost, float(one)
    coarse = coarse_at(scale)
    if not len(coarse):  # no candidate leaves any frame measurable: say so
        return FocusEstimate(float(where[-1]), 0.0)
    coarse_cost = residual(coarse, blur_px_per_range * scale * powers.scale)
    centre = float(coarse[int(np.argmin(coarse_cost))])
    fine = np.arange(centre - COARSE_STEP, centre + COARSE_STEP, FINE_STEP)
    fine = np.clip(fine, max(lowest, 0.0), min(highest, 1.0))
    # the fine pass also refines the scale, as far as its neighbours on the grid
    fine_scales = [scale]
    if len(scales) > 1:
        step = float(np.exp(np.mean(np.diff(np.log(sorted(scales))))))
        fine_scales = [scale * step**f for f in (-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0)]
    best_cost, position = np.inf, centre
    for one in fine_scales:
        fine_cost = residual(fine, blur_px_per_range * one * powers.scale)
        best = int(np.argmin(fine_cost))
        if fine_cost[best] < best_cost:
            best_cost, position, scale = float(fine_cost[best]), float(fine[best]), one
    median = float(np.median(coarse_cost))
    confidence = 0.0 if median <= 0 else max(0.0, 1.0 - best_cost / median)
    return FocusEstimate(position, confidence, scale)
