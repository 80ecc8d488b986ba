"""A_H's virtual exposure bracket (``perception.histogram.bracket_peaks``,
``EpisodeConfig.exposure_observation="bracket"``): the peak every exposure of the table
would give, predicted from one frame."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import dasha.envs  # noqa: F401 - registers the envs
from dasha.envs.config import EpisodeConfig
from dasha.envs.rewards import is_suitable_peak
from dasha.errors import ConfigError
from dasha.perception.histogram import HISTOGRAM_BINS, bracket_peaks, histogram

TABLE_US = np.geomspace(50.0, 1e6, 141)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bracket_peaks_are_the_histogram_of_the_scaled_frame(seed: int):
    """Exactly np.histogram's peak of the frame scaled and clipped, at every exposure
    (ties, a single level and the closed last bin included)."""
    rng = np.random.default_rng(seed)
    image = np.clip(rng.gamma(2.0, 20.0 * (seed + 1), (60, 50)), 0, 255).astype(np.uint8)
    predicted = bracket_peaks(image, 20_000.0, TABLE_US)
    for exposure_us, peak in zip(TABLE_US, predicted, strict=True):
        scaled = np.minimum(np.rint(image * (exposure_us / 20_000.0)), 255).astype(np.uint8)
        assert peak == pytest.approx(histogram(scaled).peak), exposure_us


def test_a_uniform_frame_predicts_its_own_level():
    image = np.full((20, 20), 80, np.uint8)
    peaks = bracket_peaks(image, 1000.0, [500.0, 1000.0, 4000.0])
    assert peaks.tolist() == [40.0, 80.0, 255.0]


def test_the_bracket_predicts_the_simulators_frames(sim_rig):
    """A linear sensor: from one unclipped frame, the suitability of shorter and longer
    exposures matches frames actually taken there (noise aside: within one bin)."""
    camera, _ = sim_rig
    camera.set_exposure_us(20_000.0)
    frame = camera.grab()
    image = frame.as_uint8()
    assert np.mean(image >= 250) < 0.01  # the premise: nothing hidden by clipping
    table = np.geomspace(2_000.0, 200_000.0, 12)
    predicted = bracket_peaks(image, frame.exposure_us, table)
    agree = 0
    for exposure_us, peak in zip(table, predicted, strict=True):
        camera.set_exposure_us(float(exposure_us))
        actual = histogram(camera.grab().as_uint8())
        bin_width = float(actual.bin_edges[1] - actual.bin_edges[0])
        assert abs(actual.peak - peak) <= bin_width + 1.0, exposure_us
        agree += is_suitable_peak(actual.peak) == is_suitable_peak(peak)
    assert agree >= len(table) - 1  # at most one borderline exposure differs
    assert any(is_suitable_peak(p) for p in predicted)
    assert not all(is_suitable_peak(p) for p in predicted)


def test_the_bracket_observation_drops_the_encoder():
    env = gym.make(
        "dasha/Exposure-v0", config=EpisodeConfig(exposure_observation="bracket")
    ).unwrapped
    obs, _ = env.reset(seed=3)
    n = len(env.table_us)
    assert obs.shape == env.observation_space.shape == (2 * HISTOGRAM_BINS + 1 + 2 * n + 2,)
    suitable, peaks = obs[21 : 21 + n], obs[21 + n : 21 + 2 * n]
    assert set(np.unique(suitable)) <= {0.0, 1.0}
    assert peaks[0] < 0.1 and peaks[-1] > 0.9  # the table spans black to clipped
    np.testing.assert_array_equal(
        suitable, [(49.99 <= 255 * p <= 150.01) for p in peaks.astype(np.float64)]
    )
    paper = gym.make("dasha/Exposure-v0").unwrapped
    assert paper.observation_space.shape == (paper.senses.feature_dim + 21,)


def test_an_unknown_exposure_observation_is_refused():
    with pytest.raises(ConfigError, match="choose among paper, bracket"):
        EpisodeConfig(exposure_observation="raw")
