"""Gymnasium envs of DASHA, registered on import:

- ``dasha/Exposure-v0``: A_H alone (exposure table, eq. 11);
- ``dasha/Focus-v0``: A_L alone (coarse + fine lens voltage, eq. 12, horizon 10);
- ``dasha/Replay-v0``: either agent on a grid recorded from a real rig (``dasha capture``);

plus the two-agent hierarchical episode (``dasha.envs.hierarchical``: PettingZoo;
``dasha.envs.rllib``: RLlib).
"""

from __future__ import annotations

import gymnasium as gym

from dasha.envs.focus import HORIZON

if "dasha/Exposure-v0" not in gym.registry:
    gym.register(id="dasha/Exposure-v0", entry_point="dasha.envs.exposure:ExposureEnv")
    gym.register(
        id="dasha/Focus-v0", entry_point="dasha.envs.focus:FocusEnv", max_episode_steps=HORIZON
    )
    # Frames recorded on a real rig: registered as a real camera's env.
    gym.register(
        id="dasha/Replay-v0",
        entry_point="dasha.envs.replay:make_replay_env",
        max_episode_steps=HORIZON,
        nondeterministic=True,
    )

__all__ = ["HORIZON"]
