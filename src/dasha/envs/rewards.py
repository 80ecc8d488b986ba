"""The paper's rewards as pure functions (eqs. 11 and 12). B = BRISQUE, clipped to [0, 100].

    r_H =  1            if P in [50, 150]
           -0.01 * B    if P in [25, 50) or (150, 175]
           -1           otherwise                                   (eq. 11)

    r_L = -1            if the target is not detected
          -0.01 * B     otherwise (B of the detected box)           (eq. 12)

P is the histogram peak (``dasha.perception.histogram``: left edge of the fullest of 10
bins over the frame's own range, as the original code).
"""

from __future__ import annotations

import numpy as np

SUITABLE_PEAK = (50.0, 150.0)  # closed interval: hand over to the focus agent
TOLERABLE_PEAK = (25.0, 175.0)  # outside SUITABLE but inside this: graded by BRISQUE


def is_suitable_peak(peak: float) -> bool:
    """The hand-over condition of Fig. 2: the histogram peak is in [50, 150]."""
    return SUITABLE_PEAK[0] <= peak <= SUITABLE_PEAK[1]


def suitable_peaks(peaks: np.ndarray) -> np.ndarray:
    """``is_suitable_peak`` of every peak of an array (e.g. a virtual exposure bracket's)."""
    return (peaks >= SUITABLE_PEAK[0]) & (peaks <= SUITABLE_PEAK[1])


def is_tolerable_peak(peak: float) -> bool:
    return TOLERABLE_PEAK[0] <= peak <= TOLERABLE_PEAK[1] and not is_suitable_peak(peak)


def exposure_reward(peak: float, brisque: float | None) -> float:
    """Eq. 11. ``brisque`` (clipped to [0, 100]) is only needed when the peak is tolerable."""
    if is_suitable_peak(peak):
        return 1.0
    if is_tolerable_peak(peak):
        if brisque is None:
            raise ValueError(
                "eq. 11 needs the frame's BRISQUE score when 25 <= P < 50 or 150 < P <= 175"
            )
        return -0.01 * _check_brisque(brisque)
    return -1.0


# BRISQUE points a sharp box may add per unit of clipped box area (see ``target_found``).
CLIPPED_BRISQUE_ALLOWANCE = 60.0


def sharp_brisque_limit(sharp_brisque_max: float, clipped_fraction: float) -> float:
    """The gate's limit for a box with this fraction of clipped pixels:
    ``sharp_brisque_max + CLIPPED_BRISQUE_ALLOWANCE * clipped_fraction``."""
    return sharp_brisque_max + CLIPPED_BRISQUE_ALLOWANCE * clipped_fraction


def target_found(
    detected: bool,
    brisque: float | None,
    sharp_brisque_max: float | None,
    clipped_fraction: float = 0.0,
) -> bool:
    """Whether A_L's search is over: the detector found the target (the paper's criterion).

    ``sharp_brisque_max`` (an option, ``None`` = the paper) also requires the box's BRISQUE
    to be at most ``sharp_brisque_limit``, i.e. the detector must find the target *sharp*:
    YOLOv3-tiny still detects at ~8 px of blur (with an unchanged confidence), where
    eq. 12 alone ends the episode out of focus. Clipped highlights raise a sharp box's
    BRISQUE (saturated patches have unnatural MSCN statistics), and A_H hands over frames
    with histogram peaks up to ~128, where ~20 % of the box may be clipped; hence the
    allowance per clipped fraction. `dasha gate-bench` (3,360 simulated boxes, seed 0)
    measures the gate 18 + 60 x clipped: it passes 98 % of boxes within 1.25 px of focus
    (95 % of those in bright frames, peak > 115), 53 % at 1.25..2 px, 11 % at 2..2.5 px,
    4 % at 2.5..3.5 px and none beyond; a flat 18 passes 75 % (25 % in bright frames),
    25 % and 0.5 % at 2..2.5 px. (Conditions from the ``paper`` set's sampler; with the
    bench's earlier continuous draws: 98 / 93 / 53 / 12 / 5 %, flat 76 / 28 / 27 / 0 %.)
    """
    if not detected:
        return False
    if sharp_brisque_max is None:
        return True
    return brisque is not None and brisque <= sharp_brisque_limit(
        sharp_brisque_max, clipped_fraction
    )


# The scene-independent stop rule's limit on the box's estimated blur, in pixels (disk
# diameter): midway between the in-focus definition (2 px, ``sim.optics``) and the 3 px
# beyond which a stop counts as a miss, so that estimator noise splits evenly both ways.
BLUR_ESTIMATE_LIMIT_PX = 2.5


def blur_estimate_found(
    detected: bool, blur_estimate_px: float | None, limit_px: float = BLUR_ESTIMATE_LIMIT_PX
) -> bool:
    """A stop rule that holds on any scene: the detector found the target and the box's own
    blur estimate (``perception.focus.reblur_blur_px``, contrast- and content-normalised) is
    at most ``limit_px``. No BRISQUE threshold fitted to particular photographs."""
    return detected and blur_estimate_px is not None and blur_estimate_px <= limit_px


def focus_reward(detected: bool, brisque: float | None) -> float:
    """Eq. 12. ``brisque`` is the clipped score of the detected target's box."""
    if not detected:
        return -1.0
    if brisque is None:
        raise ValueError("eq. 12 needs the BRISQUE score of the detected box")
    return -0.01 * _check_brisque(brisque)


def _check_brisque(score: float) -> float:
    if not 0.0 <= score <= 100.0:
        raise ValueError(f"BRISQUE must be clipped to [0, 100] before the reward, got {score}")
    return score
