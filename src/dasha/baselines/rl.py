"""The two RL autofocus baselines of Table I, as the paper replicated them.

Both see a low-dimensional observation of four numbers — the lens position, a focus cue
now and one move ago, and the last move — and move the lens by one of a few signed steps
or stop:

- ``phase-shift`` (Chan et al. 2019): the cue is the *phase shift* a phase-detection (PDAF)
  sensor measures, i.e. the signed defocus in dioptres (the simulator's optics, plus
  0.02 dpt of measurement noise; a camera without PDAF pixels cannot run it). The reward
  is *reference-based*: how much closer the move brought the lens to the known in-focus
  voltage, plus +1 / -1 on stopping in / out of focus. Such a reward needs the reference
  at training time, which is the limitation DASHA removes.
- ``tenengrad`` (Yu et al. 2018): the cue is the log Tenengrad of the central window and
  the reward its change (no reference); stopping ends the episode.

Both are trained with Stable-Baselines3 PPO (an MLP on 4 numbers: fast).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from dasha.baselines.af_base import central_window
from dasha.envs.actions import exposure_table_us
from dasha.envs.conditions import reset_rig
from dasha.envs.config import EpisodeConfig
from dasha.envs.metering import meter
from dasha.errors import ConfigError, require
from dasha.hardware.sim import sim_rig
from dasha.io import write_json
from dasha.perception.focus import tenengrad
from dasha.trust import sign, verify

STEPS_V = (-3.0, -1.0, -0.3, -0.1, -0.03, 0.03, 0.1, 0.3, 1.0, 3.0)
HORIZON = 20
PDAF_NOISE_DPT = 0.02
REWARDS = ("phase-shift", "tenengrad")

# Stable-Baselines3 models are zipped cloudpickles (dasha.trust says why that matters).
MODEL_KIND = "A Stable-Baselines3 model.zip"


class LensStepEnv(gym.Env[np.ndarray, np.int64]):
    """Low-dimensional lens-stepping env shared by both RL baselines (see the module docstring)."""

    def __init__(
        self,
        reward: str = "phase-shift",
        scenes: list[str] | None = None,
        sim_options: dict[str, Any] | None = None,
        config: EpisodeConfig | None = None,
    ) -> None:
        if reward not in REWARDS:
            raise ConfigError(f"RL baseline reward {reward!r}: choose one of {', '.join(REWARDS)}")
        self.reward_kind = reward
        self.camera, self.lens = sim_rig(**(sim_options or {}))
        # Its episodes draw conditions as DASHA's do (``config``: set, split, scenes, grid);
        # perception and A_L's options do not apply to this low-dimensional env.
        config = config or EpisodeConfig()
        self.sampler = (config.with_options(scenes=scenes) if scenes else config).sampler()
        self.table_us = exposure_table_us(self.camera.exposure_range_us)
        self.action_space = gym.spaces.Discrete(len(STEPS_V) + 1)  # the last action stops
        self.observation_space = gym.spaces.Box(-20.0, 20.0, shape=(4,), dtype=np.float32)
        self._moves = 0

    def _measure(self) -> float:
        frame = self.camera.grab()
        self._frame = frame
        if self.reward_kind == "phase-shift":
            world = getattr(self.camera, "world", None)
            if world is None:
                raise ConfigError(
                    "the phase-shift baseline needs PDAF pixels: only the sim camera has them"
                )
            defocus = world.optics.defocus_dpt(self.lens.focus, world.conditions.distance_cm)
            return float(defocus + self.np_random.normal(0.0, PDAF_NOISE_DPT)) * 10.0
        return float(
            np.log1p(
                tenengrad(
                    frame.as_uint8(), central_window(frame.image.shape[1], frame.image.shape[0])
                )
            )
        )

    def _obs(self, last_step_v: float) -> np.ndarray:
        r = self.lens.focus_range
        position = (self.lens.focus - r.min) / (r.max - r.min)
        return np.array(
            [position, self._m / 10, self._m_prev / 10, last_step_v / 3], dtype=np.float32
        )

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        reset_rig(self.camera, self.lens, self.np_random, self.sampler)
        meter(self.camera, self.table_us)
        return self.start(), {}

    def start(self, seed: int | None = None) -> np.ndarray:
        """Begin focusing from the rig as it is (exposure and conditions set by the caller).

        ``seed`` reseeds the env's own noise (the PDAF cue's), so that the same rig and seed
        give the same run whatever ran before.
        """
        if seed is not None:
            self.np_random = np.random.default_rng(seed)
        self._moves = 0
        self._m = self._m_prev = self._measure()
        return self._obs(0.0)

    @property
    def last_frame(self) -> Any:
        return self._frame

    def _distance_v(self) -> float:
        return abs(self.lens.focus - float(self._frame.meta["in_focus_v"]))

    def step(self, action: np.int64) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        in_focus = bool(self._frame.meta.get("in_focus", False))
        if int(action) == len(STEPS_V):  # stop
            reward = (1.0 if in_focus else -1.0) if self.reward_kind == "phase-shift" else 0.0
            return self._obs(0.0), reward, True, False, {"in_focus": in_focus, "moves": self._moves}
        step_v = STEPS_V[int(action)]
        before = self._distance_v()
        self.lens.set_focus(self.lens.focus_range.clamp(round(self.lens.focus + step_v, 2)))
        self._moves += 1
        self._m_prev, self._m = self._m, self._measure()
        if self.reward_kind == "phase-shift":
            reward = before - self._distance_v()  # volts closer to the reference
        else:
            reward = self._m - self._m_prev  # log-Tenengrad gain
        truncated = self._moves >= HORIZON
        return (
            self._obs(step_v),
            float(reward),
            False,
            truncated,
            {"in_focus": bool(self._frame.meta.get("in_focus")), "moves": self._moves},
        )


def train_rl_baseline(
    reward: str,
    out: str | Path,
    steps: int = 30_000,
    seed: int = 0,
    scenes: list[str] | None = None,
    config: EpisodeConfig | None = None,
) -> dict[str, Any]:
    """Train one RL baseline with SB3 PPO; writes ``model.zip`` and ``curve.json`` under ``out``.

    ``config``: the episodes' conditions (default: the ``paper`` set).
    """
    sb3 = require("stable_baselines3", "rl")
    monitor = require("stable_baselines3.common.monitor", "rl")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    env = monitor.Monitor(LensStepEnv(reward, scenes, config=config))
    model = sb3.PPO(
        "MlpPolicy", env, n_steps=1024, batch_size=128, gamma=0.95, seed=seed, verbose=0
    )
    start = time.perf_counter()
    model.learn(total_timesteps=steps)
    returns, lengths = env.get_episode_rewards(), env.get_episode_lengths()
    curve, done = [], 0
    window = 50
    for i in range(window, len(returns) + 1, window):
        done = int(np.sum(lengths[:i]))
        curve.append(
            {
                "env_steps": done,
                f"charts/{reward}_return_mean": float(np.mean(returns[i - window : i])),
            }
        )
    tmp = out / "model.tmp.zip"
    model.save(tmp)
    tmp.replace(out / "model.zip")
    sign(out / "model.zip")
    write_json(out / "curve.json", curve)
    summary = {
        "reward": reward,
        "steps": steps,
        "wall_s": time.perf_counter() - start,
        "episodes": len(returns),
    }
    write_json(out / "summary.json", summary)
    return summary


class RlAutofocus:
    """A trained RL baseline driving a rig (deterministic policy, up to ``HORIZON`` moves)."""

    def __init__(self, model_path: str | Path, reward: str, *, trust: bool = False) -> None:
        sb3 = require("stable_baselines3", "rl")
        if not Path(model_path).is_file():
            raise ConfigError(
                f"no trained {reward} baseline at {model_path}: run `dasha bench` to train it"
            )
        verify(Path(model_path), MODEL_KIND, trust=trust)
        self.model = sb3.PPO.load(str(model_path), device="cpu")
        self.reward = reward

    def run(self, env: LensStepEnv, seed: int | None = None) -> dict[str, Any]:
        """Focus the env's rig from where it stands; returns moves and timing."""
        obs = env.start(seed)
        compute_s = 0.0
        for _ in range(HORIZON + 1):
            tick = time.perf_counter()
            action, _ = self.model.predict(obs, deterministic=True)
            compute_s += time.perf_counter() - tick
            obs, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                break
        return {"lens_moves": env._moves, "compute_s": compute_s, "final_focus_v": env.lens.focus}


def load_curve(path: str | Path) -> list[dict[str, float]]:
    return json.loads(Path(path).read_text()) if Path(path).is_file() else []
