"""BRISQUE no-reference quality score (Mittal et al. 2012): lower is better.

The model is the LIVE-trained SVM shipped by the ``brisque`` package (v0.2.0), always
scored by that package's own feature scaling and libsvm call. Its 36 features (at two
scales: the MSCN image's AGGD shape and variance, and the AGGD shape, mean and left/right
variances of its four pairwise products) are computed one of two ways, chosen by the
perception ``backend`` (``dasha.perception.onnx_runtime``):

- ``reference``: the package's own feature fitting (float64, ``scipy.optimize.root`` for
  the AGGD shape, boolean masks for the one-sided variances). Two changes make it fast
  enough to run on every frame, neither changing the score beyond floating point noise:
  the 7x7 Gaussian local mean/variance are computed with OpenCV (same kernel, same
  zero-padded "same" border) instead of ``scipy.signal.convolve2d``, and the MSCN image
  is computed once per scale instead of twice.
- every other backend (the default): the same formulas in float32, each coefficient map
  reduced in a few passes (one-sided sums from ``minimum(x, 0)`` instead of masks), the
  separable Gaussian as two 1-D passes, and the shape parameter read off a dense table of
  the AGGD's moment ratio (monotonic in the shape) instead of a root search (which is
  kept for ratios beyond the table, where no shape fits, e.g. pure noise): ~5x faster on
  a detected box, scores within 0.1 points of the reference on simulator frames and on
  sharp and blurred boxes of the scene photographs (tested; 0.05 the most measured).

Crops larger than ``max_side_px`` are downscaled first (BRISQUE's features are local
statistics; say so where it matters).

The score can leave 0..100 (about -8..107 is seen); the reward uses ``brisque_reward_score``,
the one place where it is clipped to [0, 100].
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from dasha.errors import ConfigError, require
from dasha.perception._image import ImageLike, as_gray, crop
from dasha.perception.onnx_runtime import BACKENDS, DEFAULT_BACKEND, REFERENCE

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


@lru_cache(maxsize=1)
def _shape_table() -> tuple[np.ndarray, np.ndarray]:
    """The AGGD moment ratio rho(a) = G(2/a)^2 / (G(1/a) G(3/a)) on a dense grid of shapes a
    (increasing in a, so the shape of a measured ratio is read off by interpolation)."""
    from scipy import special

    shapes = np.geomspace(0.05, 50.0, 40_001)
    ratios = special.gamma(2 / shapes) ** 2 / (
        special.gamma(1 / shapes) * special.gamma(3 / shapes)
    )
    return ratios, shapes


def _shape_of(ratio: float) -> float:
    """The AGGD shape whose moment ratio is ``ratio``: off the table, or beyond its ends (no
    shape there, e.g. pure noise) by the package's own root search from 0.2, so that the
    two agree there too."""
    ratios, shapes = _shape_table()
    if not np.isfinite(ratio):
        return float("nan")
    if ratios[0] < ratio < ratios[-1]:
        return float(np.interp(ratio, ratios, shapes))
    from scipy import optimize, special

    def moment_ratio(a: np.ndarray) -> np.ndarray:
        return special.gamma(2 / a) ** 2 / (special.gamma(1 / a) * special.gamma(3 / a))

    return float(optimize.root(lambda a: moment_ratio(a) - ratio, [0.2]).x[0])


def _fast_mscn(image: np.ndarray) -> np.ndarray:
    import cv2

    kernel = _kernel_1d()
    mean = cv2.sepFilter2D(image, -1, kernel, kernel, borderType=cv2.BORDER_CONSTANT)
    mean_sq = cv2.sepFilter2D(image * image, -1, kernel, kernel, borderType=cv2.BORDER_CONSTANT)
    return (image - mean) / (np.sqrt(np.abs(mean * mean - mean_sq)) + np.float32(_C))


@lru_cache(maxsize=1)
def _kernel_1d() -> np.ndarray:
    """The 2-D kernel's separable factor: ``outer(k, k) == _kernel()``."""
    taps = np.exp(-((np.arange(_KERNEL_PX) - _KERNEL_PX // 2) ** 2) / (2 * _SIGMA_PX**2))
    return (taps / taps.sum()).astype(np.float32)


def _fast_aggd_fit(coefficients: np.ndarray) -> tuple[float, float, float, float]:
    """The package's ``asymmetric_generalized_gaussian_fit``: shape, mean, and the left and
    right variances (its ``sigma_l**2``, ``sigma_r**2``), from one-sided sums."""
    from scipy import special

    x = coefficients.ravel()
    negative = np.minimum(x, 0)
    # numpy scalars: a degenerate map (a flat crop, no negative values) gives nan, as the
    # package's means of empty selections do, instead of raising
    count, count_left = np.float64(x.size), np.float64(np.count_nonzero(negative))
    squares, squares_left = np.float64(np.dot(x, x)), np.float64(np.dot(negative, negative))
    abs_sum = np.float64(x.sum()) - 2 * np.float64(negative.sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        var_left = squares_left / count_left
        var_right = (squares - squares_left) / (count - count_left)
        r_hat = (abs_sum / count) ** 2 / (squares / count)
        gamma = np.sqrt(var_left / var_right)
    ratio = r_hat * (gamma**3 + 1) * (gamma + 1) / (gamma**2 + 1) ** 2
    shape = _shape_of(ratio)
    g1, g2, g3 = special.gamma([1 / shape, 2 / shape, 3 / shape])
    mean = (np.sqrt(var_right) - np.sqrt(var_left)) * np.sqrt(g1 / g3) * g2 / g1
    return shape, float(mean), var_left, var_right


def _fast_features(image: np.ndarray) -> list[float]:
    """``_features`` in float32 (``image`` float32 in 0..1)."""
    mscn = _fast_mscn(image)
    shape, _, var_left, var_right = _fast_aggd_fit(mscn)
    features = [shape, (var_left + var_right) / 2]
    for product in (
        mscn[:, :-1] * mscn[:, 1:],  # horizontal
        mscn[:-1, :] * mscn[1:, :],  # vertical
        mscn[:-1, :-1] * mscn[1:, 1:],  # main diagonal
        mscn[1:, :-1] * mscn[:-1, 1:],  # secondary diagonal
    ):
        features += _fast_aggd_fit(product)
    return features


def uses_package_features(backend: str) -> bool:
    """Whether ``backend`` scores BRISQUE with the package's own feature code (``reference``)."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
    return backend == REFERENCE


def brisque_score(
    image: ImageLike,
    box: Sequence[float] | None = None,
    max_side_px: int | None = DEFAULT_MAX_SIDE_PX,
    backend: str = DEFAULT_BACKEND,
) -> float:
    """Raw BRISQUE score of a frame, or of the ``box`` [x1, y1, x2, y2] crop of it (unclipped);
    ``backend`` picks the feature code (see the module docstring)."""
    import cv2

    package = uses_package_features(backend)
    gray = crop(as_gray(image), box)
    if max_side_px is not None and max(gray.shape) > max_side_px:
        scale = max_side_px / max(gray.shape)
        size = (max(8, round(gray.shape[1] * scale)), max(8, round(gray.shape[0] * scale)))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    image01 = np.divide(gray, 255.0, dtype=np.float64 if package else np.float32)
    half = cv2.resize(image01, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_CUBIC)
    model = _model()
    if package:
        features = _features(model, image01) + _features(model, half)
    else:
        features = _fast_features(image01) + _fast_features(half)
    return float(model.calculate_image_quality_score(np.array(features, dtype=object)))


def clip_brisque(score: float) -> float:
    """BRISQUE clipped to [0, 100], the range rewards eq. 11 and 12 assume."""
    return float(min(max(score, BRISQUE_MIN), BRISQUE_MAX))


def brisque_reward_score(
    image: ImageLike, box: Sequence[float] | None = None, backend: str = DEFAULT_BACKEND
) -> float:
    """B of the rewards: BRISQUE of the frame (or box crop), clipped to [0, 100]."""
    return clip_brisque(brisque_score(image, box, backend=backend))
