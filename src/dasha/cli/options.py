"""Option parsing shared by the commands (value lists, simulator conditions)."""

from __future__ import annotations

import numpy as np

from dasha.errors import ConfigError


def parse_values(text: str, name: str) -> list[float]:
    """``"1,2.5,4"`` or ``"start:stop:step"`` (stop included when it falls on the grid)."""
    text = text.strip()
    try:
        if ":" in text:
            parts = [float(p) for p in text.split(":")]
            if len(parts) != 3 or parts[2] <= 0 or parts[1] < parts[0]:
                raise ValueError
            start, stop, step = parts
            count = int(np.floor((stop - start) / step + 1e-9)) + 1
            return [round(start + i * step, 9) for i in range(count)]
        values = [float(p) for p in text.split(",") if p.strip()]
        if not values:
            raise ValueError
        return values
    except ValueError:
        raise ConfigError(
            f"--{name} {text!r}: give a comma list (e.g. 30,35.5,40) or start:stop:step (e.g. 24:70:0.5)"
        ) from None
