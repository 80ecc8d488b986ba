"""``dasha/Focus-v0``: the low-level agent A_L alone (paper IV-A "Autofocus", Alg. 2)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import gymnasium as gym
import numpy as np

from dasha.envs.actions import focus_action_shape, focus_action_to_v, focus_grid_position
from dasha.envs.conditions import RigFactory, reset_rig
from dasha.envs.config import EpisodeConfig, build_env, episode_config
from dasha.envs.exposure import frame_rgb, truth_info
from dasha.envs.metering import meter
from dasha.envs.rewards import focus_reward, target_found
from dasha.hardware.base import Camera, Frame, Lens
from dasha.perception.senses import Senses, TargetSeen

HORIZON = 10


def focus_observation_space(feature_dim: int, observe_lens: bool = False) -> gym.spaces.Box:
    return gym.spaces.Box(
        -np.inf, np.inf, shape=(feature_dim + int(observe_lens),), dtype=np.float32
    )


def focus_observation(senses: Senses, frame: Frame, lens: Lens, observe_lens: bool) -> np.ndarray:
    """A_L's observation: E(I), and optionally where the lens is on its action grid.

    The paper's A_L sees E(I) only. Its second move then depends on where its (random, in
    training) first move put the lens, which the blur in E(I) shows only up to sign and
    scale; the lens driver knows the position it set (no ground truth), and with it the
    second move is a plain regression "from this position and this blur, go there".
    """
    features = senses.features(frame)
    return with_lens_position(features, lens) if observe_lens else features


def with_lens_position(features: np.ndarray, lens: Lens) -> np.ndarray:
    position = focus_grid_position(lens.focus, lens.focus_range)
    return np.append(features, np.float32(position)).astype(np.float32)


def focus_step(
    camera: Camera,
    lens: Lens,
    senses: Senses,
    action: np.ndarray,
    sharp_brisque_max: float | None = None,
    focus_action: str = "volts",
) -> tuple[Frame, TargetSeen, float]:
    """One move of A_L: set the lens, grab, detect the target; returns eq. 12's reward.

    The reward is eq. 12 on the detector's own verdict (-0.01 x BRISQUE of any detected
    box, so a blurred detection already scores better than none); ``seen.detected`` is the
    search's verdict (``rewards.target_found``, with the optional sharpness gate), which
    ends the episode.
    """
    lens.set_focus(
        focus_action_to_v(int(action[0]), int(action[1]), lens.focus_range, focus_action)
    )
    frame = camera.grab()
    seen = senses.target(frame)
    reward = focus_reward(seen.detected, seen.brisque)
    found = target_found(seen.detected, seen.brisque, sharp_brisque_max, seen.clipped_fraction)
    return frame, replace(seen, detected=found), reward


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
    (`dasha.envs.actions.focus_grid_position`). Never ground truth.

    ## Rewards
    Eq. 12: -1 while the target is not detected; -0.01 x BRISQUE of the detected box.

    ## Starting State
    Random scene, distance 140..200 cm, illuminance 13..300 lx (simulator); exposure
    metered to a suitable histogram; lens at 24 V.

    ## Episode End
    Terminated when the target is detected; truncated after 10 lens moves (the horizon).

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
        self.observation_space = focus_observation_space(
            self.senses.feature_dim, self.config.observe_lens
        )
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
        return self._observation(self._frame), info

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        frame, seen, reward = focus_step(
            self.camera,
            self.lens,
            self.senses,
            action,
            self.config.sharp_brisque_max,
            self.config.focus_action,
        )
        self._frame = frame
        self._moves += 1
        terminated = seen.detected
        truncated = not terminated and self._moves >= HORIZON
        return (
            self._observation(frame),
            reward,
            terminated,
            truncated,
            {"moves": self._moves, **focus_info(frame, seen)},
        )

    def _observation(self, frame: Frame) -> np.ndarray:
        return focus_observation(self.senses, frame, self.lens, self.config.observe_lens)

    def render(self) -> Any:
        return frame_rgb(self._frame)
