"""One harness that runs every method on the same scenes, conditions and seeds (issue: Table I).

Each episode starts from the camera's factory state (exposure 20000 us, lens 24 V) under
conditions drawn once for all methods by the sampler of the episode's condition set
(``dasha.envs.conditions``; default ``paper``: a built-in scene, 140..200 cm, 13..300 lx),
the same sampler ``dasha evaluate`` and training use, with seeds training never used.

- ``dasha``: the hierarchical agents (A_H one exposure move, then A_L lens moves).
- classical AF (``sweep``, ``hill-climb``, ``coarse-fine``, ``golden``): the one-shot
  auto-exposure first (as a camera would), then the AF search on the central window.
- ``dfd``: the same auto-exposure, then depth from defocus with the detector's stop
  (``baselines.dfd``), the scripted search A_L's pre-training imitates.
- RL baselines (``phase-shift-rl``, ``tenengrad-rl``): the same auto-exposure, then the
  trained low-dimensional policy.

Success = the target detected by the detector on the final frame AND in focus by the
simulator's ground truth (blur <= 2 px). Lens moves, frames and simulated seconds come
from the simulated clock (settle + exposure latency + frame time), compute from the
wall clock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dasha.envs.config import EpisodeConfig
from dasha.errors import ConfigError
from dasha.hardware.sim import sim_rig

CLASSICAL_AF = ("sweep", "hill-climb", "coarse-fine", "golden")
DFD_BASELINE = "dfd"
RL_BASELINES = {"phase-shift-rl": "phase-shift", "tenengrad-rl": "tenengrad"}
AE_METHODS_BENCHED = ("agc", "once", "bracket")


@dataclass(frozen=True)
class Condition:
    """One bench episode: the sampled conditions (keyword arguments of
    ``dasha.sim.world.Conditions``, passed to the rig as they are) and its noise seed."""

    conditions: dict[str, Any]
    seed: int

    @property
    def scene(self) -> str:
        return str(self.conditions.get("scene", ""))

    def label(self) -> str:
        """``scene, 170 cm, 100 lx`` for figure titles."""
        units = {"distance_cm": "cm", "illuminance_lux": "lx"}
        parts = [f"{self.conditions[k]:g} {u}" for k, u in units.items() if k in self.conditions]
        return ", ".join([self.scene, *parts])

    def as_dict(self) -> dict[str, Any]:
        return {**self.conditions, "seed": self.seed}


def draw_conditions(n: int, seed: int, episode: EpisodeConfig | None = None) -> list[Condition]:
    """``n`` conditions from the episode's sampler (default: the ``paper`` set), the same for
    every method."""
    sampler = (episode or EpisodeConfig()).sampler()
    if sampler is None:
        raise ConfigError("the bench draws its conditions: give an episode with randomize=True")
    rng = np.random.default_rng(seed)
    return [Condition(sampler.sample(rng), int(seed * 100_003 + i)) for i in range(n)]


@dataclass
class Outcome:
    """One method on one condition."""

    method: str
    condition: Condition
    success: bool
    detected: bool
    in_focus: bool
    lens_moves: int
    frames: int
    sim_time_s: float
    compute_ms_per_decision: float
    final_focus_v: float
    final_exposure_us: float
    suitable_exposure: bool
    peak: float
    on_background: bool = False
    """The final frame is focused on the background plane and not on the target: the
    contrast-AF trap (sim ground truth)."""
    extra: dict[str, Any] = field(default_factory=dict)


def open_condition_rig(condition: Condition) -> tuple[Any, Any]:
    """The simulated rig at its factory settings under the condition."""
    camera, lens = sim_rig()
    camera.reset(seed=condition.seed, **condition.conditions)
    return camera, lens


def summarize(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    moves = np.array([o.lens_moves for o in outcomes], dtype=float)
    return {
        "episodes": len(outcomes),
        "success_rate": float(np.mean([o.success for o in outcomes])),
        "detected_rate": float(np.mean([o.detected for o in outcomes])),
        "in_focus_rate": float(np.mean([o.in_focus for o in outcomes])),
        "lens_moves_mean": float(moves.mean()),
        "lens_moves_p95": float(np.percentile(moves, 95)),
        "frames_mean": float(np.mean([o.frames for o in outcomes])),
        "sim_time_s_mean": float(np.mean([o.sim_time_s for o in outcomes])),
        "compute_ms_per_decision": float(np.mean([o.compute_ms_per_decision for o in outcomes])),
        "suitable_exposure_rate": float(np.mean([o.suitable_exposure for o in outcomes])),
        "on_background_rate": float(np.mean([o.on_background for o in outcomes])),
    }


MethodRunner = Callable[[Condition], Outcome]


def run_methods(
    methods: dict[str, MethodRunner], conditions: Sequence[Condition], progress: bool = True
) -> dict[str, list[Outcome]]:
    from tqdm import tqdm

    results: dict[str, list[Outcome]] = {name: [] for name in methods}
    total = len(methods) * len(conditions)
    with tqdm(total=total, disable=not progress, desc="bench", unit="episode") as bar:
        for name, runner in methods.items():
            bar.set_postfix_str(name)
            for condition in conditions:
                results[name].append(runner(condition))
                bar.update(1)
    return results
