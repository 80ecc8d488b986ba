"""How remote env runners sample: fragment length and timeout, sized from the env's speed.

On RLlib's new API stack the algorithm asks every remote env runner for one fragment of
``rollout_fragment_length`` env steps per ``sample()`` call, repeats until the batch is full,
and waits at most ``sample_timeout_s`` (60 s by default) for each round. A fragment that takes
longer is dropped, and the runner, still busy with it, answers the next call late too: every
iteration then ends with 0 env steps, for as long as the run lasts. RLlib's "auto" length is
batch / runners (512 steps with one runner); DASHA's env with the perception cache cold runs
about 2-8 steps/s on a 2-core machine, so such a fragment takes one to four minutes.

So the fragment is sized to the env: ``plan_sampling`` keeps a fragment's expected time at a
quarter of RLlib's timeout, from the env steps/s of one runner, measured here before the run
(``measure_env_speed``: a fresh env, cold cache, random actions; A_L's env for the
hierarchical mode, whose steps cost the most) or given
(``--env-steps-per-s``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

RLLIB_SAMPLE_TIMEOUT_S = 60.0
"""RLlib's default ``sample_timeout_s``; DASHA never waits less."""
SPEED_MARGIN = 4.0
"""How many times slower than measured a runner may sample before a fragment is dropped: the
measurement is one env alone in the driver, while runners share their node's cores with
each other and with the learner (2 runners + learner on 2 cores here), and other jobs may
load the machine."""
MEASURE_S = 5.0
"""Timed sampling of the speed measurement (after one untimed warm-up step)."""
MEASURE_MAX_STEPS = 64
STALLED_ITERATIONS = 3
"""Iterations in a row without a sampled step after which training stops, saying why."""


@dataclass(frozen=True)
class SamplingPlan:
    """What each remote env runner samples per call, and how long RLlib waits for it."""

    env_steps_per_s: float
    """One runner's env steps per second the plan is sized for."""
    measured: bool
    """Measured here before the run (else given by the user)."""
    warmup_s: float
    """Reset and first step of a fresh env (lazy model loading): part of the first fragment."""
    fragment_steps: int
    """``rollout_fragment_length``: env steps per runner per ``sample()`` call."""
    sample_timeout_s: float
    """RLlib's ``sample_timeout_s`` for one round of fragments."""

    @property
    def fragment_s(self) -> float:
        """Expected time of one fragment at the planned speed."""
        return self.fragment_steps / self.env_steps_per_s

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "fragment_s": round(self.fragment_s, 2)}

    def stalled(self, iterations: int) -> Exception:
        """The error for runners that returned no fragment in ``iterations`` iterations."""
        from dasha.errors import ConfigError

        return ConfigError(
            f"the env runners returned no samples in {iterations} iterations in a row: a "
            f"fragment of {self.fragment_steps} steps did not come back within the "
            f"{self.sample_timeout_s:.0f} s sample timeout, so they sample slower than the "
            f"{self.env_steps_per_s:.2f} env steps/s planned; give a lower --env-steps-per-s "
            "(checkpoint saved: the same command resumes)"
        )

    def describe(self) -> str:
        how = "measured here" if self.measured else "given"
        return (
            f"env runners: {self.env_steps_per_s:.2f} env steps/s per runner ({how}), "
            f"fragments of {self.fragment_steps} steps (~{self.fragment_s:.0f} s), "
            f"sample timeout {self.sample_timeout_s:.0f} s"
        )


def plan_sampling(
    batch_steps: int,
    num_env_runners: int,
    env_steps_per_s: float,
    warmup_s: float = 0.0,
    measured: bool = False,
) -> SamplingPlan:
    """Fragment length and sample timeout for ``num_env_runners`` (>= 1) remote runners that
    each sample ``env_steps_per_s``.

    A fragment takes ``fragment_steps / env_steps_per_s`` seconds; it must come back within
    ``sample_timeout_s`` even if the runner is ``SPEED_MARGIN`` times slower than planned, and
    the first one also pays the env's warm-up. Hence

        fragment_steps   = min(batch / runners,  env_steps_per_s * 60 s / SPEED_MARGIN), >= 1
        sample_timeout_s = max(60 s,  SPEED_MARGIN * fragment_steps / env_steps_per_s + warmup_s)

    (the timeout rises above RLlib's 60 s only when one step alone is that slow, or the
    warm-up long). The fragment is then evened out so that whole rounds of all runners fill
    the batch with the least overshoot.
    """
    if num_env_runners < 1 or batch_steps < 1 or not env_steps_per_s > 0:
        raise ValueError("plan_sampling needs runners >= 1, a batch >= 1 and a speed > 0")
    per_runner = math.ceil(batch_steps / num_env_runners)
    fitting = math.floor(env_steps_per_s * RLLIB_SAMPLE_TIMEOUT_S / SPEED_MARGIN)
    longest = max(1, min(per_runner, fitting))
    rounds = math.ceil(batch_steps / (num_env_runners * longest))
    fragment = math.ceil(batch_steps / (num_env_runners * rounds))
    timeout = max(RLLIB_SAMPLE_TIMEOUT_S, SPEED_MARGIN * fragment / env_steps_per_s + warmup_s)
    return SamplingPlan(
        env_steps_per_s=env_steps_per_s,
        measured=measured,
        warmup_s=warmup_s,
        fragment_steps=fragment,
        sample_timeout_s=math.ceil(timeout),
    )


def measure_env_speed(make_env: Callable[[], Any], seed: int = 0) -> tuple[float, float]:
    """(env steps/s, warm-up s) of a fresh Gymnasium env under random actions, resets
    included: one untimed warm-up step, then ``MEASURE_S`` of sampling (at least 3 steps)."""
    import numpy as np

    env = make_env()
    env.action_space.seed(seed)
    seeds = np.random.default_rng(seed)

    def reset() -> None:
        env.reset(seed=int(seeds.integers(2**31)))

    def step() -> None:
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            reset()

    try:
        start = time.perf_counter()
        reset()
        step()
        warmup_s = time.perf_counter() - start
        steps, start = 0, time.perf_counter()
        while steps < MEASURE_MAX_STEPS and (steps < 3 or time.perf_counter() - start < MEASURE_S):
            step()
            steps += 1
        return steps / (time.perf_counter() - start), warmup_s
    finally:
        env.close()
