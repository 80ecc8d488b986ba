"""Thin-lens optics of a liquid-lens camera: focus voltage -> optical power -> blur.

The liquid lens adds optical power to a fixed objective; we model the pair as one thin
lens of focal length ``f`` whose *focus power* ``P(V)`` (dioptres) is the object vergence
it images sharply: a point at distance ``d`` is in focus when ``P(V) = 1/d``. The
voltage -> power curve is a calibration (``LensCalibration``): linear by default,
replaceable by a measured table.

Blur circle on the sensor (geometric optics, object distance >> f, so image distance ~ f):

    c = A * f * |P(V) - 1/d|,    A = f / N  (aperture diameter)

converted to pixels by the pixel pitch. "In focus" is defined here, once:
``c <= in_focus_blur_px`` (2 px by default).

The point-spread function is a uniform disk (pillbox) of diameter ``c``, applied to
*linear* light (irradiance), never to gamma-encoded values.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import cv2
import numpy as np

from dasha.errors import ConfigError

# Varioptic C-C-39N0-250: the Arctic 39N0 cell spans about -5..+15 dpt over 24..70 V.
# An estimate, not a datasheet curve: replace it with a measured table where you have one.
DEFAULT_VOLTAGES_V = (24.0, 70.0)
DEFAULT_POWERS_DPT = (-5.0, 15.0)


@dataclass(frozen=True)
class LensCalibration:
    """Focus voltage -> focus power, as a monotonic piecewise-linear table."""

    voltages_v: tuple[float, ...] = DEFAULT_VOLTAGES_V
    powers_dpt: tuple[float, ...] = DEFAULT_POWERS_DPT

    def __post_init__(self) -> None:
        v, p = np.asarray(self.voltages_v), np.asarray(self.powers_dpt)
        if v.shape != p.shape or v.size < 2:
            raise ConfigError(
                "a lens calibration needs >= 2 (voltage, power) pairs of equal length"
            )
        if np.any(np.diff(v) <= 0) or np.any(np.diff(p) <= 0):
            raise ConfigError("a lens calibration table must increase in both voltage and power")

    @classmethod
    def from_table(cls, voltages_v: list[float], powers_dpt: list[float]) -> LensCalibration:
        return cls(tuple(float(v) for v in voltages_v), tuple(float(p) for p in powers_dpt))

    @property
    def range_v(self) -> tuple[float, float]:
        return self.voltages_v[0], self.voltages_v[-1]

    def power_dpt(self, focus_v: float) -> float:
        return float(np.interp(focus_v, self.voltages_v, self.powers_dpt))

    def voltage_for_power(self, power_dpt: float) -> float:
        """Inverse of ``power_dpt``; clamps to the calibrated voltage range."""
        return float(np.interp(power_dpt, self.powers_dpt, self.voltages_v))


@dataclass(frozen=True)
class Optics:
    """Thin-lens geometry. Defaults: the paper's 25 mm liquid-lens module at f/2.5, CMV2000 pixels."""

    focal_length_mm: float = 25.0
    f_number: float = 2.5
    pixel_pitch_um: float = 5.5
    calibration: LensCalibration = field(default_factory=LensCalibration)
    in_focus_blur_px: float = 2.0

    def __post_init__(self) -> None:
        if self.focal_length_mm <= 0 or self.f_number <= 0 or self.pixel_pitch_um <= 0:
            raise ConfigError("focal length, f-number and pixel pitch must be positive")

    @property
    def aperture_mm(self) -> float:
        return self.focal_length_mm / self.f_number

    @property
    def blur_px_per_dpt(self) -> float:
        """Blur-circle diameter in pixels per dioptre of defocus: A * f / pitch."""
        return (
            (self.aperture_mm * 1e-3) * (self.focal_length_mm * 1e-3) / (self.pixel_pitch_um * 1e-6)
        )

    def defocus_dpt(self, focus_v: float, distance_cm: float) -> float:
        return self.calibration.power_dpt(focus_v) - 100.0 / distance_cm

    def blur_px(self, focus_v: float, distance_cm: float) -> float:
        return abs(self.defocus_dpt(focus_v, distance_cm)) * self.blur_px_per_dpt

    def in_focus_v(self, distance_cm: float) -> float:
        """The focus voltage whose focus power images ``distance_cm`` sharply."""
        return self.calibration.voltage_for_power(100.0 / distance_cm)

    def is_in_focus(self, blur_px: float) -> bool:
        return blur_px <= self.in_focus_blur_px


# Blurs wider than this are computed on a downsampled image: a disk this wide has
# removed every frequency the downsampling would lose, and it keeps large blurs cheap.
_MAX_DIRECT_DIAMETER_PX = 8.0
_SUPERSAMPLE = 8


@functools.lru_cache(maxsize=512)
def disk_kernel(diameter_px: float) -> np.ndarray:
    """Pillbox PSF of a given diameter, normalised to sum 1, with anti-aliased edges.

    Each kernel pixel holds the fraction of its area inside the disk (estimated on an
    8x8 sub-grid), so blur changes smoothly with diameter, even below 2 px.
    """
    radius = max(float(diameter_px), 0.0) / 2.0
    half = int(np.ceil(radius - 0.5)) if radius > 0.5 else 0
    size = 2 * half + 1
    sub = (np.arange(size * _SUPERSAMPLE) + 0.5) / _SUPERSAMPLE - size / 2.0
    yy, xx = np.meshgrid(sub, sub, indexing="ij")
    inside = (xx**2 + yy**2 <= max(radius, 0.5 / np.sqrt(np.pi)) ** 2).astype(np.float32)
    kernel = inside.reshape(size, _SUPERSAMPLE, size, _SUPERSAMPLE).mean(axis=(1, 3))
    if kernel.sum() == 0:  # diameter ~0: a delta
        kernel[half, half] = 1.0
    kernel /= kernel.sum()
    kernel.setflags(write=False)
    return kernel


def defocus_blur(linear: np.ndarray, diameter_px: float) -> np.ndarray:
    """Convolve a linear-light float32 image with the disk PSF (reflected borders)."""
    if diameter_px < 0.5:
        return linear
    if diameter_px <= _MAX_DIRECT_DIAMETER_PX:
        return cv2.filter2D(linear, -1, disk_kernel(diameter_px), borderType=cv2.BORDER_REFLECT)
    scale = _MAX_DIRECT_DIAMETER_PX / diameter_px
    h, w = linear.shape[:2]
    small = cv2.resize(
        linear, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA
    )
    small = cv2.filter2D(
        small, -1, disk_kernel(_MAX_DIRECT_DIAMETER_PX), borderType=cv2.BORDER_REFLECT
    )
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
