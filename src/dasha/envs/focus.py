"""``dasha/Focus-v0``: the low-level agent A_L alone (paper IV-A "Autofocus", Alg. 2)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np

from dasha.envs.actions import (
    focus_action_shape,
    focus_action_to_v,
    focus_grid_position,
    range_fraction,
    range_value,
)
from dasha.envs.conditions import RigFactory, reset_rig
from dasha.envs.config import EpisodeConfig, build_env, episode_config
from dasha.envs.exposure import frame_rgb, truth_info
from dasha.envs.metering import meter
from dasha.envs.rewards import focus_reward, target_found
from dasha.envs.stop import MEMORY_RULES, SearchMemory, bracket_of, defocus_here, peak_behind
from dasha.hardware.base import Camera, Frame, Lens
from dasha.perception.defocus import FocusEstimate
from dasha.perception.senses import Senses, TargetSeen

HORIZON = 10


def focus_observation_space(feature_dim: int, config: EpisodeConfig) -> gym.spaces.Box:
    size = feature_dim + int(config.observe_lens)
    if config.observe_previous:
        size += feature_dim + PREVIOUS_EXTRAS
    if config.observe_defocus:
        size += DEFOCUS_EXTRAS
    return gym.spaces.Box(-np.inf, np.inf, shape=(size,), dtype=np.float32)


# What ``observe_previous`` adds beside the previous frame's E(I): its lens position, the
# log ratio of this frame's sharpness to it, whether the detector sees the target now, and
# where the search stands with the peak rule (``envs.stop.bracket_of``): whether it has a
# best detected frame, how far that is from here in brackets, and whether each of its
# sides is closed. The last frames alone do not say which side is still open.
PREVIOUS_EXTRAS = 7
# Offsets to the best frame, in brackets, are clipped to this: beyond it only the sign matters.
BEST_OFFSET_MAX_BRACKETS = 20.0
# What ``observe_defocus`` adds: depth from defocus's estimate of the in-focus position (a
# fraction of the range), its offset from here in brackets (clipped), and its confidence.
DEFOCUS_EXTRAS = 3
# Where the estimate sits in an observation that ends with the defocus extras and the lens
# position (``observe_defocus`` and ``observe_lens``): the jump-step-defocus head reads it.
DEFOCUS_ESTIMATE_INDEX = -(DEFOCUS_EXTRAS + 1)
DEFOCUS_OFFSET_MAX_BRACKETS = 40.0


def blur_px_per_range(config: EpisodeConfig) -> float:
    """What depth from defocus assumes of the optics (``EpisodeConfig.blur_px_per_range``)."""
    from dasha.sim.optics import Optics

    return config.blur_px_per_range or Optics().blur_px_per_range


def with_lens_position(features: np.ndarray, lens: Lens, units: str = "volts") -> np.ndarray:
    position = focus_grid_position(lens.focus, lens.focus_range, units)
    return np.append(features, np.float32(position)).astype(np.float32)


def lens_fraction(lens: Lens) -> float:
    """Where the lens is, as a fraction of its own range (0 = its minimum)."""
    return range_fraction(lens.focus, lens.focus_range)


class FocusMove(NamedTuple):
    """What one A_L move did. ``seen.detected``: the target was found (with the detection
    rule's optional sharpness gate); ``over``: the search ended; ``lens_moves``: moves made
    (2 when the peak rule sent the lens back to the peak's frame)."""

    frame: Frame
    seen: TargetSeen
    reward: float
    lens_moves: int
    over: bool


class FocusSearch:
    """One A_L search: its moves, its stop rule (``envs.stop``) and its observations.

    The paper's A_L (``stop_rule="detection"``, no ``observe_previous``) is memoryless: it
    sees E(I) of the current frame and stops at a detection. The peak rule and the
    two-frame observation remember the frames of this search (``SearchMemory``): depth
    from defocus needs two frames at known lens positions to tell the blur's sign and size
    apart from what the scene is, and the peak rule compares sharpness only within it.
    """

    def __init__(self, camera: Camera, lens: Lens, senses: Senses, config: EpisodeConfig) -> None:
        self.camera, self.lens, self.senses, self.config = camera, lens, senses, config
        self.memory = SearchMemory()
        self._remembers = (
            config.stop_rule in MEMORY_RULES or config.observe_previous or config.observe_defocus
        )
        self._blur_px_per_range = blur_px_per_range(config)
        self._previous: np.ndarray | None = None  # E(I) of the frame before this one
        self._current: np.ndarray | None = None

    def start(self, frame: Frame) -> np.ndarray:
        """The hand-over: the search begins at ``frame`` (the lens where it is); A_L's first
        observation."""
        self.begin(frame)
        return self.observe(frame)

    def begin(self, frame: Frame) -> None:
        """The search begins at ``frame``, with no observation made (a scripted search
        reads the memory, not E(I))."""
        self.memory.clear()
        self._previous = self._current = None
        if self._remembers:
            self.memory.add(lens_fraction(self.lens), frame, self.senses.target(frame))

    def observe(self, frame: Frame) -> np.ndarray:
        features = self.senses.features(frame)
        self._previous = self._current if self._current is not None else features
        self._current = features
        parts = [features]
        if self.config.observe_previous:
            positions = self.memory.positions
            relative = self.memory.relative_sharpness()
            previous_position = positions[-2] if len(positions) > 1 else positions[-1]
            ratio = relative[-1] - relative[-2] if len(relative) > 1 else 0.0
            detected = float(self.memory.seen[-1].detected)
            state = bracket_of(self.memory, self.config.peak_bracket)
            offset = 0.0
            if state.best is not None:
                offset = (positions[state.best] - positions[-1]) / self.config.peak_bracket
                offset = float(np.clip(offset, -BEST_OFFSET_MAX_BRACKETS, BEST_OFFSET_MAX_BRACKETS))
            parts += [
                self._previous,
                np.array(
                    [
                        previous_position,
                        ratio,
                        detected,
                        float(state.best is not None),
                        offset,
                        float(state.below),
                        float(state.above),
                    ],
                    dtype=np.float32,
                ),
            ]
        if self.config.observe_defocus:
            parts.append(self._defocus_extras())
        observation = np.concatenate(parts).astype(np.float32)
        if self.config.observe_lens:
            observation = with_lens_position(observation, self.lens, self.config.focus_action)
        return observation

    def focus_estimate(self) -> FocusEstimate | None:
        """Depth from defocus over this search's frames, with this episode's optics and
        options: what A_L observes (and the pre-training expert follows)."""
        return self.memory.focus_estimate(self._blur_px_per_range, self.config.fit_blur_scale)

    def _defocus_extras(self) -> np.ndarray:
        """Depth from defocus over every frame of this search (``DEFOCUS_EXTRAS``; measured on
        the train split, fitting all frames at once converged more often than the last two
        or the two sharpest); until two lens positions differ, no estimate: here, offset 0,
        confidence 0."""
        here = self.memory.positions[-1]
        estimate = self.focus_estimate()
        if estimate is None:
            return np.array([here, 0.0, 0.0], dtype=np.float32)
        offset = (estimate.position - here) / self.config.peak_bracket
        offset = float(np.clip(offset, -DEFOCUS_OFFSET_MAX_BRACKETS, DEFOCUS_OFFSET_MAX_BRACKETS))
        return np.array([estimate.position, offset, estimate.confidence], dtype=np.float32)

    def step(self, action: np.ndarray) -> FocusMove:
        """One move of A_L: set the lens, grab, detect (``FocusMove``).

        Detection rule: the reward is eq. 12 on the detector's own verdict (-0.01 x BRISQUE
        of any detected box, so a blurred detection already scores better than none); the
        search ends on ``rewards.target_found`` (with the optional sharpness gate). Peak
        rule: -1 for every move that does not end the search, eq. 12 on the frame it ends
        on: the agent is paid for ending in focus quickly, not for passing detections.
        """
        config = self.config
        limits = self.lens.focus_range
        self.lens.set_focus(
            focus_action_to_v(int(action[0]), int(action[1]), limits, config.focus_action)
        )
        frame = self.camera.grab()
        seen = self.senses.target(frame)
        if self._remembers:
            self.memory.add(lens_fraction(self.lens), frame, seen)
        if config.stop_rule == "detection":
            reward = focus_reward(seen.detected, seen.brisque)
            found = target_found(
                seen.detected, seen.brisque, config.sharp_brisque_max, seen.clipped_fraction
            )
            return FocusMove(frame, replace(seen, detected=found), reward, 1, found)
        if config.stop_rule == "defocus" and defocus_here(
            self.memory, self._blur_px_per_range, config.defocus_stop, config.fit_blur_scale
        ):
            return FocusMove(frame, seen, focus_reward(seen.detected, seen.brisque), 1, True)
        best = peak_behind(self.memory, config.peak_bracket)
        if best is None:
            return FocusMove(frame, seen, -1.0, 1, False)
        moves = 1
        if best != len(self.memory.positions) - 1:  # the peak is behind: go back to it
            position = self.memory.positions[best]
            self.lens.set_focus(range_value(position, limits))
            frame = self.camera.grab()
            seen = self.senses.target(frame)
            self.memory.add(lens_fraction(self.lens), frame, seen)
            moves = 2
        return FocusMove(frame, seen, focus_reward(seen.detected, seen.brisque), moves, True)


def focus_info(frame: Frame, seen: TargetSeen) -> dict[str, Any]:
    return {
        "focus_v": float(frame.meta.get("focus_v", np.nan)),
        "detected": seen.detected,
        "score": seen.score,
        "brisque": seen.brisque,
        "clipped_fraction": seen.clipped_fraction,
        **truth_info(frame),
    }


class FocusEnv(gym.Env[np.ndarray, np.ndarray]):
    """
    ## Description
    The low-level agent A_L of DASHA drives the liquid lens until the object detector
    finds the target. Episodes start from a usable exposure (as A_H would hand over) with
    the lens at its factory 24 V.

    ## Action Space
    `MultiDiscrete([47, 100])`: coarse volts and hundredths; `focus_v = 24 + coarse +
    0.01 * fine`, clamped to 70 V (`dasha.envs.actions`, monotonic). With
    `focus_action="normalised"`: the same shape on any lens, its points spread evenly over
    the lens's own range.

    ## Observation Space
    `Box(D,)`: the encoder features E(I) of the current frame (D = 1280 for
    efficientnet-lite0), the paper's observation; with `observe_lens=True`, `Box(D + 1,)`:
    also the lens position the driver set, as a fraction of the action grid
    (`dasha.envs.actions.focus_grid_position`). With `observe_previous=True` it also holds
    the previous frame's E(I), its lens position (fraction of the range), the log ratio of
    this frame's sharpness to it and whether the target is detected now
    (`FocusSearch.observe`). With `observe_defocus=True` also depth from defocus's
    estimate of the in-focus position from the search's frames, its offset from here and
    its confidence (`dasha.perception.defocus`). Never ground truth.

    ## Rewards
    Eq. 12: -1 while the target is not detected; -0.01 x BRISQUE of the detected box. With
    `stop_rule="peak"`: -1 for every move that does not end the search, eq. 12 on the
    frame it ends on.

    ## Starting State
    Random scene, distance 140..200 cm, illuminance 13..300 lx (simulator); exposure
    metered to a suitable histogram; lens at 24 V.

    ## Episode End
    Terminated when the target is detected (`stop_rule="detection"`) or when the sharpest
    detected frame is bracketed by less sharp ones (`stop_rule="peak"`, `dasha.envs.stop`;
    the lens returns to it); truncated after 10 lens moves (the horizon).

    ## Arguments
    `config` (`dasha.envs.config.EpisodeConfig`: conditions, scenes, encoder, detector,
    target class, cache, `sharp_brisque_max` (optional: the target counts as found only
    when its box's BRISQUE is at most this; default `None`, the paper's eq. 12),
    `observe_lens` (default `False`, the paper), ...), or its fields as keyword arguments
    over it; `rig`, `sim_options`, `senses` (shared perception).

    ## Version History
    * v0: initial version
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        config: EpisodeConfig | None = None,
        *,
        rig: RigFactory | None = None,
        sim_options: dict[str, Any] | None = None,
        senses: Senses | None = None,
        render_mode: str | None = None,
        **options: Any,
    ) -> None:
        self.config = episode_config(config, options)
        self.senses, self.camera, self.lens, self.sampler, self.table_us = build_env(
            self.config, rig=rig, sim_options=sim_options, senses=senses
        )
        self.action_space = gym.spaces.MultiDiscrete(
            list(focus_action_shape(self.lens.focus_range, self.config.focus_action))
        )
        self.observation_space = focus_observation_space(self.senses.feature_dim, self.config)
        self.search = FocusSearch(self.camera, self.lens, self.senses, self.config)
        self.render_mode = render_mode
        self._frame: Frame | None = None
        self._moves = 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        conditions = reset_rig(self.camera, self.lens, self.np_random, self.sampler)
        self._frame = meter(self.camera, self.table_us)
        self._moves = 0
        info = {
            "conditions": conditions,
            "exposure_us": self._frame.exposure_us,
            **truth_info(self._frame),
        }
        return self.search.start(self._frame), info

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        move = self.search.step(action)
        self._frame = move.frame
        self._moves += move.lens_moves
        terminated = move.over
        truncated = not terminated and self._moves >= HORIZON
        return (
            self.search.observe(move.frame),
            move.reward,
            terminated,
            truncated,
            {"moves": self._moves, **focus_info(move.frame, move.seen)},
        )

    def render(self) -> Any:
        return frame_rgb(self._frame)
