"""Classical autofocus baselines on the simulator, judged by its ground truth."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from dasha.baselines.ae import run_ae
from dasha.baselines.af import AF_METHODS, parabola_vertex, run_af
from dasha.errors import ConfigError
from dasha.hardware.sim import sim_rig

# (scene, distance_cm, illuminance_lux): near and far, dark and bright
CONDITIONS = [
    ("cameraman", 150.0, 13.0),
    ("cameraman", 195.0, 300.0),
    ("motorcycle", 145.0, 100.0),
    ("motorcycle", 170.0, 300.0),
]
IN_FOCUS_TOLERANCE_V = 0.1


def exposed_rig(scene: str, distance_cm: float, illuminance_lux: float, seed: int = 0):
    camera, lens = sim_rig(
        scene=scene, distance_cm=distance_cm, illuminance_lux=illuminance_lux, seed=seed
    )
    assert run_ae("once", camera).suitable  # AF starts from a good exposure
    return camera, lens


def in_focus(camera, focus_v: float) -> bool:
    truth = camera.grab().meta  # evaluation only: the lens is where the AF left it
    return bool(truth["in_focus"]) or abs(focus_v - truth["in_focus_v"]) <= IN_FOCUS_TOLERANCE_V


@pytest.mark.parametrize("condition", CONDITIONS, ids=lambda c: f"{c[0]}-{c[1]:.0f}cm-{c[2]:.0f}lx")
@pytest.mark.parametrize("method", ["hill-climb", "coarse-fine", "golden"])
def test_af_ends_in_focus(method, condition, request):
    if method == "hill-climb" and condition[1] >= 190:
        # far target: its peak is only ~0.75 V above the background's, and the greedy
        # climb stops on the background's (documented in af_search; ~10 % of the bench)
        request.applymarker(pytest.mark.xfail(strict=True, reason="background local maximum"))
    camera, lens = exposed_rig(*condition)
    before = camera.clock.snapshot()
    result = run_af(method, camera, lens)
    assert result.state == "focused"
    assert in_focus(camera, result.focus), result.focus
    # the books match the simulator's counters (minus the evaluation frame above)
    assert result.frames == camera.clock.frames - before["frames"] - 1
    assert result.lens_moves == camera.clock.lens_moves - before["lens_moves"]
    assert result.samples[-1][0] == result.focus == lens.focus
    assert result.sim_time_s is not None and result.sim_time_s > 0
    assert result.wall_s < 3.0


def test_sweep_finds_focus_and_costs_many_more_frames():
    frames = {}
    for method in AF_METHODS:
        camera, lens = exposed_rig("motorcycle", 160.0, 200.0, seed=1)
        result = run_af(method, camera, lens)
        assert in_focus(camera, result.focus), method
        frames[method] = result.frames
    assert frames["sweep"] == 461 + 1  # 24..70 V every 0.1 V, plus the confirmation frame
    for method in ("hill-climb", "coarse-fine", "golden"):
        assert frames["sweep"] > 5 * frames[method], frames


def test_af_with_a_detector_box():
    camera, lens = exposed_rig("cameraman", 175.0, 50.0)
    box = camera.grab().meta["target_box"]  # stands in for a detector's box
    result = run_af("golden", camera, lens, window=box, measure="brenner")
    assert result.focused and in_focus(camera, result.focus)


@pytest.fixture
def featureless_scene(tmp_path):
    path = tmp_path / "gray_wall.png"
    cv2.imwrite(str(path), np.full((240, 320), 128, np.uint8))
    path.with_suffix(".json").write_text(
        json.dumps({"class": "person", "box": [100, 60, 220, 200]})
    )
    return str(path)


@pytest.mark.parametrize("method", ["coarse-fine", "golden", "hill-climb"])
def test_featureless_scene_fails(featureless_scene, method):
    camera, lens = sim_rig(
        scene=featureless_scene, distance_cm=170.0, illuminance_lux=100.0, seed=0
    )
    run_ae("once", camera)
    result = run_af(method, camera, lens)
    assert result.state == "failed"
    if method == "coarse-fine":  # no peak: the coarse scan crosses the whole range
        assert result.samples[-2][0] == lens.focus_range.max or result.frames > 40


def test_parabola_vertex_on_synthetic_curves():
    def curve(x):
        return 5.0 - 3.0 * (x - 1.3) ** 2

    assert parabola_vertex([1.0, 1.5, 2.0], [curve(x) for x in (1.0, 1.5, 2.0)]) == pytest.approx(
        1.3
    )
    xs = [36.8, 36.85, 37.0]  # unequal spacing, as at the end of a fine scan
    assert parabola_vertex(xs, [curve(x - 35.6) for x in xs]) == pytest.approx(36.9)
    assert parabola_vertex([1, 2, 3], [1.0, 2.0, 3.0]) == 3  # collinear: the best sample
    assert parabola_vertex([1, 2, 3], [3.0, 1.0, 3.0]) == 1  # opens upwards: the best sample
    assert parabola_vertex([1, 2, 3], [1.0, 1.1, 50.0]) == 3  # vertex outside: stays inside
    with pytest.raises(ConfigError, match="exactly 3 points"):
        parabola_vertex([1, 2], [1, 2])


@pytest.mark.parametrize(
    ("method", "tunables", "message"),
    [
        ("golden", {"tolerance_v": -0.01}, "tolerance_v must be > 0"),
        ("coarse-fine", {"contrast_ratio": 1.2}, "contrast_ratio must be < 1"),
        ("coarse-fine", {"min_contrast_ratio": 0.5}, "min_contrast_ratio must be > 1"),
        ("hill-climb", {"max_frames": 2.5}, "max_frames must be a whole number"),
        ("sweep", {"step_v": float("nan")}, "step_v must be > 0"),
        ("sweep", {"step": 0.1}, "unknown tunable.*step_v"),
        ("zoom", {}, "unknown autofocus method 'zoom'"),
    ],
)
def test_bad_tunables_are_config_errors(sim_rig, method, tunables, message):
    camera, lens = sim_rig
    with pytest.raises(ConfigError, match=message):
        run_af(method, camera, lens, **tunables)
    assert camera.clock.frames == 0  # rejected before touching the rig


def test_bad_measure_and_window(sim_rig):
    camera, lens = sim_rig
    with pytest.raises(ConfigError, match="unknown focus measure"):
        run_af("golden", camera, lens, measure="sharpness")
    with pytest.raises(ConfigError, match="window must be a box"):
        run_af("golden", camera, lens, window=[10, 10, 5, 20])
