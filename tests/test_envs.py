"""The Gymnasium, PettingZoo and RLlib forms of the DASHA envs on the simulator."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import dasha.envs  # noqa: F401 - registers the envs
from dasha.envs.actions import focus_v_to_action
from dasha.envs.hierarchical import EXPOSURE, FOCUS
from dasha.envs.pettingzoo import DashaParallelEnv
from dasha.envs.rewards import sharp_brisque_limit
from dasha.perception.senses import Senses


@pytest.fixture(scope="module")
def senses():
    """One encoder + detector for the whole module (loading them takes a second or two)."""
    return Senses(cache_size=10_000)


def test_envs_are_registered_and_pass_gymnasium_checker(senses):
    for env_id in ("dasha/Exposure-v0", "dasha/Focus-v0"):
        env = gym.make(env_id, senses=senses, scenes=["motorcycle"])
        check_env(env.unwrapped, skip_render_check=True)


def test_exposure_env_observation_and_reward(senses):
    env = gym.make("dasha/Exposure-v0", senses=senses)
    obs, info = env.reset(seed=3)
    assert obs.shape == (1280 + 21,) and obs.dtype == np.float32
    assert info["exposure_us"] == 20_000.0  # factory exposure
    assert np.isclose(obs[1280:1290].sum(), 1.0)  # histogram fractions
    table = env.unwrapped.table_us
    darkest = env.step(0)  # 1 ms
    assert darkest[1] in (-1.0,) or darkest[4]["peak"] < 50
    env.reset(seed=3)
    brightest = env.step(len(table) - 1)  # 1 s: saturated
    assert brightest[1] == -1.0 and brightest[2]  # its one move is over


def test_focus_env_reaches_detection_at_the_in_focus_voltage(senses):
    env = gym.make("dasha/Focus-v0", senses=senses, scenes=["cameraman"])
    obs, info = env.reset(seed=1)
    assert obs.shape == (1280,)
    from dasha.perception.histogram import histogram

    assert 50 <= histogram(env.unwrapped._frame.as_uint8()).peak <= 150  # metered for hand-over
    lens = env.unwrapped.lens
    assert lens.focus == 24.0  # factory lens
    far = env.step(np.array(focus_v_to_action(60.0, lens.focus_range)))
    assert far[1] == -1.0 and not far[2] and not far[4]["detected"]
    sharp = env.step(np.array(focus_v_to_action(info["in_focus_v"], lens.focus_range)))
    assert sharp[2] and sharp[4]["detected"] and sharp[4]["in_focus"]
    assert -1.0 < sharp[1] <= 0.0  # -0.01 x BRISQUE of the box


def test_focus_env_acts_on_the_lens_range_with_normalised_actions(senses):
    from dasha.envs.actions import NORMALISED_SHAPE

    env = gym.make("dasha/Focus-v0", senses=senses, scenes=["cameraman"], focus_action="normalised")
    _, info = env.reset(seed=1)
    assert tuple(env.action_space.nvec) == NORMALISED_SHAPE
    lens = env.unwrapped.lens
    span = lens.focus_range.max - lens.focus_range.min
    points = NORMALISED_SHAPE[0] * NORMALISED_SHAPE[1] - 1
    index = round((info["in_focus_v"] - lens.focus_range.min) / span * points)
    sharp = env.step(np.array(divmod(index, NORMALISED_SHAPE[1])))
    assert abs(lens.focus - info["in_focus_v"]) <= span / points
    assert sharp[2] and sharp[4]["detected"] and sharp[4]["in_focus"]


def test_sharpness_gate_ends_the_search_only_on_a_sharp_detection(senses):
    env = gym.make("dasha/Focus-v0", senses=senses, scenes=["cameraman"], sharp_brisque_max=15.0)
    _, info = env.reset(seed=1)
    lens = env.unwrapped.lens
    # 0.3 V off: the detector still finds the blurred target, eq. 12 rewards it, the search goes on
    _, reward, terminated, _, step = env.step(
        np.array(focus_v_to_action(info["in_focus_v"] + 0.3, lens.focus_range))
    )
    assert step["score"] > 0 and not step["in_focus"]
    assert step["brisque"] > sharp_brisque_limit(15.0, step["clipped_fraction"])
    assert reward == pytest.approx(-0.01 * step["brisque"]) and not terminated
    _, reward, terminated, _, step = env.step(
        np.array(focus_v_to_action(info["in_focus_v"], lens.focus_range))
    )
    assert terminated and step["detected"] and step["in_focus"] and -0.15 <= reward <= 0.0


def test_focus_env_can_observe_its_lens_position(senses):
    env = gym.make("dasha/Focus-v0", senses=senses, scenes=["cameraman"], observe_lens=True)
    obs, _ = env.reset(seed=1)
    assert env.observation_space.shape == (1281,) and obs.shape == (1281,)
    assert obs[-1] == 0.0  # factory 24 V: the bottom of the 24..70 V range
    obs, *_ = env.step(np.array(focus_v_to_action(47.0, env.unwrapped.lens.focus_range)))
    assert obs[-1] == pytest.approx(2300 / 4700)  # 23 V above the minimum, of 47 x 100 points
    assert np.array_equal(obs[:-1], senses.features(env.unwrapped._frame))


def test_focus_env_truncates_at_horizon(senses):
    env = gym.make("dasha/Focus-v0", senses=senses, scenes=["cameraman"])
    env.reset(seed=0)
    for _move in range(1, 11):
        _, reward, terminated, truncated, _ = env.step(np.array([40, 0]))  # 64 V: far out of focus
        assert reward == -1.0 and not terminated
    assert truncated and _move == 10


def test_same_seed_same_episode(senses):
    env = gym.make("dasha/Focus-v0", senses=senses)
    a, info_a = env.reset(seed=11)
    b, info_b = env.reset(seed=11)
    assert info_a["conditions"] == info_b["conditions"]
    assert np.array_equal(a, b)


def test_pettingzoo_api_and_seed_tests(senses):
    from pettingzoo.test import parallel_api_test, parallel_seed_test

    parallel_api_test(DashaParallelEnv(senses=senses, scenes=["cameraman"]), num_cycles=30)
    parallel_seed_test(lambda: DashaParallelEnv(senses=senses, scenes=["cameraman"]), num_cycles=10)


@pytest.mark.parametrize("observe_lens", [False, True])
def test_hierarchical_handover_and_penalty(senses, observe_lens):
    env = DashaParallelEnv(senses=senses, scenes=["cameraman"], observe_lens=observe_lens)
    obs, _ = env.reset(seed=4)
    assert env.agents == [EXPOSURE] and set(obs) == {EXPOSURE}
    table = env.episode.table_us
    # 1 s at any of the paper's illuminances saturates: unsuitable -> episode over, penalty
    _, rewards, terminated, _, infos = env.step({EXPOSURE: len(table) - 1})
    assert rewards == {EXPOSURE: -1.0} and terminated[EXPOSURE] and env.agents == []
    obs, _ = env.reset(seed=4)
    lux = env.episode.camera.world.conditions.illuminance_lux
    # a usable exposure: hand-over, +1 to A_H, the focus agent is next
    good = int(np.argmin(np.abs(np.log(table / (4_000_000.0 / lux)))))
    obs, rewards, terminated, _, infos = env.step({EXPOSURE: good})
    assert infos[EXPOSURE]["handed_over"], infos
    assert rewards[EXPOSURE] == 1.0 and env.agents == [FOCUS] and set(obs) == {FOCUS}
    assert obs[FOCUS].shape == (1280 + observe_lens,) == env.observation_space(FOCUS).shape
    v0 = infos[EXPOSURE]["in_focus_v"]
    _, rewards, terminated, _, infos = env.step(
        {FOCUS: np.array(focus_v_to_action(v0, env.episode.lens.focus_range))}
    )
    assert terminated[FOCUS] and infos[FOCUS]["detected"] and env.agents == []


def test_rllib_multi_agent_env_contract(senses):
    from dasha.envs.rllib import DashaMultiAgentEnv, policy_mapping_fn

    env = DashaMultiAgentEnv({"senses": senses, "scenes": ["cameraman"]})
    obs, _ = env.reset(seed=0)
    assert list(obs) == [EXPOSURE] and policy_mapping_fn(EXPOSURE) != policy_mapping_fn(FOCUS)
    obs, rewards, terminateds, truncateds, _ = env.step({EXPOSURE: len(env.episode.table_us) - 1})
    assert terminateds["__all__"] and not truncateds["__all__"] and set(rewards) == {EXPOSURE}


def test_replay_env_trains_on_a_recorded_grid(senses, tmp_path):
    """Record a simulated grid, then the registered Replay-v0 env serves it to the focus agent."""
    from dasha.hardware.recording import capture_grid
    from dasha.hardware.session import Rig
    from dasha.hardware.sim import sim_rig

    camera, lens = sim_rig(scene="cameraman", distance_cm=170.0, illuminance_lux=100.0, seed=0)
    v0 = camera.world.in_focus_v()
    focus = [24.0, 30.0, round(v0 - 1.0, 2), round(v0, 2), 45.0, 70.0]
    capture_grid(Rig(camera, lens), tmp_path / "rec", [20_000.0, 40_000.0, 80_000.0], focus)
    env = gym.make("dasha/Replay-v0", recording=tmp_path / "rec", senses=senses)
    obs, info = env.reset(seed=0)
    assert obs.shape == (1280,) and info["exposure_us"] in (20_000.0, 40_000.0, 80_000.0)
    lens_range = env.unwrapped.lens.focus_range
    assert (lens_range.min, lens_range.max) == (24.0, 70.0)
    _, reward, terminated, _, info = env.step(np.array(focus_v_to_action(v0, lens_range)))
    assert terminated and info["detected"] and reward > -1.0  # the recorded sharp frame
    env.reset(seed=1)
    _, reward, terminated, _, info = env.step(
        np.array(focus_v_to_action(29.0, lens_range))
    )  # snaps to 30 V
    assert not terminated and reward == -1.0 and info["focus_v"] == 30.0


@pytest.mark.parametrize("conditions", ["full", "mismatch"])
def test_library_condition_sets_pass_gymnasium_checker_and_repeat_by_seed(senses, conditions):
    from dasha.envs.config import EpisodeConfig

    config = EpisodeConfig(conditions=conditions, split="val", cache_size=0)
    env = gym.make("dasha/Focus-v0", config=config, senses=senses)
    check_env(env.unwrapped, skip_render_check=True)
    a, info_a = env.reset(seed=5)
    b, info_b = env.reset(seed=5)
    assert info_a["conditions"] == info_b["conditions"]
    assert info_a["conditions"]["scene"] in EpisodeConfig(conditions, "val").condition_set.scenes(
        "val"
    )
    assert ("variation" in info_a["conditions"]) == (conditions == "mismatch")
    assert np.array_equal(a, b)
