"""dasha.open_camera: controls, bounded AF cycles, continuous mode, the emulated rigs."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import pytest

import dasha
from dasha.camera import open_camera
from dasha.camera.continuous import LIGHT, SCENE, SHARPNESS
from dasha.errors import ConfigError


@pytest.fixture
def cam() -> Iterator[dasha.camera.Camera]:
    with open_camera("sim", scene="motorcycle", distance_cm=120, seed=1) as camera:
        yield camera


def test_open_camera_is_exported_lazily() -> None:
    assert dasha.open_camera is open_camera


@pytest.mark.parametrize(
    ("controls", "message"),
    [
        ({"AfSpeed": "fast"}, "valid controls: AfMode"),
        ({"AfMode": "sometimes"}, "manual, auto, continuous"),
        ({"AfAlgorithm": "magic"}, "dasha, coarse-fine, hill-climb, golden, sweep"),
        ({"AfTrigger": "go"}, "start, cancel"),
        ({"AfTargetSelect": "first"}, "largest, confident, centre"),
        ({"AfWindows": [(10, 10, 5, 50)]}, "0 <= x1 < x2 <= 417"),
        ({"AfWindows": [(0, 0, 500, 50)]}, "0 <= x1 < x2 <= 417"),
        ({"AfWindows": [(1, 2, 3)]}, "each window is a box"),
        ({"AfWindows": "all"}, "list of (x1, y1, x2, y2) boxes"),
        ({"AfRange": (3.0, 1.0)}, "low < high"),
        ({"AfRange": (0.0, 99.0)}, "outside [-5, 15] dpt"),
        ({"LensPosition": 40.0}, "outside [-5, 15] dpt"),
        ({"LensPosition": "near"}, "must be a number"),
        ({"ExposureTime": 5e6}, "outside [24, 1e+06] us"),
        ({"AeEnable": "yes"}, "True or False"),
        ({"AfTarget": 3}, "class name"),
    ],
)
def test_every_control_is_validated(
    cam: dasha.camera.Camera, controls: dict[str, object], message: str
) -> None:
    before = dict(cam.controls)
    with pytest.raises(ConfigError, match=re.escape(message)):
        cam.set_controls({"AfMode": "auto", **controls})
    assert cam.controls == before  # nothing applied when one control is bad


def test_manual_lens_position_is_in_dioptres(cam: dasha.camera.Camera) -> None:
    cam.set_controls({"LensPosition": 1 / 1.2})  # 1/distance in metres: in focus at 120 cm
    meta = cam.capture().metadata
    assert meta["LensPosition"] == pytest.approx(1 / 1.2)
    assert meta["Truth"]["in_focus"]
    assert meta["AfState"] == "Idle" and meta["SensorTimestamp"] > 0
    with pytest.raises(ConfigError, match="AfMode 'manual'"):
        cam.set_controls({"AfMode": "auto", "LensPosition": 1.0})


def test_readme_example_focuses_by_ground_truth(cam: dasha.camera.Camera) -> None:
    cam.set_controls({"AfMode": "auto", "AfAlgorithm": "coarse-fine"})
    assert cam.autofocus_cycle(timeout_s=5.0)
    frame = cam.capture()
    assert frame.metadata["AfState"] == "Focused" and frame.metadata["Truth"]["in_focus"]
    cycle = cam.cycles[-1]
    assert cycle["duration_s"] <= 5.0 and cycle["lens_moves"] == sum(
        m["what"] == "lens" for m in cycle["moves"]
    )
    assert {"who", "from", "to", "fom", "peak"} <= set(cycle["moves"][-1])


def test_timeout_fails_in_time_with_the_lens_at_the_sharpest_position(
    cam: dasha.camera.Camera,
) -> None:
    cam.set_controls({"AfMode": "auto", "AfAlgorithm": "sweep"})  # 461 frames: ~16 s
    assert not cam.autofocus_cycle(timeout_s=1.0)
    cycle = cam.cycles[-1]
    assert cycle["state"] == "Failed" and cycle["fail_reason"] == "timeout"
    assert cycle["duration_s"] <= 1.0
    seen = cam.timeline[cycle["start_frame"] : cycle["end_frame"] + 1]
    sharpest = max(seen, key=lambda m: m["FocusFoM"])
    assert cam.rig.lens.focus == pytest.approx(sharpest["LensDevice"]["value"])
    assert cam.capture().metadata["AfState"] == "Failed"


def test_move_budget_is_honoured(cam: dasha.camera.Camera) -> None:
    cam.set_controls({"AfMode": "auto", "AfAlgorithm": "coarse-fine"})
    assert not cam.autofocus_cycle(timeout_s=5.0, max_lens_moves=5)
    cycle = cam.cycles[-1]
    assert cycle["fail_reason"] == "move budget" and cycle["lens_moves"] <= 5


def test_no_target_is_failed_with_the_lens_at_the_sharpest_position(
    cam: dasha.camera.Camera,
) -> None:
    # The motorcycle scene holds no giraffe: focused by contrast, but Failed (no target).
    cam.set_controls({"AfMode": "auto", "AfAlgorithm": "coarse-fine", "AfTarget": "giraffe"})
    assert not cam.autofocus_cycle(timeout_s=5.0)
    cycle = cam.cycles[-1]
    assert cycle["fail_reason"] == "no target" and cycle["duration_s"] <= 5.0
    seen = cam.timeline[cycle["start_frame"] : cycle["end_frame"] + 1]
    assert cam.rig.lens.focus == pytest.approx(
        max(seen, key=lambda m: m["FocusFoM"])["LensDevice"]["value"]
    )


@pytest.mark.parametrize("algorithm", ["coarse-fine", "hill-climb", "golden", "sweep"])
def test_af_range_limits_the_scan(cam: dasha.camera.Camera, algorithm: str) -> None:
    cam.set_controls({"AfMode": "auto", "AfAlgorithm": algorithm, "AfRange": (0.3, 0.6)})
    cam.autofocus_cycle(timeout_s=5.0)
    first_move = next(m["frame"] for m in cam.cycles[-1]["moves"] if m["what"] == "lens")
    positions = [m["LensPosition"] for m in cam.timeline[first_move:]]
    assert min(positions) >= 0.3 - 1e-6 and max(positions) <= 0.6 + 1e-6


def run_continuous(scenario: str) -> dasha.camera.Camera:
    with open_camera("sim", scenario=scenario, seed=0) as camera:
        camera.set_controls({"AfMode": "continuous", "AfAlgorithm": "coarse-fine"})
        assert camera.scenario is not None
        while camera.camera.frame_index < camera.scenario.frames:
            camera.capture()
    return camera


def test_continuous_mode_does_not_move_on_a_static_scene() -> None:
    camera = run_continuous("static")
    assert camera.camera.frame_index >= 200
    assert len(camera.cycles) == 1  # the start-up cycle only
    end = camera.cycles[0]["end_frame"]
    assert all(m["frame"] <= end + 1 for m in camera.camera.moves)


@pytest.mark.parametrize(
    ("scenario", "reason"),
    [("depth-step", SHARPNESS), ("light-step", LIGHT), ("scene-cut", SCENE)],
)
def test_retrigger_fires_on_each_scripted_event(scenario: str, reason: str) -> None:
    camera = run_continuous(scenario)
    assert camera.scenario is not None
    for begin, end, _what in camera.scenario.events():
        fired = [c for c in camera.cycles if begin <= c["start_frame"] <= end + 10]
        assert fired and fired[-1]["reason"] == reason and fired[-1]["state"] == "Focused"
        assert fired[-1]["truth"]["in_focus"]


def test_a_target_that_walks_is_not_a_new_scene() -> None:
    import cv2
    import numpy as np

    from dasha.camera.continuous import Retrigger

    def texture(seed: int) -> np.ndarray:  # a scene's smooth structure, not pixel noise
        field = cv2.GaussianBlur(
            np.random.default_rng(seed).normal(size=(400, 400)).astype(np.float32), (0, 0), 10
        )
        return (30 + 200 * (field - field.min()) / np.ptp(field)).astype(np.uint8)

    scene, scene_box = texture(0), (100.0, 100.0, 300.0, 300.0)  # the central half

    def with_target(x: int) -> np.ndarray:
        image = scene.copy()
        image[150:190, x : x + 20] = 220  # a person, 20 x 40 px
        return image

    target_box = (110.0, 150.0, 130.0, 190.0)  # where it stood when the cycle ended
    for scene_window, expected in ((scene_box, False), (None, True)):
        watcher = Retrigger()
        watcher.reference(with_target(110), target_box, scene_box=scene_window)
        reasons = [
            watcher.update(with_target(x), target_box, 100.0, scene_box=scene_window)
            for x in (150, 170, 190, 210)  # walked out of its old box
        ]
        assert (SCENE in reasons) is expected  # the target's old box alone: a "new scene"
    # a cut still is one, over the scene's window
    watcher = Retrigger()
    watcher.reference(with_target(110), target_box, scene_box=scene_box)
    assert SCENE in [
        watcher.update(texture(1), target_box, 100.0, scene_box=scene_box) for _ in range(3)
    ]


def test_light_ramp_changes_exposure_not_the_lens() -> None:
    camera = run_continuous("light-ramp")
    later = camera.cycles[1:]
    assert later and all(c["reason"] == LIGHT and c["lens_moves"] == 0 for c in later)
    assert camera.timeline[-1]["Truth"]["in_focus"]


def test_api_drives_the_pylon_and_serial_lens_emulators() -> None:
    os.environ.setdefault("PYLON_CAMEMU", "2")
    # pypylon is part of the test extras: a missing install fails here, it is not skipped.
    import pypylon  # noqa: F401

    from dasha.hardware.varioptic_emulator import VariopticEmulator

    with VariopticEmulator() as emu:
        with open_camera(
            "basler", lens="varioptic-serial", port=emu.port, timeout_s=0.2, roi=(417, 404, 0, 0)
        ) as camera:
            camera.set_controls({"LensPosition": 2.0})
            meta = camera.capture().metadata
            assert meta["LensPosition"] == pytest.approx(2.0, abs=0.01)
            assert emu.focus_v == pytest.approx(camera.lens_map.to_device(2.0), abs=0.002)
            camera.set_controls({"AfMode": "auto", "AfAlgorithm": "hill-climb"})
            camera.autofocus_cycle(timeout_s=3.0, max_lens_moves=8)
            cycle = camera.cycles[-1]
            assert cycle["lens_moves"] <= 8 and "Truth" not in meta
        assert emu.focus_v == 24.0  # parked on close


def test_dasha_watch_reports_events_and_static_moves() -> None:
    import json

    from typer.testing import CliRunner

    from dasha.cli import app
    from dasha.cli.app import register_all

    register_all()
    result = CliRunner().invoke(app, ["watch", "--scenario", "scene-cut", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["static_lens_moves_per_100_frames"] == 0.0
    (event,) = report["events"]
    assert event["refocus_frames"] is not None and event["in_focus_after"]


@pytest.mark.slow
def test_dasha_algorithm_runs_the_shipped_agents() -> None:
    with open_camera("sim", scene="motorcycle", distance_cm=170, seed=0) as camera:
        camera.set_controls({"AfMode": "auto", "AfAlgorithm": "dasha"})
        assert camera.autofocus_cycle(timeout_s=2.0)
        cycle = camera.cycles[-1]
        # Found by A_L's stop rule; by ground truth it can end ~2 px off (README: the gate).
        assert cycle["episode"]["stop"] == "found" and cycle["truth"]["blur_px"] < 3.0
        assert {m["who"] for m in cycle["moves"]} == {"A_H/A_L"}


def test_a_scenario_can_take_the_target_out_of_the_frame() -> None:
    from dasha.sim.scenarios import SCENARIOS, resolve_scene
    from dasha.sim.scenes import load_scene

    assert resolve_scene("motorcycle") == "motorcycle"
    key = resolve_scene("motorcycle:without-target")
    assert key == resolve_scene("motorcycle:without-target")  # registered once
    assert not load_scene(key).target_mask.any()
    assert [e[0] for e in SCENARIOS["target-leaves"].events()] == [100, 200]


def test_af_windows_are_what_the_cycle_meters(cam: dasha.camera.Camera) -> None:
    window = (150.0, 150.0, 250.0, 250.0)
    cam.set_controls({"AfMode": "auto", "AfWindows": [window], "AfTrigger": "start"})
    assert cam.cycles and cam.timeline[-1]["AfWindow"] == list(window)
    cam.set_controls({"AfTrigger": "cancel"})
    assert cam.capture().metadata["AfState"] == "Idle"


def test_classical_retrigger_rescans_locally_not_from_the_start(sim_rig) -> None:
    from dasha.baselines.af import af_method

    camera, lens = sim_rig  # the motorcycle at 170 cm
    method = af_method("coarse-fine")
    full = method.run(camera, lens)
    camera.world.set_conditions(distance_cm=150.0)  # a depth step
    local = method.run(camera, lens, around=lens.focus)
    assert full.frames > 30 and local.frames < 15
    assert camera.world.truth(lens.focus)["in_focus"]
    assert min(f for f, _ in local.samples) > 30.0  # it never went back to 24 V


def test_continuous_depth_step_refocuses_within_20_frames() -> None:
    camera = run_continuous("depth-step")
    again = [c for c in camera.cycles if c["reason"] == SHARPNESS]
    assert len(again) == 3 and all(c["frames"] < 20 and c["truth"]["in_focus"] for c in again)


def test_dasha_watch_takes_tunables_full_rescan_is_the_before() -> None:
    import json

    from typer.testing import CliRunner

    from dasha.cli import app
    from dasha.cli.app import register_all

    register_all()
    args = ["watch", "--scenario", "depth-step", "--json", "--tunable", "local_rescan=false"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert all(e["refocus_frames"] > 40 for e in json.loads(result.output)["events"])
    result = CliRunner().invoke(app, ["watch", "--tunable", "retrigger_ratio"])
    assert result.exit_code != 0 and "NAME=VALUE" in result.output


def test_select_target_picks_by_af_target_select() -> None:
    from dasha.camera.api import select_target
    from dasha.perception.detectors.base import Detection

    big = Detection("person", 0.6, (0.0, 0.0, 200.0, 300.0))  # large, off-centre
    sure = Detection("person", 0.9, (350.0, 10.0, 400.0, 80.0))  # small, a corner
    middle = Detection("person", 0.5, (190.0, 180.0, 230.0, 230.0))  # small, centred
    found = [big, sure, middle]
    assert select_target(found, "largest", (417, 404)) is big
    assert select_target(found, "confident", (417, 404)) is sure
    assert select_target(found, "centre", (417, 404)) is middle


def test_video_scenario_plays_the_video_as_one_depth_plane() -> None:
    """Uses OpenCV's vtest.avi, fetched once into the cache like the scene library."""
    with open_camera("sim", scenario="video-pedestrians", seed=0) as camera:
        camera.set_controls({"LensPosition": 1 / 1.7, "AfTarget": "person"})  # on its plane
        for _ in range(3):
            camera.capture()
        scenes = [m["Truth"]["scene"] for m in camera.timeline]
        assert scenes == ["video:vtest#0", "video:vtest#1", "video:vtest#2"]
        assert all(m["Truth"]["in_focus"] for m in camera.timeline)
        frame = camera.rig.camera.grab()
        found = camera.senses().detector.detect(frame.as_uint8())
        assert len(found) >= 2, "several pedestrians are found in the sharp frame"
        from dasha.camera.api import select_target

        boxes = set()
        for select in ("largest", "centre", "confident"):
            camera.set_controls({"AfTargetSelect": select})
            box = camera.look(frame)["AfTargetBox"]
            assert box == list(select_target(found, select, (417, 404)).box)
            boxes.add(tuple(box))
        assert len(boxes) >= 2  # several candidates, and the choice matters


def test_dasha_watch_runs_the_video_scenario() -> None:
    from dasha.camera.watch import watch

    report, _cam = watch("video-pedestrians")
    (event,) = report["events"]
    assert report["startup"]["state"] == "Focused" and report["startup"]["truth"]["in_focus"]
    assert event["in_focus_after"] and report["static_lens_moves_per_100_frames"] == 0.0


def test_face_target_is_found_by_mtcnn_on_a_frame() -> None:
    with open_camera("sim", scene="grace_hopper", distance_cm=170, seed=0) as camera:
        camera.set_controls({"LensPosition": 1 / 1.7, "AfTarget": "face"})
        seen = camera.look(camera.rig.camera.grab())
        _x1, y1, _x2, y2 = seen["AfTargetBox"]
        assert seen["AfTargetScore"] > 0.9 and (y1 + y2) / 2 < 404 / 2  # a face, upper half


def test_af_range_is_refused_by_dasha_and_can_be_unset(cam: dasha.camera.Camera) -> None:
    cam.set_controls({"AfRange": (0.3, 0.6)})
    assert cam.lens.focus_range.max < cam.lens.full_range.max
    with pytest.raises(ConfigError, match="not honoured by AfAlgorithm 'dasha'"):
        cam.set_controls({"AfAlgorithm": "dasha"})
    assert cam.controls["AfAlgorithm"] == "coarse-fine"
    cam.set_controls({"AfRange": None, "AfAlgorithm": "dasha"})
    assert cam.lens.focus_range == cam.lens.full_range


def test_api_drives_a_uvc_lens_in_its_own_steps() -> None:
    """The UVC lens (V4L2 focus_absolute, faked as in test_hw_uvc) behind the API."""
    from dasha.camera.api import Camera
    from dasha.hardware import open_camera as open_device
    from dasha.hardware.session import Rig
    from dasha.hardware.uvc import UvcControls, UvcLens
    from test_hw_uvc import webcam_controls

    raw = webcam_controls()
    rig = Rig(open_device("sim", scene="motorcycle", seed=0), UvcLens(UvcControls(raw, "/dev/v")))
    with Camera(rig) as camera:
        camera.set_controls({"LensPosition": 5.0})  # mid-range: 0..10 dpt over 0..250 steps
        assert raw["focus_absolute"].value == 125
        assert camera.capture().metadata["LensDevice"] == {"value": 125, "unit": "step"}
        camera.set_controls({"AfMode": "auto", "AfRange": (2.0, 4.0)})
        camera.autofocus_cycle(timeout_s=3.0)
        values = {m["to"] for m in camera.camera.moves if m["who"] == "coarse-fine"}
        assert values and all(50 <= v <= 100 for v in values)
    with pytest.raises(ConfigError, match="no video device"):
        open_camera("uvc", device=99)


@pytest.mark.slow
def test_dasha_retrigger_resumes_without_the_factory_reset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A depth step re-focused by A_L alone: no 24 V reset frame, no A_H frame."""
    from dasha.camera.watch import watch
    from dasha.sim import scenarios

    short = scenarios.Scenario(
        "short-step",
        "one depth step, 150 -> 190 cm",
        30,
        scenarios.BASE,
        (scenarios.Keyframe(15, {"distance_cm": 190.0}),),
    )
    monkeypatch.setitem(scenarios.SCENARIOS, short.name, short)
    report, cam = watch(short.name, "dasha")
    (event,) = report["events"]
    again = cam.cycles[-1]
    assert again["reason"] == SHARPNESS and again["episode_start"] == "resumed"
    assert again["exposure_moves"] == 0 and all(m["to"] > 30.0 for m in again["moves"])
    assert event["in_focus_after"]
    # resuming skips the 24 V reset frame and A_H's frame: fewer frames than the cold start
    assert again["frames"] < cam.cycles[0]["frames"]
    assert cam.cycles[0]["episode_start"] == "factory reset"  # the start-up cycle: cold


def test_resume_hands_to_a_l_only_when_the_histogram_is_suitable() -> None:
    from dasha.envs.hierarchical import EXPOSURE, FOCUS
    from dasha.envs.rewards import is_suitable_peak

    with open_camera("sim", scene="motorcycle", distance_cm=170, seed=0) as camera:
        camera.set_controls({"AfAlgorithm": "dasha"})
        episode, _policies = camera.dasha_agents()
        for exposure_us, agent in ((60000, FOCUS), (300, EXPOSURE)):
            camera.set_controls({"ExposureTime": exposure_us})
            camera.capture()
            assert is_suitable_peak(camera.timeline[-1]["HistogramPeak"]) == (agent == FOCUS)
            moves, frames = len(camera.camera.moves), camera.camera.frame_index
            obs, _info = episode.resume(camera.last_frame)
            assert episode.active == agent and set(obs) == {agent}
            # no factory reset: nothing moved and no frame was taken
            assert (len(camera.camera.moves), camera.camera.frame_index) == (moves, frames)
