"""Depth from defocus (``perception.defocus``) and A_L's observation of it."""

from __future__ import annotations

import cv2
import gymnasium as gym
import numpy as np
import pytest

import dasha.envs  # noqa: F401 - registers the envs
from dasha.envs.actions import focus_fraction_to_action, range_fraction, range_value
from dasha.envs.config import EpisodeConfig
from dasha.envs.focus import DEFOCUS_EXTRAS, PREVIOUS_EXTRAS, blur_px_per_range
from dasha.envs.stop import BLUR_SCALES, PEAK_BRACKET, SearchMemory, defocus_here
from dasha.errors import ConfigError
from dasha.hardware.base import Frame
from dasha.perception.defocus import estimate_focus, spectrum
from dasha.perception.senses import TargetSeen
from dasha.sim.optics import Optics, disk_kernel

BLUR_PX_PER_RANGE = Optics().blur_px_per_range  # 909 px: 45.5 px/dpt over 20 dpt
FOCUS = 0.3


def _texture(seed: int = 0) -> np.ndarray:
    """A natural-looking texture: white noise with a 1/f falloff, 600 px square."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, 1, (600, 600)).astype(np.float32)
    image = sum(cv2.GaussianBlur(noise, (0, 0), s) * s for s in (1, 2, 4, 8, 16))
    image = (image - image.mean()) / image.std()
    return np.clip(128 + 40 * image, 0, 255).astype(np.float32)


def _defocused(texture: np.ndarray, position: float, seed: int = 0) -> np.ndarray:
    """``texture`` seen at lens ``position`` when focus is at ``FOCUS``: a disk blur, then
    sensor noise, 400 px from the middle."""
    diameter = BLUR_PX_PER_RANGE * abs(position - FOCUS)
    kernel = disk_kernel(diameter)
    blurred = cv2.filter2D(texture, -1, kernel / kernel.sum(), borderType=cv2.BORDER_REFLECT)
    noisy = blurred[100:500, 100:500] + np.random.default_rng(seed).normal(0, 1.0, (400, 400))
    return np.clip(noisy, 0, 255).astype(np.uint8)


@pytest.mark.parametrize(
    "positions",
    [
        (0.304, 0.31),  # both beyond focus, near it
        (0.28, 0.31),  # focus between them
        (0.24, 0.22),  # both below focus, 55 and 73 px out of it
        (0.27, 0.29, 0.32),  # three frames
    ],
)
def test_two_frames_at_known_positions_locate_focus(positions):
    texture = _texture()
    spectra = [spectrum(_defocused(texture, p, i)) for i, p in enumerate(positions)]
    estimate = estimate_focus(spectra, list(positions), BLUR_PX_PER_RANGE)
    # within a quarter of the peak rule's bracket (two depths of focus)
    assert estimate.position == pytest.approx(FOCUS, abs=0.0011)
    assert estimate.confidence > 0.05


@pytest.mark.parametrize("brackets", [(-20, -10), (10, 20)])
def test_the_simulators_large_blurs_are_disks_depth_from_defocus_can_read(brackets):
    """The simulator blurs wide disks on a downsampled image; the way back up must keep them
    disks. With 8 px on the small grid, frames 80 and 40 px out of focus put the estimate
    6.5 brackets off (toward the frames); at 32 px they are within a tenth of a bracket."""
    from dasha.sim.optics import defocus_blur

    texture = _texture()
    positions = [FOCUS + b * PEAK_BRACKET for b in brackets]
    frames = []
    for i, p in enumerate(positions):
        blurred = defocus_blur(texture.copy(), BLUR_PX_PER_RANGE * abs(p - FOCUS))
        noisy = blurred[100:500, 100:500] + np.random.default_rng(i).normal(0, 1.0, (400, 400))
        frames.append(np.clip(noisy, 0, 255).astype(np.uint8))
    estimate = estimate_focus([spectrum(f) for f in frames], positions, BLUR_PX_PER_RANGE)
    assert estimate.position == pytest.approx(FOCUS, abs=0.25 * PEAK_BRACKET)


def test_the_scene_cancels_out():
    """Two different textures at the same two positions give the same answer."""
    positions = [0.28, 0.295]
    answers = []
    for seed in (1, 2):
        texture = _texture(seed)
        spectra = [spectrum(_defocused(texture, p, i)) for i, p in enumerate(positions)]
        answers.append(estimate_focus(spectra, positions, BLUR_PX_PER_RANGE).position)
    assert answers[0] == pytest.approx(answers[1], abs=0.001)


def test_a_box_selects_the_region_and_a_wrong_scale_biases_the_answer():
    texture = _texture()
    positions = [0.27, 0.285]
    frames = [_defocused(texture, p, i) for i, p in enumerate(positions)]
    box = (50.0, 60.0, 350.0, 340.0)
    spectra = [spectrum(f, box) for f in frames]
    right = estimate_focus(spectra, positions, BLUR_PX_PER_RANGE).position
    wrong = estimate_focus(spectra, positions, 2 * BLUR_PX_PER_RANGE).position
    assert right == pytest.approx(FOCUS, abs=0.0011)
    assert abs(wrong - FOCUS) > 3 * abs(right - FOCUS)


def test_needs_two_frames():
    one = spectrum(_defocused(_texture(), 0.3))
    with pytest.raises(ValueError, match="two or more"):
        estimate_focus([one], [0.3], BLUR_PX_PER_RANGE)


def test_simulator_frames_near_focus_locate_it():
    """On the simulator (layers, alpha, sensor), frames 9 and 18 px out of focus."""
    from dasha.hardware.sim import sim_rig

    camera, lens = sim_rig()
    camera.reset(seed=0, scene="motorcycle", distance_cm=170.0, illuminance_lux=150.0)
    camera.set_exposure_us(20_000.0)
    focus = range_fraction(float(camera.grab().meta["in_focus_v"]), lens.focus_range)
    positions = [focus + 0.01, focus + 0.02]
    spectra = []
    for p in positions:
        lens.set_focus(range_value(p, lens.focus_range))
        spectra.append(spectrum(camera.grab().as_uint8()))
    estimate = estimate_focus(spectra, positions, BLUR_PX_PER_RANGE)
    assert estimate.position == pytest.approx(focus, abs=0.0022)


def test_focus_env_observes_the_estimate(uncached_senses):
    env = gym.make(
        "dasha/Focus-v0",
        senses=uncached_senses,
        scenes=["motorcycle"],
        observe_previous=True,
        observe_defocus=True,
        observe_lens=True,
        focus_action="normalised",
    )
    dim = uncached_senses.feature_dim
    first, info = env.reset(seed=2)
    assert first.shape == (2 * dim + PREVIOUS_EXTRAS + DEFOCUS_EXTRAS + 1,)
    assert first.shape == env.observation_space.shape
    extras = slice(2 * dim + PREVIOUS_EXTRAS, 2 * dim + PREVIOUS_EXTRAS + DEFOCUS_EXTRAS)
    lens = env.unwrapped.lens
    here = range_fraction(lens.focus, lens.focus_range)
    assert list(first[extras]) == pytest.approx([here, 0.0, 0.0])  # one frame: no estimate
    focus = range_fraction(float(info["in_focus_v"]), lens.focus_range)
    env.step(np.array(focus_fraction_to_action(focus + 0.02)))
    third = env.step(np.array(focus_fraction_to_action(focus + 0.01)))[0]
    position, offset, confidence = third[extras]
    assert position == pytest.approx(focus, abs=0.0044)  # within one bracket (ground truth)
    assert offset == pytest.approx((position - third[-1]) / 0.0044, abs=0.05)
    assert confidence > 0.0


def test_blur_scale_is_the_optics_unless_given():
    assert blur_px_per_range(EpisodeConfig()) == pytest.approx(BLUR_PX_PER_RANGE)
    assert blur_px_per_range(EpisodeConfig(blur_px_per_range=300.0)) == 300.0
    with pytest.raises(ConfigError, match="positive"):
        EpisodeConfig(blur_px_per_range=-1.0)


def test_ring_powers_grow_one_frame_at_a_time_to_the_same_answer():
    from dasha.perception.defocus import RingPowers

    texture = _texture()
    positions = [0.27, 0.29, 0.32]
    spectra = [spectrum(_defocused(texture, p, i)) for i, p in enumerate(positions)]
    grown = RingPowers()
    for one in spectra:
        grown.add(one)
    assert np.allclose(grown.power, RingPowers(spectra).power)
    assert np.allclose(grown.power, grown.power.transpose(1, 0, 2))  # symmetric pairs
    assert estimate_focus(grown, positions, BLUR_PX_PER_RANGE) == estimate_focus(
        spectra, positions, BLUR_PX_PER_RANGE
    )


def test_training_recipe_and_trained_policies_carry_the_option():
    from dasha.agents.run import TRAINED_OPTIONS
    from dasha.agents.train import recipe

    assert recipe(observe_defocus=True)["episode"].observe_defocus
    assert "episode" not in recipe(observe_defocus=None)  # not given: the default episode
    assert "observe_defocus" in TRAINED_OPTIONS  # a policy runs with what it observed


def _search(points: list[tuple[float, bool]], texture: np.ndarray) -> SearchMemory:
    """A search's memory: (lens position, target detected) per frame of ``texture``."""
    memory = SearchMemory()
    for i, (position, detected) in enumerate(points):
        box = (50.0, 60.0, 350.0, 340.0) if detected else None
        seen = TargetSeen(detected, 0.5 if detected else 0.0, box, 10.0)
        image = _defocused(texture, position, i)
        memory.add(position, Frame(image, 8, 1000.0, 0.0, 0.0, 0), seen)
    return memory


def test_the_defocus_rule_ends_on_the_frame_that_lands_in_focus():
    texture = _texture()
    far = [(0.27, False), (0.285, False)]  # two frames 27 and 14 px out of focus
    assert defocus_here(_search([*far, (FOCUS, True)], texture), BLUR_PX_PER_RANGE)
    # two brackets out (8 px of blur), detected all the same: the estimate says go on
    off = FOCUS + 2 * PEAK_BRACKET
    assert not defocus_here(_search([*far, (off, True)], texture), BLUR_PX_PER_RANGE)
    # in focus, but the detector did not see the target: nothing to end on
    assert not defocus_here(_search([*far, (FOCUS, False)], texture), BLUR_PX_PER_RANGE)
    # one lens position: no estimate, no ending
    assert not defocus_here(_search([(FOCUS, True)], texture), BLUR_PX_PER_RANGE)


def test_the_defocus_rule_needs_three_frames_within_reach_of_its_estimate():
    """A factory frame far out of focus (0.0: 270 px of blur, beyond reach) and one detected
    frame: the fit rests on that frame alone, so the search goes on; with one more frame
    within reach the same landing ends it."""
    texture = _texture()
    factory = (0.0, False)
    assert not defocus_here(_search([factory, (FOCUS, True)], texture), BLUR_PX_PER_RANGE)
    assert not defocus_here(
        _search([factory, (0.285, False), (FOCUS, True)], texture), BLUR_PX_PER_RANGE
    )
    supported = _search([factory, (0.27, False), (0.285, False), (FOCUS, True)], texture)
    assert defocus_here(supported, BLUR_PX_PER_RANGE)


def test_focus_env_defocus_rule_ends_at_once_where_focus_is(uncached_senses):
    """On the simulator: two frames beyond focus, then focus itself, where the search ends
    with no move back (the peak rule would need a frame on the other side first)."""
    env = gym.make(
        "dasha/Focus-v0",
        senses=uncached_senses,
        scenes=["motorcycle"],
        stop_rule="defocus",
        focus_action="normalised",
    )
    _, info = env.reset(seed=2)
    lens = env.unwrapped.lens
    focus = range_fraction(float(info["in_focus_v"]), lens.focus_range)
    for k, position in enumerate((focus + 0.02, focus + 0.01)):
        result = env.step(np.array(focus_fraction_to_action(position)))
        assert not result[2], f"move {k} ended the search {position - focus:+.3f} from focus"
    result = env.step(np.array(focus_fraction_to_action(focus)))
    assert result[2] and result[4]["moves"] == 3
    assert result[4]["in_focus"] and result[4]["detected"]
    assert -1.0 < result[1] <= 0.0  # eq. 12 on the frame it ended on


def test_the_defocus_rule_refuses_a_brisque_gate():
    with pytest.raises(ConfigError, match="defocus stop rule needs no BRISQUE gate"):
        EpisodeConfig(stop_rule="defocus", sharp_brisque_max=18.0)
    with pytest.raises(ConfigError, match="defocus_stop"):
        EpisodeConfig(stop_rule="defocus", defocus_stop=0.0)


def _two_planes(
    position: float, target_focus: float, seed: int = 0, side_px: int = 200
) -> np.ndarray:
    """A target square (``side_px``), in focus at ``target_focus``, in front of a background
    in focus at ``FOCUS``, seen at lens ``position`` (400 px, sensor noise)."""

    def blurred(texture: np.ndarray, focus: float) -> np.ndarray:
        kernel = disk_kernel(BLUR_PX_PER_RANGE * abs(position - focus))
        return cv2.filter2D(texture, -1, kernel / kernel.sum(), borderType=cv2.BORDER_REFLECT)

    alpha = np.zeros((600, 600), np.float32)
    low, high = 300 - side_px // 2, 300 + side_px // 2
    alpha[low:high, low:high] = 1.0
    kernel = disk_kernel(BLUR_PX_PER_RANGE * abs(position - target_focus))
    alpha = cv2.filter2D(alpha, -1, kernel / kernel.sum(), borderType=cv2.BORDER_REFLECT)
    image = blurred(_texture(1), target_focus) * alpha + blurred(_texture(2), FOCUS) * (1 - alpha)
    noisy = image[100:500, 100:500] + np.random.default_rng(seed).normal(0, 1.0, (400, 400))
    return np.clip(noisy, 0, 255).astype(np.uint8)


def test_no_candidate_below_the_lowest_is_considered():
    texture = _texture()
    positions = [0.28, 0.31]
    spectra = [spectrum(_defocused(texture, p, i)) for i, p in enumerate(positions)]
    assert estimate_focus(spectra, positions, BLUR_PX_PER_RANGE).position == pytest.approx(
        FOCUS, abs=0.0011
    )
    assert estimate_focus(spectra, positions, BLUR_PX_PER_RANGE, lowest=0.32).position >= 0.32


def test_a_plane_seen_in_focus_without_the_target_sends_the_estimate_nearer():
    """Nothing detected: the fit first settles on the background (most of the region); once
    a frame at the background's focus shows no target, the estimate is the nearer plane."""
    target_focus = FOCUS + 6 * PEAK_BRACKET
    memory = SearchMemory()
    unseen = TargetSeen(False, 0.0, None, None)
    for i, position in enumerate((0.27, 0.29)):
        memory.add(
            position, Frame(_two_planes(position, target_focus, i), 8, 1000.0, 0.0, 0.0, 0), unseen
        )
    first = memory.focus_estimate(BLUR_PX_PER_RANGE)
    assert first is not None and first.position == pytest.approx(FOCUS, abs=PEAK_BRACKET / 2)
    memory.add(
        first.position,
        Frame(_two_planes(first.position, target_focus, 2), 8, 1000.0, 0.0, 0.0, 0),
        unseen,
    )
    nearer = memory.focus_estimate(BLUR_PX_PER_RANGE)
    assert nearer is not None
    assert nearer.position == pytest.approx(target_focus, abs=PEAK_BRACKET / 2)


@pytest.mark.parametrize("truth", [0.7, 1.4])
def test_a_lens_off_its_nominal_blur_scale_has_its_scale_fitted(truth):
    """Frames of a lens that blurs ``truth`` x the assumed amount: with the nominal scale
    the answer is off; fitting the scale finds it, and focus with it."""
    texture = _texture()
    positions = [0.27, 0.285, 0.305]
    nominal = BLUR_PX_PER_RANGE / truth  # what the caller believes
    frames = [_defocused(texture, p, i) for i, p in enumerate(positions)]
    spectra = [spectrum(f) for f in frames]
    fixed = estimate_focus(spectra, positions, nominal)
    fitted = estimate_focus(spectra, positions, nominal, scales=BLUR_SCALES)
    assert fitted.scale == pytest.approx(truth, rel=0.05)
    assert fitted.position == pytest.approx(FOCUS, abs=0.0011)
    assert abs(fixed.position - FOCUS) > abs(fitted.position - FOCUS)
    with pytest.raises(ValueError, match="blur scales"):
        estimate_focus(spectra, positions, nominal, scales=())


def test_over_a_box_the_estimate_stays_within_the_detectors_reach():
    """The target is detected, so its focus is within ``DETECTED_REACH`` of the sharpest
    detected frame; a fit over the box that lands on the background outside that window is
    refitted inside it, together with the background plane."""
    from dasha.envs.stop import DETECTED_REACH

    target_focus = FOCUS + 8 * PEAK_BRACKET
    side = 60  # 6 % of the 256 px region around the box: the background dominates
    box = (200.0 - side / 2, 200.0 - side / 2, 200.0 + side / 2, 200.0 + side / 2)
    memory = SearchMemory()
    for i, position in enumerate((0.285, 0.3, target_focus + 0.4 * PEAK_BRACKET)):
        detected = i == 2
        seen = TargetSeen(True, 0.5, box, 20.0) if detected else TargetSeen(False, 0.0, None, None)
        image = _two_planes(position, target_focus, i, side)
        memory.add(position, Frame(image, 8, 1000.0, 0.0, 0.0, 0), seen)
    plain = estimate_focus(memory.ring_powers(), memory.positions, BLUR_PX_PER_RANGE)
    assert abs(plain.position - memory.positions[2]) > DETECTED_REACH  # the background won
    estimate = memory.focus_estimate(BLUR_PX_PER_RANGE)
    assert estimate is not None
    assert estimate.position == pytest.approx(target_focus, abs=PEAK_BRACKET / 2)


def test_the_highlight_mask_leaves_out_clipped_pixels_and_a_margin():
    from dasha.perception.defocus import HIGHLIGHT_MARGIN_PX, clipped_pixels, highlight_mask

    gray = np.full((300, 300), 100, np.uint8)
    gray[140:150, 140:150] = 255
    clipped = clipped_pixels(gray, None)
    assert clipped.sum() == 100
    keep = highlight_mask(clipped)
    assert keep.shape == clipped.shape
    assert keep[145, 145] < 0.01 and keep[145, 150 + HIGHLIGHT_MARGIN_PX - 1] < 0.5
    assert keep[20, 20] == pytest.approx(1.0, abs=1e-3)  # far from it: the frame as it is


def test_clipped_highlights_do_not_bend_the_box_estimate(uncached_senses):
    """grace_hopper at the auto-exposure's level (2-3 % of the box clipped): two frames 3
    and 2 brackets beyond focus. Without the highlight mask the box estimate came out 2.3
    brackets off; a quarter bracket is the defocus rule's tolerance."""
    from dasha.baselines.ae import run_ae
    from dasha.hardware.sim import sim_rig

    camera, lens = sim_rig(scene="grace_hopper", distance_cm=150.0, illuminance_lux=100.0, seed=1)
    run_ae("once", camera)
    focus = range_fraction(camera.world.in_focus_v(), lens.focus_range)
    memory = SearchMemory()
    for position in (0.2956, 0.3686, focus + 3 * PEAK_BRACKET, focus + 2 * PEAK_BRACKET):
        lens.set_focus(range_value(position, lens.focus_range))
        frame = camera.grab()
        memory.add(
            range_fraction(lens.focus, lens.focus_range), frame, uncached_senses.target(frame)
        )
    assert memory.region is not None  # a detected box: the box estimate
    assert any(clipped.any() for clipped in memory._clipped.of(memory.grays, memory.region))
    estimate = memory.focus_estimate(BLUR_PX_PER_RANGE)
    assert estimate is not None
    assert abs(estimate.position - focus) <= PEAK_BRACKET / 4
