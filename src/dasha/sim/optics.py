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

The point-spread function (``Optics.psf``) is a uniform disk (pillbox) of diameter ``c``
by default; ``"disk-sa"`` adds spherical aberration (a radial intensity tilt whose sign
follows the sign of the defocus, so the two sides of focus differ) and ``"gaussian"`` is
a Gaussian of the disk's second moment. Every PSF is applied to *linear* light
(irradiance), never to gamma-encoded values.

Thin-lens magnification ``m = f / (d - f)`` turns object sizes into image heights
(``Optics.image_height_px``) and back (``Optics.object_size_cm``).
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

    def _power_extended_dpt(self, focus_v: float) -> float:
        """``power_dpt`` continued linearly beyond the table by its end segments (no clamping)."""
        v, p = self.voltages_v, self.powers_dpt
        if focus_v < v[0]:
            return p[0] + (focus_v - v[0]) * (p[1] - p[0]) / (v[1] - v[0])
        if focus_v > v[-1]:
            return p[-1] + (focus_v - v[-1]) * (p[-1] - p[-2]) / (v[-1] - v[-2])
        return self.power_dpt(focus_v)

    def perturbed(self, offset_v: float = 0.0, slope: float = 1.0) -> LensCalibration:
        """The calibration of a lens whose true curve departs from this one.

        The true curve is this one with its slope (dpt/V) scaled by ``slope`` about the
        middle of the voltage range, then shifted by ``offset_v`` volts along the voltage
        axis:

            P'(V) = P_mid + slope * (P(V - offset_v) - P_mid),   P_mid = P(V_mid)

        so every in-focus voltage moves by exactly ``offset_v`` when ``slope == 1`` (as
        long as it stays inside the range). The voltage range is the driver's, so it is
        kept; ``P`` is continued linearly by its end segments where ``V - offset_v`` leaves
        the table. Knots sit at the shifted knots of this table, so a measured curve keeps
        its shape, and the result is monotonic for any ``slope > 0``.
        """
        if not (np.isfinite(offset_v) and np.isfinite(slope) and slope > 0):
            raise ConfigError(
                f"a calibration perturbation needs a finite offset_v and a slope > 0, "
                f"got offset_v={offset_v}, slope={slope}"
            )
        if offset_v == 0.0 and slope == 1.0:
            return self
        lo_v, hi_v = self.range_v
        mid_v = 0.5 * (lo_v + hi_v)
        mid_p = self.power_dpt(mid_v)
        # A margin keeps shifted knots that land on the range ends from giving equal powers.
        eps_v = 1e-9 * (hi_v - lo_v)
        inner = [
            v + offset_v for v in self.voltages_v if lo_v + eps_v < v + offset_v < hi_v - eps_v
        ]
        knots_v = [lo_v, *inner, hi_v]
        base = [self._power_extended_dpt(v - offset_v) for v in knots_v]
        # slope == 1 skips the round trip through P_mid, which would cost the exactness.
        powers = base if slope == 1.0 else [mid_p + slope * (p - mid_p) for p in base]
        return LensCalibration(tuple(knots_v), tuple(powers))


@dataclass(frozen=True)
class Optics:
    """Thin-lens geometry. Defaults: the paper's 25 mm liquid-lens module at f/2.5, CMV2000 pixels."""

    focal_length_mm: float = 25.0
    f_number: float = 2.5
    pixel_pitch_um: float = 5.5
    calibration: LensCalibration = field(default_factory=LensCalibration)
    in_focus_blur_px: float = 2.0
    psf: str = "disk"

    def __post_init__(self) -> None:
        if self.focal_length_mm <= 0 or self.f_number <= 0 or self.pixel_pitch_um <= 0:
            raise ConfigError("focal length, f-number and pixel pitch must be positive")
        check_psf(self.psf)

    @property
    def aperture_mm(self) -> float:
        return self.focal_length_mm / self.f_number

    @property
    def blur_px_per_dpt(self) -> float:
        """Blur-circle diameter in pixels per dioptre of defocus: A * f / pitch."""
        return (
            (self.aperture_mm * 1e-3) * (self.focal_length_mm * 1e-3) / (self.pixel_pitch_um * 1e-6)
        )

    @property
    def blur_px_per_range(self) -> float:
        """Blur diameter in pixels of a defocus as large as the lens's whole power range."""
        powers = self.calibration.powers_dpt
        return self.blur_px_per_dpt * (max(powers) - min(powers))

    def defocus_dpt(self, focus_v: float, distance_cm: float) -> float:
        """Signed defocus ``P(V) - 1/d``: > 0 when the lens focuses nearer than the object."""
        return self.calibration.power_dpt(focus_v) - 100.0 / distance_cm

    def blur_px(self, focus_v: float, distance_cm: float) -> float:
        return abs(self.defocus_dpt(focus_v, distance_cm)) * self.blur_px_per_dpt

    def in_focus_v(self, distance_cm: float) -> float:
        """The focus voltage whose focus power images ``distance_cm`` sharply."""
        return self.calibration.voltage_for_power(100.0 / distance_cm)

    def is_in_focus(self, blur_px: float) -> bool:
        return blur_px <= self.in_focus_blur_px

    # Magnification of the thin lens: m = f / (d - f) exactly (not the f / d of d >> f),
    # so object sizes estimated from a box stay right at close range too.
    def _check_beyond_focal_length(self, distance_cm: float) -> float:
        f_cm = self.focal_length_mm / 10.0
        if not distance_cm > f_cm:
            raise ConfigError(
                f"distance_cm={distance_cm} must exceed the focal length "
                f"({f_cm:g} cm): nearer objects form no real image"
            )
        return f_cm

    def image_height_px(self, size_cm: float, distance_cm: float) -> float:
        """Image height in pixels of an object ``size_cm`` tall at ``distance_cm``: f H / (d - f)."""
        f_cm = self._check_beyond_focal_length(distance_cm)
        return f_cm * size_cm / (distance_cm - f_cm) * 1e4 / self.pixel_pitch_um

    def object_size_cm(self, height_px: float, distance_cm: float) -> float:
        """Inverse of ``image_height_px``: the object size whose image is ``height_px`` tall."""
        f_cm = self._check_beyond_focal_length(distance_cm)
        return height_px * self.pixel_pitch_um * 1e-4 * (distance_cm - f_cm) / f_cm


# ------------------------------------------------------------------ point-spread functions
PSF_SHAPES = ("disk", "disk-sa", "gaussian")
# Spherical-aberration strength of "disk-sa": the rim-to-centre intensity contrast of the
# blur disk is (1 + k) / (1 - k), 3:1 at k = 0.5 -- a visible but moderate residual,
# as in a simple, uncorrected objective. |k| <= 1 keeps the PSF non-negative.
SA_STRENGTH = 0.5

# Blurs wider than this are computed on a downsampled image: a disk this wide has
# removed every frequency the downsampling would lose, and it keeps large blurs cheap.
# The bilinear way back up is not free: it low-passes by the downsampling factor, so the
# blur stops being a disk. At 8 px (a 10x factor for an 80 px blur) that bent depth from
# defocus by 6.5 of the peak rule's brackets on a synthetic texture (80 and 40 px out of
# focus); at 32 px (factor 2.5) the frames are the disk's again (error 0.02 bracket).
_MAX_DIRECT_DIAMETER_PX = 32.0
_SUPERSAMPLE = 8
# A Gaussian kernel is cut at this many sigmas: the lost tail holds < 1e-7 of the flux.
_GAUSSIAN_HALF_WIDTH_SIGMAS = 4.0


def check_psf(psf: str) -> str:
    if psf not in PSF_SHAPES:
        raise ConfigError(f"unknown PSF shape {psf!r}; choose one of {', '.join(PSF_SHAPES)}")
    return psf


def _subgrid(half: int) -> tuple[np.ndarray, np.ndarray]:
    """Sub-pixel sample centres (8x8 per kernel pixel) of a (2 half + 1)^2 kernel."""
    size = 2 * half + 1
    sub = (np.arange(size * _SUPERSAMPLE) + 0.5) / _SUPERSAMPLE - size / 2.0
    yy, xx = np.meshgrid(sub, sub, indexing="ij")
    return yy, xx


def _pixel_means(samples: np.ndarray, half: int) -> np.ndarray:
    """Average sub-pixel samples into kernel pixels (area integration: anti-aliasing)."""
    size = 2 * half + 1
    return samples.reshape(size, _SUPERSAMPLE, size, _SUPERSAMPLE).mean(axis=(1, 3))


def _finish(kernel: np.ndarray, half: int) -> np.ndarray:
    if kernel.sum() == 0:  # diameter ~0: a delta
        kernel[half, half] = 1.0
    kernel = (kernel / kernel.sum()).astype(np.float32)
    kernel.setflags(write=False)
    return kernel


def _weighted_disk(diameter_px: float, sa_weight: float) -> np.ndarray:
    """Disk of intensity ``1 + sa_weight * (2 (r/R)^2 - 1)`` inside radius R, 0 outside."""
    radius = max(float(diameter_px), 0.0) / 2.0
    half = int(np.ceil(radius - 0.5)) if radius > 0.5 else 0
    yy, xx = _subgrid(half)
    # Below ~0.56 px the disk would miss every sub-sample of the centre pixel.
    r_eff = max(radius, 0.5 / np.sqrt(np.pi))
    r2 = xx**2 + yy**2
    inside = r2 <= r_eff**2
    if sa_weight == 0.0:  # float32 as ever: the plain disk's frames stay bit-identical
        return _finish(_pixel_means(inside.astype(np.float32), half), half)
    samples = inside * (1.0 + sa_weight * (2.0 * r2 / r_eff**2 - 1.0))
    return _finish(_pixel_means(samples, half), half)


@functools.lru_cache(maxsize=512)
def disk_kernel(diameter_px: float) -> np.ndarray:
    """Pillbox PSF of a given diameter, normalised to sum 1, with anti-aliased edges.

    Each kernel pixel holds the fraction of its area inside the disk (estimated on an
    8x8 sub-grid), so blur changes smoothly with diameter, even below 2 px.
    """
    return _weighted_disk(diameter_px, 0.0)


@functools.lru_cache(maxsize=512)
def sa_disk_kernel(diameter_px: float, sign: int, sa_strength: float = SA_STRENGTH) -> np.ndarray:
    """Disk PSF with spherical aberration: ``w(r) = 1 - k s (2 (r/R)^2 - 1)`` for r <= R.

    ``s`` is the sign of the defocus (``Optics.defocus_dpt``), ``k = sa_strength``. The
    weight is the radial intensity of the blur disk under third-order spherical
    aberration to first order; its term ``2 rho^2 - 1`` has zero mean over the disk, so
    the flux and the disk's diameter are unchanged and only the profile tilts. With
    k > 0 (under-corrected, the usual residual of a positive lens) marginal rays focus
    short: an object farther than the focus (s = +1, image in front of the sensor) blurs
    into a soft disk with a bright centre, a nearer one (s = -1) into a bright-rimmed
    ring. The two sides of focus look different: a cue a single frame can carry.
    s = 0 (exact focus) gives the plain disk.
    """
    if not -1.0 <= sa_strength <= 1.0:
        raise ConfigError(f"sa_strength={sa_strength} must be in [-1, 1] (a non-negative PSF)")
    return _weighted_disk(diameter_px, -float(sa_strength) * int(np.sign(sign)))


@functools.lru_cache(maxsize=512)
def gaussian_kernel(diameter_px: float) -> np.ndarray:
    """Gaussian PSF with the second moment of the disk of ``diameter_px``; sums to 1.

    Matching the second moment: a uniform disk of radius R = D/2 has, per axis,
    E[x^2] = (1/(pi R^2)) * integral of r^2 cos^2(t) r dr dt over the disk = R^2 / 4
    (equivalently E[r^2] = R^2 / 2, split over two axes); a 2-D Gaussian has E[x^2] =
    sigma^2 (E[r^2] = 2 sigma^2). So sigma = R / 2 = D / 4. (D / (2 sqrt 2) = R / sqrt 2
    would equate the Gaussian's per-axis moment with the disk's radial one: too wide by
    sqrt 2.) Sampled on the same 8x8 sub-grid as the disk, so both include the same pixel
    integration.
    """
    sigma = max(float(diameter_px), 0.0) / 4.0
    if sigma < 1e-3:
        return _finish(np.zeros((1, 1)), 0)
    half = int(np.ceil(_GAUSSIAN_HALF_WIDTH_SIGMAS * sigma))
    yy, xx = _subgrid(half)
    samples = np.exp(-(xx**2 + yy**2) / (2.0 * sigma**2))
    return _finish(_pixel_means(samples, half), half)


def psf_kernel(diameter_px: float, psf: str = "disk", sign: float = 1) -> np.ndarray:
    """The PSF kernel of a shape (``PSF_SHAPES``) and blur diameter.

    ``sign``: the defocus or its sign (only its sign is used, by ``"disk-sa"`` alone).
    """
    if check_psf(psf) == "disk-sa":
        return sa_disk_kernel(float(diameter_px), int(np.sign(sign)))
    if psf == "gaussian":
        return gaussian_kernel(float(diameter_px))
    return disk_kernel(float(diameter_px))


def defocus_blur(
    linear: np.ndarray, diameter_px: float, psf: str = "disk", sign: float = 1
) -> np.ndarray:
    """Convolve a linear-light float32 image with a PSF (reflected borders).

    ``psf``: one of ``PSF_SHAPES``; ``sign``: the signed defocus (``Optics.defocus_dpt``)
    or its sign, which only ``"disk-sa"`` depends on.
    """
    check_psf(psf)
    if diameter_px < 0.5:
        return linear
    if diameter_px <= _MAX_DIRECT_DIAMETER_PX:
        kernel = psf_kernel(diameter_px, psf, sign)
        return cv2.filter2D(linear, -1, kernel, borderType=cv2.BORDER_REFLECT)
    # Every shape is as smooth at this size as the disk, so the same downsampling holds.
    scale = _MAX_DIRECT_DIAMETER_PX / diameter_px
    h, w = linear.shape[:2]
    small = cv2.resize(
        linear, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA
    )
    kernel = psf_kernel(_MAX_DIRECT_DIAMETER_PX, psf, sign)
    small = cv2.filter2D(small, -1, kernel, borderType=cv2.BORDER_REFLECT)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
