"""Every built-in simulator scene: the default detector finds its target in focus and loses it defocused."""

from __future__ import annotations

import pytest

from dasha.envs.actions import exposure_table_us
from dasha.envs.metering import meter
from dasha.hardware.sim import sim_rig
from dasha.sim.scenes import BUILTIN_SCENES


@pytest.fixture(scope="module")
def detector():
    from dasha.perception.detectors import load_detector

    return load_detector("yolo")


@pytest.mark.parametrize("scene", sorted(BUILTIN_SCENES))
@pytest.mark.parametrize(("distance_cm", "lux"), [(140.0, 13.0), (200.0, 300.0)])
def test_scene_detected_in_focus_not_when_defocused(detector, scene, distance_cm, lux):
    camera, lens = sim_rig(scene=scene, distance_cm=distance_cm, illuminance_lux=lux, seed=0)
    meter(camera, exposure_table_us(camera.exposure_range_us))  # a normal exposure
    detector.target = camera.world.layers.target_class
    lens.set_focus(camera.world.in_focus_v())
    sharp = camera.grab()
    found = detector.detect_target(sharp.as_uint8())
    assert found is not None, f"{scene}: target not found in focus"
    x1, y1, x2, y2 = sharp.meta["target_box"]
    centre = ((found.box[0] + found.box[2]) / 2, (found.box[1] + found.box[3]) / 2)
    assert x1 - 40 < centre[0] < x2 + 40 and y1 - 40 < centre[1] < y2 + 40  # on the target
    for offset_v in (-3.0, 3.0):  # ~60 px of blur
        lens.set_focus(camera.world.in_focus_v() + offset_v)
        assert detector.detect_target(camera.grab().as_uint8()) is None, (
            f"{scene} found at {offset_v:+} V"
        )
