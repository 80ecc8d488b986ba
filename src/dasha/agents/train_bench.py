"""``dasha train-bench``: environment steps per second of a short hierarchical PPO run with
the perception cache off, under each inference backend (and RLlib env-runner count).

Every frame is perceived afresh (``cache_size=0``): the throughput of training on a scene
library large enough that the cache stops hitting. The algorithms of all backends are
built first and trained in turns, one iteration each, so that background load on a shared
machine falls on them alike; the first iteration of each (Ray start-up, model loading,
session warm-up) is not timed. An iteration samples ``batch_steps`` steps (remote runners in
fragments sized by ``dasha.agents.sampling``, as in training) and runs one
small PPO epoch on them, as training does, so the figure is what training gets.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from dasha.agents.train import (
    TRAINING_EPISODE,
    TrainConfig,
    build_algorithm,
    init_ray,
    sampling_plan,
)


def _steps_sampled(result: dict[str, Any]) -> int:
    return int(result.get("env_runners", {}).get("num_env_steps_sampled_lifetime", 0))


def bench_training(
    backends: list[str],
    env_runners: list[int],
    steps: int = 384,
    batch_steps: int = 128,
    seed: int = 0,
) -> dict[str, Any]:
    """Env steps/s for each (runner count, backend), about ``steps`` timed steps each, and the
    ratio of each backend to the first under the same runner count."""
    init_ray(None)
    runs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="dasha-train-bench-") as tmp:
        for runners in env_runners:
            algos, plans = {}, {}
            for backend in backends:
                config = TrainConfig(
                    out=Path(tmp) / f"{backend}-{runners}",
                    episode=replace(TRAINING_EPISODE, backend=backend, cache_size=0),
                    steps=10**9,  # the schedule's horizon: the lr stays at its start
                    batch_steps=batch_steps,
                    minibatch_size=batch_steps,
                    epochs=1,
                    num_env_runners=runners,
                    seed=seed,
                )
                plans[backend] = sampling_plan(config)  # remote runners: measured here
                algos[backend] = build_algorithm(config, plans[backend])
            timed = {b: {"steps": 0, "wall_s": 0.0} for b in backends}
            try:
                # warm-up iteration, not timed
                before = {b: _steps_sampled(algo.train()) for b, algo in algos.items()}
                while min(t["steps"] for t in timed.values()) < steps:
                    for backend, algo in algos.items():
                        start = time.perf_counter()
                        now = _steps_sampled(algo.train())
                        timed[backend]["wall_s"] += time.perf_counter() - start
                        timed[backend]["steps"] = now - before[backend]
            finally:
                for algo in algos.values():
                    algo.stop()
            rates = {b: t["steps"] / t["wall_s"] for b, t in timed.items() if t["wall_s"] > 0}
            runs[f"env_runners_{runners}"] = {
                "steps_per_s": {b: round(r, 2) for b, r in rates.items()},
                "timed_steps": {b: t["steps"] for b, t in timed.items()},
                "sampling": {b: p.to_dict() if p else None for b, p in plans.items()},
                f"speedup_over_{backends[0]}": {
                    b: round(rates[b] / rates[backends[0]], 2) for b in backends[1:]
                },
            }
    first = f"env_runners_{env_runners[0]}"
    over_first = {  # runner counts run one after the other: load may differ between them
        key: {b: round(v / runs[first]["steps_per_s"][b], 2) for b, v in run["steps_per_s"].items()}
        for key, run in runs.items()
        if key != first
    }
    return {
        "agents": "hierarchical",
        "cache_size": 0,
        "batch_steps": batch_steps,
        "backends": backends,
        **runs,
        **({f"speedup_over_{first}": over_first} if over_first else {}),
    }
