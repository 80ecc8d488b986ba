"""The histogram observation (10 counts + 11 bin edges) and its peak P (reward eq. 11).

Definition (the original code's, and the default here): ``np.histogram(image)`` with
10 equal bins spanning the frame's own minimum..maximum; the peak P is the *left edge*
of the fullest bin (the first one on ties). So P is a pixel value on the frame's
0..255 scale, but its resolution depends on the frame's range.

``fixed_range=True`` is the alternative: 10 bins over the full 0..255 scale (edges
0, 25.5, ..., 255), which makes the bins and P comparable between frames; it is an
option only, because the trained agents of the paper saw the first definition.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dasha.perception._image import ImageLike, as_gray, crop

HISTOGRAM_BINS = 10
CLIPPED_LEVEL = 250  # of 255: a sensor's saturated pixels, with some noise below full scale
BLACK_LEVEL = 2  # of 255: pixels at or near black, whose true level the frame cannot tell


@dataclass(frozen=True)
class Histogram:
    counts: np.ndarray  # (10,) int64 pixel counts
    bin_edges: np.ndarray  # (11,) float64 pixel values

    @property
    def peak(self) -> float:
        """P: left edge of the fullest bin (pixel value, 0..255)."""
        return float(self.bin_edges[int(np.argmax(self.counts))])

    @property
    def observation(self) -> np.ndarray:
        """The 21 numbers the high-level agent sees: counts then edges, float32."""
        return np.concatenate([self.counts, self.bin_edges]).astype(np.float32)


def histogram(image: ImageLike, fixed_range: bool = False) -> Histogram:
    """The 10-bin histogram of a frame (8-bit scale); see the module docstring."""
    gray = as_gray(image)
    value_range = (0.0, 255.0) if fixed_range else None
    counts, edges = np.histogram(gray, bins=HISTOGRAM_BINS, range=value_range)
    return Histogram(counts=counts.astype(np.int64), bin_edges=edges.astype(np.float64))


def histogram_peak(image: ImageLike, fixed_range: bool = False) -> float:
    """P of reward eq. 11 for a frame."""
    return histogram(image, fixed_range).peak


def clipped_fraction(image: ImageLike, box: Sequence[float] | None = None) -> float:
    """Fraction of the frame's (or the ``box`` crop's) pixels at or above ``CLIPPED_LEVEL``."""
    return float(np.mean(crop(as_gray(image), box) >= CLIPPED_LEVEL))


def black_fraction(image: ImageLike) -> float:
    """Fraction of the frame's pixels at or below ``BLACK_LEVEL``."""
    return float(np.mean(as_gray(image) <= BLACK_LEVEL))


def bracket_peaks(
    image: ImageLike, exposure_us: float, exposures_us: Sequence[float] | np.ndarray
) -> np.ndarray:
    """P (the default histogram's peak) that each of ``exposures_us`` would give, predicted
    from one frame taken at ``exposure_us``: a virtual exposure bracket.

    A linear sensor's pixel values scale with the exposure time until they clip, so each
    8-bit level ``v`` becomes ``min(round(v t / t0), 255)``. What the frame cannot show stays
    unknown: a clipped pixel may be far brighter, a black one far darker, so predictions far
    from ``exposure_us`` are weakest on frames with many of those (a policy that sees these
    peaks also sees the frame's histogram to judge that).
    """
    gray = as_gray(image)
    counts = np.bincount(np.clip(gray, 0, 255).astype(np.int64).ravel(), minlength=256)
    levels = np.flatnonzero(counts).astype(np.float64)
    weights = counts[counts > 0].astype(np.float64)
    ratio = np.asarray(exposures_us, np.float64)[:, None] / float(exposure_us)
    scaled = np.minimum(np.rint(levels[None, :] * ratio), 255.0)  # (exposures, levels)
    low, high = scaled.min(axis=1), scaled.max(axis=1)
    span = high - low
    flat = span == 0  # one level: np.histogram centres its unit range on it, so P is that level
    width = np.where(flat, 1.0, span) / HISTOGRAM_BINS
    # np.histogram's bins: [lo + i w, lo + (i+1) w), the last one closed on the right
    index = np.minimum(((scaled - low[:, None]) / width[:, None]).astype(np.int64), 9)
    index[flat] = HISTOGRAM_BINS // 2
    rows = np.repeat(np.arange(len(ratio)), len(levels))
    binned = np.bincount(
        rows * HISTOGRAM_BINS + index.ravel(),
        weights=np.tile(weights, len(ratio)),
        minlength=len(ratio) * HISTOGRAM_BINS,
    ).reshape(len(ratio), HISTOGRAM_BINS)
    peak_bin = np.argmax(binned, axis=1)
    return np.where(flat, low, low + peak_bin * width)
