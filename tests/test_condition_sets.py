"""Condition sets: one registry for training, `dasha evaluate` and `dasha bench`; splits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pytest
from typer.testing import CliRunner

from dasha.bench.harness import draw_conditions, open_condition_rig
from dasha.cli import app
from dasha.cli.app import register_all
from dasha.envs.conditions import (
    CONDITION_SETS,
    ConditionGrid,
    ConditionSampler,
    Sampler,
    condition_set,
    register_condition_set,
    resolve_split,
)
from dasha.envs.config import EpisodeConfig
from dasha.errors import ConfigError

register_all()
runner = CliRunner()

SPLIT_SCENES = {"train": ("motorcycle", "cameraman"), "val": ("motorcycle_right",),
                "test": ("grace_hopper",)}  # fmt: skip


@dataclass(frozen=True)
class SplitSet:
    """A set with splits, as the lead's sets will be: built-in scenes spread over splits."""

    name: str = "test-splits"
    splits: tuple[str, ...] = ("train", "val", "test")

    def scenes(self, split: str | None) -> tuple[str, ...]:
        if split is None:
            return tuple(s for scenes in SPLIT_SCENES.values() for s in scenes)
        return SPLIT_SCENES[split]

    def sampler(
        self, split: str | None, scenes: Sequence[str] | None, grid: ConditionGrid | None
    ) -> Sampler:
        return ConditionSampler(scenes=tuple(scenes or self.scenes(split)))


@pytest.fixture
def split_set():
    register_condition_set(SplitSet())
    yield "test-splits"
    del CONDITION_SETS["test-splits"]


def test_paper_is_registered_and_draws_as_the_sampler_always_did():
    paper = condition_set("paper")
    assert paper.splits == () and set(paper.scenes(None)) == {
        "motorcycle", "motorcycle_right", "cameraman", "grace_hopper"}  # fmt: skip
    a, b = np.random.default_rng(3), np.random.default_rng(3)
    sampler = EpisodeConfig().sampler()
    assert sampler is not None and [sampler.sample(a) for _ in range(5)] == [
        ConditionSampler().sample(b) for _ in range(5)
    ]
    grid = ConditionGrid(distance_step_cm=10.0, illuminance_levels=12)
    drawn = paper.sampler(None, None, grid).sample(np.random.default_rng(0))
    assert drawn["distance_cm"] % 10 == 0 and set(drawn) == {
        "scene", "distance_cm", "illuminance_lux"}  # fmt: skip
    assert EpisodeConfig(randomize=False).sampler() is None


def test_unknown_sets_and_misplaced_splits_are_refused(split_set):
    with pytest.raises(ConfigError, match=r"unknown condition set 'nope'.*paper.*test-splits"):
        condition_set("nope")
    with pytest.raises(ConfigError, match="no splits"):
        resolve_split("paper", "test", "test")
    assert resolve_split("paper", None, "test") is None
    assert resolve_split(split_set, None, "test") == "test"
    assert resolve_split(split_set, "val", "test") == "val"
    with pytest.raises(ConfigError, match="choose one of train, val, test"):
        resolve_split(split_set, "dev", "test")
    with pytest.raises(ConfigError, match="already registered"):
        register_condition_set(SplitSet())


def test_scenes_restrict_a_set_and_splits_choose_scenes(split_set):
    rng = np.random.default_rng(0)
    test = EpisodeConfig(conditions=split_set, split="test").sampler()
    assert test is not None and {test.sample(rng)["scene"] for _ in range(10)} == {"grace_hopper"}
    own = EpisodeConfig(conditions=split_set, split="train", scenes=("cameraman",)).sampler()
    assert own is not None and {own.sample(rng)["scene"] for _ in range(10)} == {"cameraman"}


def test_training_never_sees_the_test_split(split_set):
    from dasha.agents.train import TRAINING_EPISODE, TrainConfig

    def train_on(**options):
        return TrainConfig(out="x", episode=TRAINING_EPISODE.with_options(**options))

    with pytest.raises(ConfigError, match="test split is refused"):
        train_on(conditions=split_set, split="test")
    assert train_on(conditions=split_set).episode.split == "train"  # the default, never all
    assert train_on(conditions=split_set, split="val").episode.split == "val"
    with pytest.raises(ConfigError, match="grace_hopper belong to the test split"):
        train_on(conditions=split_set, scenes=("grace_hopper",))


def test_training_never_sees_a_test_photo_of_the_library_whatever_the_set():
    from dasha.agents.train import TRAINING_EPISODE, TrainConfig
    from dasha.sim.library import catalogue

    test_scene = catalogue().select("test")[0].id
    for conditions in ("paper", "full"):
        with pytest.raises(ConfigError, match="test split"):
            TrainConfig(
                out="x",
                episode=TRAINING_EPISODE.with_options(conditions=conditions, scenes=(test_scene,)),
            )


def _said(result) -> str:
    return " ".join(result.output.split())  # the error printer wraps long lines


def test_cli_refuses_test_split_for_training_and_splits_of_paper(split_set, tmp_path):
    out = str(tmp_path / "run")
    result = runner.invoke(
        app, ["train", "--conditions", split_set, "--split", "test", "--out", out]
    )
    assert result.exit_code == 2 and "nothing from test may reach training" in _said(result)
    for command in (["train", "--out", out], ["evaluate"], ["bench", "--out", out]):
        result = runner.invoke(app, [*command, "--split", "train"])
        assert result.exit_code == 2 and "'paper' has no splits" in _said(result), command
        result = runner.invoke(app, [*command, "--conditions", "nope"])
        assert result.exit_code == 2 and "choose one of paper" in _said(result), command
    assert not (tmp_path / "run").exists()


def test_bench_conditions_come_from_the_episode_sampler():
    drawn = draw_conditions(6, seed=3)
    sampler, rng = EpisodeConfig().sampler(), np.random.default_rng(3)
    assert sampler is not None
    assert [c.conditions for c in drawn] == [sampler.sample(rng) for _ in range(6)]
    assert drawn[0].as_dict() == {**drawn[0].conditions, "seed": 3 * 100_003}
    camera, _lens = open_condition_rig(drawn[0])
    frame = camera.grab()
    for key, value in drawn[0].conditions.items():
        assert frame.meta[key] == value
    only = draw_conditions(4, seed=3, episode=EpisodeConfig(scenes=("cameraman",)))
    assert {c.scene for c in only} == {"cameraman"}
