"""``dasha train`` never loses more than a few minutes: Ctrl-C saves a checkpoint and the
policies, and a resume with other options is refused before anything starts."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from typer.testing import CliRunner

from dasha.cli import app, register_all

register_all()
runner = CliRunner()


def test_resuming_with_other_options_names_them(tmp_path) -> None:
    from dasha.agents.resume import RUN_OPTIONS_FILE, check_resume
    from dasha.agents.train import TrainConfig

    config = TrainConfig(out=tmp_path / "run", steps=64)
    (tmp_path / "run").mkdir()
    check_resume(config)  # a new run: records its options
    assert (tmp_path / "run" / RUN_OPTIONS_FILE).is_file()
    check_resume(replace(config, steps=128))  # more steps: a resume
    result = runner.invoke(
        app, ["train", "--out", str(tmp_path / "run"), "--focus-head", "categorical"]
    )
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "focus-head: 'jump-step' then, 'categorical' now" in text


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_and_the_policies(tmp_path, monkeypatch) -> None:
    from dasha.agents import train as training

    build = training.build_algorithm

    def interrupted_after_one_update(config, plan=None):
        algo = build(config, plan)
        real, calls = algo.train, []

        def train_once():
            calls.append(1)
            if len(calls) > 1:
                raise KeyboardInterrupt
            return real()

        algo.train = train_once
        return algo

    monkeypatch.setattr(training, "build_algorithm", interrupted_after_one_update)
    config = training.TrainConfig(
        out=tmp_path / "run", steps=10_000, batch_steps=64, minibatch_size=32, epochs=1,
        checkpoint_every=1000, checkpoint_every_s=1e9,  # only the interrupt saves
        episode=replace(training.TRAINING_EPISODE, scenes=("cameraman",)),
    )  # fmt: skip
    with pytest.raises(KeyboardInterrupt):
        training.train(config, progress=False)
    run = tmp_path / "run"
    assert (run / "checkpoint").is_dir()
    assert (run / "policies" / "exposure.pt").is_file() and (
        run / "policies" / "focus.pt"
    ).is_file()
    assert json.loads((run / "curve.json").read_text())[-1]["env_steps"] >= 64
    from dasha.trust import verify

    verify(run / "checkpoint", "checkpoint")  # signed: the resume will accept it
