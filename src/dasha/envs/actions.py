"""The agents' action tables: exposure times for A_H, lens voltages for A_L.

Exposure (A_H, ``Discrete``): the original code's table, in microseconds,

    arange(1e3, 45e3, 1e3) | arange(50e3, 500e3, 5e3) | arange(6e5, 9e5, 5e4) | arange(1e6, 5e6, 5e5)

(148 values; the paper says 146). Values the camera cannot do are **dropped**, not
clamped, so that no two actions mean the same exposure: on the acA2000-50gm (max 1 s)
the seven values 1.5 .. 4.5 s go, leaving 141 actions.

Focus (A_L, ``MultiDiscrete([coarse, fine])``): ``focus_v = min_v + coarse * 1 V +
fine * 0.01 V``, clamped to the lens maximum. Unlike the original
``float(f"{coarse}.{fine}")`` (where fine=5 and fine=50 give the same voltage and
coarse < 24 clamps to 24), this mapping is monotonic and every action below the maximum
is a distinct voltage on the 0.01 V grid.

Lens-agnostic focus (``focus_action="normalised"``): the same ``MultiDiscrete`` form with
a fixed shape, ``NORMALISED_SHAPE``, whose points span the lens's own range evenly
(0 = its minimum, the last point = its maximum), whatever the unit (volts, a webcam's
focus_absolute steps); the device value is computed only here, at the edge. On the
Varioptic's 24..70 V the normalised grid steps by 0.0098 V, as fine as the volts grid.
"""

from __future__ import annotations

import numpy as np

from dasha.errors import check_choice
from dasha.hardware.base import Range

ORIGINAL_EXPOSURE_TABLE_US = np.concatenate(
    [
        np.arange(1e3, 45e3, 1e3),
        np.arange(50e3, 500e3, 5e3),
        np.arange(6e5, 9e5, 5e4),
        np.arange(1e6, 5e6, 5e5),
    ]
)
COARSE_STEP_V = 1.0
FINE_STEP_V = 0.01
FINE_STEPS = 100
FOCUS_ACTION_UNITS = ("volts", "normalised")
NORMALISED_SHAPE = (47, FINE_STEPS)  # as many points as the Varioptic's volts grid
NORMALISED_LAST_POINT = NORMALISED_SHAPE[0] * NORMALISED_SHAPE[1] - 1  # at the lens maximum


def check_focus_action(units: str) -> str:
    return check_choice("focus_action", units, FOCUS_ACTION_UNITS)


def exposure_table_us(limits_us: Range) -> np.ndarray:
    """The original table without the values outside the camera's exposure limits."""
    table = ORIGINAL_EXPOSURE_TABLE_US
    return table[(table >= limits_us.min) & (table <= limits_us.max)].copy()


def focus_action_shape(limits_v: Range, units: str = "volts") -> tuple[int, int]:
    """(coarse, fine) sizes of the MultiDiscrete focus action for a lens range."""
    if check_focus_action(units) == "normalised":
        return NORMALISED_SHAPE
    coarse = int(np.floor((limits_v.max - limits_v.min) / COARSE_STEP_V + 1e-9)) + 1
    return coarse, FINE_STEPS


def range_fraction(value: float, limits: Range) -> float:
    """Where ``value`` lies in ``limits``, as a fraction (0 = the minimum; clamped)."""
    return (limits.clamp(value) - limits.min) / (limits.max - limits.min)


def range_value(fraction: float, limits: Range) -> float:
    """The device value at ``fraction`` of ``limits`` (the inverse of ``range_fraction``)."""
    return limits.clamp(limits.min + fraction * (limits.max - limits.min))


def focus_action_to_v(coarse: int, fine: int, limits_v: Range, units: str = "volts") -> float:
    """Monotonic (coarse, fine) -> the lens's own unit (volts for the liquid lens), clamped
    to the lens limits."""
    if check_focus_action(units) == "normalised":
        fraction = (int(coarse) * NORMALISED_SHAPE[1] + int(fine)) / NORMALISED_LAST_POINT
        return round(range_value(fraction, limits_v), 4)
    value = limits_v.min + int(coarse) * COARSE_STEP_V + int(fine) * FINE_STEP_V
    return round(limits_v.clamp(value), 2)


def focus_v_to_action(focus_v: float, limits_v: Range) -> tuple[int, int]:
    """The action that reaches ``focus_v`` (rounded to the 0.01 V grid)."""
    hundredths = round((limits_v.clamp(focus_v) - limits_v.min) / FINE_STEP_V)
    return divmod(hundredths, FINE_STEPS)


def focus_grid_position(focus_v: float, limits_v: Range, units: str = "volts") -> float:
    """Where the lens is on A_L's own action grid, as a fraction of the grid's points
    (0 = the lens minimum; grid point h of ``coarse * fine`` sits at ``h / (coarse * fine)``)."""
    coarse, fine = focus_action_shape(limits_v, units)
    if units == "normalised":  # point h sits at h / (points - 1) of the range
        return range_fraction(focus_v, limits_v) * (coarse * fine - 1) / (coarse * fine)
    return (limits_v.clamp(focus_v) - limits_v.min) / FINE_STEP_V / (coarse * fine)


def normalised_point(fraction: float) -> int:
    """The normalised grid point nearest ``fraction`` of the lens's range (clamped to 0..1):
    ``coarse * fine_n + fine`` of its action."""
    return round(min(max(fraction, 0.0), 1.0) * NORMALISED_LAST_POINT)


def focus_fraction_to_action(fraction: float) -> tuple[int, int]:
    """The normalised action nearest ``fraction`` of the lens's range (clamped to 0..1)."""
    return divmod(normalised_point(fraction), NORMALISED_SHAPE[1])
