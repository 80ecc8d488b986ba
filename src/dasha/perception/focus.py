"""Focus measures for the classical autofocus baselines (sharper image -> larger value).

The four operators of Pertuz, Puig & Garcia, "Analysis of focus measure operators for
shape-from-focus", Pattern Recognition 46 (2013): Tenengrad (GRA7), variance of the
Laplacian (LAP4), Brenner's gradient (MIS2) and normalised gray-level variance (STA5,
Groen et al. 1985). Each works on the whole frame or on a box, on the gray image as
float in 0..255, and is a mean over pixels, so values do not depend on the box size.
"""

from __future__ import annotations

import functools
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


# Re-blur blur estimate (see ``reblur_blur_px``): the two Gaussian scales, in pixels.
REBLUR_INNER_SIGMA_PX = 1.0
REBLUR_OUTER_SIGMA_PX = 2.0


def reblur_blur_px(
    image: ImageLike,
    box: Sequence[float] | None = None,
    inner_sigma_px: float = REBLUR_INNER_SIGMA_PX,
    outer_sigma_px: float = REBLUR_OUTER_SIGMA_PX,
) -> float:
    """The defocus blur of the image (or box), as a disk diameter in pixels, from the image alone.

    Re-blur estimation (Elder & Zucker 1998; Zhuo & Sim, "Defocus map estimation from a
    single image", 2011): an edge of contrast A blurred by a Gaussian of sigma s has
    squared-gradient energy A^2 / (2 s sqrt(pi)); blurring the image further by s0 and by
    s1 gives energies whose ratio r = sqrt(b^2 + s0^2) / sqrt(b^2 + s1^2) does not depend
    on A, i.e. not on the scene's contrast or content (for edge-dominated content). Solving
    for b, the blur's own sigma, and 4 b is the diameter of the disk of the same second
    moment. The inner scale s0 also suppresses sensor noise. A physical quantity: the stop
    rule compares it with the in-focus blur (``sim.optics``), no threshold fitted to scenes.
    """
    gray = _gray_float(image, box)
    if min(gray.shape) < 8:
        return float("inf")
    sigma2 = _reblur_sigma2(gray, inner_sigma_px, outer_sigma_px)
    if sigma2 is None:
        return float("inf")  # a flat box: no edge to judge
    # The discrete operator's own answer on an ideal step (a property of the sampling, not
    # of any scene), removed in quadrature.
    sigma2 -= _reblur_step_sigma2(inner_sigma_px, outer_sigma_px)
    return 4.0 * float(np.sqrt(max(sigma2, 0.0)))


def _reblur_sigma2(gray: np.ndarray, inner_sigma_px: float, outer_sigma_px: float) -> float | None:
    import cv2

    def energy(sigma: float) -> float:
        gy, gx = np.gradient(cv2.GaussianBlur(gray, (0, 0), sigma))
        return float(np.mean(gx * gx + gy * gy))

    inner, outer = energy(inner_sigma_px), energy(outer_sigma_px)
    if inner <= 0.0:
        return None
    r2 = min(outer / inner, 1.0 - 1e-9) ** 2  # energy ~ 1 / sigma: r = ratio of sigmas
    return (r2 * outer_sigma_px**2 - inner_sigma_px**2) / (1.0 - r2)


@functools.lru_cache(maxsize=8)
def _reblur_step_sigma2(inner_sigma_px: float, outer_sigma_px: float) -> float:
    step = np.zeros((64, 64), np.float32)
    step[:, 32:] = 100.0
    return _reblur_sigma2(step, inner_sigma_px, outer_sigma_px) or 0.0


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
