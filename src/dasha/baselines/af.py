"""Classical autofocus baselines behind one interface, by name.

``run_af("coarse-fine", camera, lens)`` focuses once and returns an ``AfResult``. Each
method is a small class with a tunables dataclass (units in the names); the methods are
explained at the top of their modules: ``af_search`` (full sweep, hill climb) and
``af_scan`` (libcamera-style coarse-fine scan, golden section after a coarse bracket).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dasha.baselines.af_base import AfMethod, AfResult, central_window, parabola_vertex
from dasha.baselines.af_scan import CoarseFineScan, GoldenSection
from dasha.baselines.af_search import FullSweep, HillClimb
from dasha.errors import ConfigError
from dasha.hardware.base import Camera, Lens

AF_METHODS: dict[str, type[AfMethod]] = {
    "sweep": FullSweep,
    "hill-climb": HillClimb,
    "coarse-fine": CoarseFineScan,
    "golden": GoldenSection,
}


def af_method(name: str, **tunables: Any) -> AfMethod:
    """An AF method by name, with its tunables overridden (unknown names are errors)."""
    try:
        cls = AF_METHODS[name]
    except KeyError:
        raise ConfigError(
            f"unknown autofocus method {name!r}; choose one of: {', '.join(AF_METHODS)}"
        ) from None
    return cls.with_tunables(**tunables)


def run_af(
    name: str,
    camera: Camera,
    lens: Lens,
    measure: str = "tenengrad",
    window: Sequence[float] | None = None,
    **tunables: Any,
) -> AfResult:
    """Focus once with the named method; ``window`` [x1, y1, x2, y2] defaults to the central 50 %."""
    return af_method(name, **tunables).run(camera, lens, measure, window)


__all__ = [
    "AF_METHODS",
    "AfMethod",
    "AfResult",
    "CoarseFineScan",
    "FullSweep",
    "GoldenSection",
    "HillClimb",
    "af_method",
    "central_window",
    "parabola_vertex",
    "run_af",
]
