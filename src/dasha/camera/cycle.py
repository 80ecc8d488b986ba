"""One AF cycle, bounded: exposure (if AeEnable), focus with ``AfAlgorithm``, the target
check, and on failure the lens left at the sharpest position the cycle saw.

Classical algorithms (``coarse-fine``, ``hill-climb``, ``golden``, ``sweep``) scan the AF
window's contrast inside AfRange after a Basler-like "exposure auto once"; ``dasha`` runs
one hierarchical episode with the shipped policies (A_H sets the exposure, A_L the lens)
through ``dasha.agents.run.run_episode``, the same code as ``dasha focus``. Failed
reasons: ``timeout``, ``move budget``, ``no suitable exposure``, ``no sharp peak``,
``no target``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from dasha.camera.continuous import SHARPNESS
from dasha.camera.views import CycleLimitError
from dasha.envs.rewards import focus_reward, is_suitable_peak

if TYPE_CHECKING:
    from dasha.camera.api import Camera


def run_cycle(
    cam: Camera, timeout_s: float, max_lens_moves: int, reason: str, exposure_only: bool
) -> dict[str, Any]:
    view, lens = cam.camera, cam.lens
    algorithm = "once" if exposure_only else cam.controls["AfAlgorithm"]
    first_frame, moves_before = view.frame_index, len(view.moves)
    start_s, wall = view.now_s(), time.perf_counter()
    view.deadline_s, lens.budget, lens.cycle_moves = start_s + timeout_s, max_lens_moves, 0
    cam.af_state = "Scanning"
    record: dict[str, Any] = {"cycle": len(cam.cycles), "reason": reason, "algorithm": algorithm}
    fail: str | None = None
    try:
        if exposure_only:
            fail = _expose(cam)
        elif algorithm == "dasha":
            fail = _dasha(cam, record)
        else:
            fail = _classical(cam, algorithm, record, reason)
    except CycleLimitError as limit:
        fail = limit.reason
    finally:
        view.deadline_s, lens.budget = None, None
    frames = cam.timeline[first_frame:]
    if fail is not None and frames and not exposure_only:
        sharpest = max(frames, key=lambda m: m["FocusFoM"])
        view.who = "park"
        lens.set_focus(sharpest["LensDevice"]["value"], park=True)
        record["parked_at_dpt"] = sharpest["LensPosition"]
    cam.af_state = "Failed" if fail else "Focused"
    last = frames[-1] if frames else {}
    if cam.last_image is not None:
        # Failed too: continuous mode then waits for a change, as libcamera's, not re-scans.
        box = cam.af_window(cam.last_image)
        peak = cam.timeline[-1]["HistogramPeak"]
        cam.retrigger.reference(
            cam.last_image,
            box,
            peak,
            keep_scene=exposure_only,
            scene_box=cam.scene_window(cam.last_image),
        )
    moves = view.moves[moves_before:]
    _annotate(moves, cam.timeline)
    record.update(
        state=cam.af_state,
        fail_reason=fail,
        start_frame=first_frame,
        end_frame=view.frame_index - 1,
        frames=len(frames),
        lens_moves=sum(m["what"] == "lens" and m["who"] != "park" for m in moves),
        exposure_moves=sum(m["what"] == "exposure" for m in moves),
        duration_s=view.now_s() - start_s,
        wall_s=time.perf_counter() - wall,
        lens_position_dpt=cam.lens_map.to_dpt(lens.focus),
        exposure_us=view.exposure_us,
        moves=moves,
        truth=last.get("Truth"),
        target={k: last.get(k) for k in ("AfTargetScore", "AfTargetBox", "Brisque")},
    )
    return record


def _expose(cam: Camera) -> str | None:
    from dasha.baselines.ae import run_ae

    cam.camera.who = "ae:once"
    result = run_ae("once", cam.camera)
    return None if result.suitable else "no suitable exposure"


def _classical(cam: Camera, algorithm: str, record: dict[str, Any], reason: str) -> str | None:
    from dasha.baselines.af import af_method

    if cam.controls["AeEnable"]:
        # A contrast scan needs a usable exposure, not A_H's hand-over band (eq. 11): a
        # scene whose histogram peak stays out of [50, 150] (a video's dark pavement) is
        # still focused; the miss is in the record, not a Failed.
        record["exposure_suitable"] = _expose(cam) is None
    cam.camera.who = algorithm
    window = cam.af_window(cam.last_image) if cam.last_image is not None else None
    # Only a sharpness drop means the peak moved a little; a new scene can be anywhere.
    local = cam.controls["AfMode"] == "continuous" and reason == SHARPNESS
    around = cam.lens.focus if local and cam.retrigger.tunables.local_rescan else None
    result = af_method(algorithm).run(cam.camera, cam.lens, window=window, around=around)
    if not result.focused:
        return "no sharp peak"
    return _check_target(cam, result.frame)


def _check_target(cam: Camera, frame: Any) -> str | None:
    if cam.controls["AfTarget"] is None or frame is None:
        return None
    seen = cam.look(frame)
    if seen["AfTargetBox"] is None:
        return "no target"
    if not cam.controls["AfWindows"]:
        cam.window = tuple(seen["AfTargetBox"])
    return None


def _dasha(cam: Camera, record: dict[str, Any]) -> str | None:
    from dasha.agents.run import STOP_FOUND, STOP_UNSUITABLE, run_episode

    episode, policies = cam.dasha_agents()
    cam.camera.who = "A_H/A_L"
    # A re-trigger in continuous mode resumes from the frame that triggered it: the
    # factory reset (lens 24 V, 20 ms) is the paper's cold start, and a suitable exposure
    # needs no A_H step; the start-up cycle and a triggered one keep the paper's protocol.
    warm = cam.controls["AfMode"] == "continuous" and record["reason"] != "start"
    resume = cam.last_frame if warm and cam.retrigger.tunables.dasha_warm_retrigger else None
    report, _first, last = run_episode(
        episode, policies, seed=cam.seed + len(cam.cycles), resume_from=resume
    )
    record["episode_start"] = "resumed" if resume is not None else "factory reset"
    record["episode"] = {"stop": report.stop, "moves": report.moves}
    record["exposure_suitable"] = report.exposure_suitable
    if report.stop == STOP_UNSUITABLE:
        return "no suitable exposure"
    if report.stop != STOP_FOUND:
        return "no target" if not any(m.get("score") for m in report.moves) else "no sharp peak"
    seen = cam.look(last)
    if seen["AfTargetBox"] is not None and not cam.controls["AfWindows"]:
        cam.window = tuple(seen["AfTargetBox"])
    return None


def _annotate(moves: list[dict[str, Any]], timeline: list[dict[str, Any]]) -> None:
    """Each move with what the frame after it showed: contrast, detection, BRISQUE, and
    the paper's reward of that frame (eq. 11 for exposure moves, eq. 12 for lens moves)."""
    for move in moves:
        after = timeline[move["frame"]] if move["frame"] < len(timeline) else None
        if after is None:
            continue
        score = after.get("AfTargetScore")
        move.update(
            fom=after["FocusFoM"],
            peak=after["HistogramPeak"],
            detection=after.get("AfTargetBox"),
            score=score,
            brisque=after.get("Brisque"),
        )
        if move["what"] == "lens" and score is not None:
            move["reward"] = focus_reward(bool(after.get("AfTargetBox")), after.get("Brisque"))
        if move["what"] == "exposure":
            move["suitable"] = is_suitable_peak(after["HistogramPeak"])
