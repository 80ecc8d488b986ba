"""A plain metering loop that gives the focus agent a usable frame when it trains alone.

``Focus-v0`` trains A_L without A_H, so its episodes start from the state A_H hands over:
a frame whose histogram peak is in [50, 150]. This loop scales the exposure by
(target mean level / measured mean level) and snaps it to the exposure table, a few
times, until the hand-over condition holds.
"""

from __future__ import annotations

import numpy as np

from dasha.envs.rewards import is_suitable_peak
from dasha.hardware.base import Camera, Frame
from dasha.perception.histogram import histogram

TARGET_MEAN_LEVEL = 70.0  # of 255: a linear sensor's typical scene puts the peak near ~100


def meter(camera: Camera, table_us: np.ndarray, max_frames: int = 5) -> Frame:
    """Grab until the histogram is suitable (or ``max_frames``); returns the last frame."""
    frame = camera.grab()
    for _ in range(max_frames - 1):
        if is_suitable_peak(histogram(frame.as_uint8()).peak):
            break
        mean = max(float(frame.as_uint8().mean()), 0.5)
        wanted = frame.exposure_us * TARGET_MEAN_LEVEL / mean
        nearest = float(table_us[int(np.argmin(np.abs(np.log(table_us / wanted))))])
        if nearest == camera.exposure_us:
            break
        camera.set_exposure_us(nearest)
        frame = camera.grab()
    return frame
