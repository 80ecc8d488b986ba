import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dasha.perception.brisque import brisque_score, clip_brisque
from dasha.perception.focus import FOCUS_MEASURES, all_focus_measures, focus_measure
from dasha.perception.histogram import clipped_fraction, histogram, histogram_peak
from perception_scenes import SCENES, disk_blur


@pytest.fixture(scope="module")
def scene():
    return cv2.resize(SCENES[0][1](), (417, 404), interpolation=cv2.INTER_AREA)


def test_histogram_is_np_histogram_with_left_edge_peak():
    rng = np.random.default_rng(0)
    image = rng.integers(40, 200, size=(50, 60), dtype=np.uint8)
    hist = histogram(image)
    counts, edges = np.histogram(image)
    np.testing.assert_array_equal(hist.counts, counts)
    np.testing.assert_array_equal(hist.bin_edges, edges)
    assert hist.counts.shape == (10,) and hist.bin_edges.shape == (11,)
    assert hist.peak == edges[np.argmax(counts)]
    assert hist.observation.shape == (21,)


def test_clipped_fraction_counts_saturated_pixels_in_the_box():
    image = np.full((40, 40), 120, np.uint8)
    image[:10, :] = 255  # a blown-out strip
    image[10:20, :] = 249  # bright but below the clipping level
    assert clipped_fraction(image) == pytest.approx(0.25)
    assert clipped_fraction(image, (0, 0, 40, 20)) == pytest.approx(0.5)
    assert clipped_fraction(image, (0, 20, 40, 40)) == 0.0
    rgb = np.repeat(image[..., None], 3, axis=2)
    assert clipped_fraction(rgb) == pytest.approx(0.25)


@given(st.integers(0, 255), st.integers(1, 255))
@settings(max_examples=50, deadline=None)
def test_peak_follows_brightness(level, spread):
    image = np.full((20, 20), level, np.uint8)
    image[0, 0] = min(255, level + spread)  # one outlier: the mass stays at `level`
    assert histogram_peak(image) <= level < histogram_peak(image) + max(spread / 10, 1)
    fixed = histogram(image, fixed_range=True)
    assert fixed.bin_edges[0] == 0 and fixed.bin_edges[-1] == 255
    assert fixed.peak <= level < fixed.peak + 25.5 + 1e-9


def test_brisque_rises_with_blur_on_frame_and_box(scene):
    box = SCENES[0][3]
    box = (box[0] * 417 / 512, box[1] * 404 / 512, box[2] * 417 / 512, box[3] * 404 / 512)
    for region in (None, box):
        scores = [brisque_score(disk_blur(scene, r) if r else scene, region) for r in (0, 2, 4, 8)]
        assert scores == sorted(scores), scores
        assert scores[-1] - scores[0] > 30


def test_clip_brisque():
    assert clip_brisque(-7.9) == 0.0
    assert clip_brisque(107.0) == 100.0
    assert clip_brisque(42.5) == 42.5


@pytest.mark.parametrize("name", list(FOCUS_MEASURES))
def test_focus_measures_fall_with_blur(scene, name):
    box = (100, 50, 300, 350)
    for region in (None, box):
        values = [
            focus_measure(name, cv2.GaussianBlur(scene, (0, 0), s) if s else scene, region)
            for s in (0, 1, 2, 4, 8)
        ]
        assert values == sorted(values, reverse=True), (name, values)


def test_normalized_variance_ignores_brightness(scene):
    value = focus_measure("normalized_variance", scene)
    brighter = np.clip(scene.astype(np.float32) * 0.5, 0, 255).astype(np.uint8)
    assert focus_measure("normalized_variance", brighter) == pytest.approx(value * 0.5, rel=0.02)
    assert set(all_focus_measures(scene)) == set(FOCUS_MEASURES)


def test_reblur_blur_estimate_grows_with_blur_and_ignores_contrast():
    from dasha.perception.focus import reblur_blur_px
    from dasha.sim.optics import disk_kernel

    edges = np.zeros((96, 96), np.float32)
    edges[:, 48:] = 160.0
    edges[20:50, 10:30] = 80.0
    estimates = []
    for diameter_px in (1.0, 4.0, 8.0, 16.0):
        blurred = cv2.filter2D(edges, -1, disk_kernel(diameter_px), borderType=cv2.BORDER_REFLECT)
        high = reblur_blur_px(np.clip(blurred + 40, 0, 255).astype(np.uint8))
        low = reblur_blur_px(np.clip(0.25 * blurred + 40, 0, 255).astype(np.uint8))
        assert abs(high - low) <= 0.15 * high + 0.5  # contrast cancels out of the ratio
        estimates.append(high)
    assert estimates == sorted(estimates) and estimates[0] < 2.0 < 6.0 < estimates[-1]
    assert reblur_blur_px(np.full((40, 40), 90, np.uint8)) == float("inf")  # nothing to judge


def _sim_frames():
    """Every built-in scene on the simulator, in focus, slightly and far out of focus."""
    from dasha.hardware import open_camera, open_lens
    from dasha.sim.scenes import BUILTIN_SCENES

    for name in BUILTIN_SCENES:
        camera = open_camera("sim", scene=name, distance_cm=170.0, illuminance_lux=100.0, seed=0)
        lens = open_lens("sim", camera=camera)
        sharp_v = camera.world.optics.in_focus_v(170.0)
        for focus_v in (sharp_v, sharp_v + 0.3, 40.0, 24.0):
            lens.set_focus(focus_v)
            yield camera.grab().as_uint8()


def test_fast_brisque_matches_the_package_features(scene):
    """The default backends' BRISQUE features (float32, tabulated AGGD shape) score within
    0.1 points of the package's own feature code (0.05 the most measured), on simulator
    frames, on sharp and blurred boxes and on noise, over the whole range of scores."""
    box = (60.0, 90.0, 330.0, 300.0)
    cases = [(frame, region) for frame in _sim_frames() for region in (None, box)]
    cases += [(disk_blur(scene, r) if r else scene, box) for r in (0, 1, 2, 4, 8, 16)]
    for _, load, _, target_box in SCENES:  # the photographs at full size, their targets' boxes
        photo = load()
        cases += [(disk_blur(photo, r) if r else photo, target_box) for r in (0, 3, 9)]
    noise = np.random.default_rng(0).integers(0, 256, (120, 140), dtype=np.uint8)
    cases.append((noise, None))  # no AGGD shape fits pure noise: the root search's answer
    reference = np.array(
        [brisque_score(image, region, backend="reference") for image, region in cases]
    )
    fast = np.array([brisque_score(image, region) for image, region in cases])
    assert reference.max() - reference.min() > 40  # sharp and blurred: a wide range of scores
    np.testing.assert_allclose(fast, reference, atol=0.1)
    assert not np.array_equal(fast, reference)  # the fast code ran, not the package's


def test_brisque_feature_code_by_backend():
    from dasha.errors import ConfigError
    from dasha.perception.brisque import uses_package_features

    assert uses_package_features("reference")
    assert not any(uses_package_features(b) for b in ("auto", "onnxruntime"))
    with pytest.raises(ConfigError, match="unknown backend"):
        uses_package_features("tensorrt")
