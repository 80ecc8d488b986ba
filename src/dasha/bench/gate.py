"""``dasha gate-bench``: how well A_L's sharpness gate tells a sharp target from a blurred one.

On each of the bench's conditions (``dasha.bench.harness.draw_conditions``) the target's
box is scored as the gate sees it (BRISQUE and clipped fraction, ``dasha.perception.senses``)
at the lowest, middle and highest exposure of the table that gives a suitable histogram (the range A_H may hand
over) and at lens offsets from the in-focus voltage. The report is the share of boxes that
``dasha.envs.rewards.target_found`` passes per band of blur (the simulator's ground truth),
with the clipped-highlight allowance and without it (the flat gate).

Beside that BRISQUE gate it measures the scene-independent stop rule
(``dasha.envs.rewards.blur_estimate_found``: the box's re-blur estimate of its own defocus,
``dasha.perception.focus.reblur_blur_px``, at most a limit in pixels) on the same boxes,
and the threshold-free peak and defocus rules (``envs.stop``) on one sweep through focus
per condition (``stop_sweeps``: where each rule ended each sweep), and scores them against the stop targets: pass >= 98 % of boxes within 2 px of focus and
< 5 % beyond 3 px (``STOP_TARGETS``). Conditions come from any condition set and split
(``--conditions full --split test`` is the generalisation measure).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from dasha.bench.harness import draw_conditions, open_condition_rig
from dasha.envs.config import EpisodeConfig
from dasha.envs.rewards import (
    BLUR_ESTIMATE_LIMIT_PX,
    blur_estimate_found,
    is_suitable_peak,
    target_found,
)
from dasha.envs.stop import MEMORY_RULES
from dasha.hardware.base import Camera
from dasha.perception.histogram import histogram

OFFSETS_V = (0.0, 0.03, 0.06, 0.09, 0.12, 0.15, 0.2, 0.3)  # ~20 px of blur per volt
BLUR_BANDS_PX = ((0.0, 1.25), (1.25, 2.0), (2.0, 2.5), (2.5, 3.5), (3.5, float("inf")))
STOP_BANDS_PX = ((0.0, 2.0), (2.0, 3.0), (3.0, float("inf")))
STOP_TARGETS = {"pass_in_focus_min": 0.98, "pass_beyond_3_px_max": 0.05}
BRIGHT_PEAK = 115.0  # histogram peaks above this: A_H's brightest hand-overs (~128)


@dataclass(frozen=True)
class BoxSample:
    peak: float
    blur_px: float
    detected: bool
    brisque: float | None
    clipped_fraction: float
    reblur_px: float = float("inf")  # the box's own blur estimate (inf: not detected)


def sample_boxes(
    conditions: int,
    seed: int = 0,
    progress: bool = True,
    episode: EpisodeConfig | None = None,
) -> list[BoxSample]:
    """Score the target's box on the bench's conditions (see the module docstring)."""
    from tqdm import tqdm

    from dasha.envs.actions import exposure_table_us
    from dasha.perception.focus import reblur_blur_px
    from dasha.perception.senses import Senses

    senses = Senses(detector="yolo")
    rng = np.random.default_rng(seed)  # the side of each lens offset
    samples = []
    for condition in tqdm(
        draw_conditions(conditions, seed, episode), disable=not progress, desc="conditions"
    ):
        camera, lens = open_condition_rig(condition)
        in_focus_v = float(camera.grab().meta["in_focus_v"])  # ground truth, as the envs' info
        lens.set_focus(in_focus_v)  # the suitable exposures are those of the sharp frame
        table_us = exposure_table_us(camera.exposure_range_us)
        suitable = [e for e in table_us if _suitable_at(camera, float(e))]
        if not suitable:
            continue
        for exposure_us in (suitable[0], suitable[len(suitable) // 2], suitable[-1]):
            camera.set_exposure_us(float(exposure_us))
            for offset_v in OFFSETS_V:
                sign = 1.0 if rng.random() < 0.5 else -1.0
                lens.set_focus(lens.focus_range.clamp(in_focus_v + sign * offset_v))
                frame = camera.grab()
                seen = senses.target(frame)
                samples.append(
                    BoxSample(
                        peak=histogram(frame.as_uint8()).peak,
                        blur_px=float(frame.meta["blur_px"]),
                        detected=seen.detected,
                        brisque=seen.brisque,
                        clipped_fraction=seen.clipped_fraction,
                        reblur_px=(
                            reblur_blur_px(frame.as_uint8(), seen.box)
                            if seen.box is not None
                            else float("inf")
                        ),
                    )
                )
    return samples


def _suitable_at(camera: Camera, exposure_us: float) -> bool:
    camera.set_exposure_us(exposure_us)
    return is_suitable_peak(histogram(camera.grab().as_uint8()).peak)


def pass_rates(
    samples: list[BoxSample], sharp_brisque_max: float, allow_clipped: bool = True
) -> dict[str, float | None]:
    """Share of boxes the gate passes per band of blur [lo, hi), and of the sharpest band's
    boxes in bright frames."""

    def passes(s: BoxSample) -> bool:
        clipped = s.clipped_fraction if allow_clipped else 0.0
        return target_found(s.detected, s.brisque, sharp_brisque_max, clipped)

    def rate(chosen: list[BoxSample]) -> float | None:
        return float(np.mean([passes(s) for s in chosen])) if chosen else None

    rates = {
        f"blur_{lo:g}_{hi:g}_px": rate([s for s in samples if lo <= s.blur_px < hi])
        for lo, hi in BLUR_BANDS_PX
    }
    sharp_bright = [s for s in samples if s.blur_px <= BLUR_BANDS_PX[0][1] and s.peak > BRIGHT_PEAK]
    rates[f"blur_0_{BLUR_BANDS_PX[0][1]:g}_px_bright"] = rate(sharp_bright)
    return rates


def stop_rule_rates(
    samples: list[BoxSample], passes: Callable[[BoxSample], bool]
) -> dict[str, Any]:
    """Share of boxes a stop rule passes per stop band (0-2, 2-3, beyond 3 px of ground-truth
    blur), and whether it meets ``STOP_TARGETS``."""
    rates: dict[str, Any] = {}
    for lo, hi in STOP_BANDS_PX:
        chosen = [s for s in samples if lo <= s.blur_px < hi]
        rates[f"blur_{lo:g}_{hi:g}_px"] = (
            float(np.mean([passes(s) for s in chosen])) if chosen else None
        )
    in_focus, beyond = rates["blur_0_2_px"], rates["blur_3_inf_px"]
    rates["meets_targets"] = (
        in_focus is not None
        and beyond is not None
        and in_focus >= STOP_TARGETS["pass_in_focus_min"]
        and beyond < STOP_TARGETS["pass_beyond_3_px_max"]
    )
    return rates


@dataclass(frozen=True)
class PeakSweep:
    """One sweep through focus under a stop rule: where it stopped and whether any frame
    of the sweep was in focus with the target detected (a solvable sweep)."""

    solvable: bool
    stopped: bool
    blur_px: float  # ground truth of the frame the rule ended on (inf: it never stopped)
    frames: int


def stop_sweeps(
    conditions: int,
    seed: int = 0,
    progress: bool = True,
    episode: EpisodeConfig | None = None,
    span_brackets: int = 30,
    rule: str = "peak",
) -> list[PeakSweep]:
    """A stop rule of the frames of one search (``envs.stop.MEMORY_RULES``) on sweeps through
    focus, one per condition; the same sweeps, start for start, for every rule.

    Each sweep starts between 5 and ``span_brackets`` brackets before the in-focus position
    (ground truth places the start, so that the sweep passes focus in a few dozen frames;
    the rule itself sees images only), on a random side, and steps one bracket at a time
    towards focus and beyond (0.9 bracket: a step must fit the bracket after rounding to the
    lens grid), as ``envs.focus.FocusSearch`` with that rule, until the rule ends the search
    or the lens range does. A solvable sweep has a frame in focus with the target detected
    on its path to two brackets beyond focus, whether or not the rule let it get there.
    """
    from tqdm import tqdm

    from dasha.envs.actions import (
        exposure_table_us,
        focus_fraction_to_action,
        range_fraction,
        range_value,
    )
    from dasha.envs.focus import FocusSearch
    from dasha.envs.metering import meter
    from dasha.perception.senses import Senses

    base = episode or EpisodeConfig()
    config = base.with_options(stop_rule=rule, sharp_brisque_max=None, focus_action="normalised")
    senses = Senses(detector=config.detector, backend=config.backend, cache_size=0)
    rng = np.random.default_rng(seed)
    sweeps = []
    for condition in tqdm(
        draw_conditions(conditions, seed, base), disable=not progress, desc=f"{rule} sweeps"
    ):
        camera, lens = open_condition_rig(condition)
        focus = range_fraction(float(camera.grab().meta["in_focus_v"]), lens.focus_range)
        side = 1.0 if rng.random() < 0.5 else -1.0
        position = focus - side * rng.uniform(5, span_brackets) * config.peak_bracket
        step = side * 0.9 * config.peak_bracket  # inside the bracket on the lens's grid too
        search = FocusSearch(camera, lens, senses, config)
        frame = meter(camera, exposure_table_us(camera.exposure_range_us))
        search.start(frame)
        solvable, frames, move = False, 0, None
        while 0.0 <= position <= 1.0 and frames < 4 * span_brackets:
            move = search.step(np.asarray(focus_fraction_to_action(position)))
            frames += move.lens_moves
            solvable = solvable or (move.seen.detected and bool(move.frame.meta["in_focus"]))
            if move.over:
                break
            position += step
        over = move is not None and move.over
        ended_on = move.frame if over and move else None
        # Whether the sweep is solvable must not depend on where the rule ended it: a rule
        # that stops early, out of focus, would otherwise make its own miss unsolvable. So
        # the sweep goes on, past the rule's end, to two brackets beyond focus.
        while (
            not solvable
            and 0.0 <= position <= 1.0
            and side * (position - focus) <= 2 * config.peak_bracket
        ):
            position += step
            lens.set_focus(range_value(position, lens.focus_range))
            frame = camera.grab()
            solvable = senses.target(frame).detected and bool(frame.meta["in_focus"])
        sweeps.append(
            PeakSweep(
                solvable=solvable,
                stopped=over,
                blur_px=float(ended_on.meta["blur_px"]) if ended_on else float("inf"),
                frames=frames,
            )
        )
    return sweeps


def peak_rates(sweeps: list[PeakSweep]) -> dict[str, Any]:
    """Where a rule ended the solvable sweeps, per stop band, against ``STOP_TARGETS``."""
    solvable = [s for s in sweeps if s.solvable]
    rates: dict[str, Any] = {"sweeps": len(sweeps), "solvable": len(solvable)}
    for lo, hi in STOP_BANDS_PX:
        chosen = [s for s in solvable if s.stopped and lo <= s.blur_px < hi]
        rates[f"stopped_blur_{lo:g}_{hi:g}_px"] = len(chosen) / len(solvable) if solvable else None
    rates["never_stopped"] = (
        sum(not s.stopped for s in solvable) / len(solvable) if solvable else None
    )
    rates["frames_mean"] = float(np.mean([s.frames for s in solvable])) if solvable else None
    in_focus, beyond = rates["stopped_blur_0_2_px"], rates["stopped_blur_3_inf_px"]
    rates["meets_targets"] = (
        in_focus is not None
        and in_focus >= STOP_TARGETS["pass_in_focus_min"]
        and beyond < STOP_TARGETS["pass_beyond_3_px_max"]
    )
    return rates


def run_gate_bench(
    conditions: int = 140,
    seed: int = 0,
    sharp_brisque_max: float = 18.0,
    progress: bool = True,
    episode: EpisodeConfig | None = None,
    blur_limit_px: float = BLUR_ESTIMATE_LIMIT_PX,
) -> dict[str, Any]:
    samples = sample_boxes(conditions, seed, progress, episode)
    sweeps = {
        rule: stop_sweeps(conditions, seed, progress, episode, rule=rule) for rule in MEMORY_RULES
    }
    episode = episode or EpisodeConfig()
    return {
        "conditions": conditions,
        "condition_set": episode.conditions,
        "split": episode.split,
        "seed": seed,
        "boxes": len(samples),
        "detected_rate": float(np.mean([s.detected for s in samples])) if samples else 0.0,
        "sharp_brisque_max": sharp_brisque_max,
        "blur_limit_px": blur_limit_px,
        "gate": pass_rates(samples, sharp_brisque_max),
        "flat_gate": pass_rates(samples, sharp_brisque_max, allow_clipped=False),
        "stop_targets": STOP_TARGETS,
        "stop_rules": {
            "brisque_gate": stop_rule_rates(
                samples,
                lambda s: target_found(
                    s.detected, s.brisque, sharp_brisque_max, s.clipped_fraction
                ),
            ),
            "blur_estimate": stop_rule_rates(
                samples, lambda s: blur_estimate_found(s.detected, s.reblur_px, blur_limit_px)
            ),
            # per sweep, not per box: where the rule ended each solvable sweep
            **{rule: peak_rates(of_rule) for rule, of_rule in sweeps.items()},
        },
    }
