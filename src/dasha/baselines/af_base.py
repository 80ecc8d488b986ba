"""What every classical autofocus baseline shares: the result, the probe, the window.

An AF method only ever does one thing to the world: move the lens to a position, grab a
frame and compute a focus measure in a window. ``FocusProbe`` does that and counts it
(lens moves, frames, samples), so every method reports its cost the same way, on the
simulator and on real hardware alike. Nothing here reads the simulator's ground truth.

Focus positions and tunables are in the lens's own unit (``lens.unit``): volts on the
liquid lens, which is what the defaults (named ``*_v``) are tuned for.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Literal

import numpy as np

from dasha.errors import ConfigError
from dasha.hardware.base import Camera, Frame, Lens
from dasha.perception.focus import FOCUS_MEASURES, focus_measure

AfState = Literal["focused", "failed"]
Box = tuple[float, float, float, float]

CENTRAL_WINDOW_FRACTION = 0.5  # a camera without a detector meters the central 50 % x 50 %


@dataclass(frozen=True)
class AfResult:
    """The outcome of one autofocus run (picamera2's ``AfState`` vocabulary).

    ``samples`` are the (focus, measure) pairs in the order they were taken; the final
    confirmation frame at ``focus`` is the last one. ``sim_time_s`` is the simulated time
    the run took when the camera has a simulated clock, ``None`` otherwise; ``wall_s`` is
    the compute time on this machine.
    """

    method: str
    focus: float
    state: AfState
    lens_moves: int
    frames: int
    samples: list[tuple[float, float]]
    sim_time_s: float | None
    wall_s: float
    frame: Frame | None = None  # the confirmation frame at ``focus``

    @property
    def focused(self) -> bool:
        return self.state == "focused"


def central_window(width: int, height: int, fraction: float = CENTRAL_WINDOW_FRACTION) -> Box:
    """The centred box covering ``fraction`` of the width and of the height."""
    if not 0.0 < fraction <= 1.0:
        raise ConfigError(f"window fraction must be in (0, 1], got {fraction}")
    mx, my = width * (1 - fraction) / 2, height * (1 - fraction) / 2
    return (mx, my, width - mx, height - my)


def parabola_vertex(xs: Sequence[float], ys: Sequence[float]) -> float:
    """The abscissa of the vertex of the parabola through three points.

    Works for unequal spacing. When the three points are collinear or open upwards (no
    maximum), or the vertex falls outside ``[min(xs), max(xs)]``, the best sample's
    position is returned instead, so the answer never leaves the sampled interval.
    """
    if len(xs) != 3 or len(ys) != 3:
        raise ConfigError(f"a parabola needs exactly 3 points, got {len(xs)} and {len(ys)}")
    x = np.asarray(xs, dtype=float)
    y = np.asarray(ys, dtype=float)
    best = float(x[int(np.argmax(y))])
    if len(set(x.tolist())) < 3:
        return best
    a, b, _ = np.polyfit(x, y, 2)
    if not a < 0:
        return best
    vertex = float(-b / (2 * a))
    return vertex if x.min() <= vertex <= x.max() else best


class FocusProbe:
    """Moves the lens, grabs, measures and keeps the books for one AF run."""

    def __init__(
        self,
        camera: Camera,
        lens: Lens,
        measure: str = "tenengrad",
        window: Sequence[float] | None = None,
    ) -> None:
        if measure not in FOCUS_MEASURES:
            raise ConfigError(
                f"unknown focus measure {measure!r}; choose one of: {', '.join(FOCUS_MEASURES)}"
            )
        self.camera, self.lens, self.measure = camera, lens, measure
        self.window: Box | None = None if window is None else _box(window)
        self.samples: list[tuple[float, float]] = []
        self.around: float | None = None  # where a local scan starts (see AfMethod.run)
        self.last_frame: Frame | None = None
        self.lens_moves = 0
        self.frames = 0
        self._clock = getattr(camera, "clock", None)
        self._sim_start_s = self._clock.now_s if self._clock is not None else None
        self._wall_start_s = time.perf_counter()

    @property
    def range(self) -> tuple[float, float]:
        return self.lens.focus_range.min, self.lens.focus_range.max

    def clamp(self, focus: float) -> float:
        return self.lens.focus_range.clamp(focus)

    def at(self, focus: float) -> float:
        """The focus measure with the lens at ``focus`` (clamped to the lens range)."""
        target = self.clamp(focus)
        if target != self.lens.focus:
            self.lens.set_focus(target)
            self.lens_moves += 1
        frame = self.last_frame = self.camera.grab()
        self.frames += 1
        image = frame.as_uint8()
        if self.window is None:
            self.window = central_window(image.shape[1], image.shape[0])
        value = focus_measure(self.measure, image, self.window)
        self.samples.append((self.lens.focus, value))
        return value

    def best(self) -> tuple[float, float]:
        """The (focus, measure) sample with the largest measure so far."""
        return max(self.samples, key=lambda s: s[1])

    def finish(self, method: str, focus: float, state: AfState) -> AfResult:
        """Move to ``focus``, grab one confirmation frame, and report."""
        self.at(focus)
        sim_s = None
        if self._clock is not None and self._sim_start_s is not None:
            sim_s = float(self._clock.now_s - self._sim_start_s)
        return AfResult(
            method=method,
            focus=float(self.lens.focus),
            state=state,
            lens_moves=self.lens_moves,
            frames=self.frames,
            samples=list(self.samples),
            sim_time_s=sim_s,
            wall_s=time.perf_counter() - self._wall_start_s,
            frame=self.last_frame,
        )


def _box(window: Sequence[float]) -> Box:
    values = [float(v) for v in window]
    if len(values) != 4 or not (values[0] < values[2] and values[1] < values[3]):
        raise ConfigError(f"window must be a box [x1, y1, x2, y2] with x1<x2, y1<y2: {window}")
    return (values[0], values[1], values[2], values[3])


@dataclass(frozen=True)
class AfTunables:
    """Base of the tunables dataclasses: every numeric field must be finite and > 0,
    fields named ``*_ratio`` must be in (0, 1) unless listed in ``above_one``."""

    above_one: ClassVar[tuple[str, ...]] = ()
    ints: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if not math.isfinite(value) or value <= 0:
                raise ConfigError(f"{type(self).__name__}.{f.name} must be > 0, got {value}")
            if f.name in self.ints and int(value) != value:
                raise ConfigError(f"{type(self).__name__}.{f.name} must be a whole number")
            if f.name.endswith("_ratio"):
                ok = value > 1 if f.name in self.above_one else value < 1
                if not ok:
                    bound = "> 1" if f.name in self.above_one else "< 1"
                    raise ConfigError(
                        f"{type(self).__name__}.{f.name} must be {bound}, got {value}"
                    )


def make_tunables(cls: type[AfTunables], overrides: dict[str, Any]) -> Any:
    """``cls(**overrides)``, with an unknown name reported as a ``ConfigError``."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(
            f"unknown tunable(s) {', '.join(unknown)} for {cls.__name__}; "
            f"known: {', '.join(sorted(known))}"
        )
    return cls(**overrides)


class Tuned:
    """A baseline with a tunables dataclass; subclasses declare both by keyword:
    ``class FullSweep(AfMethod, name="sweep", tunables=SweepTunables)``."""

    name: ClassVar[str]
    tunables_class: ClassVar[type[AfTunables]]

    def __init_subclass__(cls, name: str = "", tunables: type[AfTunables] | None = None) -> None:
        super().__init_subclass__()
        if name:
            cls.name = name
        if tunables is not None:
            cls.tunables_class = tunables

    def __init__(self, tunables: Any = None) -> None:
        if tunables is not None and not isinstance(tunables, self.tunables_class):
            raise ConfigError(f"{self.name} takes {self.tunables_class.__name__} tunables")
        self.tunables: Any = tunables if tunables is not None else self.tunables_class()

    @classmethod
    def with_tunables(cls, **overrides: Any) -> Any:
        """An instance with the default tunables overridden (unknown names are errors)."""
        return cls(make_tunables(cls.tunables_class, overrides))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.tunables!r})"


class AfMethod(Tuned, ABC):
    """One autofocus algorithm. ``tunables`` holds its settings; ``run`` focuses once."""

    def run(
        self,
        camera: Camera,
        lens: Lens,
        measure: str = "tenengrad",
        window: Sequence[float] | None = None,
        around: float | None = None,
    ) -> AfResult:
        """Focus once; ``window`` is a box [x1, y1, x2, y2] (default: the central 50 %).

        ``around``: a lens position the peak is known to be near (a continuous-mode
        re-trigger); bracketing methods then scan locally first (``af_scan``)."""
        probe = FocusProbe(camera, lens, measure, window)
        probe.around = around
        focus, state = self._search(probe)
        return probe.finish(self.name, focus, state)

    @abstractmethod
    def _search(self, probe: FocusProbe) -> tuple[float, AfState]:
        """Take samples through ``probe``; return the focus to settle on and the state."""
