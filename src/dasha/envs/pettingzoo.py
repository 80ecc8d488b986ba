"""PettingZoo ``ParallelEnv`` form of the hierarchical episode (see ``dasha.envs.hierarchical``)."""

from __future__ import annotations

import functools
from typing import Any

import gymnasium as gym
import numpy as np

from dasha.envs.hierarchical import AGENTS, EXPOSURE, HierarchicalEpisode, StepResult
from dasha.errors import require


def _parallel_base() -> type:

    return require("pettingzoo", "rl").ParallelEnv


class DashaParallelEnv(_parallel_base()):  # type: ignore[misc]
    """PettingZoo ``ParallelEnv`` over ``HierarchicalEpisode`` (only the agent on turn is live)."""

    metadata = {"name": "dasha_hierarchical_v0", "render_modes": []}

    def __init__(self, **kwargs: Any) -> None:
        self.episode = HierarchicalEpisode(**kwargs)
        self.possible_agents = list(AGENTS)
        self.agents: list[str] = []
        self._rng = np.random.default_rng()

    @functools.cache  # noqa: B019 - PettingZoo wants the same object each call
    def observation_space(self, agent: str) -> gym.Space[Any]:
        return self.episode.observation_spaces[agent]

    @functools.cache  # noqa: B019
    def action_space(self, agent: str) -> gym.Space[Any]:
        return self.episode.action_spaces[agent]

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        if seed is not None:
            self._rng = np.random.default_rng(seed)
            for i, agent in enumerate(AGENTS):
                self.episode.action_spaces[agent].seed(seed + i)
        obs, infos = self.episode.reset(self._rng)
        self.agents = [EXPOSURE]
        return obs, infos

    def step(self, actions: dict[str, Any]) -> StepResult:
        obs, rewards, terminated, truncated, infos = self.episode.step(actions)
        self.agents = [self.episode.active] if self.episode.active else []
        return obs, rewards, terminated, truncated, infos
