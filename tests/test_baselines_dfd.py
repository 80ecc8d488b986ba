"""The ``dfd`` baseline: the scripted depth-from-defocus search, on the simulator."""

from __future__ import annotations

import pytest

from dasha.baselines.ae import run_ae
from dasha.baselines.dfd import DEFAULT_PROBES, DfdConfig, dfd_search
from dasha.envs.actions import range_fraction
from dasha.envs.config import EpisodeConfig
from dasha.errors import ConfigError
from dasha.hardware.sim import sim_rig


@pytest.mark.parametrize(
    ("scene", "distance_cm"), [("motorcycle", 145.0), ("cameraman", 195.0), ("cameraman", 60.0)]
)
def test_the_dfd_search_ends_detected_and_in_focus_in_a_few_moves(
    uncached_senses, scene, distance_cm
):
    camera, lens = sim_rig(scene=scene, distance_cm=distance_cm, illuminance_lux=100.0, seed=0)
    assert run_ae("once", camera).suitable
    before = camera.clock.lens_moves
    result = dfd_search(camera, lens, uncached_senses)
    assert result.stopped and result.state == "focused" and result.detected
    assert result.frame.meta["in_focus"], result.frame.meta["blur_px"]  # ground truth: judging only
    assert result.lens_moves == camera.clock.lens_moves - before <= 6
    # the factory frame, then the probes, then where depth from defocus put focus
    assert result.positions[1:3] == pytest.approx(list(DEFAULT_PROBES), abs=1e-3)
    assert result.positions[-1] == pytest.approx(range_fraction(lens.focus, lens.focus_range))


def test_the_dfd_search_reports_failed_when_its_moves_run_out(uncached_senses):
    # nearly dark (0.01 lx at the factory exposure): a black frame shows nothing to detect, so no stop rule can end it
    camera, lens = sim_rig(scene="motorcycle", distance_cm=170.0, illuminance_lux=0.01, seed=0)
    result = dfd_search(camera, lens, uncached_senses, DfdConfig(max_moves=3))
    assert not result.stopped and result.state == "failed" and not result.detected
    assert result.lens_moves == 3 and len(result.positions) == 4


def test_dfd_config_refuses_what_it_cannot_search_with():
    with pytest.raises(ConfigError, match="fractions of the range"):
        DfdConfig(probes=(0.2, 1.5))
    with pytest.raises(ConfigError, match="max_moves must be at least 1"):
        DfdConfig(max_moves=0)
    with pytest.raises(ConfigError, match="remembers its frames"):
        DfdConfig(episode=EpisodeConfig(stop_rule="detection"))
