"""``dasha/Exposure-v0``: the high-level agent A_H alone (paper IV-A "Exposure Time", Alg. 1)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from dasha.envs.conditions import RigFactory, build_env, reset_rig
from dasha.envs.rewards import exposure_reward, is_suitable_peak, is_tolerable_peak
from dasha.envs.senses import Senses
from dasha.hardware.base import Frame
from dasha.hardware.sim import FACTORY_EXPOSURE_US, FACTORY_FOCUS_V
from dasha.perception.histogram import HISTOGRAM_BINS, histogram


def exposure_observation(senses: Senses, frame: Frame) -> np.ndarray:
    """E(I) followed by the 10 histogram values and the 11 bin edges.

    Counts are divided by the pixel count and edges by 255 (the same numbers, scaled
    for a neural network).
    """
    image = frame.as_uint8()
    hist = histogram(image)
    return np.concatenate(
        [senses.features(frame), hist.counts / image.size, hist.bin_edges / 255.0]
    ).astype(np.float32)


def exposure_observation_space(feature_dim: int) -> gym.spaces.Box:
    n = feature_dim + 2 * HISTOGRAM_BINS + 1
    return gym.spaces.Box(-np.inf, np.inf, shape=(n,), dtype=np.float32)


class ExposureEnv(gym.Env[np.ndarray, np.int64]):
    """
    ## Description
    The high-level agent A_H of DASHA picks the camera's exposure time from a table. The
    episode starts at the factory exposure (20000 us) with the lens at 24 V.

    ## Action Space
    `Discrete(N)`: index into the exposure table (`dasha.envs.actions`; 141 values on
    the acA2000-50gm, the original 148 without those above the camera's 1 s maximum).

    ## Observation Space
    | index | meaning |
    |---|---|
    | 0 .. D-1 | encoder features E(I) (D = 1280 for efficientnet-lite0) |
    | D .. D+9 | histogram values, as fractions of the pixels |
    | D+10 .. D+20 | histogram bin edges / 255 |

    ## Rewards
    Eq. 11: +1 if the histogram peak P is in [50, 150]; -0.01 BRISQUE of the frame if P is
    in [25, 50) or (150, 175]; -1 otherwise.

    ## Starting State
    A random scene, distance 140..200 cm and illuminance 13..300 lx (simulator), factory
    exposure and lens.

    ## Episode End
    Terminated when the peak is suitable or after `max_moves` moves (default 1: in the
    hierarchical system A_H gets one move, then its role ends either way).

    ## Arguments
    `encoder`, `detector` (for BRISQUE only here), `scenes`, `max_moves`, `cache_size`,
    `rig` (a factory of (camera, lens); default the simulator), `sim_options`.

    ## Version History
    * v0: initial version
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        encoder: str = "efficientnet-lite0",
        scenes: str | list[str] | None = None,
        max_moves: int = 1,
        cache_size: int = 50_000,
        rig: RigFactory | None = None,
        sim_options: dict[str, Any] | None = None,
        senses: Senses | None = None,
        condition_grid: dict[str, Any] | None = None,
        render_mode: str | None = None,
    ) -> None:
        # The exposure agent needs no detector: BRISQUE of the frame is its only judge.
        self.senses, self.camera, self.lens, self.sampler, self.table_us = build_env(
            encoder=encoder,
            detector=None,
            target=None,
            cache_size=cache_size,
            rig=rig,
            sim_options=sim_options,
            senses=senses,
            scenes=scenes,
            condition_grid=condition_grid,
        )
        self.action_space = gym.spaces.Discrete(len(self.table_us))
        self.observation_space = exposure_observation_space(self.senses.feature_dim)
        self.max_moves = max_moves
        self.render_mode = render_mode
        self._frame: Frame | None = None
        self._moves = 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        conditions = reset_rig(
            self.camera,
            self.lens,
            self.np_random,
            self.sampler,
            FACTORY_EXPOSURE_US,
            FACTORY_FOCUS_V,
        )
        self._frame = self.camera.grab()
        self._moves = 0
        return exposure_observation(self.senses, self._frame), {
            "conditions": conditions,
            **self._info(self._frame),
        }

    def step(self, action: np.int64) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self.camera.set_exposure_us(float(self.table_us[int(action)]))
        frame = self._frame = self.camera.grab()
        self._moves += 1
        peak = histogram(frame.as_uint8()).peak
        brisque = self.senses.frame_brisque(frame) if is_tolerable_peak(peak) else None
        reward = exposure_reward(peak, brisque)
        # A_H's role ends with its move budget: that is the end of its task (terminated), not a
        # time limit, so value bootstrapping stops there too.
        terminated = is_suitable_peak(peak) or self._moves >= self.max_moves
        return (
            exposure_observation(self.senses, frame),
            reward,
            terminated,
            False,
            self._info(frame),
        )

    def _info(self, frame: Frame) -> dict[str, Any]:
        peak = histogram(frame.as_uint8()).peak
        return {
            "exposure_us": frame.exposure_us,
            "peak": peak,
            "suitable": is_suitable_peak(peak),
            **_truth(frame),
        }

    def render(self) -> Any:
        return (
            None if self._frame is None else np.repeat(self._frame.as_uint8()[..., None], 3, axis=2)
        )


def _truth(frame: Frame) -> dict[str, Any]:
    keys = ("in_focus", "blur_px", "in_focus_v", "sim_time_s", "frames", "lens_moves")
    return {k: frame.meta[k] for k in keys if k in frame.meta}
