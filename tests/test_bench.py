"""`dasha bench` end to end on a tiny run: every method, the table, the figures."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from dasha.bench.harness import draw_conditions
from dasha.bench.report import markdown_table, targets_check
from dasha.cli import app
from dasha.cli.app import register_all

register_all()
runner = CliRunner()


def test_conditions_are_reproducible_and_in_range():
    a, b = draw_conditions(20, seed=3), draw_conditions(20, seed=3)
    assert a == b and a != draw_conditions(20, seed=4)
    assert all(
        140 <= c.conditions["distance_cm"] <= 200 and 13 <= c.conditions["illuminance_lux"] <= 300
        for c in a
    )
    assert {c.scene for c in a} == {"motorcycle", "motorcycle_right", "cameraman", "grace_hopper"}


def _summary(success: float, moves: float, frames: float) -> dict:
    return {
        "success_rate": success,
        "detected_rate": success,
        "in_focus_rate": success,
        "lens_moves_mean": moves,
        "lens_moves_p95": moves,
        "frames_mean": frames,
        "sim_time_s_mean": 1.0,
        "compute_ms_per_decision": 1.0,
        "suitable_exposure_rate": 1.0,
        "episodes": 10,
    }


def test_targets_are_read_off_the_table_not_tuned():
    good = {
        "dasha": _summary(0.99, 1.2, 4.0),
        "sweep": _summary(0.99, 461, 462.0),
        "golden": _summary(0.95, 42, 43.0),
    }
    verdict = targets_check(good)
    assert verdict["best_classical_baseline"] == "sweep"  # the most successful baseline
    assert verdict["frames_ratio_vs_best_baseline"] == pytest.approx(462 / 4)
    assert verdict["lens_moves_mean<=1.5"] and verdict["success_rate>=0.98"]
    assert verdict[">=5x_fewer_frames_at_equal_or_better_success"]
    bad = {"dasha": _summary(0.5, 3.0, 6.0), "golden": _summary(0.95, 42, 43.0)}
    verdict = targets_check(bad)
    assert not verdict["success_rate>=0.98"] and not verdict["lens_moves_mean<=1.5"]
    assert not verdict[">=5x_fewer_frames_at_equal_or_better_success"]  # golden succeeds more often
    table = markdown_table(bad, verdict, {"episodes": 10, "seed": 1}, {})
    assert "| dasha | 50.0% |" in table and "| golden | 95.0% |" in table


@pytest.mark.slow
def test_bench_quick_run_writes_table_and_figures(tmp_path):
    out = tmp_path / "bench"
    result = CliRunner().invoke(
        app,
        ["bench", "--quick", "--episodes", "2", "--rl-steps", "512", "--out", str(out), "--json"],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    methods = summary["methods"]
    assert set(methods) == {
        "dasha",
        "sweep",
        "hill-climb",
        "coarse-fine",
        "golden",
        "dfd",
        "phase-shift-rl",
        "tenengrad-rl",
    }
    assert methods["sweep"]["frames_mean"] > 400  # a full sweep over 24..70 V at 0.1 V
    assert methods["golden"]["frames_mean"] < methods["sweep"]["frames_mean"]
    assert set(summary["auto_exposure"]) == {"dasha (A_H)", "agc", "once", "bracket"}
    payload = json.loads((out / "results.json").read_text())
    assert len(payload["conditions"]) == 2 and len(payload["episodes"]["dasha"]) == 2
    assert payload["meta"]["conditions"] == "paper" and payload["meta"]["split"] is None
    # the same per-scene and per-band breakdown as dasha evaluate, for every method
    assert set(payload["breakdown"]) == set(methods)
    for result in payload["breakdown"].values():
        assert sum(s["episodes"] for s in result["per_scene"].values()) == 2
        assert result["per_distance_band"]["100-200 cm"]["episodes"] == 2
    solvable = payload["solvable"]
    assert solvable["episodes"] == 2 and set(solvable["success_on_solved_by_any"]) == set(methods)
    assert solvable["solved_by_any_method"] + solvable["solved_by_no_method"] == 2
    report = (out / "results.md").read_text()
    assert "| dasha |" in report and "## Success (mean lens moves) by distance band" in report
    assert "were solved by some method" in report
    for fig in (
        "fig3_learning_curves",
        "fig4_detection_map",
        "fig5_histograms",
        "fig6_before_after",
        "fig7_vs_illuminance",
    ):
        assert (out / f"{fig}.png").stat().st_size > 1000, fig


def test_gate_bench_reports_pass_rates_by_blur():
    result = runner.invoke(app, ["gate-bench", "--conditions", "2", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["boxes"] == 2 * 3 * 8  # conditions x (lowest, middle, highest) exposure x offsets
    gate, flat = info["gate"], info["flat_gate"]
    assert gate.keys() == flat.keys() and "blur_0_1.25_px_bright" in gate
    for band, rate in gate.items():
        if rate is not None:  # the allowance only ever adds to the flat limit
            assert 0.0 <= flat[band] <= rate <= 1.0, band
    assert gate["blur_0_1.25_px"] > gate["blur_3.5_inf_px"]
    rules = info["stop_rules"]
    assert rules.keys() == {"brisque_gate", "blur_estimate", "peak", "defocus"}
    for name in ("brisque_gate", "blur_estimate"):
        assert set(rules[name]) == {"blur_0_2_px", "blur_2_3_px", "blur_3_inf_px", "meets_targets"}
    for name in ("peak", "defocus"):
        sweeps = rules[name]
        assert sweeps["sweeps"] == info["conditions"] and 0 <= sweeps["solvable"] <= 2
        if sweeps["solvable"]:  # every solvable sweep ended in one band or never stopped
            shares = [
                v for k, v in sweeps.items() if k.startswith("stopped_") or k == "never_stopped"
            ]
            assert sum(shares) == pytest.approx(1.0)


def test_dfd_bench_reports_the_estimate_by_distance_from_focus():
    result = runner.invoke(
        app,
        ["dfd-bench", "--conditions", "2", "--condition-set", "full", "--split", "val", "--json"],
    )
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    one, both = info["by_offset"]["one side"], info["by_offset"]["both sides"]
    # two frames both at focus are no pair; every other offset is measured on each condition
    assert both["0"]["pairs"] == 0 and one["0"]["pairs"] == 2
    for near in ("2", "5", "10"):
        for rates in (one[near], both[near]):
            assert rates["pairs"] == 2
            assert 0.0 <= rates["within_1_bracket"] <= rates["within_5_brackets"] <= 1.0
    # the nearer frame's blur is the simulator's, linear in the lens offset
    assert one["10"]["near_blur_px"] == pytest.approx(2 * one["5"]["near_blur_px"], rel=0.05)
    assert sum(r["pairs"] for r in info["by_distance_band"].values()) == 2 * (4 + 3)


def test_dfd_summary_scores_errors_in_brackets():
    from dasha.bench.dfd import DfdSample, summarize_estimates

    def sample(near: int, error: float, distance_cm: float) -> DfdSample:
        return DfdSample("one side", near, 4.0 * near, error, 0.5, distance_cm, "s")

    summary = summarize_estimates(
        [sample(2, 0.5, 40.0), sample(2, -3.0, 40.0), sample(30, 20.0, 300.0)]
    )
    near = summary["by_offset"]["one side"]["2"]
    assert near["pairs"] == 2 and near["within_1_bracket"] == 0.5
    assert near["within_5_brackets"] == 1.0 and near["median_error_brackets"] == 1.75
    assert summary["by_offset"]["one side"]["30"]["within_5_brackets"] == 0.0
    # only pairs whose nearer frame is at most 10 brackets out count by band
    assert summary["by_distance_band"]["<=50 cm"]["pairs"] == 2
    assert summary["by_distance_band"]["200-500 cm"]["pairs"] == 0


def test_stop_rule_rates_score_the_targets():
    from dasha.bench.gate import BoxSample, stop_rule_rates

    boxes = [BoxSample(80.0, blur, True, 10.0, 0.0, blur) for blur in (0.5, 1.5, 2.5, 4.0, 9.0)]
    exact = stop_rule_rates(boxes, lambda s: s.reblur_px <= 2.0)
    assert exact["blur_0_2_px"] == 1.0 and exact["blur_2_3_px"] == 0.0
    assert exact["blur_3_inf_px"] == 0.0 and exact["meets_targets"]
    loose = stop_rule_rates(boxes, lambda s: s.reblur_px <= 5.0)
    assert loose["blur_3_inf_px"] == 0.5 and not loose["meets_targets"]
    strict = stop_rule_rates(boxes, lambda s: s.reblur_px <= 1.0)
    assert strict["blur_0_2_px"] == 0.5 and not strict["meets_targets"]


def test_gate_bench_rejects_no_conditions():
    result = runner.invoke(app, ["gate-bench", "--conditions", "0"])
    assert result.exit_code == 2 and "--conditions" in result.output


def test_outcome_says_when_the_lens_ended_on_the_background() -> None:
    from dasha.bench.harness import Condition, open_condition_rig
    from dasha.bench.run import _outcome

    scene = {"scene": "cameraman", "distance_cm": 60.0, "illuminance_lux": 100.0}
    condition = Condition({**scene, "background_cm": 300.0}, seed=1)
    camera, lens = open_condition_rig(condition)
    verdicts = {}
    for where, focus_v in {
        "target": camera.world.in_focus_v(),
        "background": camera.world.optics.in_focus_v(300.0),
    }.items():
        lens.set_focus(focus_v)
        frame = camera.grab()
        outcome = _outcome("x", condition, camera, lens, frame, True, 0.0, 1)
        verdicts[where] = (outcome.in_focus, outcome.on_background)
    assert verdicts == {"target": (True, False), "background": (False, True)}


def test_solvable_rates_count_what_some_method_and_the_sweep_solved() -> None:
    from dataclasses import replace

    from dasha.bench.harness import Condition, Outcome
    from dasha.bench.report import solvable_rates

    base = Outcome("x", Condition({}, 0), False, False, False, 1, 1, 0.0, 0.0, 0.0, 0.0, True, 80.0)
    won = replace(base, success=True)
    results = {
        "dasha": [won, base, base, won],
        "sweep": [won, won, base, base],
        "golden": [base, base, base, won],
    }
    rates = solvable_rates(results)
    assert (rates["solved_by_any_method"], rates["solved_by_no_method"]) == (3, 1)
    assert rates["solved_by_sweep"] == 2
    assert rates["success_on_solved_by_sweep"]["dasha"] == 0.5  # episodes 0 and 1
    assert rates["success_on_solved_by_any"]["dasha"] == 2 / 3
    assert rates["success_on_solved_by_any"]["sweep"] == 2 / 3


def test_bench_runs_only_the_chosen_baselines(tmp_path) -> None:
    out = tmp_path / "bench"
    result = CliRunner().invoke(
        app,
        [
            "bench",
            "--quick",
            "--episodes",
            "1",
            "--baseline",
            "golden",
            "--baseline",
            "dfd",
            "--out",
            str(out),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(summary["methods"]) == {"dasha", "golden", "dfd"}
    # the scripted search is judged like every method, and counts as classical (no learning)
    assert summary["methods"]["dfd"]["episodes"] == 1
    assert summary["targets"]["best_classical_baseline"] in {"golden", "dfd"}
    assert not (out / "rl_baselines").exists()  # no RL baseline was trained
    assert json.loads((out / "results.json").read_text())["solvable"]["solved_by_sweep"] is None


def test_the_auto_exposure_table_judges_a_h_on_its_own_frame():
    """A_H's row is the frame after its one move (hand-over and its peak), not the episode's
    last frame, which A_L's lens moves change too (a sharp frame has another histogram)."""
    from dasha.bench.run import bench_auto_exposure

    keep = {"dasha_exposure": [(True, 80.0), (False, 200.0), (True, 120.0), (True, 100.0)]}
    table = bench_auto_exposure([], keep)
    assert table["dasha (A_H)"]["suitable_rate"] == 0.75
    assert table["dasha (A_H)"]["peak_mean"] == 125.0
