"""``dasha/Replay-v0``: train offline on a grid recorded from a real rig ("virtual pre-training").

Record once with ``dasha capture`` (an exposure x focus grid of frames), then train either
agent on it: the ``replay`` camera and lens serve the recorded frame nearest to the
requested exposure and focus. Conditions cannot change inside a recording, so every
episode sees the same scene; record several grids for variety.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym

from dasha.errors import ConfigError


def replay_rig(recording: str | Path) -> Any:
    from dasha.hardware import open_camera, open_lens

    camera = open_camera("replay", path=str(recording))
    return camera, open_lens("replay", camera=camera)


def make_replay_env(
    recording: str | Path, agent: str = "focus", **kwargs: Any
) -> gym.Env[Any, Any]:
    """The focus (A_L, default) or exposure (A_H) env over a recording directory."""
    rig = lambda: replay_rig(recording)  # noqa: E731 - a factory, called by the env
    if agent == "focus":
        from dasha.envs.focus import FocusEnv

        return FocusEnv(rig=rig, **kwargs)
    if agent == "exposure":
        from dasha.envs.exposure import ExposureEnv

        return ExposureEnv(rig=rig, **kwargs)
    raise ConfigError(f"Replay-v0 agent {agent!r}: choose focus or exposure")
