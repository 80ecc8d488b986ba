"""Classical auto-exposure baselines on the simulator: from the factory 20000 us to a
histogram the focus agent accepts (peak P in [50, 150])."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from dasha.baselines.ae import AE_METHODS, run_ae
from dasha.errors import ConfigError
from dasha.hardware.sim import sim_rig
from dasha.perception.histogram import histogram


@pytest.mark.parametrize("illuminance_lux", [13.0, 300.0])
@pytest.mark.parametrize("scene", ["cameraman", "motorcycle"])
@pytest.mark.parametrize("method", list(AE_METHODS))
def test_ae_reaches_a_suitable_histogram(method, scene, illuminance_lux):
    camera, _ = sim_rig(scene=scene, distance_cm=170.0, illuminance_lux=illuminance_lux, seed=3)
    assert camera.exposure_us == 20_000.0
    result = run_ae(method, camera)
    assert result.converged and result.suitable
    assert 50 <= result.peak <= 150
    assert result.exposure_us == camera.exposure_us
    # the next frame at the final exposure is just as good (no stale frame was judged)
    assert 50 <= histogram(camera.grab().as_uint8()).peak <= 150
    assert result.frames == len(result.mean_levels)
    assert result.moves == camera.clock.exposure_changes
    assert result.sim_time_s is not None and result.sim_time_s > 0
    dark = illuminance_lux < 100
    assert (result.exposure_us > 20_000.0) == dark  # longer in the dark, shorter in the light


def test_agc_takes_more_frames_than_auto_once_on_a_big_step():
    frames = {}
    for method in ("agc", "once"):
        camera, _ = sim_rig(scene="cameraman", distance_cm=170.0, illuminance_lux=13.0, seed=0)
        result = run_ae(method, camera)
        frames[method] = result.frames
        means = result.mean_levels
        if method == "agc":  # damped: each frame closes part of the gap, never overshoots
            assert all(a < b for a, b in itertools.pairwise(means))
    assert frames["once"] <= 3
    assert frames["agc"] >= 2 * frames["once"] + 2, frames


def test_the_bracket_meter_exposes_in_one_move_unless_the_frame_is_clipped():
    """From one frame it predicts every exposure's histogram: one move from a dim start;
    from a clipped one it has to look again."""
    camera, _ = sim_rig(scene="cameraman", distance_cm=170.0, illuminance_lux=5.0, seed=1)
    result = run_ae("bracket", camera)
    assert result.suitable and result.moves == 1 and result.frames == 2
    camera, _ = sim_rig(scene="cameraman", distance_cm=170.0, illuminance_lux=2000.0, seed=1)
    assert np.mean(camera.grab().as_uint8() >= 250) > 0.5  # the premise: mostly clipped
    result = run_ae("bracket", camera)
    assert result.suitable and 2 <= result.moves <= 3


def test_exposure_is_clamped_to_the_camera_limits():
    camera, _ = sim_rig(scene="motorcycle", distance_cm=170.0, illuminance_lux=13.0, seed=0)
    result = run_ae("once", camera, target_mean_level=250.0)  # wants more than 1 s
    assert result.exposure_us == camera.exposure_range_us.max
    assert not result.converged


@pytest.mark.parametrize(
    ("method", "tunables", "message"),
    [
        ("agc", {"speed_ratio": 1.5}, "speed_ratio must be < 1"),
        ("agc", {"max_frames": 0}, "max_frames must be > 0"),
        ("once", {"target_mean_level": 300.0}, r"target_mean_level must be in \(0, 255\)"),
        ("once", {"max_iterations": 1.5}, "max_iterations must be a whole number"),
        ("once", {"target": 70}, "unknown tunable"),
        ("bracket", {"candidates": 1}, "candidates must be at least 2"),
        ("manual", {}, "unknown auto-exposure method 'manual'"),
    ],
)
def test_bad_tunables_are_config_errors(sim_rig, method, tunables, message):
    camera, _ = sim_rig
    with pytest.raises(ConfigError, match=message):
        run_ae(method, camera, **tunables)
    assert camera.clock.frames == 0
