"""Rewards eq. 11 / eq. 12 at every boundary, and the action tables."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from dasha.envs.actions import (
    ORIGINAL_EXPOSURE_TABLE_US,
    exposure_table_us,
    focus_action_shape,
    focus_action_to_v,
    focus_v_to_action,
)
from dasha.envs.rewards import exposure_reward, focus_reward, is_suitable_peak
from dasha.hardware.base import Range

LENS = Range(24.0, 70.0, "V")


@pytest.mark.parametrize(
    ("peak", "brisque", "expected"),
    [
        (24.9, None, -1.0),
        (25.0, 40.0, -0.4),
        (49.9, 10.0, -0.1),
        (50.0, None, 1.0),
        (100.0, None, 1.0),
        (150.0, None, 1.0),
        (150.1, 20.0, -0.2),
        (175.0, 100.0, -1.0),
        (175.1, None, -1.0),
        (0.0, None, -1.0),
        (255.0, None, -1.0),
    ],
)
def test_exposure_reward_eq11(peak, brisque, expected):
    assert exposure_reward(peak, brisque) == pytest.approx(expected)
    assert is_suitable_peak(peak) == (expected == 1.0)


def test_exposure_reward_needs_brisque_in_tolerable_band_and_clipped_scores():
    with pytest.raises(ValueError, match="BRISQUE"):
        exposure_reward(30.0, None)
    with pytest.raises(ValueError, match=r"clipped to \[0, 100\]"):
        exposure_reward(30.0, 107.0)


@pytest.mark.parametrize(
    ("detected", "brisque", "expected"),
    [
        (False, None, -1.0),
        (False, 5.0, -1.0),
        (True, 0.0, 0.0),
        (True, 37.0, -0.37),
        (True, 100.0, -1.0),
    ],
)
def test_focus_reward_eq12(detected, brisque, expected):
    assert focus_reward(detected, brisque) == pytest.approx(expected)


def test_focus_reward_needs_box_brisque_when_detected():
    with pytest.raises(ValueError):
        focus_reward(True, None)
    with pytest.raises(ValueError):
        focus_reward(True, -3.0)


def test_exposure_table_drops_values_the_camera_cannot_do():
    assert len(ORIGINAL_EXPOSURE_TABLE_US) == 148
    table = exposure_table_us(Range(24.0, 1_000_000.0, "us"))
    assert len(table) == 141 and table.max() == 1_000_000.0 and table.min() == 1_000.0
    assert np.all(np.diff(table) > 0)  # no two actions share an exposure
    assert len(exposure_table_us(Range(24.0, 100_000.0, "us"))) == 44 + 11


def test_focus_mapping_is_monotonic_and_covers_the_lens():
    assert focus_action_shape(LENS) == (47, 100)
    voltages = [focus_action_to_v(c, f, LENS) for c in range(47) for f in range(100)]
    assert voltages[0] == 24.0 and max(voltages) == 70.0
    below_max = [v for v in voltages if v < 70.0]
    assert all(b > a for a, b in itertools.pairwise(below_max))  # strictly increasing
    assert len(set(below_max)) == 4600  # every 0.01 V step is its own action
    # the original float(f"{c}.{f}") made fine=5 and fine=50 equal; here they differ by 0.45 V
    assert focus_action_to_v(12, 50, LENS) - focus_action_to_v(12, 5, LENS) == pytest.approx(0.45)


@pytest.mark.parametrize("focus_v", [24.0, 24.01, 36.85, 50.5, 69.99, 70.0])
def test_focus_action_round_trip(focus_v):
    assert focus_action_to_v(*focus_v_to_action(focus_v, LENS), LENS) == pytest.approx(focus_v)


@pytest.mark.parametrize(
    ("detected", "brisque", "gate", "found"),
    [
        (False, None, None, False),
        (True, 40.0, None, True),  # the paper: detection alone ends the search
        (True, 40.0, 12.0, False),  # gated: found, but not sharp
        (True, 12.0, 12.0, True),
        (True, None, 12.0, False),
    ],
)
def test_target_found_with_optional_sharpness_gate(detected, brisque, gate, found):
    from dasha.envs.rewards import target_found

    assert target_found(detected, brisque, gate) is found


@pytest.mark.parametrize(
    ("brisque", "clipped", "found"),
    [
        (25.0, 0.0, False),  # a flat gate of 18 rejects it
        (25.0, 0.2, True),  # 18 + 60 x 0.2 = 30: a sharp box in a bright frame
        (30.0, 0.2, True),  # the boundary is inclusive
        (30.5, 0.2, False),
        (34.0, 0.2, False),  # 2.4 px of blur in that frame
        (40.0, 1.0, True),
    ],
)
def test_sharpness_gate_allows_for_clipped_highlights(brisque, clipped, found):
    from dasha.envs.rewards import sharp_brisque_limit, target_found

    assert sharp_brisque_limit(18.0, clipped) == pytest.approx(18.0 + 60.0 * clipped)
    assert target_found(True, brisque, 18.0, clipped) is found
    assert target_found(True, brisque, None, clipped)  # the paper: any detection


def test_blur_estimate_stop_rule_needs_a_detection_and_a_small_blur():
    from dasha.envs.rewards import BLUR_ESTIMATE_LIMIT_PX, blur_estimate_found

    assert blur_estimate_found(True, 1.0)
    assert blur_estimate_found(True, BLUR_ESTIMATE_LIMIT_PX)
    assert not blur_estimate_found(True, BLUR_ESTIMATE_LIMIT_PX + 0.01)
    assert not blur_estimate_found(False, 0.5)
    assert not blur_estimate_found(True, None)
    assert blur_estimate_found(True, 3.5, limit_px=4.0)


@pytest.mark.parametrize(
    "limits",
    [
        Range(24.0, 70.0, "V"),
        Range(0.0, 255.0, "step"),
        Range(24.5, 70.5, "V"),
        Range(0.0, 1023.0, "step"),
    ],
)
def test_normalised_focus_actions_are_one_grid_over_any_lens_range(limits):
    from dasha.envs.actions import NORMALISED_SHAPE, focus_action_shape, focus_action_to_v

    assert focus_action_shape(limits, "normalised") == NORMALISED_SHAPE
    coarse, fine = NORMALISED_SHAPE
    assert focus_action_to_v(0, 0, limits, "normalised") == limits.min
    assert focus_action_to_v(coarse - 1, fine - 1, limits, "normalised") == limits.max
    values = [focus_action_to_v(c, f, limits, "normalised") for c in range(coarse) for f in (0, 50)]
    assert values == sorted(values) and len(set(values)) == len(values)
    middle = focus_action_to_v(coarse // 2, fine // 2, limits, "normalised")
    assert abs(middle - (limits.min + limits.max) / 2) < 0.01 * (limits.max - limits.min)


def test_focus_action_units_are_checked():
    from dasha.envs.actions import focus_action_shape
    from dasha.envs.config import EpisodeConfig
    from dasha.errors import ConfigError

    assert focus_action_shape(LENS, "volts") == (47, 100)
    with pytest.raises(ConfigError, match="focus_action"):
        EpisodeConfig(focus_action="dioptres-ish")
