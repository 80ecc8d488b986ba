"""Randomised optics and sensor knobs: one episode's departure from the nominal camera.

A ``Variation`` names each knob with its nominal value, so ``Variation()`` (``NOMINAL``)
is the simulator as it always was:

    calibration_offset_v   the true lens curve shifted along the voltage axis (V)
    calibration_slope      its dpt/V slope scaled about the middle of the range
    f_number               the aperture (None: the optics' own)
    psf                    the PSF shape, one of ``PSF_SHAPES`` (None: the optics' own)
    noise_variance_scale   multiplies the temporal noise variance (shot + read)
    gain_offset_db         added to the requested gain by the camera (not by ``apply``)

``Variation.apply(optics, sensor)`` is pure: it returns new frozen objects. A
``VariationRanges`` holds the draw ranges (the defaults are the training schedule's) and
``draw(rng)`` turns a seeded generator into one ``Variation``. Every draw consumes the same
six uniforms whatever the ranges, so switching one knob off does not reshuffle the others.

A changed f-number changes the exposure too (the camera equation goes as 1/N^2), as it
would on a real lens: that is part of the knob, not a side effect to undo.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np

from dasha.errors import ConfigError
from dasha.sim.optics import PSF_SHAPES, Optics
from dasha.sim.sensor import Sensor

# What a Variation may hold at all (wider than the default draws): beyond these the
# models stop meaning anything (a 2x slope error is not a lens of this type any more).
CALIBRATION_OFFSET_LIMITS_V = (-5.0, 5.0)
CALIBRATION_SLOPE_LIMITS = (0.5, 2.0)
F_NUMBER_LIMITS = (1.0, 22.0)
NOISE_VARIANCE_SCALE_LIMITS = (0.1, 10.0)
GAIN_OFFSET_LIMITS_DB = (-24.0, 24.0)

_LIMITS: dict[str, tuple[float, float]] = {
    "calibration_offset_v": CALIBRATION_OFFSET_LIMITS_V,
    "calibration_slope": CALIBRATION_SLOPE_LIMITS,
    "f_number": F_NUMBER_LIMITS,
    "noise_variance_scale": NOISE_VARIANCE_SCALE_LIMITS,
    "gain_offset_db": GAIN_OFFSET_LIMITS_DB,
}
_UNITS = {"calibration_offset_v": " V", "gain_offset_db": " dB"}


def _check_number(name: str, value: Any) -> float:
    lo, hi = _LIMITS[name]
    unit = _UNITS.get(name, "")
    ok = isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool)
    if not (ok and lo <= float(value) <= hi):  # NaN fails the comparison too
        raise ConfigError(f"{name}={value!r} must be a number in [{lo:g}, {hi:g}]{unit}")
    return float(value)


def _check_psf(name: str, value: Any) -> str:
    if value not in PSF_SHAPES:
        raise ConfigError(
            f"{name}={value!r} is not a PSF shape; choose one of {', '.join(PSF_SHAPES)}"
        )
    return str(value)


def _from_dict(cls: type, data: dict[str, Any], what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ConfigError(f"a {what} must be a mapping, not {type(data).__name__}")
    names = [f.name for f in fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ConfigError(f"unknown {what} key(s) {', '.join(unknown)}; known: {', '.join(names)}")
    return dict(data)


@dataclass(frozen=True)
class Variation:
    """One episode's optics and sensor knobs; the defaults are nominal conditions."""

    calibration_offset_v: float = 0.0
    calibration_slope: float = 1.0
    f_number: float | None = None
    psf: str | None = None
    noise_variance_scale: float = 1.0
    gain_offset_db: float = 0.0

    def __post_init__(self) -> None:
        for name in _LIMITS:
            value = getattr(self, name)
            if name == "f_number" and value is None:
                continue
            # Stored as plain floats, so equal knobs compare and serialise equal.
            object.__setattr__(self, name, _check_number(name, value))
        if self.psf is not None:
            _check_psf("psf", self.psf)

    @property
    def nominal(self) -> bool:
        """True when every knob is at its nominal value (``apply`` changes nothing)."""
        return self == NOMINAL

    def apply(self, optics: Optics, sensor: Sensor) -> tuple[Optics, Sensor]:
        """The optics and sensor of this variation of ``optics`` and ``sensor`` (new objects).

        Relative knobs compose with what the objects already hold: the calibration is
        perturbed from the optics' own, the noise scale multiplies the sensor's own.
        ``gain_offset_db`` is left to the camera, which owns the gain.
        """
        calibration = optics.calibration.perturbed(
            self.calibration_offset_v, self.calibration_slope
        )
        new_optics = replace(
            optics,
            calibration=calibration,
            f_number=optics.f_number if self.f_number is None else self.f_number,
            psf=optics.psf if self.psf is None else self.psf,
        )
        new_sensor = replace(
            sensor, noise_variance_scale=sensor.noise_variance_scale * self.noise_variance_scale
        )
        return new_optics, new_sensor

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Variation:
        return cls(**_from_dict(cls, data, "variation"))


NOMINAL = Variation()


def _range(name: str, value: Any) -> tuple[float, float]:
    if not (isinstance(value, (tuple, list)) and len(value) == 2):
        raise ConfigError(f"the {name} range must be a (low, high) pair, not {value!r}")
    lo, hi = (_check_number(name, v) for v in value)
    if lo > hi:
        raise ConfigError(f"the {name} range ({lo:g}, {hi:g}) has low > high")
    return lo, hi


def _uniform(bounds: tuple[float, float], u: float) -> float:
    lo, hi = bounds
    return min(max(lo + u * (hi - lo), lo), hi)  # rounding must not step outside


def _log_uniform(bounds: tuple[float, float], u: float) -> float:
    """For ratios (x0.5 .. x2) and f-stops: equal odds per factor, not per unit."""
    lo, hi = bounds
    if lo == hi:
        return lo
    return min(max(math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo))), lo), hi)


@dataclass(frozen=True)
class VariationRanges:
    """Where ``draw`` picks each knob; a (x, x) range pins it, None keeps the optics' own.

    Offset, slope and gain are uniform; f-number and noise scale are log-uniform (as many
    draws per stop, as many halvings as doublings); the PSF is one of ``psf`` with equal
    odds.
    """

    calibration_offset_v: tuple[float, float] = (-0.5, 0.5)
    calibration_slope: tuple[float, float] = (0.9, 1.1)
    f_number: tuple[float, float] | None = (1.8, 4.0)
    psf: tuple[str, ...] | None = PSF_SHAPES
    noise_variance_scale: tuple[float, float] = (0.5, 2.0)
    gain_offset_db: tuple[float, float] = (0.0, 6.0)

    def __post_init__(self) -> None:
        for name in _LIMITS:
            value = getattr(self, name)
            if name == "f_number" and value is None:
                continue
            object.__setattr__(self, name, _range(name, value))
        if self.psf is not None:
            if isinstance(self.psf, str) or not self.psf:
                raise ConfigError(
                    f"psf must be a non-empty sequence of PSF shapes (or None), not {self.psf!r}"
                )
            object.__setattr__(self, "psf", tuple(_check_psf("psf", p) for p in self.psf))

    @classmethod
    def off(cls) -> VariationRanges:
        """Ranges that always draw ``NOMINAL``."""
        return cls(
            calibration_offset_v=(0.0, 0.0),
            calibration_slope=(1.0, 1.0),
            f_number=None,
            psf=None,
            noise_variance_scale=(1.0, 1.0),
            gain_offset_db=(0.0, 0.0),
        )

    @classmethod
    def only(cls, *knobs: str) -> VariationRanges:
        """The default ranges for the named knobs, nominal values for all the others."""
        names = [f.name for f in fields(cls)]
        unknown = [k for k in knobs if k not in names]
        if unknown:
            raise ConfigError(
                f"unknown knob(s) {', '.join(unknown)}; choose from {', '.join(names)}"
            )
        defaults = cls()
        return replace(cls.off(), **{k: getattr(defaults, k) for k in knobs})

    def draw(self, rng: np.random.Generator) -> Variation:
        """One seeded draw: the same generator state gives the same ``Variation``."""
        u = rng.random(6)  # always six, so pinned knobs do not shift the others' draws
        psf = None
        if self.psf is not None:
            psf = self.psf[min(int(u[3] * len(self.psf)), len(self.psf) - 1)]
        return Variation(
            calibration_offset_v=_uniform(self.calibration_offset_v, u[0]),
            calibration_slope=_uniform(self.calibration_slope, u[1]),
            f_number=None if self.f_number is None else _log_uniform(self.f_number, u[2]),
            psf=psf,
            noise_variance_scale=_log_uniform(self.noise_variance_scale, u[4]),
            gain_offset_db=_uniform(self.gain_offset_db, u[5]),
        )

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VariationRanges:
        return cls(**_from_dict(cls, data, "variation ranges"))
