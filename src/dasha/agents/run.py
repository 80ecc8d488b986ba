"""Running trained agents on a camera: one full hierarchical episode (Fig. 2), and evaluation.

Only plain-torch policies are needed (``dasha.agents.policy``); Ray is not imported.
Ground truth (``in_focus``, ``blur_px``) is reported where the camera is the simulator,
for evaluation only: the agents never see it.
"""

from __future__ import annotations

import copy
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from dasha.agents import SHIPPED_POLICIES, shipped_name
from dasha.agents.policy import Policy, action_sizes_of
from dasha.breakdown import EpisodeResult, breakdown
from dasha.envs.config import EpisodeConfig
from dasha.envs.focus import HORIZON, PREVIOUS_EXTRAS, blur_px_per_range, with_lens_position
from dasha.envs.hierarchical import EXPOSURE, FOCUS, HierarchicalEpisode
from dasha.envs.stop import BLUR_SCALES, open_focus_estimate
from dasha.errors import ConfigError
from dasha.hardware.base import Frame
from dasha.perception.defocus import RingPowers, estimate_focus, spectrum
from dasha.perception.encoder import DEFAULT_ENCODER

# What a trained A_L fixes of its episodes: the stop rule it learned and what it observes.
TRAINED_OPTIONS = (
    "sharp_brisque_max",
    "stop_rule",
    "peak_bracket",
    "defocus_stop",
    "observe_lens",
    "observe_previous",
    "observe_defocus",
    "focus_action",
)
# What a trained A_H fixes: what it observes.
TRAINED_EXPOSURE_OPTIONS = ("exposure_observation",)
# Why an episode ended: A_L's stop rule ended the search, A_L used its 10 moves, or A_H's frame had an
# unsuitable histogram (no hand-over).
STOP_FOUND, STOP_HORIZON, STOP_UNSUITABLE = "found", "horizon", "unsuitable exposure"
# What each move records of the env's info (ground truth only on the simulator). A lens
# move's ``detected`` is the search's verdict (with the sharpness gate), ``score`` the
# detector's own confidence (> 0: it saw the target, perhaps blurred).
MOVE_KEYS = {
    EXPOSURE: ("exposure_us", "peak", "suitable"),
    FOCUS: ("detected", "score", "brisque", "clipped_fraction", "blur_px", "in_focus"),
}


def shipped_policy_dir(encoder: str = DEFAULT_ENCODER, name: str = "pretrained") -> Path:
    return (
        Path(str(resources.files("dasha") / "data" / "policies" / encoder))
        / (SHIPPED_POLICIES[name])
    )


def policy_dir(directory: str | Path | None = None, encoder: str = DEFAULT_ENCODER) -> Path:
    """Where ``--policy`` points: a run directory, the name of a shipped pair
    (``SHIPPED_POLICIES``, where no such directory exists), or ``None`` for the default."""
    if directory is None:
        return shipped_policy_dir(encoder)
    name = shipped_name(directory)
    return Path(directory) if name is None else shipped_policy_dir(encoder, name)


@dataclass
class Policies:
    exposure: Policy
    focus: Policy

    @classmethod
    def load(cls, directory: str | Path | None = None, encoder: str = DEFAULT_ENCODER) -> Policies:
        """``directory/policies/{exposure,focus}.pt`` or ``directory/{...}.pt``, or the name
        of a shipped pair (``SHIPPED_POLICIES``, where no such directory exists); default:
        the shipped ``pretrained`` pair."""
        root = policy_dir(directory, encoder)
        if (root / "policies").is_dir():
            root = root / "policies"
        missing = [name for name in (EXPOSURE, FOCUS) if not (root / f"{name}.pt").is_file()]
        if missing:
            hint = (
                "train them with `dasha pretrain --out DIR` (or `dasha train`) and pass "
                f"--policy DIR, or name a shipped pair: {', '.join(SHIPPED_POLICIES)}"
            )
            raise ConfigError(f"no {' and '.join(missing)} policy in {root}: {hint}")
        policies = cls(Policy.load(root / f"{EXPOSURE}.pt"), Policy.load(root / f"{FOCUS}.pt"))
        for policy in (policies.exposure, policies.focus):
            if policy.spec.encoder and policy.spec.encoder != encoder:
                raise ConfigError(
                    f"{root}: the {policy.spec.agent} policy was trained on encoder "
                    f"{policy.spec.encoder!r}; run with --encoder {policy.spec.encoder}"
                )
        return policies

    @property
    def episode_options(self) -> dict[str, Any]:
        """The episode options the policies were trained with: A_L's stop rule, what it
        observes and its action units, and what A_H observes."""
        focus, exposure = self.focus.spec.episode, self.exposure.spec.episode
        # each agent's file says what that agent was trained to see
        return {
            **{name: getattr(focus, name) for name in TRAINED_OPTIONS},
            **{name: getattr(exposure, name) for name in TRAINED_EXPOSURE_OPTIONS},
        }

    def episode(self, base: EpisodeConfig | None = None) -> EpisodeConfig:
        """``base`` (conditions, perception, ... of the run) with the trained options."""
        return replace(base or EpisodeConfig(), **self.episode_options)

    def check(self, episode: HierarchicalEpisode) -> None:
        """The policies must fit the rig's action spaces (e.g. a webcam's focus range)."""
        for agent, policy in ((EXPOSURE, self.exposure), (FOCUS, self.focus)):
            wanted = action_sizes_of(episode.action_spaces[agent])
            if tuple(policy.spec.action_sizes) != wanted:
                raise ConfigError(
                    f"the {agent} policy acts over {policy.spec.action_sizes} but this rig needs {wanted}: "
                    "train a policy for this camera/lens (dasha capture + Replay-v0, or dasha train)"
                )


@dataclass
class EpisodeReport:
    """What one hierarchical episode did; ``in_focus``/``blur_px`` only on the simulator.

    ``moves``: one record per move (the agent, and ``MOVE_KEYS`` of its info; lens moves
    also the lens position they set); ``stop``: why the episode ended (``STOP_*``).
    """

    exposure_moves: int = 0
    lens_moves: int = 0
    handed_over: bool = False
    exposure_suitable: bool = False
    """A_H's last frame had a suitable histogram (with ``EpisodeConfig.handover="always"``
    A_L may have taken over without one)."""
    detected: bool = False
    in_focus: bool | None = None
    blur_px: float | None = None
    final_exposure_us: float = 0.0
    final_focus: float = 0.0
    focus_unit: str = "V"
    peak: float | None = None
    frames: int = 0
    sim_time_s: float | None = None
    wall_time_s: float = 0.0
    decision_ms: list[float] = field(default_factory=list)
    conditions: dict[str, Any] = field(default_factory=dict)
    moves: list[dict[str, Any]] = field(default_factory=list)
    stop: str = ""
    exposure_solvable: bool | None = None
    """Simulator only: whether any exposure of the table gives a suitable histogram here
    (ground truth of what A_H could have done; some scenes' histograms never are)."""

    @property
    def success(self) -> bool:
        """Detected and in focus by ground truth (the bench's and evaluation's success)."""
        return self.detected and bool(self.in_focus)

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["final_focus_v" if self.focus_unit == "V" else "final_focus"] = data.pop("final_focus")
        return data


def run_episode(
    episode: HierarchicalEpisode,
    policies: Policies,
    seed: int | None = None,
    resume_from: Frame | None = None,
) -> tuple[EpisodeReport, Frame, Frame]:
    """Exposure, hand-over, focus: returns the report and the first and last frames.

    ``resume_from``: start from this frame as the rig is now (``HierarchicalEpisode.resume``,
    a continuous-mode re-trigger) instead of the factory reset."""
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    if resume_from is not None:
        obs, infos = episode.resume(resume_from)
    else:
        obs, infos = episode.reset(rng)
    first_info = next(iter(infos.values()))
    report = EpisodeReport(
        conditions=dict(first_info.get("conditions", {})), focus_unit=episode.lens.unit
    )
    report.handed_over = episode.active == FOCUS  # resumed with a suitable histogram
    report.exposure_suitable = report.handed_over
    info: dict[str, Any] = {}
    ended = False
    while episode.active:
        agent = episode.active
        policy = policies.exposure if agent == EXPOSURE else policies.focus
        tick = time.perf_counter()
        action = policy.act(obs[agent])
        report.decision_ms.append((time.perf_counter() - tick) * 1e3)
        obs, _, terminated, _, infos = episode.step({agent: action})
        info = infos.get(agent, info)
        move = {"agent": agent, **{k: info[k] for k in MOVE_KEYS[agent] if k in info}}
        if agent == EXPOSURE:
            report.exposure_moves += 1
            report.handed_over = bool(info.get("handed_over"))
            report.exposure_suitable = bool(info.get("suitable"))
            report.peak = info.get("peak")
        else:
            report.lens_moves += int(info.get("moves_made", 1))  # 2: the peak rule went back
            report.detected = bool(info.get("detected"))
            ended = bool(terminated.get(FOCUS))  # the stop rule ended the search
            # the position the driver set (a real camera's frames carry no focus_v)
            move["focus_v" if report.focus_unit == "V" else "focus"] = float(episode.lens.focus)
        report.moves.append(move)
    report.stop = (
        STOP_UNSUITABLE if not report.handed_over else (STOP_FOUND if ended else STOP_HORIZON)
    )
    last = episode.last_frame
    assert last is not None and episode.first_frame is not None
    report.wall_time_s = time.perf_counter() - start
    report.final_exposure_us = last.exposure_us
    report.final_focus = float(episode.lens.focus)
    counted = report.exposure_moves + report.lens_moves + 1
    # A replayed frame carries the capture's frame count and clock, not this episode's.
    replayed = "recording" in last.meta
    report.frames = counted if replayed else int(last.meta.get("frames", 0)) or counted
    if "in_focus" in last.meta:
        report.in_focus = bool(last.meta["in_focus"]) and report.handed_over
        report.blur_px = float(last.meta["blur_px"])
        report.sim_time_s = None if replayed else float(last.meta["sim_time_s"])
    return report, episode.first_frame, last


def exposure_solvable(episode: HierarchicalEpisode, report: EpisodeReport) -> bool:
    """Whether some exposure of the table gives a suitable histogram on the scene of the
    episode just run (``report``): evaluation's ceiling for A_H. Unless A_H found one, every
    exposure is tried, so only for the simulator (frames are free there); the camera's
    exposure is put back."""
    from dasha.envs.exposure import suitable_exposures

    if report.exposure_suitable:
        return True
    camera = episode.camera
    before = camera.exposure_us
    try:
        return any(suitable_exposures(camera, episode.table_us))
    finally:
        camera.set_exposure_us(before)


def summarize(reports: list[EpisodeReport]) -> dict[str, Any]:
    """Rates and means over episodes (the issue's targets are read from these), and where
    the agents succeed: ``per_scene`` and ``per_distance_band`` (``dasha.breakdown``)."""
    n = len(reports)
    handed = [r for r in reports if r.handed_over]
    suitable = [r for r in reports if r.exposure_suitable]
    lens_moves = np.array([r.lens_moves for r in handed]) if handed else np.zeros(1)
    decisions = np.concatenate([r.decision_ms for r in reports]) if reports else np.zeros(1)
    success = [r.success for r in handed]
    solvable = [r for r in reports if r.exposure_solvable]
    return {
        "episodes": n,
        "exposure_suitable_rate": len(suitable) / n if n else 0.0,
        # with EpisodeConfig.handover="always" A_L also focuses from unsuitable frames
        "handed_over_rate": len(handed) / n if n else 0.0,
        # the A_H target: suitable after one move (``EpisodeConfig.exposure_moves``
        # may give A_H more)
        "exposure_suitable_after_one_move_rate": (
            sum(r.exposure_moves <= 1 for r in suitable) / n if n else 0.0
        ),
        "exposure_moves_mean": float(np.mean([r.exposure_moves for r in reports]))
        if reports
        else 0.0,
        # where some exposure is suitable (simulator ground truth): A_H's ceiling
        "exposure_solvable_rate": len(solvable) / n if n else 0.0,
        "exposure_suitable_of_solvable": (
            sum(r.exposure_suitable for r in solvable) / len(solvable) if solvable else 0.0
        ),
        "focus_detected_rate": float(np.mean([r.detected for r in handed])) if handed else 0.0,
        "focus_detected_in_focus_rate": float(np.mean(success)) if handed else 0.0,
        "overall_success_rate": sum(success) / n if n else 0.0,
        "lens_moves_mean": float(lens_moves.mean()),
        "lens_moves_p95": float(np.percentile(lens_moves, 95)),
        "sim_time_s_mean": float(np.mean([r.sim_time_s or 0.0 for r in reports]))
        if reports
        else 0.0,
        "wall_time_s_mean": float(np.mean([r.wall_time_s for r in reports])) if reports else 0.0,
        "policy_ms_mean": float(decisions.mean()),
        "stop_reasons": dict(Counter(r.stop for r in reports).most_common()),
        "focus_frames": focus_frames(handed),
        **breakdown(EpisodeResult(r.conditions, r.success, r.lens_moves) for r in reports),
    }


def focus_frames(reports: list[EpisodeReport]) -> dict[str, Any]:
    """What A_L's frames looked like: how blurred (sim truth), how often in focus, how often
    the detector fired at all (before the stop rule) — where a search that never ends went."""
    moves = [m for r in reports for m in r.moves if m.get("agent") == "focus"]
    blur = [float(m["blur_px"]) for m in moves if m.get("blur_px") is not None]
    fired = [bool(m.get("score", 0.0)) for m in moves]
    sharp_and_fired = [
        m
        for m in moves
        if m.get("in_focus") and m.get("score", 0.0) and m.get("brisque") is not None
    ]
    return {
        "frames": len(moves),
        "blur_px_median": float(np.median(blur)) if blur else None,
        "in_focus_rate": float(np.mean([bool(m.get("in_focus")) for m in moves]))
        if moves
        else None,
        "detector_fired_rate": float(np.mean(fired)) if fired else None,
        "in_focus_and_detected": len(sharp_and_fired),
        "brisque_median_in_focus_and_detected": float(
            np.median([m["brisque"] for m in sharp_and_fired])
        )
        if sharp_and_fired
        else None,
    }


def decision_latency_ms(
    episode: HierarchicalEpisode, policies: Policies, repeats: int = 30
) -> dict[str, float]:
    """One decision = encode the frame + run the policy, uncached (what a camera pays per move)."""
    frame = episode.camera.grab()
    # The horizon's last move: nine frames of the search seen, their pairs computed already.
    searched = RingPowers([spectrum(frame.as_uint8())] * (HORIZON - 1))
    times = []
    for _ in range(repeats):
        powers = copy.deepcopy(searched)
        tick = time.perf_counter()
        features = episode.senses.encode(frame).astype(np.float32)
        if episode.config.observe_previous:  # the previous frame's E(I) was computed last move
            features = np.concatenate([features, features, np.zeros(PREVIOUS_EXTRAS, np.float32)])
        if episode.config.observe_defocus:  # this frame's spectrum and pairs are new
            powers.add(spectrum(frame.as_uint8()))
            positions = list(np.linspace(0.30, 0.35, HORIZON))
            k = blur_px_per_range(episode.config)
            if episode.config.fit_blur_scale:  # over a box: every scale is fitted
                estimate = estimate_focus(powers, positions, k, scales=BLUR_SCALES)
            else:  # nothing detected: the planes ruled out are fitted again
                estimate = open_focus_estimate(powers, positions, k)
            extras = [estimate.position, estimate.confidence, 0.0]
            features = np.concatenate([features, np.asarray(extras, np.float32)])
        if episode.config.observe_lens:  # the driver knows the lens position: no cost to speak of
            features = with_lens_position(features, episode.lens, episode.config.focus_action)
        policies.focus.act(features)
        times.append((time.perf_counter() - tick) * 1e3)
    return {
        "decision_ms_median": float(np.median(times)),
        "decision_ms_p95": float(np.percentile(times, 95)),
    }
