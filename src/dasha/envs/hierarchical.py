"""The hierarchical DASHA episode (paper III-C, Fig. 2) and its PettingZoo form.

    A_H ("exposure") acts once: sets the exposure, the camera grabs a frame.
      peak P outside [50, 150]  -> A_H gets eq. 11's penalty, the episode ends (with
                                   ``EpisodeConfig.exposure_moves`` > 1, A_H moves again
                                   from the new frame until its moves are spent; with
                                   ``EpisodeConfig.handover="always"`` A_L then takes
                                   over all the same);
      P in [50, 150]            -> A_H gets +1 and hands over to A_L.
    A_L ("focus") moves the lens until the detector finds the target (eq. 12) or the
    horizon of 10 moves.

Only the agent that acts next receives an observation, as in RLlib's hierarchical
example. ``HierarchicalEpisode`` holds the logic once; ``dasha.envs.pettingzoo.DashaParallelEnv``
and ``dasha.envs.rllib.DashaMultiAgentEnv`` are thin adapters over it.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from dasha.envs.actions import focus_action_shape
from dasha.envs.conditions import RigFactory, reset_rig
from dasha.envs.config import EpisodeConfig, build_env, episode_config
from dasha.envs.exposure import (
    exposure_bracket_us,
    exposure_observation,
    exposure_observation_space,
    exposure_step,
    truth_info,
)
from dasha.envs.focus import HORIZON, FocusSearch, focus_info, focus_observation_space
from dasha.envs.rewards import is_suitable_peak
from dasha.hardware.base import Frame
from dasha.perception.histogram import Histogram, histogram
from dasha.perception.senses import Senses

EXPOSURE, FOCUS = "exposure", "focus"
AGENTS = (EXPOSURE, FOCUS)

StepResult = tuple[
    dict[str, np.ndarray],
    dict[str, float],
    dict[str, bool],
    dict[str, bool],
    dict[str, dict[str, Any]],
]


class HierarchicalEpisode:
    """One camera, one lens, two agents taking turns as in Fig. 2.

    ``config``: the episode (``dasha.envs.config.EpisodeConfig``), or its fields as keyword
    arguments over it; ``rig``, ``sim_options`` and ``senses`` as the single-agent envs.
    """

    def __init__(
        self,
        config: EpisodeConfig | None = None,
        *,
        rig: RigFactory | None = None,
        sim_options: dict[str, Any] | None = None,
        senses: Senses | None = None,
        **options: Any,
    ) -> None:
        self.config = episode_config(config, options)
        self.senses, self.camera, self.lens, self.sampler, self.table_us = build_env(
            self.config, rig=rig, sim_options=sim_options, senses=senses
        )
        self._bracket_us = exposure_bracket_us(self.config, self.table_us)
        self.observation_spaces = {
            EXPOSURE: exposure_observation_space(self.senses.feature_dim, self._bracket_us),
            FOCUS: focus_observation_space(self.senses.feature_dim, self.config),
        }
        self.action_spaces: dict[str, gym.Space[Any]] = {
            EXPOSURE: gym.spaces.Discrete(len(self.table_us)),
            FOCUS: gym.spaces.MultiDiscrete(
                list(focus_action_shape(self.lens.focus_range, self.config.focus_action))
            ),
        }
        self.search = FocusSearch(self.camera, self.lens, self.senses, self.config)
        self.active = EXPOSURE
        self.lens_moves = self.exposure_moves = 0
        self.first_frame: Frame | None = None
        self.last_frame: Frame | None = None

    def reset(
        self, rng: np.random.Generator
    ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        conditions = reset_rig(self.camera, self.lens, rng, self.sampler)
        frame = self.first_frame = self.last_frame = self.camera.grab()
        self.active, self.lens_moves, self.exposure_moves = EXPOSURE, 0, 0
        return {EXPOSURE: self.observe_exposure(frame)}, {
            EXPOSURE: {"conditions": conditions, **truth_info(frame)}
        }

    def observe_exposure(self, frame: Frame, hist: Histogram | None = None) -> np.ndarray:
        """A_H's observation of ``frame`` under this episode's options."""
        return exposure_observation(self.senses, frame, hist, bracket_us=self._bracket_us)

    def resume(self, frame: Frame) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        """Start from ``frame`` as the rig is now, with no factory reset and no new frame
        (a continuous-mode re-trigger; the paper's reset is a cold start's protocol). When
        its histogram is already suitable A_H has nothing to do (eq. 11's hand-over
        condition holds) and A_L acts first."""
        self.first_frame = self.last_frame = frame
        self.lens_moves = self.exposure_moves = 0
        info = truth_info(frame)
        if is_suitable_peak(histogram(frame.as_uint8()).peak):
            self.active = FOCUS
            return {FOCUS: self.search.start(frame)}, {FOCUS: info}
        self.active = EXPOSURE
        return {EXPOSURE: self.observe_exposure(frame)}, {EXPOSURE: info}

    def step(self, actions: dict[str, Any]) -> StepResult:
        if self.active not in actions:
            raise ValueError(
                f"it is the {self.active!r} agent's turn; got actions for {sorted(actions)}"
            )
        return (
            self._exposure(actions[EXPOSURE])
            if self.active == EXPOSURE
            else self._focus(actions[FOCUS])
        )

    def _exposure(self, action: Any) -> StepResult:
        frame, hist, reward, info = exposure_step(self.camera, self.senses, self.table_us, action)
        self.last_frame = frame
        peak = hist.peak
        self.exposure_moves += 1
        suitable = is_suitable_peak(peak)
        spent = self.exposure_moves >= self.config.exposure_moves
        info["handed_over"] = suitable or (spent and self.config.handover == "always")
        if not suitable and not spent:
            # unsuitable, moves left: A_H looks again from the frame its move gave
            return (
                {EXPOSURE: self.observe_exposure(frame, hist)},
                {EXPOSURE: reward},
                {EXPOSURE: False, FOCUS: False},
                {EXPOSURE: False, FOCUS: False},
                {EXPOSURE: info},
            )
        if not info["handed_over"]:  # unsuitable histogram: the episode ends with A_H's penalty
            self.active = ""
            return (
                {},
                {EXPOSURE: reward},
                {EXPOSURE: True, FOCUS: True},
                {EXPOSURE: False, FOCUS: False},
                {EXPOSURE: info},
            )
        self.active = FOCUS
        obs = {FOCUS: self.search.start(frame)}
        return (
            obs,
            {EXPOSURE: reward},
            {EXPOSURE: True, FOCUS: False},
            {EXPOSURE: False, FOCUS: False},
            {EXPOSURE: info, FOCUS: {}},
        )

    def _focus(self, action: Any) -> StepResult:
        move = self.search.step(np.asarray(action))
        self.last_frame = move.frame
        self.lens_moves += move.lens_moves
        done = move.over
        cut = not done and self.lens_moves >= HORIZON
        if done or cut:
            self.active = ""
        info = {
            "moves": self.lens_moves,
            **focus_info(move.frame, move.seen),
            "moves_made": move.lens_moves,  # 2: the peak rule went back to the peak's frame
        }
        return (
            {FOCUS: self.search.observe(move.frame)},
            {FOCUS: move.reward},
            {FOCUS: done},
            {FOCUS: cut},
            {FOCUS: info},
        )
