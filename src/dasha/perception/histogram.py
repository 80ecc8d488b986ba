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
