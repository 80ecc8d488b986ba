"""``dasha dfd-bench``: how far from focus depth from defocus still finds it.

On each condition (``dasha.bench.harness.draw_conditions``, any condition set and split)
the lens takes two frames at known offsets from the in-focus position (the simulator's
ground truth places them; the estimate sees the frames and the lens positions only) and
``dasha.perception.defocus.estimate_focus`` is asked where focus is, over the region a
search would use (``envs.stop.SearchMemory``: the box of the best detection, else the
frame's centre). Pairs are either on one side of focus (the nearer frame ``n`` brackets
out, the farther ``n + SECOND_FRAME_BRACKETS``) or on both sides (``-n`` and ``+n``), on a
random side per condition.

The error is in brackets of the peak rule (``envs.stop.PEAK_BRACKET``, two depths of
focus): within one bracket, one informed jump lands in focus. The nearer frame's blur
says where the estimator stops working: a blur wide against the region (the frames are
404 px high) spreads the scene across the window's edge, and the model ``F = S H`` no
longer holds. That is the reach of one informed jump, and so what a search must cover by
other means (a coarse scan) before depth from defocus can take it home.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dasha.bench.harness import draw_conditions, open_condition_rig
from dasha.breakdown import DISTANCE_BANDS, distance_band
from dasha.envs.config import EpisodeConfig

NEAR_OFFSETS_BRACKETS = (0, 2, 5, 10, 15, 20, 30, 45)
SECOND_FRAME_BRACKETS = 10
LAYOUTS = ("one side", "both sides")


@dataclass(frozen=True)
class DfdSample:
    layout: str
    near_brackets: int  # the nearer frame's distance from focus
    near_blur_px: float  # its blur, simulator ground truth
    error_brackets: float  # estimate - truth
    confidence: float
    distance_cm: float
    scene: str


def sample_estimates(
    conditions: int, seed: int = 0, progress: bool = True, episode: EpisodeConfig | None = None
) -> list[DfdSample]:
    """Every layout and nearer offset on every condition (see the module docstring)."""
    from tqdm import tqdm

    from dasha.envs.actions import exposure_table_us, range_fraction, range_value
    from dasha.envs.focus import blur_px_per_range
    from dasha.envs.metering import meter
    from dasha.envs.stop import SearchMemory
    from dasha.perception.defocus import estimate_focus
    from dasha.perception.senses import Senses

    config = episode or EpisodeConfig()
    senses = Senses(detector=config.detector, backend=config.backend, cache_size=0)
    k = blur_px_per_range(config)
    rng = np.random.default_rng(seed)
    samples = []
    for condition in tqdm(
        draw_conditions(conditions, seed, config), disable=not progress, desc="conditions"
    ):
        camera, lens = open_condition_rig(condition)
        meter(camera, exposure_table_us(camera.exposure_range_us))
        truth = camera.grab().meta
        focus = range_fraction(float(truth["in_focus_v"]), lens.focus_range)
        side = 1.0 if rng.random() < 0.5 else -1.0
        for layout in LAYOUTS:
            for near in NEAR_OFFSETS_BRACKETS:
                far = -near if layout == "both sides" else near + SECOND_FRAME_BRACKETS
                memory, near_blur_px = SearchMemory(), 0.0
                for offset in (far, near):
                    wanted = focus + side * offset * config.peak_bracket
                    lens.set_focus(range_value(wanted, lens.focus_range))
                    frame = camera.grab()
                    # where the lens went, clamped to its range
                    position = range_fraction(lens.focus, lens.focus_range)
                    memory.add(position, frame, senses.target(frame))
                    near_blur_px = float(frame.meta["blur_px"])
                if abs(memory.positions[0] - memory.positions[1]) < 1e-9:
                    continue  # both clamped to the same end of the range
                estimate = estimate_focus(memory.ring_powers(), memory.positions, k)
                samples.append(
                    DfdSample(
                        layout=layout,
                        near_brackets=near,
                        near_blur_px=near_blur_px,
                        error_brackets=(estimate.position - focus) / config.peak_bracket,
                        confidence=estimate.confidence,
                        distance_cm=float(condition.conditions["distance_cm"]),
                        scene=str(condition.conditions["scene"]),
                    )
                )
    return samples


def _rates(chosen: list[DfdSample]) -> dict[str, Any]:
    errors = np.abs([s.error_brackets for s in chosen])
    if not len(errors):
        return {"pairs": 0}
    return {
        "pairs": len(errors),
        "within_1_bracket": float(np.mean(errors <= 1.0)),
        "within_5_brackets": float(np.mean(errors <= 5.0)),
        "median_error_brackets": float(np.median(errors)),
        "near_blur_px": float(np.median([s.near_blur_px for s in chosen])),
    }


def summarize_estimates(samples: list[DfdSample]) -> dict[str, Any]:
    """Per layout and nearer offset, and per distance band over pairs whose nearer frame is
    at most 10 brackets out (where one jump should land)."""
    by_offset = {
        layout: {
            str(near): _rates(
                [s for s in samples if s.layout == layout and s.near_brackets == near]
            )
            for near in NEAR_OFFSETS_BRACKETS
        }
        for layout in LAYOUTS
    }
    close = [s for s in samples if s.near_brackets <= 10]
    by_band = {
        band: _rates([s for s in close if distance_band(s.distance_cm) == band])
        for band in DISTANCE_BANDS
    }
    worst = sorted(
        {s.scene for s in close},
        key=lambda scene: -np.mean([abs(s.error_brackets) > 1 for s in close if s.scene == scene]),
    )
    by_scene = {scene: _rates([s for s in close if s.scene == scene]) for scene in worst}
    return {
        "second_frame_brackets": SECOND_FRAME_BRACKETS,
        "by_offset": by_offset,
        "by_distance_band": by_band,
        "by_scene": by_scene,
    }


def run_dfd_bench(
    conditions: int = 60, seed: int = 0, progress: bool = True, episode: EpisodeConfig | None = None
) -> dict[str, Any]:
    episode = episode or EpisodeConfig()
    samples = sample_estimates(conditions, seed, progress, episode)
    return {
        "conditions": conditions,
        "condition_set": episode.conditions,
        "split": episode.split,
        "seed": seed,
        "bracket": episode.peak_bracket,
        **summarize_estimates(samples),
    }
