"""`dasha focus` and `dasha evaluate` through the real CLI with the shipped policies."""

from __future__ import annotations

import json

import cv2
from typer.testing import CliRunner

from dasha.agents.run import Policies, shipped_policy_dir
from dasha.cli import app
from dasha.cli.app import register_all

register_all()
runner = CliRunner()


def test_shipped_policies_load_and_match_the_default_encoder():
    policies = Policies.load()
    assert policies.exposure.spec.obs_dim == 1280 + 21 and policies.exposure.spec.action_sizes == (
        141,
    )
    assert policies.focus.spec.action_sizes == (47, 100)
    assert (
        shipped_policy_dir() / "curve.json"
    ).is_file()  # the learning curve of their training run


def test_focus_runs_one_hierarchical_episode(tmp_path):
    result = runner.invoke(app, ["focus", "--scene", "cameraman", "--distance-cm", "160", "--lux", "80",
                                 "--save-frames", str(tmp_path), "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    for key in (
        "exposure_moves",
        "lens_moves",
        "detected",
        "in_focus",
        "final_exposure_us",
        "final_focus_v",
        "sim_time_s",
        "wall_time_s",
    ):
        assert key in info, key
    assert info["exposure_moves"] == 1 and 0 <= info["lens_moves"] <= 10
    assert (
        info["sim_time_s"] > 0 and info["conditions"] == {}
    )  # the user's conditions, not random ones
    before = cv2.imread(str(tmp_path / "before.png"), cv2.IMREAD_UNCHANGED)
    after = cv2.imread(str(tmp_path / "after.png"), cv2.IMREAD_UNCHANGED)
    assert before.shape == after.shape == (404, 417)


def test_focus_with_missing_policy_dir_is_a_clear_error(tmp_path):
    result = runner.invoke(app, ["focus", "--policy", str(tmp_path), "--json"])
    assert result.exit_code == 2 and "dasha train" in result.output


def test_evaluate_reports_the_targets():
    result = runner.invoke(app, ["evaluate", "--episodes", "3", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["episodes"] == 3
    for key in (
        "exposure_suitable_rate",
        "focus_detected_in_focus_rate",
        "lens_moves_mean",
        "decision_ms_median",
    ):
        assert key in info
    assert 0.0 <= info["exposure_suitable_rate"] <= 1.0 and info["decision_ms_median"] > 0
