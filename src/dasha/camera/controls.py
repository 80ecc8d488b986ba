"""Camera controls by name, as picamera2 spells them, validated before anything moves.

=================  ==========================================================  ===========
control            values                                                      unit
=================  ==========================================================  ===========
AfMode             ``manual`` / ``auto`` / ``continuous``                      -
AfTrigger          ``start`` / ``cancel`` (auto mode: run or stop a cycle)     -
AfAlgorithm        ``dasha`` (the two agents) or a classical baseline:         -
                   ``coarse-fine``, ``hill-climb``, ``golden``, ``sweep``
AfWindows          list of boxes ``(x1, y1, x2, y2)`` in frame pixels          px
AfTarget           a detector class (``person``, ``car``, ...), ``face``       -
                   (MTCNN), or ``None`` (no target check: contrast only)
AfTargetSelect     ``largest`` / ``confident`` / ``centre``                    -
AfRange            ``(near_dpt, far_dpt)`` limits of the lens travel, or None    dioptres
                   (classical algorithms only; ``dasha`` refuses it)
LensPosition       manual lens position (0 = infinity, 1/distance in metres)   dioptres
AeEnable           ``True``: exposure is adjusted by the cycle / continuous    -
ExposureTime       manual exposure time                                        us
=================  ==========================================================  ===========

``AfRange`` is ``(low, high)`` in dioptres, low < high (libcamera's AfRange is an enum of
Normal / Macro / Full; a numeric range says more and is what picamera2 users ask for).
An unknown name or a bad value raises ``ConfigError`` listing what is valid.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from dasha.errors import ConfigError

AF_MODES = ("manual", "auto", "continuous")
AF_TRIGGERS = ("start", "cancel")
AF_ALGORITHMS = ("dasha", "coarse-fine", "hill-climb", "golden", "sweep")
AF_TARGET_SELECT = ("largest", "confident", "centre")
AF_STATES = ("Idle", "Scanning", "Focused", "Failed")  # libcamera's AfStateEnum, capitalised

CONTROL_NAMES = (
    "AfMode",
    "AfTrigger",
    "AfAlgorithm",
    "AfWindows",
    "AfTarget",
    "AfTargetSelect",
    "AfRange",
    "LensPosition",
    "AeEnable",
    "ExposureTime",
)

DEFAULT_CONTROLS: dict[str, Any] = {
    "AfMode": "manual",
    "AfAlgorithm": "coarse-fine",
    "AfWindows": [],
    "AfTarget": None,
    "AfTargetSelect": "confident",
    "AeEnable": True,
}


def _choice(name: str, value: Any, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value.lower() not in choices:
        raise ConfigError(f"{name}={value!r} is not valid; choose one of: {', '.join(choices)}")
    return value.lower()


def _number(name: str, value: Any, low: float, high: float, unit: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number in [{low:g}, {high:g}] {unit}, got {value!r}")
    value = float(value)
    if math.isnan(value) or not low <= value <= high:
        raise ConfigError(f"{name}={value:g} {unit} is outside [{low:g}, {high:g}] {unit}")
    return value


def _box(value: Any, size: tuple[int, int]) -> tuple[float, float, float, float]:
    width, height = size
    try:
        x1, y1, x2, y2 = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"AfWindows: each window is a box (x1, y1, x2, y2) in frame pixels, got {value!r}"
        ) from None
    if not (0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height):
        raise ConfigError(
            f"AfWindows: box {value!r} must satisfy 0 <= x1 < x2 <= {width} and "
            f"0 <= y1 < y2 <= {height} (frame pixels, {width}x{height})"
        )
    return (x1, y1, x2, y2)


def validate_controls(
    controls: Mapping[str, Any],
    *,
    frame_size: tuple[int, int],
    lens_range_dpt: tuple[float, float],
    exposure_range_us: tuple[float, float],
    target_classes: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The controls normalised (lower-case choices, floats, tuples), or a ``ConfigError``.

    ``frame_size`` is (width, height) in pixels; the ranges are the device's.
    """
    unknown = sorted(set(controls) - set(CONTROL_NAMES))
    if unknown:
        raise ConfigError(
            f"unknown control(s) {', '.join(unknown)}; valid controls: {', '.join(CONTROL_NAMES)}"
        )
    low_dpt, high_dpt = lens_range_dpt
    out: dict[str, Any] = {}
    for name, value in controls.items():
        if name == "AfMode":
            out[name] = _choice(name, value, AF_MODES)
        elif name == "AfTrigger":
            out[name] = _choice(name, value, AF_TRIGGERS)
        elif name == "AfAlgorithm":
            out[name] = _choice(name, value, AF_ALGORITHMS)
        elif name == "AfTargetSelect":
            out[name] = _choice(name, value, AF_TARGET_SELECT)
        elif name == "AfWindows":
            if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
                raise ConfigError(
                    f"AfWindows must be a list of (x1, y1, x2, y2) boxes, got {value!r}"
                )
            out[name] = [_box(box, frame_size) for box in value]
        elif name == "AfTarget":
            if value is not None:
                if not isinstance(value, str) or not value:
                    raise ConfigError(
                        f"AfTarget must be a class name, 'face' or None, got {value!r}"
                    )
                if target_classes is not None and value not in (*target_classes, "face"):
                    raise ConfigError(
                        f"AfTarget={value!r} is not a detector class; choose 'face' or one of: "
                        f"{', '.join(target_classes)}"
                    )
            out[name] = value
        elif name == "AfRange" and value is None:
            out[name] = None  # the lens's full range again
        elif name == "AfRange":
            try:
                near, far = (float(v) for v in value)
            except (TypeError, ValueError):
                raise ConfigError(f"AfRange must be (low_dpt, high_dpt), got {value!r}") from None
            near = _number("AfRange low", near, low_dpt, high_dpt, "dpt")
            far = _number("AfRange high", far, low_dpt, high_dpt, "dpt")
            if not near < far:
                raise ConfigError(f"AfRange ({near:g}, {far:g}) dpt must have low < high")
            out[name] = (near, far)
        elif name == "LensPosition":
            out[name] = _number(name, value, low_dpt, high_dpt, "dpt")
        elif name == "AeEnable":
            if not isinstance(value, bool):
                raise ConfigError(f"AeEnable must be True or False, got {value!r}")
            out[name] = value
        elif name == "ExposureTime":
            out[name] = _number(name, value, *exposure_range_us, "us")
    return out
