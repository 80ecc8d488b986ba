"""The two device interfaces every backend implements: a ``Camera`` and a ``Lens``.

Limits are explicit ``Range`` objects carrying their unit. A request outside a range
raises ``ConfigError``; callers that want clamping say so with ``Range.clamp`` first,
so nothing out of range is ever sent to a device silently.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import numpy as np

from dasha.errors import ConfigError


@dataclass(frozen=True)
class Range:
    """A closed interval ``[min, max]`` of a device setting, in ``unit``."""

    min: float
    max: float
    unit: str

    def __post_init__(self) -> None:
        if not self.min <= self.max:
            raise ConfigError(f"empty range [{self.min}, {self.max}] {self.unit}")

    def __contains__(self, value: object) -> bool:
        return isinstance(value, (int, float)) and self.min <= value <= self.max

    def check(self, value: float, name: str) -> float:
        """Return ``value`` as float, or raise a ``ConfigError`` that names the limits."""
        value = float(value)
        if math.isnan(value) or value not in self:
            raise ConfigError(
                f"{name}={value:g} {self.unit} is outside the device limits "
                f"[{self.min:g}, {self.max:g}] {self.unit}"
            )
        return value

    def clamp(self, value: float) -> float:
        return float(min(max(float(value), self.min), self.max))


@dataclass(frozen=True)
class Roi:
    """Region of interest on the sensor, in pixels (offset from the top-left corner)."""

    width: int
    height: int
    offset_x: int = 0
    offset_y: int = 0


@dataclass(frozen=True)
class Frame:
    """One grabbed image with the settings it was taken with.

    ``image`` is 2-D (monochrome), ``uint8`` for 8-bit formats and ``uint16`` for deeper
    ones (values up to ``2**bit_depth - 1``). ``timestamp_s`` is on the backend's clock
    (the simulated clock for ``sim``). ``meta`` holds backend extras; the simulator puts its
    ground truth there (for evaluation only, never for rewards).
    """

    image: np.ndarray
    bit_depth: int
    exposure_us: float
    gain_db: float
    timestamp_s: float
    index: int
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def max_level(self) -> int:
        return (1 << self.bit_depth) - 1

    def as_uint8(self) -> np.ndarray:
        """The image scaled to 8 bits (what the perception layer consumes)."""
        if self.image.dtype == np.uint8:
            return self.image
        return (self.image >> (self.bit_depth - 8)).astype(np.uint8)


class _Device(ABC):  # noqa: B024 - devices share close/context handling, no abstract method
    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the device; safe to call twice."""

    def __enter__(self) -> _Device:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Camera(_Device):
    """A camera with manual exposure, gain and region of interest."""

    name: str = "camera"

    @property
    @abstractmethod
    def exposure_range_us(self) -> Range: ...

    @property
    @abstractmethod
    def gain_range_db(self) -> Range: ...

    @property
    @abstractmethod
    def exposure_us(self) -> float: ...

    @abstractmethod
    def set_exposure_us(self, exposure_us: float) -> float:
        """Set the exposure time; returns the value the device actually uses."""

    @property
    @abstractmethod
    def gain_db(self) -> float: ...

    @abstractmethod
    def set_gain_db(self, gain_db: float) -> float: ...

    @property
    @abstractmethod
    def roi(self) -> Roi: ...

    @abstractmethod
    def grab(self, timeout_s: float = 5.0) -> Frame:
        """Grab the next frame taken entirely with the current settings."""

    def __enter__(self) -> Camera:
        return self


class Lens(_Device):
    """A focusing actuator. ``unit`` says what ``focus`` is measured in.

    A liquid lens is driven in volts (``unit == "V"``); a UVC webcam's focus motor in the
    driver's own steps (``unit == "step"``). ``settle_s`` is how long after a move the
    image is stable.
    """

    name: str = "lens"
    unit: str = "V"

    @property
    @abstractmethod
    def focus_range(self) -> Range: ...

    @property
    @abstractmethod
    def focus(self) -> float: ...

    @abstractmethod
    def set_focus(self, value: float) -> float:
        """Move the lens; returns the value actually set (after device rounding)."""

    @property
    def safe_focus(self) -> float:
        """Where the lens is parked on close or on error (the low end by default)."""
        return self.focus_range.min

    @property
    def settle_s(self) -> float:
        return 0.0

    def __enter__(self) -> Lens:
        return self
