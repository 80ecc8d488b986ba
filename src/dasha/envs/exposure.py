"""``dasha/Exposure-v0``: the high-level agent A_H alone (paper IV-A "Exposure Time", Alg. 1)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gymnasium as gym
import numpy as np

from dasha.envs.conditions import RigFactory, reset_rig
from dasha.envs.config import EpisodeConfig, build_env, episode_config
from dasha.envs.rewards import (
    exposure_reward,
    is_suitable_peak,
    is_tolerable_peak,
    suitable_peaks,
)
from dasha.hardware.base import Camera, Frame
from dasha.perception.histogram import (
    HISTOGRAM_BINS,
    Histogram,
    black_fraction,
    bracket_peaks,
    clipped_fraction,
    histogram,
)
from dasha.perception.senses import Senses


def exposure_observation(
    senses: Senses,
    frame: Frame,
    hist: Histogram | None = None,
    bracket_us: np.ndarray | None = None,
) -> np.ndarray:
    """A_H's observation of ``frame``. Without ``bracket_us`` the paper's: E(I) followed by
    the 10 histogram values and the 11 bin edges. With it (the exposure table), the
    histogram, then for each exposure of ``bracket_us`` whether the peak the frame predicts
    there is suitable and that peak / 255 (``perception.histogram.bracket_peaks``), then the
    frame's clipped and black fractions (what the prediction cannot see past).

    Counts are divided by the pixel count and edges by 255 (the same numbers, scaled
    for a neural network). ``hist``: the frame's histogram when already computed.
    """
    image = frame.as_uint8()
    hist = hist or histogram(image)
    hist_values = [hist.counts / image.size, hist.bin_edges / 255.0]
    if bracket_us is None:
        return np.concatenate([senses.features(frame), *hist_values]).astype(np.float32)
    peaks = bracket_peaks(image, frame.exposure_us, bracket_us)
    suitable = suitable_peaks(peaks)
    margins = [clipped_fraction(image), black_fraction(image)]
    return np.concatenate([*hist_values, suitable, peaks / 255.0, margins]).astype(np.float32)


def exposure_sweep(camera: Camera, table_us: np.ndarray) -> Iterator[tuple[Frame, Histogram]]:
    """The frame and its histogram at each exposure of ``table_us``, each tried in turn on
    ``camera`` (ground truth on the simulator, where frames are free)."""
    for exposure_us in table_us:
        camera.set_exposure_us(float(exposure_us))
        frame = camera.grab()
        yield frame, histogram(frame.as_uint8())


def suitable_exposures(camera: Camera, table_us: np.ndarray) -> Iterator[bool]:
    """Whether each exposure of ``table_us`` gives a suitable histogram (``exposure_sweep``;
    stop early with ``any``)."""
    return (is_suitable_peak(hist.peak) for _, hist in exposure_sweep(camera, table_us))


def exposure_bracket_us(config: EpisodeConfig, table_us: np.ndarray) -> np.ndarray | None:
    """The exposures A_H's virtual bracket covers under ``config`` (None: the paper's)."""
    return table_us if config.exposure_observation == "bracket" else None


def exposure_step(
    camera: Camera, senses: Senses, table_us: np.ndarray, action: Any
) -> tuple[Frame, Histogram, float, dict[str, Any]]:
    """One move of A_H: set the exposure from the table, grab; returns eq. 11's reward and info."""
    camera.set_exposure_us(float(table_us[int(action)]))
    frame = camera.grab()
    hist = histogram(frame.as_uint8())
    brisque = senses.frame_brisque(frame) if is_tolerable_peak(hist.peak) else None
    return frame, hist, exposure_reward(hist.peak, brisque), exposure_info(frame, hist)


def exposure_info(frame: Frame, hist: Histogram) -> dict[str, Any]:
    return {
        "exposure_us": frame.exposure_us,
        "peak": hist.peak,
        "suitable": is_suitable_peak(hist.peak),
        **truth_info(frame),
    }


def truth_info(frame: Frame) -> dict[str, Any]:
    """The simulator's ground truth and clock for ``info`` (evaluation only, never rewards)."""
    keys = ("in_focus", "blur_px", "in_focus_v", "sim_time_s", "frames", "lens_moves")
    return {k: frame.meta[k] for k in keys if k in frame.meta}


def frame_rgb(frame: Frame | None) -> np.ndarray | None:
    """``render()`` of the envs: the last frame as an RGB array."""
    return None if frame is None else np.repeat(frame.as_uint8()[..., None], 3, axis=2)


def exposure_observation_space(
    feature_dim: int, bracket_us: np.ndarray | None = None
) -> gym.spaces.Box:
    """``bracket_us``: the exposures of the virtual bracket (None: the paper's observation)."""
    hist_dim = 2 * HISTOGRAM_BINS + 1
    n = feature_dim + hist_dim if bracket_us is None else hist_dim + 2 * len(bracket_us) + 2
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

    With `exposure_observation="bracket"` (no E(I); N = the table's length):
    | index | meaning |
    |---|---|
    | 0 .. 20 | histogram values and bin edges, as above |
    | 21 .. 20+N | 1 where the peak the frame predicts at that exposure is suitable |
    | 21+N .. 20+2N | that predicted peak / 255 |
    | 21+2N, 22+2N | the frame's clipped and black fractions |

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
    `config` (`dasha.envs.config.EpisodeConfig`: conditions, scenes, encoder, cache, ...;
    its detector and A_L's options do not apply here), or its fields as keyword arguments
    over it; `max_moves`; `rig` (a factory of (camera, lens); default the simulator),
    `sim_options`, `senses` (shared perception).

    ## Version History
    * v0: initial version
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        config: EpisodeConfig | None = None,
        *,
        max_moves: int = 1,
        rig: RigFactory | None = None,
        sim_options: dict[str, Any] | None = None,
        senses: Senses | None = None,
        render_mode: str | None = None,
        **options: Any,
    ) -> None:
        self.config = episode_config(config, options)
        # The exposure agent needs no detector: BRISQUE of the frame is its only judge.
        self.senses, self.camera, self.lens, self.sampler, self.table_us = build_env(
            self.config, rig=rig, sim_options=sim_options, senses=senses, with_detector=False
        )
        self.action_space = gym.spaces.Discrete(len(self.table_us))
        self._bracket_us = exposure_bracket_us(self.config, self.table_us)
        self.observation_space = exposure_observation_space(
            self.senses.feature_dim, self._bracket_us
        )
        self.max_moves = max_moves
        self.render_mode = render_mode
        self._frame: Frame | None = None
        self._moves = 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        conditions = reset_rig(self.camera, self.lens, self.np_random, self.sampler)
        self._frame = self.camera.grab()
        self._moves = 0
        hist = histogram(self._frame.as_uint8())
        info = {"conditions": conditions, **exposure_info(self._frame, hist)}
        return exposure_observation(self.senses, self._frame, hist, self._bracket_us), info

    def step(self, action: np.int64) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        frame, hist, reward, info = exposure_step(self.camera, self.senses, self.table_us, action)
        self._frame = frame
        self._moves += 1
        # A_H's role ends with its move budget: that is the end of its task (terminated), not a
        # time limit, so value bootstrapping stops there too.
        terminated = is_suitable_peak(hist.peak) or self._moves >= self.max_moves
        obs = exposure_observation(self.senses, frame, hist, self._bracket_us)
        return obs, reward, terminated, False, info

    def render(self) -> Any:
        return frame_rgb(self._frame)
