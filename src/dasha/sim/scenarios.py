"""Scenes that change over time: scripted, frame-indexed, seeded.

A ``Scenario`` is a base condition set plus keyframes ``(frame, changes, kind)``: a
``step`` applies ``changes`` at that frame; a ``ramp`` goes linearly from the previous
values to ``changes`` between the previous keyframe and this one. ``conditions_at(frame)``
is a pure function of the frame index, so a run is reproducible with its seed.

Each keyframe is an *event* with a window ``[start, end]`` (a step: one frame; a ramp:
its whole span); frames outside every event window are the static stretches.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from dasha.errors import ConfigError

WITHOUT_TARGET = ":without-target"  # a scene name with this suffix: its background only
_EMPTY: dict[str, str] = {}
_REGISTRATIONS = contextlib.ExitStack()  # open for the process: the keys stay loadable


def resolve_scene(name: str) -> str:
    """``NAME:without-target``: NAME with the target taken out (alpha 0, the in-painted
    background left), registered once per process; any other name unchanged."""
    if not name.endswith(WITHOUT_TARGET):
        return name
    if name not in _EMPTY:
        from dasha.sim.scenes import load_scene, registered_scene

        scene = load_scene(name.removesuffix(WITHOUT_TARGET))
        mask = np.zeros(scene.reflectance.shape[:2], np.float32)
        empty = replace(scene, name=name, target_mask=mask)
        _EMPTY[name] = _REGISTRATIONS.enter_context(registered_scene(empty))
    return _EMPTY[name]


@dataclass(frozen=True)
class Keyframe:
    frame: int
    changes: dict[str, Any]
    kind: str = "step"  # "step" or "ramp" (from the previous keyframe's frame to this one)


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    frames: int
    base: dict[str, Any]
    keyframes: tuple[Keyframe, ...] = field(default_factory=tuple)
    # A video as the content (``dasha.sim.video``): camera frame k shows its frame k.
    video: str | None = None

    def events(self) -> list[tuple[int, int, str]]:
        """(start_frame, end_frame, what) of each scripted change."""
        out, previous = [], 0
        for key in self.keyframes:
            if not key.changes:  # marks where the next ramp starts
                previous = key.frame
                continue
            start = previous if key.kind == "ramp" else key.frame
            what = ", ".join(f"{k}->{v}" for k, v in key.changes.items())
            out.append((start, key.frame, f"{key.kind} {what}"))
            previous = key.frame
        return out

    def conditions_at(self, frame: int) -> dict[str, Any]:
        state = self._keyed_conditions(frame)
        if self.video is not None:
            from dasha.sim.video import video_scene_name

            state["scene"] = video_scene_name(self.video, frame)
        return state

    def _keyed_conditions(self, frame: int) -> dict[str, Any]:
        state = dict(self.base)
        previous_frame = 0
        for key in self.keyframes:
            if key.kind == "ramp" and previous_frame <= frame < key.frame:
                w = (frame - previous_frame) / max(key.frame - previous_frame, 1)
                for name, value in key.changes.items():
                    state[name] = state[name] + w * (value - state[name])
                return state
            if frame < key.frame:
                return state
            state.update(key.changes)
            previous_frame = key.frame
        return state


def _ramp_hold(frame: int, **changes: Any) -> Keyframe:
    return Keyframe(frame, changes, "ramp")


BASE = {"scene": "motorcycle", "distance_cm": 150.0, "illuminance_lux": 100.0}

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("static", "nothing changes (200 frames)", 200, BASE),
        Scenario(
            "depth-step",
            "the target jumps in depth: 150 -> 190 -> 140 -> 180 cm",
            400,
            BASE,
            (
                Keyframe(100, {"distance_cm": 190.0}),
                Keyframe(200, {"distance_cm": 140.0}),
                Keyframe(300, {"distance_cm": 180.0}),
            ),
        ),
        Scenario(
            "depth-ramp",
            "the target walks away, 150 -> 200 cm over 100 frames, then stands",
            300,
            BASE,
            (Keyframe(100, {}), _ramp_hold(200, distance_cm=200.0)),
        ),
        Scenario(
            "light-step",
            "the light steps 100 -> 25 -> 300 lx",
            300,
            BASE,
            (Keyframe(100, {"illuminance_lux": 25.0}), Keyframe(200, {"illuminance_lux": 300.0})),
        ),
        Scenario(
            "light-ramp",
            "the light ramps 100 -> 300 lx over 150 frames (the lens should stay)",
            300,
            BASE,
            (Keyframe(75, {}), _ramp_hold(225, illuminance_lux=300.0)),
        ),
        Scenario(
            "target-leaves",
            "the target leaves the frame (its background stays) and comes back",
            300,
            BASE,
            (
                Keyframe(100, {"scene": "motorcycle" + WITHOUT_TARGET}),
                Keyframe(200, {"scene": "motorcycle"}),
            ),
        ),
        Scenario(
            "scene-cut",
            "a cut to another photograph at 180 cm (motorcycle -> cameraman)",
            250,
            BASE,
            (Keyframe(100, {"scene": "cameraman", "distance_cm": 180.0}),),
        ),
        Scenario(
            "video-pedestrians",
            "OpenCV's vtest.avi (pedestrians walking) as one depth plane at 170 cm, "
            "which steps to 145 cm at frame 150",
            300,
            {**BASE, "scene": "video:vtest#0", "distance_cm": 170.0},
            (Keyframe(150, {"distance_cm": 145.0}),),
            video="vtest",
        ),
    )
}
# Keyframe(100, {}) before a ramp marks where the ramp starts (an empty step changes nothing).


def scenario(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise ConfigError(
            f"unknown scenario {name!r}; choose one of: {', '.join(SCENARIOS)}"
        ) from None
