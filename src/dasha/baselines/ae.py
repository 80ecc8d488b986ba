"""Classical auto-exposure baselines: the exposure half of DASHA's job, done without RL.

Both meter the mean gray level of the whole frame (8-bit scale) and aim it at
``target_mean_level`` (70 of 255 by default: on the simulator's linear sensor a typical
scene then has its histogram peak P inside the hand-over band [50, 150]). Exposure only,
gain stays where it is. New exposures are clamped to the camera's limits.

AGC (``Agc``), like libcamera's AGC: each frame computes the exposure that would hit the
target, ``current * target / mean``, and moves only part of the way there,
``new = current + speed_ratio * (wanted - current)`` (libcamera's exponential filter,
``speed`` 0.2 per frame), so the image never flickers but a big step takes many frames.
It stops once the mean is within ``tolerance_ratio`` of the target or after
``max_frames``.

Auto once (``AutoOnce``), like Basler's ``ExposureAuto = Once``: set the full correction
``current * target / mean`` in one move, grab, and repeat (Basler's "Once" also iterates
until it converges, then switches itself off) at most ``max_iterations`` times. A
saturated frame underestimates the needed correction (the mean is capped at 255), which
is why more than one iteration can be needed.

Bracket (``BracketMeter``): one frame, one move. The peak P the frame would give at each of
``candidates`` exposures (log-spaced over the camera's range) is predicted by scaling its
levels (``perception.histogram.bracket_peaks``: a linear sensor); the move goes to the
middle, in log exposure, of the exposures predicted suitable, or, if none is, to the one
predicted nearest P = 100. A frame already suitable is kept; a clipped or black one can
hide how far off it is, so the prediction is made again from the new frame, at most
``max_iterations`` times. It meters the hand-over condition itself rather than a mean, so
it is the classical counterpart of A_H observing the same bracket.

The result says whether the final frame is *suitable* for the focus agent
(``is_suitable_peak``: histogram peak P in [50, 150]), the hand-over condition of Fig. 2.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from dasha.baselines.af_base import AfTunables, Tuned
from dasha.envs.rewards import is_suitable_peak, suitable_peaks
from dasha.errors import ConfigError
from dasha.hardware.base import Camera, Frame
from dasha.perception.histogram import bracket_peaks, histogram

DARKEST_MEAN_LEVEL = 0.5  # a black frame still gives a finite correction
SUITABLE_MIDDLE_PEAK = 100.0  # the middle of the hand-over band [50, 150]


@dataclass(frozen=True)
class AeResult:
    """The outcome of one auto-exposure run.

    ``moves`` counts exposure changes, ``frames`` frames grabbed; ``peak`` is the final
    frame's histogram peak P and ``suitable`` whether it is in [50, 150];
    ``mean_levels`` the metered mean of each frame.
    """

    method: str
    exposure_us: float
    converged: bool
    moves: int
    frames: int
    peak: float
    suitable: bool
    mean_levels: list[float]
    sim_time_s: float | None
    wall_s: float


@dataclass(frozen=True)
class AeTunables(AfTunables):
    target_mean_level: float = 70.0  # of 255
    tolerance_ratio: float = 0.05  # converged when |mean - target| <= 5 % of the target

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.target_mean_level < 255:
            raise ConfigError(
                f"{type(self).__name__}.target_mean_level must be in (0, 255), "
                f"got {self.target_mean_level}"
            )


@dataclass(frozen=True)
class AgcTunables(AeTunables):
    speed_ratio: float = 0.2  # fraction of the way to the wanted exposure per frame (libcamera)
    max_frames: int = 40

    ints: ClassVar[tuple[str, ...]] = ("max_frames",)


@dataclass(frozen=True)
class AutoOnceTunables(AeTunables):
    max_iterations: int = 3

    ints: ClassVar[tuple[str, ...]] = ("max_iterations",)


@dataclass
class _Meter:
    """Grabs, meters and counts for one AE run."""

    camera: Camera
    target_mean_level: float
    tolerance_ratio: float
    frames: int = 0
    moves: int = 0
    means: list[float] = field(default_factory=list)
    frame: Frame | None = None

    def grab(self) -> float:
        self.frame = self.camera.grab()
        self.frames += 1
        self.means.append(float(np.mean(self.frame.as_uint8())))
        return self.means[-1]

    def on_target(self) -> bool:
        return abs(self.means[-1] - self.target_mean_level) <= (
            self.tolerance_ratio * self.target_mean_level
        )

    def wanted_us(self) -> float:
        """The exposure that would put the last frame's mean on target (unclamped)."""
        mean = max(self.means[-1], DARKEST_MEAN_LEVEL)
        return self.camera.exposure_us * self.target_mean_level / mean

    def set(self, exposure_us: float) -> bool:
        """Set the exposure (clamped); False when the camera is already there."""
        value = self.camera.exposure_range_us.clamp(exposure_us)
        if value == self.camera.exposure_us:
            return False
        self.camera.set_exposure_us(value)
        self.moves += 1
        return True


class AeMethod(Tuned, ABC):
    """One auto-exposure algorithm. ``tunables`` holds its settings; ``run`` exposes once."""

    def run(self, camera: Camera) -> AeResult:
        """Expose once from the camera's current exposure."""
        wall0 = time.perf_counter()
        clock = getattr(camera, "clock", None)
        sim0 = clock.now_s if clock is not None else None
        meter = _Meter(camera, self.tunables.target_mean_level, self.tunables.tolerance_ratio)
        meter.grab()
        converged = self._loop(meter)
        assert meter.frame is not None
        peak = histogram(meter.frame.as_uint8()).peak
        return AeResult(
            method=self.name,
            exposure_us=float(camera.exposure_us),
            converged=converged,
            moves=meter.moves,
            frames=meter.frames,
            peak=peak,
            suitable=is_suitable_peak(peak),
            mean_levels=meter.means,
            sim_time_s=None if clock is None or sim0 is None else float(clock.now_s - sim0),
            wall_s=time.perf_counter() - wall0,
        )

    @abstractmethod
    def _loop(self, meter: _Meter) -> bool:
        """Adjust the exposure from the first metered frame; True when on target."""


class Agc(AeMethod, name="agc", tunables=AgcTunables):
    def _loop(self, meter: _Meter) -> bool:
        t: AgcTunables = self.tunables
        while not meter.on_target():
            if meter.frames >= t.max_frames:
                return False
            current = meter.camera.exposure_us
            if not meter.set(current + t.speed_ratio * (meter.wanted_us() - current)):
                return False  # pinned at a limit
            meter.grab()
        return True


class AutoOnce(AeMethod, name="once", tunables=AutoOnceTunables):
    def _loop(self, meter: _Meter) -> bool:
        t: AutoOnceTunables = self.tunables
        for _ in range(t.max_iterations):
            if meter.on_target() or not meter.set(meter.wanted_us()):
                break
            meter.grab()
        return meter.on_target()


@dataclass(frozen=True)
class BracketTunables(AeTunables):
    candidates: int = 141
    max_iterations: int = 3
    """A clipped or black frame hides how far off it is: predict again from the next one."""

    ints: ClassVar[tuple[str, ...]] = ("candidates", "max_iterations")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.candidates < 2:
            raise ConfigError(
                f"BracketTunables.candidates must be at least 2, got {self.candidates}"
            )


class BracketMeter(AeMethod, name="bracket", tunables=BracketTunables):
    def _loop(self, meter: _Meter) -> bool:
        t: BracketTunables = self.tunables
        limits = meter.camera.exposure_range_us
        candidates = np.geomspace(limits.min, limits.max, t.candidates)
        for _ in range(t.max_iterations):
            assert meter.frame is not None
            image = meter.frame.as_uint8()
            if is_suitable_peak(histogram(image).peak):
                return True
            peaks = bracket_peaks(image, meter.camera.exposure_us, candidates)
            suitable = np.flatnonzero(suitable_peaks(peaks))
            if len(suitable):
                chosen = int(suitable[len(suitable) // 2])
            else:
                chosen = int(np.argmin(np.abs(peaks - SUITABLE_MIDDLE_PEAK)))
            if not meter.set(float(candidates[chosen])):
                return False  # pinned where the prediction says: nothing better to try
            meter.grab()
        assert meter.frame is not None
        return is_suitable_peak(histogram(meter.frame.as_uint8()).peak)


AE_METHODS: dict[str, type[AeMethod]] = {"agc": Agc, "once": AutoOnce, "bracket": BracketMeter}


def run_ae(name: str, camera: Camera, **tunables: Any) -> AeResult:
    """Expose once with the named method (``agc`` or ``once``), tunables overridden."""
    try:
        cls = AE_METHODS[name]
    except KeyError:
        raise ConfigError(
            f"unknown auto-exposure method {name!r}; choose one of: {', '.join(AE_METHODS)}"
        ) from None
    return cls.with_tunables(**tunables).run(camera)
