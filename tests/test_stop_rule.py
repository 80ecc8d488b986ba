"""A_L's threshold-free peak stop rule (``envs.stop``) and the two-frame observation."""

from __future__ import annotations

import cv2
import gymnasium as gym
import numpy as np
import pytest

import dasha.envs  # noqa: F401 - registers the envs
from dasha.envs.actions import focus_fraction_to_action
from dasha.envs.config import EpisodeConfig
from dasha.envs.focus import PREVIOUS_EXTRAS, lens_fraction
from dasha.envs.stop import PEAK_BRACKET, SearchMemory, peak_behind, region_sharpness
from dasha.errors import ConfigError
from dasha.hardware.base import Frame
from dasha.perception.senses import TargetSeen

BOX = (20.0, 20.0, 108.0, 108.0)


def _frame(blur_sigma_px: float, seed: int = 0) -> Frame:
    texture = np.random.default_rng(seed).uniform(0, 255, (128, 128)).astype(np.float32)
    image = cv2.GaussianBlur(texture, (0, 0), 0.5 + blur_sigma_px)
    return Frame(np.clip(image, 0, 255).astype(np.uint8), 8, 1000.0, 0.0, 0.0, 0)


def _memory(points: list[tuple[float, float, bool]]) -> SearchMemory:
    """(lens position, blur sigma, detected) per frame."""
    memory = SearchMemory()
    for position, blur, detected in points:
        seen = TargetSeen(detected, 0.5 if detected else 0.0, BOX if detected else None, 10.0)
        memory.add(position, _frame(blur), seen)
    return memory


def test_sharpness_falls_with_blur_on_the_same_region():
    values = [region_sharpness(_frame(b).image, BOX) for b in (0.0, 1.0, 3.0)]
    assert values[0] > values[1] > values[2]


def test_peak_rule_returns_to_the_sharpest_detected_frame_once_bracketed():
    step = 0.9 * PEAK_BRACKET
    memory = _memory([(0.5, 4.0, False), (0.5 + step, 0.0, True), (0.5 + 2 * step, 2.0, True)])
    assert peak_behind(memory) == 1  # less sharp on both sides, both within the bracket


def test_peak_rule_waits_while_the_peak_is_not_bracketed():
    step = 0.9 * PEAK_BRACKET
    rising = _memory([(0.5, 4.0, True), (0.5 + step, 2.0, True), (0.5 + 2 * step, 0.0, True)])
    assert peak_behind(rising) is None  # the sharpest frame has nothing above it yet
    coarse = _memory([(0.4, 4.0, False), (0.5, 0.0, True), (0.6, 3.0, True)])
    assert peak_behind(coarse) is None  # bracketed, but too coarsely to be in focus
    unseen = _memory([(0.5, 4.0, False), (0.5 + step, 0.0, False), (0.5 + 2 * step, 2.0, False)])
    assert peak_behind(unseen) is None  # no detection: no target to judge


def test_peak_rule_candidates_are_detected_frames_only():
    step = 0.9 * PEAK_BRACKET
    points = [
        (0.5, 3.0, True),
        (0.5 + step, 0.0, False),  # sharpest, but the detector did not see the target
        (0.5 + 2 * step, 1.0, True),
        (0.5 + 3 * step, 3.0, True),
    ]
    # the best detected frame has a sharper neighbour: the peak is not behind it, so wait
    assert peak_behind(_memory(points)) is None
    points[1] = (0.5 + step, 2.0, False)
    assert peak_behind(_memory(points)) == 2


def test_peak_config_refuses_a_brisque_gate_and_a_bracket_out_of_range():
    with pytest.raises(ConfigError, match="peak stop rule needs no BRISQUE gate"):
        EpisodeConfig(stop_rule="peak", sharp_brisque_max=18.0)
    with pytest.raises(ConfigError, match="peak_bracket"):
        EpisodeConfig(stop_rule="peak", peak_bracket=0.0)
    with pytest.raises(ConfigError, match="stop_rule"):
        EpisodeConfig(stop_rule="first")


def test_focus_env_peak_rule_ends_a_sweep_in_focus_and_counts_the_way_back(uncached_senses):
    env = gym.make(
        "dasha/Focus-v0",
        senses=uncached_senses,
        scenes=["motorcycle"],
        stop_rule="peak",
        focus_action="normalised",
    )
    _, info = env.reset(seed=2)
    lens = env.unwrapped.lens
    lens.set_focus(info["in_focus_v"])
    focus = lens_fraction(lens)
    lens.set_focus(lens.focus_range.min)
    step = 0.9 * PEAK_BRACKET
    result = None
    for k in range(-6, 7):
        result = env.step(np.array(focus_fraction_to_action(focus + k * step)))
        if result[2]:
            break
    assert result is not None and result[2], "the sweep passed focus without the rule ending it"
    assert result[4]["in_focus"] and result[4]["detected"]
    assert -1.0 < result[1] <= 0.0  # eq. 12 on the frame it ended on
    # it stopped one step past the peak and went back: 2 moves in that step
    assert result[4]["moves"] == k + 6 + 2
    assert abs(lens_fraction(lens) - focus) <= step


def test_two_frame_observation_carries_the_previous_frame(uncached_senses):
    env = gym.make(
        "dasha/Focus-v0",
        senses=uncached_senses,
        scenes=["motorcycle"],
        observe_previous=True,
        observe_lens=True,
        focus_action="normalised",
    )
    dim = uncached_senses.feature_dim
    first, _ = env.reset(seed=2)
    assert first.shape == (2 * dim + PREVIOUS_EXTRAS + 1,) == env.observation_space.shape
    assert np.array_equal(first[:dim], first[dim : 2 * dim])  # no move yet: both the same frame
    lens = env.unwrapped.lens
    start = lens_fraction(lens)
    second = env.step(np.array(focus_fraction_to_action(0.5)))[0]
    assert np.allclose(second[dim : 2 * dim], first[:dim])  # the previous frame's E(I)
    assert second[2 * dim] == pytest.approx(start)  # and where it was taken
    assert second[-1] == pytest.approx(0.5, abs=1e-3)  # the lens position now
    has_best, offset = second[2 * dim + 3], second[2 * dim + 4]
    if has_best:  # the best detected frame is the start or this one: 0 or far away, in brackets
        assert offset == 0.0 or abs(offset) == pytest.approx(20.0)
