"""Focus measures for the classical autofocus baselines (sharper image -> larger value).

The four operators of Pertuz, Puig & Garcia, "Analysis of focus measure operators for
shape-from-focus", Pattern Recognition 46 (2013): Tenengrad (GRA7), variance of the
Laplacian (LAP4), Brenner's gradient (MIS2) and normalised gray-level variance (STA5,
Groen et al. 1985). Each works on the whole frame or on a box, on the gray image as
float in 0..255, and is a mean over pixels, so values do not depend on the box size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from dasha.errors import ConfigError
from dasha.perception._image import ImageLike, as_gray, crop


def _gray_float(image: ImageLike, box: Sequence[float] | None) -> np.ndarray:
    return crop(as_gray(image), box).astype(np.float32)


def tenengrad(image: ImageLike, box: Sequence[float] | None = None) -> float:
    """Mean squared Sobel gradient magnitude (3x3 Sobel, no threshold)."""
    import cv2

    gray = _gray_float(image, box)
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    return float(np.mean(gx * gx + gy * gy))


def variance_of_laplacian(image: ImageLike, box: Sequence[float] | None = None) -> float:
    """Variance of the 3x3 Laplacian (Pech-Pacheco et al. 2000)."""
    import cv2

    return float(np.var(cv2.Laplacian(_gray_float(image, box), cv2.CV_32F, ksize=1)))


def brenner(image: ImageLike, box: Sequence[float] | None = None) -> float:
    """Mean of the larger squared 2-pixel difference, horizontal or vertical (Brenner 1976)."""
    gray = _gray_float(image, box)
    dx = np.zeros_like(gray)
    dy = np.zeros_like(gray)
    dx[:, :-2] = gray[:, 2:] - gray[:, :-2]
    dy[:-2, :] = gray[2:, :] - gray[:-2, :]
    return float(np.mean(np.maximum(dx * dx, dy * dy)))


def normalized_variance(image: ImageLike, box: Sequence[float] | None = None) -> float:
    """Gray-level variance divided by the mean (compensates for brightness changes)."""
    gray = _gray_float(image, box)
    mean = float(np.mean(gray))
    return float(np.var(gray) / mean) if mean > 0 else 0.0


FOCUS_MEASURES: dict[str, Callable[..., float]] = {
    "tenengrad": tenengrad,
    "variance_of_laplacian": variance_of_laplacian,
    "brenner": brenner,
    "normalized_variance": normalized_variance,
}


def focus_measure(name: str, image: ImageLike, box: Sequence[float] | None = None) -> float:
    """A focus measure by name (see ``FOCUS_MEASURES``)."""
    try:
        return FOCUS_MEASURES[name](image, box)
    except KeyError:
        raise ConfigError(
            f"unknown focus measure {name!r}; choose one of: {', '.join(FOCUS_MEASURES)}"
        ) from None


def all_focus_measures(image: ImageLike, box: Sequence[float] | None = None) -> dict[str, float]:
    """Every focus measure of one frame (or box), by name."""
    return {name: fn(image, box) for name, fn in FOCUS_MEASURES.items()}
