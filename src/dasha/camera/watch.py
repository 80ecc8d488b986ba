"""Continuous mode over a scripted scenario, and what it did per event (``dasha watch``).

Per event (a scripted change, ``Scenario.events``): the cycles the watcher started at or
after the event's start and before the next event, the frames from the event's end to the
last focus cycle's end (``refocus_frames``; a step's end is its frame, a ramp's its last
frame, and 0 means it had re-focused before the ramp ended) and to the first one that
focused (``first_refocus_frames``), their lens
and exposure moves and the ground truth at its end. Static stretches are the frames
outside every event's response (event start .. end of its cycle, or the event's end when
nothing fired) and outside the start-up cycle: their lens and exposure moves per 100 frames
are the hunting figure (0 is the goal).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from dasha.camera.api import Camera, open_camera
from dasha.camera.continuous import RetriggerTunables


def watch(
    scenario: str,
    algorithm: str = "coarse-fine",
    *,
    target: str | None = None,
    seed: int = 0,
    tunables: RetriggerTunables | None = None,
    policy: str | Path | None = None,
) -> tuple[dict[str, Any], Camera]:
    start = time.perf_counter()
    with open_camera("sim", scenario=scenario, seed=seed, tunables=tunables, policy=policy) as cam:
        cam.set_controls({"AfMode": "continuous", "AfAlgorithm": algorithm, "AfTarget": target})
        assert cam.scenario is not None
        while cam.camera.frame_index < cam.scenario.frames:
            cam.capture()
    report = summarize(cam)
    report["wall_s"] = time.perf_counter() - start
    return report, cam


def summarize(cam: Camera) -> dict[str, Any]:
    scenario = cam.scenario
    assert scenario is not None
    total = cam.camera.frame_index
    busy = [False] * total
    cycles = cam.cycles
    if cycles:  # the start-up cycle
        for i in range(0, cycles[0]["end_frame"] + 1):
            busy[i] = True
    events = scenario.events()
    out_events = []
    for k, (begin, end, what) in enumerate(events):
        next_begin = events[k + 1][0] if k + 1 < len(events) else total
        fired = [c for c in cycles if begin <= c["start_frame"] < next_begin]
        focus = [c for c in fired if c["algorithm"] != "once"]
        until = max([c["end_frame"] for c in fired], default=end)
        for i in range(begin, min(until, total - 1) + 1):
            busy[i] = True
        last = fired[-1] if fired else None
        out_events.append(
            {
                "event": what,
                "frames": [begin, end],
                "cycles": [(c["reason"], c["state"]) for c in fired],
                # 0: the watcher had re-focused before a ramp ended
                "refocus_frames": max(focus[-1]["end_frame"] - end + 1, 0) if focus else None,
                # ... to the first cycle that focused: on moving content (a video) a later
                # re-trigger before the next event is the content's doing, not the event's
                "first_refocus_frames": next(
                    (max(c["end_frame"] - end + 1, 0) for c in focus if c["state"] == "Focused"),
                    None,
                ),
                "lens_moves": sum(c["lens_moves"] for c in fired),
                "exposure_moves": sum(c["exposure_moves"] for c in fired),
                "in_focus_after": (last["truth"] or {}).get("in_focus") if last else None,
                "blur_px_after": (last["truth"] or {}).get("blur_px") if last else None,
                "in_focus_at_next_event": cam.timeline[min(next_begin, total) - 1]
                .get("Truth", {})
                .get("in_focus"),
            }
        )
    # A move is static when its cycle started on a static frame (a spurious re-trigger):
    # the park after a Failed cycle lands on the frame after it and is still its move.
    moves = [m for c in cycles if not busy[min(c["start_frame"], total - 1)] for m in c["moves"]]
    static_frames = busy.count(False)
    static_lens = sum(m["what"] == "lens" for m in moves)
    static_exp = sum(m["what"] == "exposure" for m in moves)
    per100 = 100.0 / static_frames if static_frames else 0.0
    return {
        "scenario": scenario.name,
        "description": scenario.description,
        "algorithm": cam.controls["AfAlgorithm"],
        "frames": total,
        "startup": {
            k: cycles[0][k] for k in ("state", "frames", "lens_moves", "exposure_moves", "truth")
        }
        if cycles
        else None,
        "events": out_events,
        "static_frames": static_frames,
        "static_lens_moves_per_100_frames": static_lens * per100,
        "static_exposure_moves_per_100_frames": static_exp * per100,
        "cycles": len(cycles),
        "in_focus_frames_fraction": sum(
            bool(m.get("Truth", {}).get("in_focus")) for m in cam.timeline
        )
        / max(total, 1),
    }
