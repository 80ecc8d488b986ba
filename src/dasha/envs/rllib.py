"""RLlib ``MultiAgentEnv`` form of the hierarchical episode (agent ids ``exposure``, ``focus``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from dasha.envs.hierarchical import AGENTS, EXPOSURE, FOCUS, HierarchicalEpisode
from dasha.errors import require

_rllib_env = require("ray.rllib.env.multi_agent_env", "rl")

POLICIES = {EXPOSURE: "exposure_policy", FOCUS: "focus_policy"}


def policy_mapping_fn(agent_id: str, *args: Any, **kwargs: Any) -> str:
    """Each agent id trains its own policy (two policies, different action spaces)."""
    return POLICIES[agent_id]


class DashaMultiAgentEnv(_rllib_env.MultiAgentEnv):  # type: ignore[name-defined]
    """Observations only for the agent that acts next; ``terminateds["__all__"]`` ends the episode."""

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.episode = HierarchicalEpisode(**(config or {}))
        self.possible_agents = list(AGENTS)
        self.agents = list(AGENTS)
        self.observation_spaces = dict(self.episode.observation_spaces)
        self.action_spaces = dict(self.episode.action_spaces)
        self._rng = np.random.default_rng()

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        return self.episode.reset(self._rng)

    def step(self, action_dict: dict[str, Any]) -> tuple[dict[str, Any], ...]:
        obs, rewards, _, _, infos = self.episode.step(action_dict)
        over = self.episode.active == ""
        # As RLlib's hierarchical example, agents end together through "__all__": an agent
        # marked done alone mid-episode is dropped from the episode by the env runner. The
        # 10-move horizon is part of the task (Alg. 2), so it terminates too: nothing to
        # bootstrap past it, and no agent needs a final observation.
        infos = {a: i for a, i in infos.items() if a in obs or a in rewards}
        return obs, rewards, {"__all__": over}, {"__all__": False}, infos
