"""PPO training of the DASHA agents with Ray RLlib (the paper's engine), new API stack.

``--agents hierarchical`` trains both policies in one run on the two-agent env
(``exposure_policy`` for A_H, ``focus_policy`` for A_L, mapped by agent id);
``exposure`` / ``focus`` train one agent on its single-agent env. Locally by default
(``ray.init`` on this machine's cores), on a cluster when given its address.

The run directory holds ``checkpoint/`` (RLlib's, replaced atomically: training resumes
from it when the same ``--out`` is given again), ``tensorboard/`` (``charts/``,
``losses/`` tags), ``curve.json`` (the learning curve), ``policies/*.pt`` (plain torch,
see ``dasha.agents.policy``) and ``learning_curve.png``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from dasha.agents.cluster import check_cluster, init_ray
from dasha.agents.policy import HEADS, Policy, missing_episode_needs
from dasha.agents.resume import check_resume
from dasha.agents.sampling import (
    STALLED_ITERATIONS,
    SamplingPlan,
    measure_env_speed,
    plan_sampling,
)
from dasha.envs.conditions import ConditionGrid
from dasha.envs.config import EPISODE_FIELDS, EpisodeConfig
from dasha.envs.stop import MEMORY_RULES
from dasha.errors import ConfigError, require
from dasha.io import write_json
from dasha.trust import sign, verify

AGENT_MODES = ("hierarchical", "exposure", "focus")
TRAINING_EPISODE = EpisodeConfig(
    # Training conditions on a coarse grid, so perception results are reused (see
    # perception.senses): 4 scenes x 7 distances x 12 illuminances. 10 cm moves the in-focus
    # voltage by 0.05..0.12 V, so a policy that reads the blur generalises between grid
    # distances (evaluation draws any distance and illuminance).
    condition_grid=ConditionGrid(distance_step_cm=10.0, illuminance_levels=12),
    cache_size=200_000,
    # A_L's search ends only on a *sharp* detection (box BRISQUE at most 18 plus
    # envs.rewards.CLIPPED_BRISQUE_ALLOWANCE x the box's clipped fraction; see
    # envs.rewards.target_found for the measurement). Before the allowance (commit
    # 32be51a), a flat gate left A_L at 94 % in focus: at 15 or 20 it rejected sharp boxes
    # in bright frames (A_H hands over peaks up to ~128), which then searched to the
    # horizon; at 25 it accepted 2.5 px and A_L stopped after one imprecise jump (85 %).
    sharp_brisque_max=18.0,
    observe_lens=True,  # A_L also observes its lens position (envs.focus.focus_observation)
)
"""The episode ``dasha train`` trains on by default (``TrainConfig.episode``)."""
# The paper's A_L (``TrainConfig``'s defaults are the recipe meant to replace it): it sees
# E(I) only, picks coarse and fine volts as two categoricals, and its search ends at the
# first detection, however blurred (the episode options are EpisodeConfig's defaults).
PAPER_RECIPE: dict[str, Any] = {
    "focus_head": "categorical",
    "observe_lens": EpisodeConfig.observe_lens,
    "sharp_brisque_max": EpisodeConfig.sharp_brisque_max,
    "lr_final": None,
    "kl_target": 0.01,
}
SINGLE_AGENT_POLICY = "default_policy"
# A_H always trains as in the paper: constant lr, KL target 0.01. It acts once on an
# ordered table and any exposure inside the suitable band earns the same +1, so faster
# updates (A_L's lr_final / kl_target) collapse it onto a few exposures that fit the
# training illuminances and miss between them (94-96 % suitable against 99 %).
EXPOSURE_TRAINING: dict[str, Any] = {"lr_final": None, "kl_target": 0.01}

CHECKPOINT_KIND = "An RLlib checkpoint"


@dataclass
class TrainConfig:
    out: Path
    agents: str = "hierarchical"
    episode: EpisodeConfig = TRAINING_EPISODE
    """What an episode is: conditions, split, scenes, perception, A_L's stop rule and
    observation (``TRAINING_EPISODE``; the test split is refused)."""
    steps: int = 28_000
    """Environment steps to sample in total (frames the agents act on)."""
    seed: int = 0
    ray_address: str | None = None
    num_env_runners: int = 0
    """0: sample in the training process (best on 2 cores); N: N remote samplers."""
    env_steps_per_s: float | None = None
    """One env runner's env steps per second, which sizes its fragments and RLlib's sample
    timeout (``dasha.agents.sampling``); None: measured before the run when N >= 1."""
    batch_steps: int = 512
    minibatch_size: int = 128
    epochs: int = 8
    lr: float = 3e-4
    lr_final: float | None = 3e-5
    """If set, the learning rate decays linearly from ``lr`` to this over ``steps`` (late
    updates on near-identical rewards can push a precise lens move off its mark)."""
    kl_target: float = 0.05
    gamma: float = 0.9
    entropy_coeff: float = 0.01
    hidden: tuple[int, ...] = (256, 256)
    checkpoint_every: int = 5
    checkpoint_every_s: float = 120.0
    """Also checkpoint when this much wall time passed since the last one (slow envs)."""
    trust_checkpoint: bool = False
    """Resume from ``out/checkpoint`` even if DASHA did not sign it (``dasha.trust``)."""
    focus_head: str = "jump-step"
    """A_L's action head (``dasha.agents.policy.HEADS``); the grid heads also give the
    value function its own trunk."""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.agents not in AGENT_MODES:
            raise ConfigError(f"--agents {self.agents!r}: choose one of {', '.join(AGENT_MODES)}")
        if self.focus_head not in HEADS:
            raise ConfigError(f"--focus-head {self.focus_head!r}: choose one of {', '.join(HEADS)}")
        missing = missing_episode_needs(self.focus_head, self.episode)
        if missing:
            raise ConfigError(
                f"--focus-head {self.focus_head} reads what A_L observes: it needs "
                f"{', '.join(missing)} (drop --no-observe-lens), or choose --focus-head "
                "grid-gaussian or categorical"
            )
        if self.steps <= 0 or self.batch_steps <= 0:
            raise ConfigError("--steps and the batch size must be positive")
        if self.num_env_runners < 0:
            raise ConfigError(f"--env-runners {self.num_env_runners}: must be at least 0")
        if self.env_steps_per_s is not None and not self.env_steps_per_s > 0:
            raise ConfigError(f"--env-steps-per-s {self.env_steps_per_s}: must be greater than 0")
        self.out = Path(self.out)
        self.episode = training_episode(self.episode)
        # PPO splits each batch into minibatches: a batch smaller than one minibatch is one minibatch.
        self.minibatch_size = min(self.minibatch_size, self.batch_steps)


def recipe(
    paper: bool = False, episode: EpisodeConfig = TRAINING_EPISODE, **given: Any
) -> dict[str, Any]:
    """``TrainConfig`` options: the given ones (``None`` = not given) over the paper's recipe
    when ``paper``, else over ``TrainConfig``'s defaults. Episode options (e.g.
    ``sharp_brisque_max``) go into ``episode`` (returned only when changed)."""
    chosen = {k: v for k, v in given.items() if v is not None}
    options = {**(PAPER_RECIPE if paper else {}), **chosen}
    changes = {k: options.pop(k) for k in list(options) if k in EPISODE_FIELDS}
    if changes.get("stop_rule") in MEMORY_RULES and "sharp_brisque_max" not in chosen:
        changes["sharp_brisque_max"] = None  # these rules replace the recipe's BRISQUE gate
    if changes or episode != TRAINING_EPISODE:
        options["episode"] = replace(episode, **changes)
    return options


def training_episode(episode: EpisodeConfig) -> EpisodeConfig:
    """The episode as training may see it: never the test split, and on a set with splits
    the train split unless another one is chosen."""
    test = "test"
    if episode.split == test:
        raise ConfigError(
            "training on the test split is refused: nothing from test may reach training "
            "(use --split train; val is for choosing between trained models)"
        )
    from dasha.sim.library import photo_splits

    # Whatever the set (paper takes any --scene), no test photo may reach training.
    held_out = [s for s in episode.scenes or () if test in photo_splits(s)]
    if held_out:
        raise ConfigError(
            f"scene(s) {', '.join(sorted(held_out))} use photos of the scene library's test "
            "split: nothing from test may reach training"
        )
    conditions = episode.condition_set
    if not conditions.splits:
        return episode
    if episode.split is None:
        episode = replace(episode, split="train")
    if episode.scenes and test in conditions.splits:
        held_out = sorted(set(episode.scenes) & set(conditions.scenes(test)))
        if held_out:
            raise ConfigError(
                f"scene(s) {', '.join(held_out)} belong to the test split of "
                f"{conditions.name!r}: nothing from test may reach training"
            )
    return episode


def agent_optimisation(config: TrainConfig, agent: str) -> dict[str, Any]:
    """``lr_final`` and ``kl_target`` of one agent: A_H's the paper's, A_L's the config's."""
    if agent == "exposure":
        return dict(EXPOSURE_TRAINING)
    return {"lr_final": config.lr_final, "kl_target": config.kl_target}


def policy_ids(mode: str) -> dict[str, str]:
    """Agent name -> RLlib policy (module) id for a training mode."""
    if mode == "hierarchical":
        from dasha.envs.rllib import POLICIES

        return dict(POLICIES)
    return {mode: SINGLE_AGENT_POLICY}


def _env_config(config: TrainConfig) -> dict[str, Any]:
    return {"config": config.episode}


def sampling_plan(config: TrainConfig) -> SamplingPlan | None:
    """How remote env runners sample (``None`` without them: the driver samples, no timeout),
    from ``config.env_steps_per_s`` or, unset, from the speed of an env measured here."""
    if config.num_env_runners == 0:
        return None
    if config.env_steps_per_s is not None:
        return plan_sampling(config.batch_steps, config.num_env_runners, config.env_steps_per_s)
    # A_L's steps (render, encoder, detector, BRISQUE) are the slowest kind: the hierarchical
    # env, which random exposures mostly end before the hand-over, is timed by its focus env.
    agent = "exposure" if config.agents == "exposure" else "focus"
    speed, warmup_s = measure_env_speed(
        lambda: _make_single_env({**_env_config(config), "agent": agent}), config.seed
    )
    return plan_sampling(
        config.batch_steps, config.num_env_runners, speed, warmup_s=warmup_s, measured=True
    )


def _make_single_env(env_config: dict[str, Any]) -> Any:
    mode = env_config.pop("agent")
    if mode == "exposure":
        from dasha.envs.exposure import ExposureEnv

        return ExposureEnv(**env_config)
    from dasha.envs.focus import FocusEnv

    return FocusEnv(**env_config)


def build_algorithm(config: TrainConfig, plan: SamplingPlan | None = None) -> Any:
    """The RLlib PPO algorithm for a training config (Ray must be initialised); remote env
    runners sample by ``plan`` (default: ``sampling_plan(config)``)."""
    if plan is None:
        plan = sampling_plan(config)
    ppo = require("ray.rllib.algorithms.ppo", "rl")
    spec_mod = require("ray.rllib.core.rl_module.rl_module", "rl")
    from dasha.agents.rllib_module import DashaPPOModule

    def module_spec(agent: str) -> Any:
        head = config.focus_head if agent == "focus" else "categorical"
        return spec_mod.RLModuleSpec(
            module_class=DashaPPOModule,
            model_config={
                "agent": agent,
                "encoder": config.episode.encoder,
                "hidden": list(config.hidden),
                "head": head,
                "observe_lens": agent == "focus" and config.episode.observe_lens,
            },
        )

    def optimisation(agent: str) -> dict[str, Any]:
        chosen = agent_optimisation(config, agent)
        final = chosen["lr_final"]
        lr = config.lr if final is None else [[0, config.lr], [config.steps, final]]
        return {"lr": lr, "kl_target": chosen["kl_target"]}

    ppo_config = ppo.PPOConfig()
    if config.agents == "hierarchical":
        multi = require("ray.rllib.core.rl_module.multi_rl_module", "rl")
        from dasha.envs.rllib import POLICIES, DashaMultiAgentEnv, policy_mapping_fn

        ppo_config = (
            ppo_config.environment(DashaMultiAgentEnv, env_config=_env_config(config))
            .multi_agent(policies=set(POLICIES.values()), policy_mapping_fn=policy_mapping_fn)
            .rl_module(
                rl_module_spec=multi.MultiRLModuleSpec(
                    rl_module_specs={pid: module_spec(agent) for agent, pid in POLICIES.items()}
                ),
                algorithm_config_overrides_per_module={
                    POLICIES["exposure"]: optimisation("exposure")
                },
            )
            .training(**optimisation("focus"))
        )
    else:
        tune = require("ray.tune", "rl")
        name = f"dasha_{config.agents}"
        tune.register_env(name, _make_single_env)
        ppo_config = ppo_config.environment(
            name, env_config={**_env_config(config), "agent": config.agents}
        )
        ppo_config = ppo_config.rl_module(rl_module_spec=module_spec(config.agents)).training(
            **optimisation(config.agents)
        )
    runners: dict[str, Any] = {"rollout_fragment_length": "auto"}  # in-process: one batch
    if plan is not None:
        runners = {
            "rollout_fragment_length": plan.fragment_steps,
            "sample_timeout_s": plan.sample_timeout_s,
        }
    ppo_config = (
        ppo_config.env_runners(num_env_runners=config.num_env_runners, **runners)
        .training(
            train_batch_size_per_learner=config.batch_steps,
            minibatch_size=config.minibatch_size,
            num_epochs=config.epochs,
            gamma=config.gamma,
            entropy_coeff=config.entropy_coeff,
        )
        .debugging(seed=config.seed)
    )
    return ppo_config.build_algo()


def save_checkpoint(algo: Any, out: Path) -> None:
    """Replace ``out/checkpoint`` atomically (write beside it, then swap by renames)."""
    final, tmp, old = out / "checkpoint", out / "checkpoint.tmp", out / "checkpoint.old"
    shutil.rmtree(tmp, ignore_errors=True)
    algo.save_to_path(str(tmp.resolve()))
    sign(tmp)  # the manifest lives inside, so it moves with the swap
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def export_policies(algo: Any, config: TrainConfig, sampled_steps: int) -> dict[str, Path]:
    """Write each trained agent as a plain torch policy file (no Ray needed to run it)."""
    paths = {}
    for agent, pid in policy_ids(config.agents).items():
        module = algo.get_module(pid)
        spec = replace(
            module.spec,
            extra={
                "steps": sampled_steps,
                "seed": config.seed,
                "mode": config.agents,
                "lr": config.lr,
                **agent_optimisation(config, agent),
            },
            episode=config.episode,
        )
        path = config.out / "policies" / f"{agent}.pt"
        Policy(spec, {k: v.detach().cpu() for k, v in module.net.state_dict().items()}).save(path)
        paths[agent] = path
    return paths


def _scalars(result: dict[str, Any], pids: dict[str, str]) -> dict[str, float]:
    runners = result.get("env_runners", {})
    out = {"charts/episode_return_mean": runners.get("episode_return_mean")}
    per_agent = runners.get("agent_episode_returns_mean", {})
    for agent in pids:
        value = per_agent.get(agent, runners.get("episode_return_mean") if len(pids) == 1 else None)
        out[f"charts/{agent}_return_mean"] = value
    out["charts/episode_len_mean"] = runners.get("episode_len_mean")
    for pid in pids.values():
        learner = result.get("learners", {}).get(pid, {})
        for key in (
            "policy_loss",
            "vf_loss",
            "entropy",
            "mean_kl_loss",
            "default_optimizer_learning_rate",
        ):
            if key in learner:
                out[f"losses/{pid}/{key}"] = learner[key]
    return {k: float(v) for k, v in out.items() if v is not None}


def train(config: TrainConfig, progress: bool = True) -> dict[str, Any]:
    """Run (or resume) PPO training; returns a summary (also written to ``out/summary.json``)."""
    called = time.perf_counter()
    tqdm = require("tqdm", "rl").tqdm
    if config.ray_address:  # everything checked before the run directory is touched
        check_cluster(config.ray_address)
    config.out.mkdir(parents=True, exist_ok=True)
    if (config.out / "checkpoint").exists():  # before Ray starts: refuse early
        verify(config.out / "checkpoint", CHECKPOINT_KIND, trust=config.trust_checkpoint)
    check_resume(config)
    init_ray(config.ray_address)
    plan = sampling_plan(config)
    if plan is not None:
        sys.stderr.write(plan.describe() + "\n")
    algo = build_algorithm(config, plan)
    curve_path = config.out / "curve.json"
    curve: list[dict[str, float]] = (
        json.loads(curve_path.read_text()) if curve_path.exists() else []
    )
    sampled = int(curve[-1]["env_steps"]) if curve else 0
    elapsed_before = float(curve[-1]["wall_s"]) if curve else 0.0
    if (config.out / "checkpoint").exists():
        try:
            algo.restore_from_path(str((config.out / "checkpoint").resolve()))
        except Exception as exc:  # a run of another shape (started before options were kept)
            algo.stop()
            raise ConfigError(
                f"{config.out / 'checkpoint'} does not fit the networks these options build "
                f"({type(exc).__name__}: {str(exc)[:200]}); resume with the options the run "
                "was started with, or give a new --out"
            ) from exc
    writer = _tensorboard(config.out, sampled)
    pids = policy_ids(config.agents)
    start = time.perf_counter()
    bar = tqdm(
        total=config.steps,
        initial=min(sampled, config.steps),
        unit="step",
        disable=not progress,
        desc=f"PPO {config.agents}",
    )
    iteration, empty = len(curve), 0  # empty: iterations in a row that sampled nothing
    saved_at = time.perf_counter()

    def save() -> None:
        save_checkpoint(algo, config.out)
        write_json(curve_path, curve)
        export_policies(algo, config, sampled)

    try:
        while sampled < config.steps:
            result = algo.train()
            iteration += 1
            now = int(result.get("env_runners", {}).get("num_env_steps_sampled_lifetime", sampled))
            empty = empty + 1 if now <= sampled else 0
            if plan is not None and empty >= STALLED_ITERATIONS:
                save()
                algo.stop()
                raise plan.stalled(empty)
            bar.update(max(0, min(now, config.steps) - sampled))
            sampled = now
            scalars = _scalars(result, pids)
            wall_s = elapsed_before + time.perf_counter() - start
            curve.append(
                {"iteration": iteration, "env_steps": sampled, "wall_s": wall_s, **scalars}
            )
            if writer is not None:
                for key, value in scalars.items():
                    writer.add_scalar(key, value, sampled)
            bar.set_postfix(
                {
                    k.split("/")[-1]: round(v, 2)
                    for k, v in scalars.items()
                    if k.startswith("charts/") and "return" in k
                }
            )
            due = time.perf_counter() - saved_at >= config.checkpoint_every_s
            if due or iteration % config.checkpoint_every == 0 or sampled >= config.steps:
                save()
                saved_at = time.perf_counter()
    except KeyboardInterrupt:
        bar.close()
        save()
        sys.stderr.write(
            f"interrupted at {sampled} steps: checkpoint and policies saved in {config.out}; "
            "run the same command again to resume\n"
        )
        algo.stop()
        raise
    finally:
        bar.close()
        if writer is not None:
            writer.close()
    paths = export_policies(algo, config, sampled)
    write_json(curve_path, curve)
    with contextlib.suppress(Exception):
        from dasha.plots import learning_curve

        learning_curve({config.agents: curve}, config.out / "learning_curve.png")
    wall_s = float(curve[-1]["wall_s"]) if curve else 0.0
    summary = {
        "config": {
            **{k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()},
            "episode": config.episode.to_dict(),
        },
        "env_steps": sampled,
        "wall_s": wall_s,
        # over wall_s: sampling and PPO updates, from the first iteration on
        "env_steps_per_s": round(sampled / wall_s, 2) if wall_s > 0 else None,
        "startup_s": round(start - called, 2),  # this session's: checks, Ray, env runners
        "iterations": iteration,
        "sampling": plan.to_dict() if plan is not None else None,
        "policies": {k: str(v) for k, v in paths.items()},
        "final": curve[-1] if curve else {},
    }
    write_json(config.out / "summary.json", summary)
    algo.stop()
    return summary


def _tensorboard(out: Path, resumed_at_steps: int) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is in the [rl] extra; training still works without it
        return None
    # Steps logged after the checkpoint a run resumes from are sampled again: purge them,
    # so TensorBoard shows each step once.
    purge = resumed_at_steps + 1 if resumed_at_steps else None
    return SummaryWriter(str(out / "tensorboard"), purge_step=purge)
