"""Randomised optics and sensor knobs: each one does what its name says, and nominal is nominal."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dasha.errors import ConfigError
from dasha.sim.optics import (
    PSF_SHAPES,
    LensCalibration,
    Optics,
    defocus_blur,
    disk_kernel,
    gaussian_kernel,
    psf_kernel,
    sa_disk_kernel,
)
from dasha.sim.sensor import Sensor
from dasha.sim.variation import NOMINAL, Variation, VariationRanges

MEASURED = LensCalibration.from_table([24, 30, 40, 55, 70], [-5, -2.5, 0, 6, 15])


def second_moment_px2(kernel: np.ndarray) -> float:
    """Per-axis second moment about the centre pixel."""
    half = kernel.shape[0] // 2
    _, x = np.mgrid[-half : half + 1, -half : half + 1]
    return float((kernel * x**2).sum())


# ------------------------------------------------------------------ lens calibration
@pytest.mark.parametrize("calibration", [LensCalibration(), MEASURED], ids=["linear", "table"])
@pytest.mark.parametrize("offset_v", [-0.5, -0.2, 0.3, 0.5])
def test_calibration_offset_moves_in_focus_voltage_by_the_offset(calibration, offset_v):
    nominal = Optics(calibration=calibration)
    shifted = Optics(calibration=calibration.perturbed(offset_v=offset_v))
    for distance_cm in (50.0, 140.0, 170.0, 200.0, 500.0, 1e5):
        moved = shifted.in_focus_v(distance_cm) - nominal.in_focus_v(distance_cm)
        assert moved == pytest.approx(offset_v, abs=1e-9), distance_cm
    assert shifted.calibration.range_v == calibration.range_v  # the driver's range is kept


@pytest.mark.parametrize("calibration", [LensCalibration(), MEASURED], ids=["linear", "table"])
@pytest.mark.parametrize(("offset_v", "slope"), [(0.0, 0.9), (0.0, 1.1), (0.4, 1.1), (-0.5, 0.9)])
def test_calibration_slope_scales_dioptres_per_volt(calibration, offset_v, slope):
    true = calibration.perturbed(offset_v=offset_v, slope=slope)
    for v in (27.0, 35.0, 45.0, 60.0):  # inside one segment of each table, either side of mid
        dv = 0.01
        nominal_dpt_per_v = (calibration.power_dpt(v + dv) - calibration.power_dpt(v)) / dv
        true_dpt_per_v = (true.power_dpt(v + offset_v + dv) - true.power_dpt(v + offset_v)) / dv
        assert true_dpt_per_v == pytest.approx(slope * nominal_dpt_per_v, rel=1e-6), v
    # The pivot: the middle of the range (shifted by the offset) keeps its power.
    mid_v = sum(calibration.range_v) / 2
    assert true.power_dpt(mid_v + offset_v) == pytest.approx(calibration.power_dpt(mid_v))


@pytest.mark.parametrize(("offset_v", "slope"), [(5.0, 0.5), (-5.0, 2.0), (1e-12, 1.0)])
def test_perturbed_calibration_stays_monotonic(offset_v, slope):
    true = MEASURED.perturbed(offset_v, slope)  # the constructor rejects non-monotonic tables
    assert np.all(np.diff(true.voltages_v) > 0) and np.all(np.diff(true.powers_dpt) > 0)


def test_unperturbed_calibration_is_itself_and_bad_slopes_fail():
    assert MEASURED.perturbed(0.0, 1.0) is MEASURED
    for slope in (0.0, -1.0, math.nan):
        with pytest.raises(ConfigError, match="slope > 0"):
            MEASURED.perturbed(0.1, slope)


# ------------------------------------------------------------------ sensor noise
@pytest.mark.parametrize("mean_e", [10.0, 500.0], ids=["poisson", "gaussian"])
@pytest.mark.parametrize("scale", [0.5, 2.0])
def test_noise_variance_scale_multiplies_temporal_variance(mean_e, scale):
    # 1 DN per electron, and a black level so no noise is clipped at 0 DN.
    kwargs = dict(read_noise_e=3.0, dark_current_e_per_s=0.0, bit_depth=16, full_well_e=65535.0)
    rate = np.full((300, 300), mean_e / 1e-3, np.float32)

    def temporal_variance_e2(sensor: Sensor) -> tuple[float, float]:
        rng = np.random.default_rng(3)
        a, b = (sensor.expose(rate, 1_000.0, 0.0, rng).astype(float) - 1000.0 for _ in range(2))
        return float((a - b).var() / 2), float(a.mean())

    base_var, base_mean = temporal_variance_e2(Sensor(black_level_dn=1000.0, **kwargs))
    var, mean = temporal_variance_e2(
        Sensor(black_level_dn=1000.0, noise_variance_scale=scale, **kwargs)
    )
    quantisation = 1 / 12  # the ADC's rounding, which no noise knob scales
    assert base_var == pytest.approx(mean_e + 9.0 + quantisation, rel=0.03)
    assert var == pytest.approx(scale * (mean_e + 9.0) + quantisation, rel=0.03)
    assert (var - quantisation) / (base_var - quantisation) == pytest.approx(scale, rel=0.04)
    assert mean == pytest.approx(base_mean, rel=0.01) and mean == pytest.approx(mean_e, rel=0.01)


@pytest.mark.parametrize("scale", [0.0, -1.0, math.nan, math.inf])
def test_bad_noise_variance_scale_is_a_clear_error(scale):
    with pytest.raises(ConfigError, match="noise_variance_scale"):
        Sensor(noise_variance_scale=scale)


# ------------------------------------------------------------------ PSF shapes
@pytest.mark.parametrize("psf", PSF_SHAPES)
@pytest.mark.parametrize("sign", [-1, 1])
@pytest.mark.parametrize("diameter_px", [0.3, 1.0, 2.5, 5.0, 8.0])
def test_every_psf_is_normalised_square_and_odd(psf, sign, diameter_px):
    k = psf_kernel(diameter_px, psf, sign)
    assert k.sum() == pytest.approx(1.0, abs=1e-6) and k.min() >= 0
    assert k.shape[0] == k.shape[1] and k.shape[0] % 2 == 1
    assert np.allclose(k, k.T) and np.allclose(k, k[::-1, ::-1])  # round, centred


@pytest.mark.parametrize("diameter_px", [3.0, 4.0, 6.0, 8.0])
def test_gaussian_has_the_disks_second_moment(diameter_px):
    gauss = second_moment_px2(gaussian_kernel(diameter_px))
    # sigma = D / 4, plus the pixel integration's 1/12 px^2 (both kernels have it).
    assert gauss == pytest.approx((diameter_px / 4) ** 2 + 1 / 12, rel=0.02)
    if diameter_px >= 4.0:  # smaller disks are too pixelated to have their ideal moment
        assert gauss == pytest.approx(second_moment_px2(disk_kernel(diameter_px)), rel=0.05)


def test_sa_disk_differs_before_and_behind_focus():
    d = 8.0
    behind, before, disk = sa_disk_kernel(d, 1), sa_disk_kernel(d, -1), disk_kernel(d)
    assert not np.allclose(behind, before)
    assert np.array_equal(behind > 0, disk > 0)  # same support: the blur diameter is unchanged
    # Object farther than the focus (s = +1): bright centre; nearer (s = -1): bright rim.
    c = disk.shape[0] // 2
    assert behind[c, c] > disk[c, c] > before[c, c]
    assert np.array_equal(psf_kernel(d, "disk-sa", -0.3), before)  # the defocus itself will do
    # E[r^2] of w = 1 - k s (2 rho^2 - 1) is (R^2 / 2) (1 - k s / 3): 5/6 and 7/6 at k = 0.5.
    m = second_moment_px2(disk) - 1 / 12
    assert second_moment_px2(behind) - 1 / 12 == pytest.approx(m * 5 / 6, rel=0.03)
    assert second_moment_px2(before) - 1 / 12 == pytest.approx(m * 7 / 6, rel=0.03)


@pytest.mark.parametrize("diameter_px", [1.5, 4.0, 8.0])
def test_sa_disk_reduces_to_the_disk(diameter_px):
    disk = disk_kernel(diameter_px)
    assert np.allclose(sa_disk_kernel(diameter_px, 1, 0.0), disk, atol=1e-7)  # k = 0
    assert np.allclose(sa_disk_kernel(diameter_px, 0), disk, atol=1e-7)  # exact focus
    with pytest.raises(ConfigError, match="sa_strength"):
        sa_disk_kernel(diameter_px, 1, 1.5)


@pytest.mark.parametrize("psf", PSF_SHAPES)
@pytest.mark.parametrize("diameter_px", [1.5, 4.0, 8.0, 12.0, 25.0, 60.0])  # > 32: downsampled
def test_blurring_a_point_keeps_its_flux(psf, diameter_px):
    for n in (100, 101):
        point = np.zeros((n, n), np.float32)
        point[n // 2, n // 2] = 1.0
        for sign in (-1, 1):
            out = defocus_blur(point, diameter_px, psf, sign)
            assert out.sum() == pytest.approx(1.0, rel=0.015), (n, sign)
            assert out.max() < 1.0  # it was blurred


@pytest.mark.parametrize("diameter_px", [6.0, 45.0])  # direct and downsampled paths
def test_sa_blur_depends_on_the_side_of_focus(diameter_px):
    point = np.zeros((81, 81), np.float32)
    point[40, 40] = 1.0
    behind = defocus_blur(point, diameter_px, "disk-sa", 1)
    before = defocus_blur(point, diameter_px, "disk-sa", -1)
    assert behind[40, 40] > 1.2 * before[40, 40]
    flat = np.full((40, 50), 0.5, np.float32)
    for psf in PSF_SHAPES:
        assert np.allclose(defocus_blur(flat, diameter_px, psf, -1), 0.5, atol=1e-5)


def test_unknown_psf_names_the_choices():
    with pytest.raises(ConfigError, match="disk, disk-sa, gaussian"):
        Optics(psf="airy")
    with pytest.raises(ConfigError, match="unknown PSF shape 'airy'"):
        defocus_blur(np.zeros((8, 8), np.float32), 3.0, psf="airy")
    assert Optics(psf="gaussian").psf == "gaussian"


# ------------------------------------------------------------------ magnification
def test_image_height_follows_the_thin_lens():
    optics = Optics()  # f = 25 mm, 5.5 um pixels
    h = optics.image_height_px(100.0, 170.0)
    assert h == pytest.approx(2.5 * 100.0 / (170.0 - 2.5) * 1e4 / 5.5)
    assert optics.image_height_px(50.0, 170.0) == pytest.approx(h / 2)  # linear in size
    for d in (30.0, 170.0, 1000.0):
        ratio = optics.image_height_px(100.0, d) / optics.image_height_px(100.0, 2 * d)
        assert ratio == pytest.approx((2 * d - 2.5) / (d - 2.5))  # f / (d - f) exactly
        assert ratio == pytest.approx(2.0, rel=0.05 if d > 100 else 0.1)  # ~halves


@pytest.mark.parametrize("distance_cm", [5.0, 140.0, 200.0, 5000.0])
def test_object_size_inverts_image_height(distance_cm):
    optics = Optics(focal_length_mm=16.0, pixel_pitch_um=3.45)
    for size_cm in (1.0, 35.0, 180.0):
        height = optics.image_height_px(size_cm, distance_cm)
        assert optics.object_size_cm(height, distance_cm) == pytest.approx(size_cm)


@pytest.mark.parametrize("distance_cm", [2.5, 1.0, -10.0])
def test_magnification_needs_an_object_beyond_the_focal_length(distance_cm):
    with pytest.raises(ConfigError, match=r"exceed the focal length \(2.5 cm\)"):
        Optics().image_height_px(10.0, distance_cm)
    with pytest.raises(ConfigError, match="focal length"):
        Optics().object_size_cm(10.0, distance_cm)


# ------------------------------------------------------------------ Variation
def test_draw_is_seeded_and_inside_the_ranges():
    ranges = VariationRanges()
    a = ranges.draw(np.random.default_rng(11))
    assert a == ranges.draw(np.random.default_rng(11))
    assert a != ranges.draw(np.random.default_rng(12))
    rng = np.random.default_rng(0)
    draws = [ranges.draw(rng) for _ in range(300)]
    for v in draws:
        assert -0.5 <= v.calibration_offset_v <= 0.5 and 0.9 <= v.calibration_slope <= 1.1
        assert v.f_number is not None and 1.8 <= v.f_number <= 4.0
        assert 0.5 <= v.noise_variance_scale <= 2.0 and 0.0 <= v.gain_offset_db <= 6.0
    assert {v.psf for v in draws} == set(PSF_SHAPES)
    # Log-uniform noise scale: as many halvings as doublings.
    assert np.median([v.noise_variance_scale for v in draws]) == pytest.approx(1.0, abs=0.15)


def test_pinned_knobs_do_not_reshuffle_the_others():
    free = VariationRanges().draw(np.random.default_rng(5))
    pinned = VariationRanges(psf=None, f_number=None).draw(np.random.default_rng(5))
    assert pinned.psf is None and pinned.f_number is None
    assert pinned.calibration_offset_v == free.calibration_offset_v
    assert pinned.gain_offset_db == free.gain_offset_db
    assert VariationRanges.off().draw(np.random.default_rng(5)).nominal
    only = VariationRanges.only("noise_variance_scale").draw(np.random.default_rng(5))
    assert only == Variation(noise_variance_scale=free.noise_variance_scale)


@pytest.mark.parametrize(
    "base",
    [(Optics(), Sensor()), (Optics(f_number=2.0, psf="gaussian"), Sensor(noise_variance_scale=2))],
)
def test_nominal_apply_changes_nothing(base):
    optics, sensor = base
    assert NOMINAL.nominal and Variation() == NOMINAL
    assert NOMINAL.apply(optics, sensor) == (optics, sensor)


def test_apply_sets_every_knob_and_is_pure():
    optics, sensor = Optics(), Sensor()
    v = Variation(
        calibration_offset_v=0.3,
        f_number=1.8,
        psf="disk-sa",
        noise_variance_scale=0.5,
        gain_offset_db=3.0,
    )
    assert not v.nominal
    new_optics, new_sensor = v.apply(optics, sensor)
    assert optics == Optics() and sensor == Sensor()  # inputs untouched
    assert new_optics.f_number == 1.8 and new_optics.psf == "disk-sa"
    assert new_optics.in_focus_v(170.0) == pytest.approx(optics.in_focus_v(170.0) + 0.3)
    assert new_sensor.noise_variance_scale == 0.5
    assert v.apply(new_optics, new_sensor)[1].noise_variance_scale == 0.25  # relative knob
    assert Variation.from_dict(v.to_dict()) == v


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"calibration_offset_v": 6.0},
            r"calibration_offset_v=6.0 must be a number in \[-5, 5\] V",
        ),
        ({"calibration_slope": 0.0}, r"calibration_slope=0.0 .* \[0.5, 2\]"),
        ({"f_number": 0.5}, r"f_number=0.5 .* \[1, 22\]"),
        ({"psf": "airy"}, "choose one of disk, disk-sa, gaussian"),
        ({"noise_variance_scale": math.nan}, "noise_variance_scale=nan"),
        ({"gain_offset_db": 30.0}, r"\[-24, 24\] dB"),
        ({"gain_offset_db": "3"}, "gain_offset_db='3'"),
        ({"calibration_slope": True}, "calibration_slope=True"),
    ],
)
def test_bad_variation_values_are_clear_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        Variation(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"calibration_offset_v": (0.5, -0.5)}, "low > high"),
        ({"f_number": (1.8, 40.0)}, r"f_number=40.0 .* \[1, 22\]"),
        ({"noise_variance_scale": 2.0}, r"\(low, high\) pair"),
        ({"psf": ()}, "non-empty"),
        ({"psf": "disk"}, "non-empty sequence"),
        ({"psf": ("disk", "airy")}, "not a PSF shape"),
    ],
)
def test_bad_ranges_are_clear_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        VariationRanges(**kwargs)


def test_dicts_round_trip_and_reject_unknown_keys():
    ranges = VariationRanges(f_number=None, psf=("disk", "gaussian"))
    assert VariationRanges.from_dict(ranges.to_dict()) == ranges
    with pytest.raises(ConfigError, match="unknown variation key"):
        Variation.from_dict({"focal_length_mm": 16.0})
    with pytest.raises(ConfigError, match="unknown knob"):
        VariationRanges.only("aperture")
