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


def spectrum(gray: np.ndarray, box: tuple[float, float, float, float] | None = None) -> Spectrum:
    """The spectrum of a square around ``box`` of a monochrome frame (``None``: the frame's
    central square). The square is at least the window (small boxes are not upsampled:
    interpolation would blur them beyond the model) and square, so resampling keeps a disk
    a disk."""
    import cv2

    region = np.asarray(_square_around(gray, box), dtype=np.float32)
    scale = WINDOW_PX / region.shape[0]
    if scale != 1.0:  # larger than the window, or a frame smaller than it
        interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
        region = np.asarray(cv2.resize(region, (WINDOW_PX, WINDOW_PX), interpolation=interpolation))
    return Spectrum(np.fft.rfft2((region - region.mean()) * _window()), scale)


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


# The disk's OTF depends on diameter x frequency only: tabulated once (cycles per disk, in
# steps far finer than its wiggles), it is looked up instead of evaluating J1 per candidate.
_OTF_STEP = 0.005
_OTF_MAX = 1000.0


@functools.cache
def _otf_table() -> np.ndarray:
    from scipy.special import j1

    x = np.pi * np.maximum(np.arange(0.0, _OTF_MAX + _OTF_STEP, _OTF_STEP), 1e-9)
    return np.asarray(2.0 * j1(x) / x)


def disk_otf(diameter_px: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """OTF of a disk PSF of each diameter (rows) at each frequency (columns),
    ``2 J1(pi b rho) / (pi b rho)``."""
    table = _otf_table()
    cycles = np.asarray(diameter_px, dtype=np.float64)[..., None] * rho
    return table[np.minimum(np.rint(cycles / _OTF_STEP).astype(np.intp), len(table) - 1)]


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
) -> FocusEstimate:
    """Where focus is, from spectra of the same region at two or more lens positions
    (fractions of the range); ``blur_px_per_range``: the blur diameter, in frame pixels, of
    a defocus as large as the lens's whole range; ``lowest``: no candidate below this
    position is considered (the search has ruled those out, ``envs.stop``); ``behind``: the
    region also holds a plane in focus there (the background around an undetected target),
    fitted together with each candidate.

    With n frames the candidate's direction is ``(H_1, ..., H_n)``: every frame is the same
    scene blurred by its own disk, so all of them are fitted at once; far frames (nearly
    flat) weigh little and near ones carry the precision.
    """
    powers = spectra if isinstance(spectra, RingPowers) else RingPowers(spectra)
    if len(powers) != len(positions) or len(powers) < 2:
        raise ValueError("depth from defocus needs two or more spectra, one per lens position")
    total = np.trace(powers.power)  # per ring
    ring_power = powers.power.transpose(2, 0, 1)  # [r, i, j]
    # Each ring's residual as a fraction of its energy: natural images put most energy in
    # the lowest rings, where the window's edges and a second depth in the region (the
    # background around a target) disturb the model most; whitened, every frequency band
    # has its say (measured: on a synthetic plane 75 px out of focus, the error fell from
    # 0.0073 to 0.0015 of the range).
    weight = 1.0 / (total + 1e-9)
    rho = _RINGS.rho[1:]
    where = np.asarray(positions, dtype=np.float64)
    k = blur_px_per_range * powers.scale

    def directions(candidates: np.ndarray) -> np.ndarray:
        h = disk_otf(k * np.abs(where[None, :] - candidates[:, None]), rho)  # [c, n, r]
        return np.asarray(h.transpose(2, 1, 0))  # [r, n, c]

    def explained_along(by_ring: np.ndarray) -> np.ndarray:  # [r, n, c] -> [c, r]
        projected = np.matmul(ring_power, by_ring)  # [r, n, c]
        return ((by_ring * projected).sum(1) / ((by_ring * by_ring).sum(1) + 1e-12)).T

    other = None if behind is None else directions(np.array([float(behind)]))  # [r, n, 1]
    explained_by_other = 0.0 if other is None else explained_along(other)  # [1, r]

    def residual(candidates: np.ndarray) -> np.ndarray:
        by_ring = directions(candidates)
        if other is not None:
            # two planes: the energy in span(other, candidate) is other's share plus that
            # of the candidate's direction made orthogonal to it (Gram-Schmidt per ring)
            along = (by_ring * other).sum(1, keepdims=True) / ((other * other).sum(1, keepdims=True) + 1e-12)
            by_ring = by_ring - along * other
        explained = explained_by_other + explained_along(by_ring)
        return ((total - explained) * weight).sum(-1)

    coarse = np.arange(0.0, 1.0 + COARSE_STEP / 2, COARSE_STEP)
    nearest = np.abs(where[:, None] - coarse[None]).min(0)
    coarse = coarse[(k * nearest <= MAX_BLUR_PX) & (coarse >= lowest)]
    if not len(coarse):  # no candidate leaves any frame measurable: say so
        return FocusEstimate(float(where[-1]), 0.0)
    coarse_cost = residual(coarse)
    centre = float(coarse[int(np.argmin(coarse_cost))])
    fine = np.clip(np.arange(centre - COARSE_STEP, centre + COARSE_STEP, FINE_STEP), lowest, 1.0)
    fine_cost = residual(fine)
    best = int(np.argmin(fine_cost))
    median = float(np.median(coarse_cost))
    confidence = 0.0 if median <= 0 else max(0.0, 1.0 - float(fine_cost[best]) / median)
    return FocusEstimate(float(fine[best]), confidence)
