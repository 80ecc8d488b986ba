"""Virtual pre-training of A_L: imitate, from images, a search for focus.

An *expert* (``agents.expert``) first takes the same probe frames in every episode (lens
positions at quantiles of where focus lies over the training conditions, simulator ground
truth: from the 24 V frame nothing of the distance is observable, and depth from defocus
finds focus from frames that straddle it, ``dasha dfd-bench``), then goes to where it puts
focus, where the defocus stop rule (``envs.stop``, the default) can end the search at once,
and brackets that position if the search goes on there.

Where the expert puts focus (``PretrainConfig.expert``): by default where depth from
defocus puts it over the search's frames (``envs.focus.FocusSearch.focus_estimate``), which
A_L observes too, so every move of the expert can be read from A_L's own observation; with
``"truth"``, at the simulator's in-focus position (``info["in_focus_v"]``), which A_L
cannot see: where the estimate is off, the network then hedges between guesses (measured
on val: 57 % overall against 65 %). A_L's network is trained, supervised, to give the
expert's move the highest probability under its own action distribution (by default the
jump-step-defocus head's, over the lens grid, ``agents.policy.grid_logits``), from its own
observations only: E(I) of the last two frames, their lens positions and sharpness ratio,
and where depth from defocus puts focus from the search's frames (``perception.defocus``).
Ground truth never reaches the policy's input, so the trained A_L acts from images alone,
on any scene (the supervised form of the issue's "virtual pre-training"; PPO on eq. 12 can
fine-tune it from there).

Data are collected in rounds (DAgger, Ross et al. 2011): the first round follows the
expert with noise, later rounds follow the network being trained, and every state is
labelled with the expert's move from there, so the network learns to recover from its
own mistakes, not only from the expert's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from dasha.agents.expert import expert_move
from dasha.agents.policy import STEP_HEADS, missing_episode_needs
from dasha.envs.actions import focus_fraction_to_action, normalised_point, range_fraction
from dasha.envs.config import EpisodeConfig
from dasha.envs.stop import MEMORY_RULES
from dasha.errors import ConfigError, check_choice, require

PRETRAIN_EPISODE = EpisodeConfig(
    conditions="full",
    split="train",
    stop_rule="defocus",
    observe_lens=True,
    observe_previous=True,
    observe_defocus=True,
    exposure_observation="bracket",
    focus_action="normalised",
    cache_size=0,  # continuous conditions: no frame repeats
)


EXPERTS = ("truth", "defocus")


@dataclass(frozen=True)
class PretrainConfig:
    out: Path
    episode: EpisodeConfig = PRETRAIN_EPISODE
    episodes: int = 800
    """Episodes collected per round."""
    rounds: int = 3
    """Collection rounds: the first follows the expert, the others the network (DAgger)."""
    epochs: int = 40
    exposure_conditions: int = 600
    """Conditions A_H learns from (each tried at every exposure of the table)."""
    exposure_restarts: int = 0
    """Per condition, also this many frames at unsuitable exposures as A_H's starting
    states (``collect_exposure``): A_H then learns to move again from where a failed
    move left it (``EpisodeConfig.exposure_moves``)."""
    seed: int = 0
    hidden: tuple[int, ...] = (256, 256)
    lr: float = 1e-3
    probe_quantiles: tuple[float, ...] = (0.25, 0.75)
    """The expert's probe frames, as quantiles of the in-focus lens position over the
    training conditions (``()``: no probes, the expert's first move is the bracket's)."""
    probe_conditions: int = 200
    """Training conditions the probe quantiles are taken over."""
    expert: str = "defocus"
    """Where the expert puts focus (``EXPERTS``): ``"defocus"``, depth from defocus's
    estimate over the search's frames, what A_L itself observes, so the network can follow
    the expert everywhere; ``"truth"``, the simulator's in-focus position, which A_L cannot
    see, so where the estimate is off the network hedges between guesses. Chosen on val
    (60 episodes): 65 % overall, A_L 67 % in focus in 6.0 moves, against 57 %, 58 %, 7.1
    with the truth."""
    focus_head: str = "jump-step-defocus"
    """A_L's action head (``agents.policy.STEP_HEADS``): ``jump-step-defocus`` adds a lens
    move around depth from defocus's estimate (it needs ``observe_defocus``)."""

    def __post_init__(self) -> None:
        episode = self.episode
        if self.focus_head not in STEP_HEADS:
            raise ConfigError(
                f"focus head {self.focus_head!r}: pre-training needs one of {', '.join(STEP_HEADS)}"
            )
        needs = missing_episode_needs(self.focus_head, episode)
        if episode.focus_action != "normalised":  # the expert's labels are normalised points
            needs.append("focus_action='normalised'")
        if episode.stop_rule not in MEMORY_RULES:
            needs.append(f"stop_rule one of {', '.join(MEMORY_RULES)}")
        if needs:
            raise ConfigError(
                "pre-training imitates a search for the peak or defocus rule on a normalised "
                f"lens grid with the {self.focus_head} head: it needs {', '.join(dict.fromkeys(needs))}"
            )
        check_choice("expert", self.expert, EXPERTS)
        if self.expert == "defocus" and not episode.observe_defocus:
            raise ConfigError(
                "the defocus expert follows depth from defocus's estimate, which A_L must "
                "observe: drop --no-observe-defocus or use --expert truth"
            )
        if episode.split == "test":
            raise ConfigError("pre-training on the test split is refused: use train")
        if self.exposure_restarts < 0:
            raise ConfigError(
                f"--exposure-restarts must be 0 or more, got {self.exposure_restarts}"
            )
        if min(self.episodes, self.rounds, self.epochs, self.exposure_conditions) < 1:
            raise ConfigError(
                "--episodes, --rounds, --epochs and --exposure-conditions must be at least 1"
            )
        if not all(0.0 <= q <= 1.0 for q in self.probe_quantiles) or self.probe_conditions < 1:
            raise ConfigError(
                f"probe quantiles {self.probe_quantiles} must lie in [0, 1] and probe "
                f"conditions ({self.probe_conditions}) be at least 1"
            )


def collect(
    env: Any,
    episodes: int,
    rng: np.random.Generator,
    policy: Any = None,
    progress: bool = True,
    probes: tuple[float, ...] = (),
    expert: str = "truth",
) -> tuple[np.ndarray, np.ndarray]:
    """(observations, expert grid indices) from ``episodes`` A_L episodes of ``env``
    (``dasha/Focus-v0``), following the expert with noise or, if given, ``policy``; the
    expert puts focus at the truth or at depth from defocus's estimate (``PretrainConfig.expert``)."""
    from tqdm import tqdm

    search = env.search
    bracket = env.config.peak_bracket
    lens = env.lens
    observations, labels = [], []
    for _ in tqdm(range(episodes), disable=not progress, desc="episodes"):
        obs, info = env.reset(seed=int(rng.integers(2**31)))
        # ground truth: the expert's, never an input
        focus = range_fraction(float(info["in_focus_v"]), lens.focus_range)
        done = False
        while not done:
            # the defocus expert falls back on the truth only before an estimate exists
            follow_truth = expert == "truth" or search.focus_estimate() is None
            target = expert_move(search, probes, focus if follow_truth else None)
            observations.append(obs)
            labels.append(normalised_point(target))
            if policy is not None:
                action = policy.act(obs)
            else:
                # without probes, a random first move (the 24 V frame shows nothing of the
                # distance); then the expert's move with an error of a jump's or a step's size
                first = not probes and len(search.memory.positions) == 1
                jump = abs(target - search.memory.positions[-1]) > 2 * bracket
                spread = 2.0 * bracket if jump else 0.3 * bracket
                moved = rng.uniform(0, 1) if first else target + rng.normal(0, spread)
                action = np.asarray(focus_fraction_to_action(moved))
            obs, _, terminated, truncated, _ = env.step(action)
            done = terminated or truncated
    return np.asarray(observations, np.float32), np.asarray(labels, np.int64)


def focus_probes(env: Any, config: PretrainConfig) -> tuple[float, ...]:
    """The expert's probe positions: ``config.probe_quantiles`` of the in-focus lens position
    (fraction of the range) over ``config.probe_conditions`` training conditions, drawn
    with their own seed so that the episodes' draws stay the same."""
    if not config.probe_quantiles:
        return ()
    rng = np.random.default_rng([config.seed, 1])
    focus = [
        range_fraction(
            float(env.reset(seed=int(rng.integers(2**31)))[1]["in_focus_v"]), env.lens.focus_range
        )
        for _ in range(config.probe_conditions)
    ]
    return tuple(round(float(q), 4) for q in np.quantile(focus, config.probe_quantiles))


def fit(net: Any, observations: np.ndarray, loss: Any, config: PretrainConfig) -> list[float]:
    """Adam on ``loss(net output, batch indices)`` over minibatches; the loss per epoch."""
    torch = require("torch", "perception")

    generator = torch.Generator().manual_seed(config.seed)
    x = torch.as_tensor(observations)
    optimiser = torch.optim.Adam(net.parameters(), lr=config.lr)
    losses = []
    for _ in range(config.epochs):
        order = torch.randperm(len(x), generator=generator)
        total = 0.0
        for start in range(0, len(x), 256):
            batch = order[start : start + 256]
            value = loss(net(x[batch])[0], batch)
            optimiser.zero_grad()
            value.backward()
            optimiser.step()
            total += float(value.detach()) * len(batch)
        losses.append(total / len(x))
    return losses


def grid_imitation_loss(spec: Any, labels: np.ndarray) -> Any:
    """-log p(the expert's grid point) under the network's lens distribution."""
    torch = require("torch", "perception")
    from dasha.agents.policy import grid_logits

    y = torch.as_tensor(labels)

    def loss(params: Any, batch: Any) -> Any:
        log_p = grid_logits(params, spec.action_sizes, spec.head)
        return -log_p.gather(-1, y[batch, None]).mean()

    return loss


def suitable_set_loss(suitable: np.ndarray) -> Any:
    """-log P(a suitable exposure): every exposure with a suitable histogram earns eq. 11's
    +1, so the network is asked to put its mass on that set, not on one label of it."""
    torch = require("torch", "perception")
    mask = torch.as_tensor(suitable)

    def loss(logits: Any, batch: Any) -> Any:
        log_p = torch.log_softmax(logits, -1)
        return -torch.logsumexp(log_p.masked_fill(~mask[batch], -torch.inf), -1).mean()

    return loss


def collect_exposure(
    episode: Any,
    conditions: int,
    rng: np.random.Generator,
    progress: bool = True,
    restarts: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """(A_H's observations, which exposures of the table give a suitable histogram): the
    simulator is tried at every exposure of the table from the factory state. Conditions
    where no exposure is suitable are left out (no move of A_H can succeed there).

    ``restarts``: per condition, also the observations of that many frames drawn among the
    unsuitable exposures of the sweep, with the same labels (which exposures are suitable
    depends on the scene, not on where A_H looks from): the states a second move of A_H
    starts from (``EpisodeConfig.exposure_moves``)."""
    from tqdm import tqdm

    from dasha.envs.exposure import exposure_sweep
    from dasha.envs.hierarchical import EXPOSURE
    from dasha.envs.rewards import is_suitable_peak

    observations, masks = [], []
    table_us = episode.table_us
    for _ in tqdm(range(conditions), disable=not progress, desc="exposure conditions"):
        obs, _ = episode.reset(rng)
        sweep = list(exposure_sweep(episode.camera, table_us))
        mask = np.array([is_suitable_peak(hist.peak) for _, hist in sweep], bool)
        if not mask.any():
            continue
        unsuitable = np.flatnonzero(~mask)
        starts: list[int] = (
            [int(i) for i in rng.choice(unsuitable, min(restarts, len(unsuitable)), replace=False)]
            if restarts
            else []
        )
        views = [obs[EXPOSURE], *(episode.observe_exposure(*sweep[i]) for i in starts)]
        observations += views
        masks += [mask] * len(views)
    return np.asarray(observations, np.float32), np.asarray(masks, bool)


def pretrain(config: PretrainConfig, progress: bool = True) -> dict[str, Any]:
    """Collect, fit and write ``out/policies/focus.pt``; returns a summary."""
    import gymnasium as gym

    import dasha.envs  # noqa: F401 - registers the envs
    from dasha.agents.policy import Policy, PolicySpec, action_sizes_of, build_net
    from dasha.io import write_json

    start = time.perf_counter()
    rng = np.random.default_rng(config.seed)
    env = gym.make("dasha/Focus-v0", config=config.episode).unwrapped
    spec = PolicySpec(
        agent="focus",
        obs_dim=int(np.prod(env.observation_space.shape or (0,))),
        action_sizes=action_sizes_of(env.action_space),
        encoder=config.episode.encoder,
        hidden=config.hidden,
        head=config.focus_head,
        observe_lens=True,
        episode=config.episode,
        extra={
            "pretrain": {
                "episodes": config.episodes,
                "rounds": config.rounds,
                "expert": config.expert,
            }
        },
    )
    probes = focus_probes(env, config)
    spec = replace(spec, extra={"pretrain": {**spec.extra["pretrain"], "probes": list(probes)}})
    require("torch", "perception").manual_seed(config.seed)
    net = build_net(spec)
    data_x, data_y, rounds = [], [], []
    policy = None
    for round_ in range(config.rounds):
        x, y = collect(env, config.episodes, rng, policy, progress, probes, config.expert)
        data_x.append(x)
        data_y.append(y)
        labels = np.concatenate(data_y)
        losses = fit(net, np.concatenate(data_x), grid_imitation_loss(spec, labels), config)
        policy = Policy(spec, net.state_dict())
        rounds.append({"round": round_, "states": len(x), "loss": losses[-1]})
    spec = replace(spec, extra={**spec.extra, "states": int(sum(len(x) for x in data_x))})
    out = Path(config.out) / "policies"
    out.mkdir(parents=True, exist_ok=True)
    Policy(spec, net.state_dict()).save(out / "focus.pt")
    exposure = pretrain_exposure(config, rng, progress)
    exposure.save(out / "exposure.pt")
    summary = {
        "episode": config.episode.to_dict(),
        "rounds": rounds,
        "exposure": exposure.spec.extra["pretrain"],
        "wall_s": time.perf_counter() - start,
        "policy": str(out / "focus.pt"),
    }
    write_json(Path(config.out) / "pretrain.json", summary)
    return summary


def pretrain_exposure(config: PretrainConfig, rng: np.random.Generator, progress: bool) -> Any:
    """A_H, supervised on the exposures that give a suitable histogram from the factory frame
    (``collect_exposure``); its action is the paper's, its observation the episode's
    ``exposure_observation`` (by default the virtual bracket: chosen on val, where it
    generalised to unseen scenes better than E(I) and the histogram)."""
    from dasha.agents.policy import Policy, PolicySpec, action_sizes_of, build_net
    from dasha.envs.hierarchical import EXPOSURE, HierarchicalEpisode

    episode = HierarchicalEpisode(config.episode)
    x, suitable = collect_exposure(
        episode, config.exposure_conditions, rng, progress, config.exposure_restarts
    )
    if not len(x):
        raise ConfigError("no condition had a suitable exposure to learn from")
    spec = PolicySpec(
        agent=EXPOSURE,
        obs_dim=int(x.shape[1]),
        action_sizes=action_sizes_of(episode.action_spaces[EXPOSURE]),
        encoder=config.episode.encoder,
        hidden=config.hidden,
        episode=config.episode,
    )
    net = build_net(spec)
    losses = fit(net, x, suitable_set_loss(suitable), config)
    facts = {
        "conditions": config.exposure_conditions,
        "restarts": config.exposure_restarts,
        "states": len(x),
        "loss": losses[-1],
    }
    return Policy(replace(spec, extra={"pretrain": facts}), net.state_dict())
