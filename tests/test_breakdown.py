"""Success per scene and per distance band: one function for `dasha evaluate` and `dasha bench`."""

from __future__ import annotations

import pytest

from dasha.bench.harness import Condition, Outcome
from dasha.bench.report import markdown_table, method_breakdown
from dasha.breakdown import DISTANCE_BANDS, EpisodeResult, breakdown, distance_band


@pytest.mark.parametrize(
    ("distance_cm", "band"),
    [(20, "<=50 cm"), (50, "<=50 cm"), (75, "50-100 cm"), (140, "100-200 cm"),
     (200, "100-200 cm"), (200.5, "200-500 cm"), (500, "200-500 cm"), (900, ">500 cm")],
)  # fmt: skip
def test_distance_bands_include_their_upper_edge(distance_cm, band):
    assert distance_band(distance_cm) == band


def _outcome(scene: str, distance_cm: float, success: bool, moves: int) -> Outcome:
    condition = Condition({"scene": scene, "distance_cm": distance_cm, "illuminance_lux": 50.0}, 1)
    return Outcome(
        method="m", condition=condition, success=success, detected=success, in_focus=success,
        lens_moves=moves, frames=moves + 2, sim_time_s=0.1, compute_ms_per_decision=1.0,
        final_focus_v=30.0, final_exposure_us=1000.0, suitable_exposure=True, peak=80.0,
    )  # fmt: skip


def test_bench_breakdown_of_synthetic_outcomes():
    outcomes = [
        _outcome("cow", 30.0, True, 2),
        _outcome("cow", 150.0, False, 10),
        _outcome("cow", 160.0, True, 1),
        _outcome("zebra", 700.0, True, 3),
    ]
    result = method_breakdown(outcomes)
    assert result["per_scene"] == {
        "cow": {"episodes": 3, "success_rate": pytest.approx(2 / 3), "lens_moves_mean": 13 / 3},
        "zebra": {"episodes": 1, "success_rate": 1.0, "lens_moves_mean": 3.0},
    }
    bands = result["per_distance_band"]
    assert list(bands) == list(DISTANCE_BANDS)
    assert bands["100-200 cm"] == {"episodes": 2, "success_rate": 0.5, "lens_moves_mean": 5.5}
    assert bands["50-100 cm"] == {"episodes": 0, "success_rate": None, "lens_moves_mean": None}
    assert bands["<=50 cm"]["episodes"] == bands[">500 cm"]["episodes"] == 1
    # the same function as evaluate's
    assert result == breakdown(
        EpisodeResult(o.condition.conditions, o.success, o.lens_moves) for o in outcomes
    )
    table = markdown_table({}, {}, {"episodes": 4, "seed": 1}, {}, {"dasha": result})
    assert "## Success (mean lens moves) by scene" in table
    assert "| dasha | 67% (4.3), n=3 | 100% (3.0), n=1 |" in table
    assert "| method | <=50 cm | 100-200 cm | >500 cm |" in table  # empty bands left out


def test_episodes_without_ground_truth_are_left_out():
    result = breakdown([EpisodeResult({}, True, 1)])
    assert result["per_scene"] == {} and all(
        b["episodes"] == 0 for b in result["per_distance_band"].values()
    )


def test_focus_frames_say_where_a_search_went():
    from dasha.agents.run import EpisodeReport, focus_frames, summarize

    def move(blur_px: float, score: float, brisque: float | None = None) -> dict:
        return {
            "agent": "focus",
            "blur_px": blur_px,
            "in_focus": blur_px <= 2.0,
            "score": score,
            "brisque": brisque,
        }

    searched = EpisodeReport(
        handed_over=True,
        lens_moves=3,
        stop="horizon",
        moves=[{"agent": "exposure"}, move(50.0, 0.0), move(1.0, 0.6, 31.0), move(8.0, 0.4, 40.0)],
    )
    unsuitable = EpisodeReport(handed_over=False, stop="unsuitable exposure")
    frames = focus_frames([searched])
    assert frames["frames"] == 3
    assert frames["blur_px_median"] == 8.0
    assert frames["in_focus_rate"] == 1 / 3
    assert frames["detector_fired_rate"] == 2 / 3
    assert frames["in_focus_and_detected"] == 1
    assert frames["brisque_median_in_focus_and_detected"] == 31.0
    summary = summarize([searched, unsuitable])
    assert summary["stop_reasons"] == {"horizon": 1, "unsuitable exposure": 1}
    assert focus_frames([])["blur_px_median"] is None
