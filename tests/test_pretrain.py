"""Virtual pre-training of A_L (``agents.pretrain``): the expert, the fit and the policy file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dasha.agents.expert import expert_target
from dasha.agents.pretrain import PRETRAIN_EPISODE, PretrainConfig, pretrain
from dasha.agents.run import Policies
from dasha.envs.stop import PEAK_BRACKET
from dasha.errors import ConfigError

B = PEAK_BRACKET


def test_expert_brackets_focus_then_lands_on_it():
    focus = 0.4
    below = expert_target([0.0], focus, B)  # nothing near focus yet: the bracket's low side
    assert below == pytest.approx(focus - 0.9 * B)
    assert expert_target([0.0, 0.9], focus, B) == pytest.approx(below)  # far frames close nothing
    above = expert_target([0.0, below], focus, B)
    assert above == pytest.approx(focus + 0.9 * B)
    assert expert_target([0.0, below, above], focus, B) == focus  # both sides: focus, last
    # a frame a little off focus is the centre: the sides are taken around it, and once
    # they are there the expert stays on it
    off = focus + 0.3 * B
    assert expert_target([off, off + 2 * B], focus, B) == pytest.approx(off - 0.9 * B)
    assert expert_target([off, off - 0.9 * B, off + 0.9 * B], focus, B) == off


def test_expert_takes_its_probes_first_whatever_the_focus():
    probes = (0.3, 0.37)
    for focus in (0.26, 0.33, 0.41):
        assert expert_target([0.0], focus, B, probes) == 0.3
        assert expert_target([0.0, 0.3], focus, B, probes) == 0.37
        # then the bracket around focus, as without probes
        assert expert_target([0.0, 0.3, 0.37], focus, B, probes) == pytest.approx(focus - 0.9 * B)


def test_for_the_defocus_rule_the_expert_goes_to_focus_first_then_brackets_it():
    probes = (0.3, 0.37)
    focus = 0.33
    assert expert_target([0.0], focus, B, probes, centre_first=True) == 0.3
    assert expert_target([0.0, 0.3, 0.37], focus, B, probes, centre_first=True) == focus
    # landed in focus and the search went on (the target not detected there): the bracket
    # as for the peak rule, around the frame that is in focus
    landed = focus + 0.2 * B
    path = [0.0, 0.3, 0.37, landed]
    assert expert_target(path, focus, B, probes, True) == pytest.approx(landed - 0.9 * B)


def test_pretraining_refuses_a_head_or_rule_it_cannot_imitate(tmp_path: Path):
    from dataclasses import replace

    with pytest.raises(ConfigError, match="observe_defocus=True"):
        PretrainConfig(
            out=tmp_path,
            focus_head="jump-step-defocus",
            episode=replace(PRETRAIN_EPISODE, observe_defocus=False),
        )
    with pytest.raises(ConfigError, match="pre-training needs one of jump-step"):
        PretrainConfig(out=tmp_path, focus_head="categorical")


def test_probes_are_quantiles_of_the_training_focus(tmp_path: Path):
    import gymnasium as gym

    import dasha.envs  # noqa: F401 - registers the envs
    from dasha.agents.pretrain import focus_probes

    env = gym.make("dasha/Focus-v0", config=PRETRAIN_EPISODE).unwrapped
    config = PretrainConfig(out=tmp_path, probe_quantiles=(0.0, 0.5, 1.0), probe_conditions=9)
    low, middle, high = focus_probes(env, config)
    assert 0.0 < low <= middle <= high < 1.0 and low < high  # distances differ
    assert focus_probes(env, config) == (low, middle, high)  # its own seed: repeatable
    assert focus_probes(env, PretrainConfig(out=tmp_path, probe_quantiles=())) == ()
    with pytest.raises(ConfigError, match="must lie in"):
        PretrainConfig(out=tmp_path, probe_quantiles=(1.2,))


def test_pretrain_refuses_what_it_cannot_imitate(tmp_path: Path):
    from dataclasses import replace

    with pytest.raises(ConfigError, match="stop_rule one of peak, defocus"):
        PretrainConfig(out=tmp_path, episode=replace(PRETRAIN_EPISODE, stop_rule="detection"))
    with pytest.raises(ConfigError, match="test split is refused"):
        PretrainConfig(out=tmp_path, episode=replace(PRETRAIN_EPISODE, split="test"))


def test_a_tiny_pretraining_writes_a_policy_the_episode_runs(tmp_path: Path):
    from dasha.agents.run import run_episode
    from dasha.envs.hierarchical import HierarchicalEpisode

    summary = pretrain(
        PretrainConfig(out=tmp_path, episodes=3, rounds=2, epochs=3, exposure_conditions=4),
        progress=False,
    )
    assert [r["round"] for r in summary["rounds"]] == [0, 1]
    probes = Policies.load(tmp_path).focus.spec.extra["pretrain"]["probes"]
    assert len(probes) == 2 and probes[0] < probes[1]  # the default quantiles, recorded
    assert all(r["states"] >= 3 and np.isfinite(r["loss"]) for r in summary["rounds"])
    assert summary["exposure"]["conditions"] == 4 and summary["exposure"]["states"] <= 4
    policies = Policies.load(tmp_path)
    options = policies.episode_options
    assert options["stop_rule"] == "defocus" and options["observe_previous"]
    assert policies.focus.spec.head == "jump-step-defocus"
    assert options["focus_action"] == "normalised"
    assert options["exposure_observation"] == "bracket"  # read from A_H's own file
    episode = HierarchicalEpisode(
        policies.episode(PRETRAIN_EPISODE.with_options(split="val")), senses=None
    )
    report, _, _ = run_episode(episode, policies, seed=5)
    assert report.exposure_moves == 1 and report.stop
    if report.handed_over:
        assert 1 <= report.lens_moves <= 11  # the horizon, plus the peak rule's way back


def test_the_exposure_loss_rewards_mass_on_any_suitable_exposure():
    import torch

    from dasha.agents.pretrain import suitable_set_loss

    suitable = np.array([[False, True, True, False]])
    loss = suitable_set_loss(suitable)
    on_set = torch.tensor([[0.0, 5.0, 5.0, 0.0]])
    on_one = torch.tensor([[0.0, 10.0, 0.0, 0.0]])  # a single suitable choice is as good
    off_set = torch.tensor([[5.0, 0.0, 0.0, 5.0]])
    batch = torch.tensor([0])
    assert float(loss(on_one, batch)) < 0.01 and float(loss(on_set, batch)) < 0.02
    assert float(loss(off_set, batch)) > 2.0


def test_the_defocus_expert_labels_where_the_estimate_is_not_the_truth(tmp_path: Path):
    """With ``expert="defocus"`` every label after the probes is the move the expert makes
    towards depth from defocus's estimate, which A_L observes; the truth expert's differ."""
    import gymnasium as gym

    import dasha.envs  # noqa: F401 - registers the envs
    from dasha.agents.pretrain import collect
    from dasha.envs.actions import normalised_point

    env = gym.make("dasha/Focus-v0", config=PRETRAIN_EPISODE).unwrapped
    probes = (0.2956, 0.3685)
    labels = {}
    for expert in ("truth", "defocus"):
        _, labels[expert] = collect(
            env, 2, np.random.default_rng(3), progress=False, probes=probes, expert=expert
        )
    assert not np.array_equal(labels["truth"], labels["defocus"])
    first = collect(
        env, 1, np.random.default_rng(3), progress=False, probes=probes, expert="defocus"
    )
    observations, indices = first
    # the third state (after both probes) sees the estimate and is labelled with it
    assert indices[2] == normalised_point(float(observations[2, -4]))
    with pytest.raises(ConfigError, match="observe"):
        from dataclasses import replace

        PretrainConfig(
            out=tmp_path,
            expert="defocus",
            focus_head="jump-step",
            episode=replace(PRETRAIN_EPISODE, observe_defocus=False),
        )
    with pytest.raises(ConfigError, match="choose among truth, defocus"):
        PretrainConfig(out=tmp_path, expert="oracle")


def test_exposure_restarts_add_unsuitable_starting_frames_with_the_same_labels():
    from dasha.agents.pretrain import collect_exposure
    from dasha.envs.hierarchical import HierarchicalEpisode
    from dasha.envs.rewards import is_suitable_peak

    episode = HierarchicalEpisode(PRETRAIN_EPISODE)
    x0, m0 = collect_exposure(episode, 2, np.random.default_rng(4), progress=False)
    x2, m2 = collect_exposure(episode, 2, np.random.default_rng(4), progress=False, restarts=2)
    assert len(x2) == 3 * len(x0) and len(x0) >= 1  # the factory frame and two restarts each
    assert np.array_equal(x2[0], x0[0]) and np.array_equal(m2[0], m0[0])  # the same first draw
    for i in range(len(x0)):
        factory, *restarts = x2[3 * i : 3 * i + 3]
        assert all(np.array_equal(m2[3 * i + k], m2[3 * i]) for k in range(3))  # one scene
        # each restart is a frame at an exposure the labels call unsuitable: its histogram
        # (the first ten values, counts per pixel) has a peak outside the suitable band
        for view in restarts:
            assert not np.array_equal(view, factory)
            counts, edges = view[:10], view[10:21] * 255.0
            assert not is_suitable_peak(
                float(edges[np.argmax(counts)])
            )  # P: the fullest bin's left edge
    with pytest.raises(ConfigError, match="exposure-restarts"):
        PretrainConfig(out=Path("unused"), exposure_restarts=-1)
