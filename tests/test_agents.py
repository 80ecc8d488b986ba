"""Policies (plain torch), the episode runner, and short real training runs (SB3 and RLlib)."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest

import dasha.envs  # noqa: F401
from dasha.agents.policy import Policy, PolicySpec, build_net, greedy_action
from dasha.agents.run import (
    TRAINED_EXPOSURE_OPTIONS,
    TRAINED_OPTIONS,
    Policies,
    exposure_solvable,
    run_episode,
    summarize,
)
from dasha.envs.config import EpisodeConfig
from dasha.envs.hierarchical import HierarchicalEpisode
from dasha.errors import ConfigError
from dasha.perception.senses import Senses


@pytest.fixture(scope="module")
def senses():
    return Senses(cache_size=10_000)


def _policy(
    agent: str, obs_dim: int, sizes: tuple[int, ...], bias: np.ndarray | None = None
) -> Policy:
    spec = PolicySpec(
        agent=agent, obs_dim=obs_dim, action_sizes=sizes, encoder="efficientnet-lite0", hidden=(8,)
    )
    state = build_net(spec).state_dict()
    if bias is not None:  # steer the greedy action: a policy that always picks given actions
        state["logits.bias"] = __import__("torch").as_tensor(bias, dtype=state["logits.bias"].dtype)
        state["logits.weight"] = state["logits.weight"] * 0
    return Policy(spec, state)


def test_greedy_action_splits_heads():
    logits = np.array([0.1, 0.9, 0.0, 5.0, 1.0])
    assert list(greedy_action(logits, (2, 3))) == [1, 1]
    assert list(greedy_action(logits, (5,))) == [3]


def _grid_policy(mean_v: float, obs_dim: int = 16) -> Policy:
    """A grid-gaussian focus policy whose greedy lens move is ``mean_v`` for every frame."""
    import torch

    from dasha.agents.policy import GRID_MEAN_STEPS_PER_UNIT

    spec = PolicySpec(agent="focus", obs_dim=obs_dim, action_sizes=(47, 100),
                      encoder="efficientnet-lite0", hidden=(8,), head="grid-gaussian")  # fmt: skip
    state = build_net(spec).state_dict()
    # uniform coarse logits: the Gaussian sits at mid-grid (23.5 V above 24 V) plus the offset
    offset = ((mean_v - 24.0) / 0.01 - 2350) / GRID_MEAN_STEPS_PER_UNIT
    state["logits.weight"] = state["logits.weight"] * 0
    state["logits.bias"] = torch.tensor([0.0] * 47 + [offset, -8.0])
    return Policy(spec, state)


def _params(coarse: dict[int, float], offset: float, log_width: float) -> list[float]:
    logits = [0.0] * 47
    for volt, logit in coarse.items():
        logits[volt] = logit
    return [*logits, offset, log_width]


def test_grid_gaussian_head_is_a_coarse_categorical_times_a_gaussian_on_the_grid():
    import torch

    from dasha.agents.policy import GRID_MEAN_STEPS_PER_UNIT, grid_logits

    sizes = (47, 100)
    start, sure, narrow = (
        torch.tensor([_params({}, 0.0, 0.0)]),  # a fresh network: every grid point alike
        torch.tensor([_params({12: 30.0}, 0.0, -8.0)]),  # certain of 36 V: mean 36.5 V
        torch.tensor([_params({12: 30.0}, 40 / GRID_MEAN_STEPS_PER_UNIT, -8.0)]),  # +0.4 V
    )
    probs = torch.softmax(grid_logits(start, sizes), -1)[0]
    assert grid_logits(start, sizes).shape == (1, 4700)
    assert float(probs.max() / probs.min()) < 1.2  # explores the whole lens range
    assert int(grid_logits(sure, sizes).argmax()) == 1250
    assert int(grid_logits(narrow, sizes).argmax()) == 1290
    row = grid_logits(narrow, sizes)[0].numpy()[1200:1300]
    assert np.all(np.diff(row[:90]) > 0) and np.all(np.diff(row[91:]) < 0)  # unimodal
    # it straddles a volt boundary: mean 37.0 V puts mass on 36.9x and 37.0x alike
    boundary = torch.tensor([_params({12: 5.0, 13: 5.0}, 0.0, -6.0)])
    p = torch.softmax(grid_logits(boundary, sizes), -1)[0]
    assert float(p[1290:1300].sum()) == pytest.approx(float(p[1300:1310].sum()), rel=0.05)
    # greedy action of an exported policy: the grid point nearest the mean, as (coarse, fine)
    for volts in (36.87, 37.0, 30.05):
        coarse, fine = _grid_policy(volts).act(np.zeros(16, np.float32))
        assert round(24 + coarse + 0.01 * fine, 2) == volts
    with pytest.raises(ConfigError, match="coarse, fine"):
        PolicySpec(agent="x", obs_dim=4, action_sizes=(5,), encoder="e", head="grid-gaussian")
    with pytest.raises(ConfigError, match="unknown action head"):
        PolicySpec(agent="x", obs_dim=4, action_sizes=(5,), encoder="e", head="beta")


def test_jump_step_head_mixes_a_jump_with_a_step_from_the_lens_position():
    import torch

    from dasha.agents.policy import (
        GRID_MEAN_STEPS_PER_UNIT,
        grid_components,
        grid_logits,
        grid_move,
    )

    sizes = (47, 100)
    at_36_8 = 1280 / 4700  # the observed lens position (grid fraction), 36.80 V

    def params(weight: float, step_offset_v: float) -> torch.Tensor:
        jump = _params({20: 30.0}, 0.0, -8.0)  # a sure jump to 44.5 V
        step = [weight, step_offset_v * 100 / GRID_MEAN_STEPS_PER_UNIT, -3.0, at_36_8 * 4700]
        return torch.tensor([jump + step])

    fresh = params(0.0, 0.0)
    jump, step = (torch.exp(c).sum().item() for c in grid_components(fresh, sizes, "jump-step"))
    assert jump == pytest.approx(0.5) and step == pytest.approx(0.5)  # equally likely at first
    probs = torch.softmax(grid_logits(fresh, sizes, "jump-step"), -1)[0]
    assert float(probs[1230:1331].sum()) > 0.3  # the step explores around 36.80 V
    assert int(grid_move(params(4.0, 0.12), sizes, "jump-step")[0]) == 1292  # step: +0.12 V
    assert int(grid_move(params(-4.0, 0.12), sizes, "jump-step")[0]) == 2050  # jump: 44.50 V
    with pytest.raises(ConfigError, match="observe_lens"):
        PolicySpec(agent="x", obs_dim=4, action_sizes=(47, 100), encoder="e", head="jump-step")
    spec = PolicySpec(agent="focus", obs_dim=3, action_sizes=sizes, encoder="e",
                      head="jump-step", observe_lens=True, hidden=(8,))  # fmt: skip
    policy = Policy(spec, build_net(spec).state_dict())
    with torch.no_grad():  # a step of +0.30 V from the observed position
        policy.net.logits.bias[47:] = torch.tensor([0.0, 0.0, 8.0, 0.3, -3.0])
        policy.net.logits.weight.zero_()
    coarse, fine = policy.act(np.array([0.0, 0.0, at_36_8], np.float32))
    assert round(24 + coarse + 0.01 * fine, 2) == 37.10


def test_jump_step_defocus_head_moves_around_the_observed_estimate():
    import torch

    from dasha.agents.policy import grid_components, grid_move
    from dasha.envs.focus import DEFOCUS_ESTIMATE_INDEX

    sizes = (47, 100)
    obs_dim = 6  # [features..., estimate, offset, confidence, lens position]
    assert obs_dim + DEFOCUS_ESTIMATE_INDEX == 2  # where the estimate sits
    spec = PolicySpec(agent="focus", obs_dim=obs_dim, action_sizes=sizes, encoder="e",
                      head="jump-step-defocus", observe_lens=True, hidden=(8,))  # fmt: skip
    assert spec.head_outputs == 47 + 8
    policy = Policy(spec, build_net(spec).state_dict())
    obs = np.array([0.0, 0.0, 0.3, 0.0, 0.9, 1280 / 4700], np.float32)  # estimate at 0.3
    with torch.no_grad():
        params, _ = policy.net(torch.as_tensor(obs)[None])
    # untrained: jump, step and defocus equally likely, the last around the estimate
    components = grid_components(params, sizes, "jump-step-defocus")
    weights = [float(torch.exp(c).sum()) for c in components]
    assert weights == pytest.approx([1 / 3] * 3, abs=0.01)
    assert abs(int(components[2].argmax()) - round(0.3 * 4699)) <= 1
    with torch.no_grad():  # trust the estimate: the move lands on it, wherever the lens is
        policy.net.logits.bias[47 + 5] = 8.0
        policy.net.logits.bias[47 + 7] = -3.0
        policy.net.logits.weight.zero_()
    for estimate in (0.3, 0.41):
        obs[2] = estimate
        coarse, fine = policy.act(obs)
        assert abs(coarse * 100 + fine - round(estimate * 4699)) <= 1
    with torch.no_grad():
        params, _ = policy.net(torch.as_tensor(obs)[None])
    assert int(grid_move(params, sizes, "jump-step-defocus")[0]) == pytest.approx(
        0.41 * 4699, abs=1
    )
    with pytest.raises(ConfigError, match="observe_lens"):
        PolicySpec(agent="x", obs_dim=6, action_sizes=sizes, encoder="e",
                   head="jump-step-defocus")  # fmt: skip


def test_rllib_grid_distribution_samples_pairs_with_the_joint_log_probability():
    import torch

    from dasha.agents.policy import grid_logits
    from dasha.agents.rllib_module import TorchGridGaussian

    torch.manual_seed(0)
    params = torch.tensor([_params({12: 30.0}, 0.4, -6.0), _params({30: 30.0}, -0.2, -4.0)])
    dist_cls = TorchGridGaussian.get_partial_dist_cls(action_sizes=(47, 100), head="grid-gaussian")
    dist = dist_cls.from_logits(params)
    pairs = dist.sample()
    assert pairs.shape == (2, 2) and int(pairs[:, 1].max()) < 100 and int(pairs[:, 0].max()) < 47
    joint = pairs[:, 0] * 100 + pairs[:, 1]
    expected = torch.log_softmax(grid_logits(params, (47, 100)), -1).gather(1, joint[:, None])[:, 0]
    assert torch.allclose(dist.logp(pairs), expected)
    greedy = dist.to_deterministic().sample()
    assert greedy[:, 0].tolist() == [12, 30]  # inside the volt the coarse logits are sure of
    cdf = torch.softmax(grid_logits(params, (47, 100)), -1).cumsum(-1)
    for row, (coarse, fine) in enumerate(greedy.tolist()):
        h = coarse * 100 + fine
        assert cdf[row, h - 1] < 0.5 <= cdf[row, h]  # the median grid point
    assert torch.all(dist.kl(dist).abs() < 1e-6) and torch.all(dist.entropy() > 0)
    # narrow and far apart: probabilities underflow to 0, the KL must stay finite
    apart = dist_cls.from_logits(torch.tensor([_params({12: 30.0}, 0.0, -8.0)] * 2))
    other = dist_cls.from_logits(torch.tensor([_params({30: 30.0}, 0.0, -8.0)] * 2))
    assert torch.all(torch.isfinite(apart.kl(other))) and torch.all(apart.kl(other) > 100)
    # the deterministic move is the median, not the joint argmax: 36 V a little likelier than
    # 37 V and a wide Gaussian at 37.17 V put the argmax on the edge 36.99 V, the mass lower
    edge = torch.tensor([_params({12: 30.0, 13: 29.0}, 0.4, -3.5)])
    logits = grid_logits(edge, (47, 100))
    coarse, fine = dist_cls.from_logits(edge).to_deterministic().sample()[0].tolist()
    cdf = torch.softmax(logits, -1)[0].cumsum(0)
    median = coarse * 100 + fine
    assert int(logits.argmax()) == 1299 and cdf[median - 1] < 0.5 <= cdf[median] and median < 1290


def test_policy_save_load_round_trip(tmp_path):
    policy = _policy("focus", 16, (47, 100))
    policy.save(tmp_path / "focus.pt")
    loaded = Policy.load(tmp_path / "focus.pt")
    obs = np.random.default_rng(0).normal(size=16).astype(np.float32)
    assert np.array_equal(loaded.act(obs), policy.act(obs))
    with pytest.raises(ConfigError, match="expects observations of 16"):
        loaded.act(np.zeros(5, np.float32))
    (tmp_path / "junk.pt").write_bytes(b"not a policy")
    with pytest.raises(ConfigError, match="not a DASHA policy"):
        Policy.load(tmp_path / "junk.pt")
    with pytest.raises(ConfigError, match="no policy file"):
        Policy.load(tmp_path / "missing.pt")


def test_runner_reports_a_full_hierarchical_episode(senses):
    episode = HierarchicalEpisode(senses=senses, scenes=["cameraman"])
    n_exposures = len(episode.table_us)
    # A_H always picks 1 s (saturates: unsuitable); A_L is never reached.
    bright = np.full(n_exposures, -10.0)
    bright[-1] = 10.0
    policies = Policies(
        _policy("exposure", 1301, (n_exposures,), bright), _policy("focus", 1280, (47, 100))
    )
    report, first, last = run_episode(episode, policies, seed=3)
    assert report.exposure_moves == 1 and report.lens_moves == 0 and not report.handed_over
    assert report.final_exposure_us == 1_000_000 and first.exposure_us == 20_000
    # A_H missed, but some exposure of the table was suitable: the evaluation's ceiling says
    # so, and leaves the camera as the episode left it
    report.exposure_solvable = exposure_solvable(episode, report)
    assert report.exposure_solvable and episode.camera.exposure_us == 1_000_000
    stats = summarize([report])
    assert stats["exposure_solvable_rate"] == 1.0 and stats["exposure_suitable_of_solvable"] == 0.0
    # A_H picks a usable exposure for the scene; A_L jumps to 36.9 V and stays (the in-focus band).
    lux = episode.camera.world.conditions.illuminance_lux  # conditions of seed 3, drawn again below
    good = np.full(n_exposures, -10.0)
    good[int(np.argmin(np.abs(np.log(episode.table_us / (4_000_000.0 / lux)))))] = 10.0
    focus_bias = np.full(147, -10.0)
    focus_bias[12] = focus_bias[47 + 90] = 10.0  # 24 + 12 + 0.90 = 36.90 V
    policies = Policies(
        _policy("exposure", 1301, (n_exposures,), good),
        _policy("focus", 1280, (47, 100), focus_bias),
    )
    report, _, last = run_episode(episode, policies, seed=3)
    assert report.handed_over and report.final_focus == pytest.approx(36.9) == last.meta["focus_v"]
    assert 1 <= report.lens_moves <= 10 and report.sim_time_s > 0 and report.frames >= 2
    assert report.detected == (report.lens_moves < 10)
    stats = summarize([report])
    assert stats["exposure_suitable_rate"] == 1.0 and stats["lens_moves_mean"] == report.lens_moves


class _Scripted:
    """An A_H stand-in that plays the given table indices in turn."""

    def __init__(self, actions: list[int]) -> None:
        self.actions = list(actions)

    def act(self, obs: np.ndarray) -> int:
        assert obs.ndim == 1 and np.isfinite(obs).all()  # a fresh observation every move
        return self.actions.pop(0)


def test_a_h_moves_again_from_an_unsuitable_frame_when_the_episode_allows(senses):
    episode = HierarchicalEpisode(senses=senses, scenes=["cameraman"], exposure_moves=3)
    table = episode.table_us
    focus = _policy("focus", 1280, (47, 100))
    # always 1 s (saturated): three moves, then the episode ends unsuitable
    report, _, last = run_episode(episode, Policies(_Scripted([len(table) - 1] * 3), focus), 3)
    assert report.exposure_moves == 3 and not report.handed_over and report.lens_moves == 0
    assert report.stop == "unsuitable exposure" and last.exposure_us == 1_000_000
    # 1 s, then an exposure that suits the scene: handed over after the second move
    lux = episode.camera.world.conditions.illuminance_lux  # the conditions of seed 3
    good = int(np.argmin(np.abs(np.log(table / (4_000_000.0 / lux)))))
    played = _Scripted([len(table) - 1, good])
    report, _, _ = run_episode(episode, Policies(played, focus), seed=3)
    assert report.exposure_moves == 2 and report.handed_over and not played.actions
    stats = summarize([report])
    assert stats["exposure_suitable_rate"] == 1.0 and stats["exposure_moves_mean"] == 2.0
    assert stats["exposure_suitable_after_one_move_rate"] == 0.0  # the A_H target
    with pytest.raises(ConfigError, match="exposure_moves=0"):
        EpisodeConfig(exposure_moves=0)


def test_a_l_focuses_from_an_unsuitable_frame_when_the_handover_is_always(senses):
    table_len = len(HierarchicalEpisode(senses=senses, scenes=["cameraman"]).table_us)
    saturated = [table_len - 1] * 2  # 1 s: every frame saturated
    focus = _policy("focus", 1280, (47, 100))
    for handover in ("suitable", "always"):
        episode = HierarchicalEpisode(
            senses=senses, scenes=["cameraman"], exposure_moves=2, handover=handover
        )
        report, _, last = run_episode(episode, Policies(_Scripted(list(saturated)), focus), 3)
        # A_H spends both moves either way; only "always" lets A_L move the lens after them
        assert report.exposure_moves == 2 and not report.exposure_suitable
        assert report.handed_over == (report.lens_moves > 0) == (handover == "always")
        assert last.exposure_us == 1_000_000
        stats = summarize([report])
        assert stats["exposure_suitable_rate"] == 0.0
        assert stats["handed_over_rate"] == float(handover == "always")
        assert (report.stop == "unsuitable exposure") == (handover == "suitable")
    with pytest.raises(ConfigError, match="handover"):
        EpisodeConfig(handover="never")


def test_policies_must_match_the_rig(senses, tmp_path):
    episode = HierarchicalEpisode(senses=senses, scenes=["cameraman"])
    policies = Policies(_policy("exposure", 1301, (10,)), _policy("focus", 1280, (47, 100)))
    with pytest.raises(ConfigError, match="needs"):
        policies.check(episode)
    with pytest.raises(ConfigError, match="no exposure and focus policy"):
        Policies.load(tmp_path)


def test_stable_baselines3_ppo_trains_on_focus_env(senses):
    from stable_baselines3 import PPO

    env = gym.make("dasha/Focus-v0", senses=senses, scenes=["cameraman"])
    model = PPO("MlpPolicy", env, n_steps=32, batch_size=16, n_epochs=1, seed=0, verbose=0)
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(total_timesteps=64)
    assert model.num_timesteps >= 64
    assert any(
        not np.allclose(a.numpy(), b.detach().numpy())
        for a, b in zip(before, model.policy.parameters(), strict=True)
    )
    action, _ = model.predict(env.reset(seed=0)[0], deterministic=True)
    assert env.action_space.contains(action)


@pytest.mark.slow
@pytest.mark.parametrize("head", ["categorical", "grid-gaussian", "jump-step"])
def test_rllib_hierarchical_training_run_exports_policies_and_resumes(tmp_path, head):
    from dataclasses import replace

    from dasha.agents.train import TRAINING_EPISODE, TrainConfig, train

    config = TrainConfig(
        out=tmp_path / "run",
        steps=64,
        batch_steps=64,
        minibatch_size=32,
        epochs=1,
        checkpoint_every=1,
        focus_head=head,
        lr_final=3e-5 if head != "categorical" else None,
        episode=replace(
            TRAINING_EPISODE,
            scenes=("cameraman",),
            sharp_brisque_max=15.0 if head != "categorical" else None,
            observe_lens=head == "jump-step",
        ),
    )
    summary = train(config, progress=False)
    assert summary["env_steps"] >= 64
    for name in ("exposure", "focus"):
        assert (tmp_path / "run" / "policies" / f"{name}.pt").is_file()
    assert (tmp_path / "run" / "checkpoint").is_dir() and (
        tmp_path / "run" / "learning_curve.png"
    ).is_file()
    curve = json.loads((tmp_path / "run" / "curve.json").read_text())
    assert curve and "charts/exposure_return_mean" in curve[-1]
    # A_H keeps the paper's constant lr and KL target; A_L's lr decays when asked to
    lr_of = {
        p: curve[-1][f"losses/{p}_policy/default_optimizer_learning_rate"]
        for p in ("exposure", "focus")
    }
    assert lr_of["exposure"] == pytest.approx(config.lr)
    assert (lr_of["focus"] < config.lr) == (config.lr_final is not None)
    policies = Policies.load(tmp_path / "run")
    assert (
        policies.exposure.spec.extra["lr_final"],
        policies.exposure.spec.extra["kl_target"],
    ) == (None, 0.01)
    assert policies.focus.spec.extra["kl_target"] == config.kl_target
    assert policies.focus.spec.action_sizes == (47, 100) and policies.exposure.spec.obs_dim == 1301
    assert policies.focus.spec.head == head and policies.exposure.spec.head == "categorical"
    assert policies.focus.spec.value_trunk == (head != "categorical")
    assert policies.episode_options == {
        name: getattr(config.episode, name)
        for name in (*TRAINED_OPTIONS, *TRAINED_EXPOSURE_OPTIONS)
    }
    assert policies.focus.spec.episode == policies.exposure.spec.episode == config.episode
    assert policies.focus.spec.obs_dim == 1280 + config.episode.observe_lens
    coarse, fine = policies.focus.act(np.zeros(1280 + config.episode.observe_lens, np.float32))
    assert 0 <= coarse < 47 and 0 <= fine < 100
    resumed = train(TrainConfig(**{**config.__dict__, "steps": 128}), progress=False)  # resumes
    assert resumed["env_steps"] >= 128 and resumed["iterations"] > summary["iterations"]


def test_training_recipe_defaults_and_the_papers():
    from dataclasses import replace

    from dasha.agents.train import PAPER_RECIPE, TRAINING_EPISODE, TrainConfig, recipe

    ours = TrainConfig(out="x")
    assert (ours.focus_head, ours.episode.observe_lens, ours.episode.sharp_brisque_max) == (
        "jump-step",
        True,
        18.0,
    )
    paper = TrainConfig(out="x", **recipe(paper=True))
    assert (paper.focus_head, paper.episode.observe_lens, paper.episode.sharp_brisque_max) == (
        "categorical",
        False,
        None,
    )
    assert (paper.lr_final, paper.kl_target) == (None, 0.01) and PAPER_RECIPE[
        "focus_head"
    ] == "categorical"
    # given options override either recipe; None means "not given"
    assert recipe(paper=True, kl_target=0.02, lr_final=None)["kl_target"] == 0.02
    assert recipe(paper=False, focus_head=None) == {}
    # episode options go into the episode, over the given one
    given = recipe(paper=False, episode=replace(TRAINING_EPISODE, scenes=("cameraman",)),
                   sharp_brisque_max=15.0)  # fmt: skip
    assert given["episode"] == replace(
        TRAINING_EPISODE, scenes=("cameraman",), sharp_brisque_max=15.0
    )
    with pytest.raises(ConfigError, match="observe"):
        TrainConfig(
            out="x", focus_head="jump-step", episode=replace(TRAINING_EPISODE, observe_lens=False)
        )
    with pytest.raises(ConfigError, match="observe_defocus=True"):  # it reads the estimate
        TrainConfig(out="x", focus_head="jump-step-defocus", episode=TRAINING_EPISODE)


@pytest.mark.slow
def test_cli_trains_a_single_agent(tmp_path):
    from typer.testing import CliRunner

    from dasha.cli import app
    from dasha.cli.app import register_all

    register_all()
    out = tmp_path / "exposure"
    result = CliRunner().invoke(app, ["train", "--agents", "exposure", "--steps", "64", "--batch-steps", "64",
                                      "--scene", "cameraman", "--out", str(out), "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["env_steps"] >= 64 and summary["config"]["agents"] == "exposure"
    policy = Policy.load(out / "policies" / "exposure.pt")
    assert policy.spec.action_sizes == (141,) and policy.spec.obs_dim == 1301
    bad = CliRunner().invoke(app, ["train", "--agents", "three", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "hierarchical" in bad.output
