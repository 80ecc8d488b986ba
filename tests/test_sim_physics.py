"""The simulator's physics, as properties (not snapshots)."""

from __future__ import annotations

import itertools
import json

import cv2
import numpy as np
import pytest

from dasha.errors import ConfigError
from dasha.hardware import open_camera, open_lens
from dasha.sim.optics import LensCalibration, Optics, defocus_blur, disk_kernel
from dasha.sim.sensor import Sensor


def sharpness(image: np.ndarray, region: np.ndarray | list[float]) -> float:
    """Variance of the Laplacian inside a box or a boolean mask: a plain, independent measure."""
    lap = cv2.Laplacian(image.astype(np.float64), cv2.CV_64F)
    if isinstance(region, np.ndarray):
        return float(lap[region].var())
    x1, y1, x2, y2 = (round(v) for v in region)
    return float(lap[y1:y2, x1:x2].var())


def noiseless(camera, lens, focus_v: float, exposure_us: float = 40_000.0) -> np.ndarray:
    """Mean level image: the sensor's noise-free response (so sharpness is not noise)."""
    world = camera.world
    electrons = world.electron_rate(focus_v) * exposure_us * 1e-6
    return world.sensor.mean_dn(electrons, camera.gain_db)


def test_brightness_is_linear_in_exposure_until_saturation(sim_rig):
    camera, lens = sim_rig
    lens.set_focus(camera.world.in_focus_v())
    means = {}
    for t in (2_000, 4_000, 8_000, 16_000):
        camera.set_exposure_us(t)
        means[t] = camera.grab().image.astype(float).mean()
    ratios = [means[2 * t] / means[t] for t in (2_000, 4_000, 8_000)]
    assert ratios == pytest.approx([2.0, 2.0, 2.0], rel=0.03)
    camera.set_exposure_us(1_000_000)
    frame = camera.grab()
    assert frame.image.max() == 255 and (frame.image == 255).mean() > 0.5  # clipped, not wrapped


def test_shot_noise_variance_follows_poisson():
    # 16 bits with a 65535 e- well: exactly 1 DN per electron at 0 dB.
    sensor = Sensor(read_noise_e=0.0, dark_current_e_per_s=0.0, bit_depth=16, full_well_e=65535.0)
    rng = np.random.default_rng(1)
    gain = sensor.system_gain_dn_per_e(0.0)
    for mean_e in (5.0, 20.0, 200.0, 5000.0):  # both the exact and the Gaussian-limit regimes
        rate = np.full((200, 200), mean_e / 1e-3, np.float32)  # electrons per second
        dn = sensor.expose(rate, 1_000.0, 0.0, rng).astype(float) / gain
        assert dn.mean() == pytest.approx(mean_e, rel=0.02)
        assert dn.var() == pytest.approx(mean_e, rel=0.08), mean_e


def test_read_noise_adds_in_quadrature():
    sensor = Sensor(read_noise_e=13.0, dark_current_e_per_s=0.0, bit_depth=16, full_well_e=65535.0)
    rate = np.full((300, 300), 1000.0 / 1e-3, np.float32)
    dn = sensor.expose(rate, 1_000.0, 0.0, np.random.default_rng(2)).astype(float)
    electrons = dn / sensor.system_gain_dn_per_e(0.0)
    assert electrons.var() == pytest.approx(1000.0 + 13.0**2, rel=0.06)


def test_target_sharpness_peaks_at_in_focus_voltage(sim_rig):
    camera, lens = sim_rig
    v0 = camera.world.in_focus_v()
    # Inside the target's silhouette, away from its edge (where the background shows through).
    target = cv2.erode((camera.world.layers.alpha > 0.99).astype(np.uint8), np.ones((15, 15))) > 0
    offsets = [0.0, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2]
    for sign in (-1, 1):
        values = [sharpness(noiseless(camera, lens, v0 + sign * d), target) for d in offsets]
        # Within the depth of field (blur < ~1 px) nothing changes; beyond it, strictly falls.
        tol = 1e-6 * values[0]
        assert values[0] >= values[1] - tol and values[1] >= values[2] - tol, values
        assert values[2] > values[3], values
        assert all(a > b for a, b in itertools.pairwise(values[2:])), values


def test_background_sharp_where_target_is_not(sim_rig):
    camera, lens = sim_rig
    world = camera.world
    background_v = world.optics.in_focus_v(world.conditions.background_cm)
    assert abs(background_v - world.in_focus_v()) > 0.5
    alpha = world.layers.alpha
    bg_box = _box_of(alpha < 0.01, world.layers.background)
    tg_box = _box_of(alpha > 0.99, world.layers.target)
    at_target = noiseless(camera, lens, world.in_focus_v())
    at_background = noiseless(camera, lens, background_v)
    assert sharpness(at_target, tg_box) > 2 * sharpness(at_background, tg_box)
    assert sharpness(at_background, bg_box) > 2 * sharpness(at_target, bg_box)


def _box_of(mask: np.ndarray, texture: np.ndarray, size: int = 24) -> list[float]:
    """The most textured square lying entirely inside the mask (where sharpness is measurable)."""
    best, best_var = None, -1.0
    for y in range(0, mask.shape[0] - size, 8):
        for x in range(0, mask.shape[1] - size, 8):
            if mask[y : y + size, x : x + size].all():
                var = float(texture[y : y + size, x : x + size].var())
                if var > best_var:
                    best, best_var = [x, y, x + size, y + size], var
    assert best is not None, "no region found"
    return best


def test_in_focus_voltage_and_blur_geometry():
    optics = Optics()  # 25 mm, f/2.5, 5.5 um pixels, -5..15 dpt over 24..70 V
    assert optics.blur_px_per_dpt == pytest.approx(25e-3 / 2.5 * 25e-3 / 5.5e-6)
    v = optics.in_focus_v(170.0)
    assert optics.blur_px(v, 170.0) == pytest.approx(0.0, abs=1e-9)
    assert optics.is_in_focus(optics.blur_px(v + 0.05, 170.0))
    assert not optics.is_in_focus(optics.blur_px(v + 0.2, 170.0))
    near, far = optics.in_focus_v(140.0), optics.in_focus_v(200.0)
    assert near > far  # nearer objects need more power
    assert 0.3 < near - far < 0.8  # ~0.21 dpt of the 20 dpt over 46 V


def test_calibration_table_replaces_linear_curve():
    table = LensCalibration.from_table([24, 40, 70], [-5, 0, 15])
    optics = Optics(calibration=table)
    assert table.power_dpt(40) == 0.0
    assert optics.in_focus_v(1e5) == pytest.approx(40.0, abs=0.01)  # infinity at 0 dpt
    with pytest.raises(ConfigError, match="increase"):
        LensCalibration.from_table([24, 30, 28], [0, 1, 2])


def test_disk_kernel_is_a_normalised_disk():
    for d in (0.3, 1.5, 4.0, 11.0):
        k = disk_kernel(d)
        assert k.sum() == pytest.approx(1.0)
        assert k.shape[0] == k.shape[1] and k.shape[0] % 2 == 1
    k = disk_kernel(11.0)
    assert k[5, 5] > 0 and k[0, 0] == 0  # round, not square
    flat = np.full((50, 60), 0.5, np.float32)
    assert np.allclose(defocus_blur(flat, 30.0), 0.5, atol=1e-5)  # energy preserved


def test_same_seed_same_frame_and_different_seed_differs():
    frames = []
    for seed in (7, 7, 8):
        camera = open_camera("sim", seed=seed)
        lens = open_lens("sim", camera=camera)
        lens.set_focus(36.0)
        frames.append(camera.grab().image)
    assert np.array_equal(frames[0], frames[1])
    assert not np.array_equal(frames[0], frames[2])


def test_simulated_clock_counts_settle_latency_and_frame_time(sim_rig):
    camera, lens = sim_rig
    t = camera.timing
    camera.grab()
    assert camera.clock.now_s == pytest.approx(t.frame_period_s)
    camera.set_exposure_us(200_000)  # longer than a frame: the frame takes the exposure time
    frame = camera.grab()
    assert frame.exposure_us == 200_000
    assert camera.clock.now_s == pytest.approx(
        t.frame_period_s + t.exposure_latency_frames * t.frame_period_s + 0.2
    )
    before = camera.clock.now_s
    lens.set_focus(40.0)
    camera.grab()
    assert camera.clock.now_s == pytest.approx(before + t.lens_settle_s + 0.2)
    assert (
        camera.clock.lens_moves == 1
        and camera.clock.exposure_changes == 1
        and camera.clock.frames == 3
    )


def test_twelve_bit_frames():
    camera = open_camera("sim", seed=0, bit_depth=12)
    camera.set_exposure_us(40_000)
    frame = camera.grab()
    assert frame.image.dtype == np.uint16 and frame.image.max() <= 4095 and frame.bit_depth == 12
    assert frame.as_uint8().dtype == np.uint8


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"scene": "no-such-scene"}, "unknown scene"),
        ({"distance_cm": -3.0}, "distance_cm"),
        ({"illuminance_lux": 0.0}, "illuminance_lux"),
        ({"bit_depth": 9}, "bit_depth"),
    ],
)
def test_bad_simulator_options_are_clear_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        open_camera("sim", **kwargs)


def test_device_limits_are_enforced(sim_rig):
    camera, lens = sim_rig
    with pytest.raises(
        ConfigError, match=r"focus_v=80 V is outside the device limits \[24, 70\] V"
    ):
        lens.set_focus(80.0)
    with pytest.raises(ConfigError, match="exposure_us"):
        camera.set_exposure_us(-10.0)
    with pytest.raises(ConfigError, match="gain_db"):
        camera.set_gain_db(40.0)
    assert lens.focus == 24.0 and camera.exposure_us == 20_000.0  # nothing was sent
    with pytest.raises(ConfigError, match="unknown camera backend"):
        open_camera("nikon")
    with pytest.raises(ConfigError, match="needs the sim camera"):
        open_lens("sim")


def test_user_scene_with_sidecar(tmp_path):
    image = (np.random.default_rng(0).random((120, 160)) * 255).astype(np.uint8)
    path = tmp_path / "bench.png"
    cv2.imwrite(str(path), image)
    with pytest.raises(ConfigError, match="sidecar"):
        open_camera("sim", scene=str(path))
    path.with_suffix(".json").write_text(json.dumps({"class": "car", "box": [20, 30, 100, 90]}))
    camera = open_camera("sim", scene=str(path), seed=0, width=160, height=120)
    frame = camera.grab()
    assert frame.meta["target_class"] == "car"
    x1, y1, x2, y2 = frame.meta["target_box"]  # framed: centred, scaled, aspect kept
    assert (x2 - x1) / (y2 - y1) == pytest.approx(80 / 60, rel=0.03)
    assert ((x1 + x2) / 2, (y1 + y2) / 2) == pytest.approx((80, 60), abs=1.0)
    path.with_suffix(".json").write_text(json.dumps({"class": "car", "box": [20, 30, 500, 90]}))
    with pytest.raises(ConfigError, match="inside the 160x120 image"):
        open_camera("sim", scene=str(path))
