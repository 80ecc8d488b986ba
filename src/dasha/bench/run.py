"""``dasha bench``: every method on the same conditions -> results.json, results.md, Figs. 3-7."""

from __future__ import annotations

import platform
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dasha import plots as figures
from dasha.bench.harness import (
    AE_METHODS_BENCHED,
    CLASSICAL_AF,
    DFD_BASELINE,
    RL_BASELINES,
    Condition,
    MethodRunner,
    Outcome,
    draw_conditions,
    open_condition_rig,
    run_methods,
)
from dasha.bench.report import write_results
from dasha.envs.conditions import resolve_split
from dasha.envs.config import EpisodeConfig
from dasha.envs.rewards import is_suitable_peak
from dasha.errors import ConfigError
from dasha.perception.detectors import DEFAULT_DETECTOR
from dasha.perception.histogram import histogram
from dasha.perception.senses import Senses

QUICK = {"episodes": 12, "rl_steps": 6_000}
FULL = {"episodes": 100, "rl_steps": 40_000}


def _outcome(
    method: str,
    c: Condition,
    camera: Any,
    lens: Any,
    frame: Any,
    detected: bool,
    compute_s: float,
    decisions: int,
) -> Outcome:
    peak = histogram(frame.as_uint8()).peak
    in_focus = bool(frame.meta["in_focus"])
    background_sharp = camera.world.optics.is_in_focus(float(frame.meta["background_blur_px"]))
    return Outcome(
        method=method,
        condition=c,
        success=detected and in_focus,
        detected=detected,
        in_focus=in_focus,
        lens_moves=camera.clock.lens_moves,
        frames=camera.clock.frames,
        sim_time_s=camera.clock.now_s,
        compute_ms_per_decision=1e3 * compute_s / max(decisions, 1),
        final_focus_v=float(lens.focus),
        final_exposure_us=float(camera.exposure_us),
        suitable_exposure=is_suitable_peak(peak),
        peak=peak,
        on_background=background_sharp and not in_focus,
        extra={
            "in_focus_v": float(frame.meta["in_focus_v"]),
            "blur_px": float(frame.meta["blur_px"]),
        },
    )


def dasha_runner(
    senses: Senses, policies: Any, keep: dict[str, Any], handover: str = "always"
) -> MethodRunner:
    from dasha.agents.run import run_episode
    from dasha.envs.hierarchical import HierarchicalEpisode

    # The bench sets each condition on the rig itself (the same for every method), and its
    # senses (the detector every method is judged by) are DASHA's too.
    config = policies.episode(EpisodeConfig(randomize=False, handover=handover))

    def run(c: Condition) -> Outcome:
        camera, lens = open_condition_rig(c)
        episode = HierarchicalEpisode(config, senses=senses, rig=lambda: (camera, lens))
        report, first, last = run_episode(episode, policies, seed=c.seed)
        keep.setdefault("dasha_frames", []).append((c, first, last))
        # A_H's own result: the frame after its one move (the outcome judges the last frame,
        # after A_L has moved the lens, which changes the histogram too)
        keep.setdefault("dasha_exposure", []).append((report.exposure_suitable, report.peak))
        decisions = report.exposure_moves + report.lens_moves
        return _outcome(
            "dasha", c, camera, lens, last, report.detected, report.wall_time_s, decisions
        )

    return run


def _target_detected(senses: Senses, frame: Any) -> bool:
    return senses.target(frame, frame.meta["target_class"]).detected


def baseline_runner(name: str, senses: Senses, focus: Callable[[Any, Any], Any]) -> MethodRunner:
    """A baseline episode: one-shot auto-exposure, then ``focus(camera, lens) -> final frame``."""
    from dasha.baselines.ae import run_ae

    def run(c: Condition) -> Outcome:
        camera, lens = open_condition_rig(c)
        tick = time.perf_counter()
        run_ae("once", camera)
        frame = focus(camera, lens)
        compute_s = time.perf_counter() - tick
        detected = _target_detected(senses, frame)
        return _outcome(name, c, camera, lens, frame, detected, compute_s, camera.clock.frames)

    return run


def classical_runner(name: str, senses: Senses) -> MethodRunner:
    from dasha.baselines.af import run_af

    # The AF's own confirmation frame at the final focus is the one judged.
    return baseline_runner(name, senses, lambda camera, lens: run_af(name, camera, lens).frame)


def dfd_runner(senses: Senses) -> MethodRunner:
    from dasha.baselines.dfd import dfd_search

    return baseline_runner(
        DFD_BASELINE, senses, lambda camera, lens: dfd_search(camera, lens, senses).frame
    )


def rl_runner(
    name: str, model_path: Path, senses: Senses, trust_checkpoint: bool = False
) -> MethodRunner:
    from dasha.baselines.rl import LensStepEnv, RlAutofocus

    agent = RlAutofocus(model_path, RL_BASELINES[name], trust=trust_checkpoint)
    env = LensStepEnv(RL_BASELINES[name])

    def focus(camera: Any, lens: Any) -> Any:
        env.camera, env.lens = camera, lens
        agent.run(env, seed=camera.world.seed)  # the condition's seed: reruns repeat
        return env.last_frame  # taken at the final lens position

    return baseline_runner(name, senses, focus)


def bench_auto_exposure(
    conditions: Sequence[Condition], keep: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """DASHA's A_H (from its episodes: the frame after its one move, as the AE baselines'
    own last frame) against the AE baselines, from the factory exposure."""
    from dasha.baselines.ae import run_ae

    exposure = keep.get("dasha_exposure", [])
    table: dict[str, dict[str, Any]] = {
        "dasha (A_H)": {
            "suitable_rate": float(np.mean([s for s, _ in exposure])) if exposure else 0.0,
            "moves_mean": 1.0,
            "frames_mean": 2.0,
            "peak_mean": float(np.mean([p for _, p in exposure if p is not None]))
            if exposure
            else 0.0,
        }
    }
    hists: dict[str, np.ndarray] = {
        "dasha (A_H)": _mean_hist([f[2] for f in keep.get("dasha_frames", [])])
    }
    for name in AE_METHODS_BENCHED:
        results, frames = [], []
        for c in conditions:
            camera, _lens = open_condition_rig(c)
            results.append(run_ae(name, camera))
            frames.append(camera.grab())
        table[name] = {
            "suitable_rate": float(np.mean([r.suitable for r in results])),
            "moves_mean": float(np.mean([r.moves for r in results])),
            "frames_mean": float(np.mean([r.frames for r in results])),
            "peak_mean": float(np.mean([r.peak for r in results])),
        }
        hists[name] = _mean_hist(frames)
    keep["ae_histograms"] = hists
    return table


def _mean_hist(frames: Sequence[Any]) -> np.ndarray:
    total = np.zeros(256)
    for frame in frames:
        total += np.bincount(frame.as_uint8().ravel(), minlength=256)[:256]
    return total


BASELINES = (*CLASSICAL_AF, DFD_BASELINE, *RL_BASELINES)


def check_baselines(baselines: Sequence[str] | None) -> list[str]:
    """The baselines to run (default: all), each a known name."""
    chosen = list(baselines or BASELINES)
    unknown = [b for b in chosen if b not in BASELINES]
    if unknown:
        raise ConfigError(
            f"unknown baseline(s) {', '.join(unknown)}: choose among {', '.join(BASELINES)}"
        )
    return chosen


def train_rl_baselines(
    out: Path,
    steps: int,
    seed: int,
    progress: bool,
    episode: EpisodeConfig | None = None,
    trust_checkpoint: bool = False,
    names: Sequence[str] | None = None,
) -> dict[str, Path]:
    """Train (or reuse) both RL baselines in ``out/rl_baselines`` (on ``episode``'s conditions).

    A model found there is reused only if DASHA signed it (``dasha.trust``): all are checked
    before any training starts."""
    from dasha.baselines.rl import MODEL_KIND, train_rl_baseline
    from dasha.trust import verify

    chosen = {name: RL_BASELINES[name] for name in (RL_BASELINES if names is None else names)}
    folders = {name: out / "rl_baselines" / name for name in chosen}
    for folder in folders.values():
        if (folder / "model.zip").is_file():
            verify(folder / "model.zip", MODEL_KIND, trust=trust_checkpoint)
    paths = {}
    for name, reward in chosen.items():
        folder = folders[name]
        if not (folder / "model.zip").is_file():
            if progress:
                print(f"training the {name} baseline ({steps} steps)...", file=sys.stderr)
            train_rl_baseline(reward, folder, steps=steps, seed=seed, config=episode)
        paths[name] = folder / "model.zip"
    return paths


def detection_grid(
    senses: Senses, c: Condition, marks: dict[str, list[tuple[float, float]]], out: Path
) -> None:
    """Fig. 4: detector confidence across exposure x focus for one condition."""
    camera, lens = open_condition_rig(c)
    v0 = camera.world.in_focus_v()
    focus_v = np.round(np.linspace(max(24.0, v0 - 2.5), min(70.0, v0 + 2.5), 31), 2)
    exposures = np.geomspace(1_000, 1_000_000, 13)
    scores = np.zeros((len(exposures), len(focus_v)))
    for i, t in enumerate(exposures):
        camera.set_exposure_us(float(t))
        for j, v in enumerate(focus_v):
            lens.set_focus(float(v))
            seen = senses.target(camera.grab(), camera.world.layers.target_class)
            scores[i, j] = seen.score
    title = f"{c.label()}: detection with DASHA off (x) and on (o)"
    figures.detection_map(scores, exposures, focus_v, marks, title, out)


def run_bench(
    out: Path,
    quick: bool = False,
    episodes: int | None = None,
    seed: int = 7,
    scenes: Sequence[str] | None = None,
    policy: Path | None = None,
    rl_steps: int | None = None,
    progress: bool = True,
    conditions: str = "paper",
    split: str | None = None,
    trust_checkpoint: bool = False,
    baselines: Sequence[str] | None = None,
    handover: str = "always",
    detector: str = DEFAULT_DETECTOR,
) -> dict[str, Any]:
    """Every method on ``episodes`` conditions of one condition set and split (``scenes``
    restricts it); the RL baselines train on the set's train split. ``baselines``: the
    methods to compare DASHA with (default all of ``BASELINES``); ``handover``: DASHA's
    ``EpisodeConfig.handover`` (the baselines focus whatever their auto-exposure gave);
    ``detector``: the one every method finds the target with and is judged by."""
    from dasha.agents.run import Policies, policy_dir
    from dasha.baselines.rl import load_curve

    start = time.perf_counter()
    chosen = check_baselines(baselines)
    sizes = QUICK if quick else FULL
    n = episodes or sizes["episodes"]
    episode = EpisodeConfig(
        conditions=conditions,
        split=split,
        scenes=tuple(scenes or ()) or None,
        handover=handover,  # refused here, before anything is written or trained
        detector=detector,
    )
    out.mkdir(parents=True, exist_ok=True)
    drawn = draw_conditions(n, seed, episode)
    senses = Senses(detector=detector)
    policies = Policies.load(policy)
    rl_steps = rl_steps or sizes["rl_steps"]
    training = EpisodeConfig(conditions=conditions, split=resolve_split(conditions, None, "train"))
    rl_models = train_rl_baselines(
        out,
        rl_steps,
        seed,
        progress,
        training,
        trust_checkpoint,
        [b for b in chosen if b in RL_BASELINES],
    )
    keep: dict[str, Any] = {}
    methods: dict[str, MethodRunner] = {"dasha": dasha_runner(senses, policies, keep, handover)}
    methods.update(
        {name: classical_runner(name, senses) for name in CLASSICAL_AF if name in chosen}
    )
    if DFD_BASELINE in chosen:
        methods[DFD_BASELINE] = dfd_runner(senses)
    methods.update(
        {name: rl_runner(name, path, senses, trust_checkpoint) for name, path in rl_models.items()}
    )
    results = run_methods(methods, drawn, progress)
    ae = bench_auto_exposure(drawn, keep)

    # Figures
    curves = {"DASHA": load_curve(policy_dir(policy) / "curve.json")}
    curves.update(
        {name: load_curve(path.parent / "curve.json") for name, path in rl_models.items()}
    )
    figures.learning_curve(
        {k: v for k, v in curves.items() if v},
        out / "fig3_learning_curves.png",
        "Learning curves (Fig. 3)",
    )
    first_c, first_frame, last_frame = keep["dasha_frames"][0]
    marks = {
        "start (DASHA off)": [(first_frame.exposure_us, 24.0)],
        "DASHA on": [(last_frame.exposure_us, float(last_frame.meta["focus_v"]))],
    }
    detection_grid(senses, first_c, marks, out / "fig4_detection_map.png")
    figures.histogram_comparison(keep["ae_histograms"], out / "fig5_histograms.png")
    _before_after(keep, out / "fig6_before_after.png")
    rows = [
        {
            **o.condition.as_dict(),
            "final_focus_v": o.final_focus_v,
            "final_exposure_us": o.final_exposure_us,
            "in_focus_v": o.extra["in_focus_v"],
        }
        for o in results["dasha"]
    ]
    figures.settings_vs_illuminance(rows, out / "fig7_vs_illuminance.png")

    meta = {
        "episodes": n,
        "rl_steps": rl_steps,
        "seed": seed,
        "quick": quick,
        "conditions": conditions,
        "split": split,
        "scenes": list(scenes or []),
        "command": "dasha " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, {__import__('os').cpu_count()} cores, Python {platform.python_version()}",
        "wall_s": time.perf_counter() - start,
        "policy": str(policy_dir(policy)),
    }
    return write_results(out, results, drawn, meta, ae)


def _before_after(keep: dict[str, Any], out: Path) -> None:
    """Fig. 6: the darkest, the brightest and one more start, before and after DASHA."""
    episodes = sorted(keep["dasha_frames"], key=lambda e: e[0].conditions["illuminance_lux"])
    picks = {
        "dark start": episodes[0],
        "bright start": episodes[-1],
        "blurred start": episodes[len(episodes) // 2],
    }
    rows = []
    for label, (_c, first, last) in picks.items():
        rows.append(
            (
                label,
                [
                    (first.as_uint8(), f"before: {first.exposure_us:g} us, 24 V"),
                    (
                        last.as_uint8(),
                        f"after: {last.exposure_us:g} us, {last.meta['focus_v']:.2f} V, blur {last.meta['blur_px']:.1f} px",
                    ),
                ],
            )
        )
    figures.contact_sheet(rows, "Before / after DASHA (Fig. 6)", out)
