"""BRISQUE no-reference quality score (Mittal et al. 2012): lower is better.

The model is the LIVE-trained SVM shipped by the ``brisque`` package (v0.2.0), used
through that package's own feature fitting and SVM code. Two changes make it fast
enough to run on every frame, neither changing the score beyond floating point noise:
the 7x7 Gaussian local mean/variance are computed with OpenCV (same kernel, same
zero-padded "same" border) instead of ``scipy.signal.convolve2d``, and the MSCN image
is computed once per scale instead of twice. Crops larger than ``max_side_px`` are
downscaled first (BRISQUE's features are local statistics; say so where it matters).

The score can leave 0..100 (about -8..107 is seen); the reward uses ``brisque_reward_score``,
the one place where it is clipped to [0, 100].
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from dasha.errors import require
from dasha.perception._image import ImageLike, as_gray, crop

BRISQUE_MIN, BRISQUE_MAX = 0.0, 100.0
DEFAULT_MAX_SIDE_PX = 512
_KERNEL_PX, _SIGMA_PX = 7, 7 / 6
_C = 1 / 255  # the package's stabilising constant (image scaled to 0..1)


@lru_cache(maxsize=1)
def _model() -> Any:
    require("libsvm", "perception")
    brisque = require("brisque", "perception")
    return brisque.BRISQUE(url=False)


@lru_cache(maxsize=1)
def _kernel() -> np.ndarray:
    y, x = np.indices((_KERNEL_PX, _KERNEL_PX)) - _KERNEL_PX // 2
    kernel = np.exp(-(x**2 + y**2) / (2 * _SIGMA_PX**2))
    return kernel / kernel.sum()


def _mscn(image: np.ndarray) -> np.ndarray:
    import cv2

    kernel = _kernel()  # symmetric and odd-sized, so correlation == convolution
    mean = cv2.filter2D(image, cv2.CV_64F, kernel, borderType=cv2.BORDER_CONSTANT)
    mean_sq = cv2.filter2D(image * image, cv2.CV_64F, kernel, borderType=cv2.BORDER_CONSTANT)
    deviation = np.sqrt(np.abs(mean * mean - mean_sq))
    return (image - mean) / (deviation + _C)


def _features(model: Any, image: np.ndarray) -> list[float]:
    mscn = _mscn(image)
    features = []
    for name, coefficients in model.calculate_pair_product_coefficients(mscn).items():
        alpha, mean, sigma_l, sigma_r = model.asymmetric_generalized_gaussian_fit(coefficients)
        if name == "mscn":
            features += [alpha, (sigma_l**2 + sigma_r**2) / 2]
        else:
            features += [alpha, mean, sigma_l**2, sigma_r**2]
    return [float(np.ravel(f)[0]) for f in features]


def brisque_score(
    image: ImageLike,
    box: Sequence[float] | None = None,
    max_side_px: int | None = DEFAULT_MAX_SIDE_PX,
) -> float:
    """Raw BRISQUE score of a frame, or of the ``box`` [x1, y1, x2, y2] crop of it (unclipped)."""
    import cv2

    gray = crop(as_gray(image), box)
    if max_side_px is not None and max(gray.shape) > max_side_px:
        scale = max_side_px / max(gray.shape)
        size = (max(8, round(gray.shape[1] * scale)), max(8, round(gray.shape[0] * scale)))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    image01 = gray.astype(np.float64) / 255.0
    half = cv2.resize(image01, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_CUBIC)
    model = _model()
    features = _features(model, image01) + _features(model, half)
    return float(model.calculate_image_quality_score(np.array(features, dtype=object)))


def clip_brisque(score: float) -> float:
    """BRISQUE clipped to [0, 100], the range rewards eq. 11 and 12 assume."""
    return float(min(max(score, BRISQUE_MIN), BRISQUE_MAX))


def brisque_reward_score(image: ImageLike, box: Sequence[float] | None = None) -> float:
    """B of the rewards: BRISQUE of the frame (or box crop), clipped to [0, 100]."""
    return clip_brisque(brisque_score(image, box))
