"""Thin-lens framing in the world: magnification, two depth planes, the optics variation."""

from __future__ import annotations

import numpy as np
import pytest

from dasha.sim.variation import Variation
from dasha.sim.world import Conditions, SimWorld


def _box_height(world: SimWorld) -> float:
    _x1, y1, _x2, y2 = world.layers.target_box
    return y2 - y1


@pytest.mark.parametrize("scene", ["cameraman", "motorcycle_right"])
@pytest.mark.parametrize("distance_cm", [60.0, 150.0, 400.0])
def test_target_image_scales_as_f_over_d(scene: str, distance_cm: float) -> None:
    size_cm = 3.0  # its image stays inside the frame at every distance here
    near = SimWorld(Conditions(scene, distance_cm, 100.0, target_size_cm=size_cm), seed=0)
    far = SimWorld(Conditions(scene, 2 * distance_cm, 100.0, target_size_cm=size_cm), seed=0)
    f_cm = near.optics.focal_length_mm / 10
    expected_ratio = (2 * distance_cm - f_cm) / (distance_cm - f_cm)
    assert _box_height(near) / _box_height(far) == pytest.approx(expected_ratio, rel=0.03)
    # The image height is the thin lens's, in pixels of the sensor.
    predicted_px = near.optics.image_height_px(size_cm, distance_cm)
    assert _box_height(near) == pytest.approx(predicted_px, rel=0.03)


def test_without_a_size_the_framing_is_the_paper_rigs_at_any_distance() -> None:
    a = SimWorld(Conditions("cameraman", 140.0, 100.0), seed=0)
    b = SimWorld(Conditions("cameraman", 1000.0, 100.0), seed=0)
    assert a.layers.target_box == b.layers.target_box


@pytest.mark.parametrize("offset_v", [-0.5, 0.3])
def test_calibration_offset_moves_the_in_focus_voltage(offset_v: float) -> None:
    world = SimWorld(Conditions("cameraman", 120.0, 100.0), seed=0)
    nominal_v = world.in_focus_v()
    world.set_conditions(variation=Variation(calibration_offset_v=offset_v))
    assert world.in_focus_v() == pytest.approx(nominal_v + offset_v, abs=1e-6)
    assert world.truth(nominal_v + offset_v)["blur_px"] == pytest.approx(0.0, abs=1e-6)
    world.set_conditions(variation=Variation())
    assert world.in_focus_v() == pytest.approx(nominal_v)


def test_noise_scale_multiplies_the_frame_noise_variance() -> None:
    def variance(scale: float) -> float:
        world = SimWorld(Conditions("cameraman", 150.0, 100.0), seed=1)
        world.set_conditions(variation=Variation(noise_variance_scale=scale))
        v = world.in_focus_v()
        a = world.render(v, 20_000.0, 6.0).astype(np.float64)
        b = world.render(v, 20_000.0, 6.0).astype(np.float64)
        return float(np.var(a - b) / 2)

    assert variance(2.0) / variance(1.0) == pytest.approx(2.0, rel=0.1)
    assert variance(0.5) / variance(1.0) == pytest.approx(0.5, rel=0.1)


def test_gain_offset_brightens_the_frame_by_its_decibels() -> None:
    world = SimWorld(Conditions("cameraman", 150.0, 30.0), seed=2)
    v = world.in_focus_v()
    base = world.render(v, 10_000.0, 0.0).astype(np.float64).mean()
    world.set_conditions(variation=Variation(gain_offset_db=6.0))
    brighter = world.render(v, 10_000.0, 0.0).astype(np.float64).mean()
    assert brighter / base == pytest.approx(10 ** (6 / 20), rel=0.05)


def test_aberrated_psf_tells_front_from_back_focus() -> None:
    world = SimWorld(Conditions("cameraman", 150.0, 100.0), seed=0)
    world.set_conditions(variation=Variation(psf="disk-sa"))
    v = world.in_focus_v()
    dv = 0.6
    front, back = world.reflectance_at(v - dv), world.reflectance_at(v + dv)
    assert world.target_blur_px(v - dv) == pytest.approx(world.target_blur_px(v + dv), rel=0.02)
    assert np.abs(front - back).mean() > 1e-3
