"""``dasha bench``: DASHA against the autofocus and auto-exposure people use today."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dasha.cli.app import app, handle_errors, print_json
from dasha.cli.options import (
    ConditionSetName,
    ConditionsName,
    DetectorName,
    Handover,
    SceneNames,
    SplitName,
    TrustCheckpoint,
    episode_conditions,
)


@app.command("bench")
@handle_errors
def bench_command(
    out: Annotated[
        Path, typer.Option(help="Directory for results.json, results.md and the figures.")
    ],
    quick: Annotated[
        bool,
        typer.Option("--quick", help="A few minutes: 12 episodes, short RL-baseline training."),
    ] = False,
    episodes: Annotated[
        int | None, typer.Option(help="Episodes per method (default 100, or 12 with --quick).")
    ] = None,
    seed: Annotated[
        int, typer.Option(help="Seed of the conditions (the same for every method).")
    ] = 7,
    scenes: SceneNames = None,
    conditions: ConditionsName = "paper",
    split: SplitName = None,
    policy: Annotated[
        Path | None,
        typer.Option(
            "--policy",
            help="DASHA policies to bench: a run directory, or a shipped pair, pretrained (the default) or ppo.",
        ),
    ] = None,
    rl_steps: Annotated[
        int | None,
        typer.Option(
            "--rl-steps",
            help="Training steps of each RL baseline (default 40000; 6000 with --quick).",
        ),
    ] = None,
    trust_checkpoint: TrustCheckpoint = False,
    baseline: Annotated[
        list[str] | None,
        typer.Option(
            "--baseline",
            help="A method to compare DASHA with, repeatable: sweep, hill-climb, coarse-fine, golden, dfd (depth from defocus with the detector's stop, scripted), phase-shift-rl, tenengrad-rl [default: all]. RL baselines train only when chosen.",
            show_default=False,
        ),
    ] = None,
    handover: Handover = "always",
    detector: DetectorName = "yolo",
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the per-method summary as JSON.")
    ] = False,
) -> None:
    """Run DASHA, classical AF (sweep, hill climb, coarse-fine, golden section), the two RL
    baselines and the AE baselines on the same conditions; write Table I and Figs. 3-7."""
    from dasha.bench.run import run_bench

    chosen = episode_conditions(conditions, split, "test", scenes)
    payload = run_bench(
        out,
        quick=quick,
        episodes=episodes,
        seed=seed,
        scenes=chosen["scenes"],
        policy=policy,
        rl_steps=rl_steps,
        progress=not json_out,
        conditions=chosen["conditions"],
        split=chosen["split"],
        trust_checkpoint=trust_checkpoint,
        baselines=baseline,
        handover=handover,
        detector=detector,
    )
    if json_out:
        print_json(
            {
                "methods": payload["methods"],
                "auto_exposure": payload["auto_exposure"],
                "targets": payload["targets"],
            }
        )
    else:
        typer.echo((out / "results.md").read_text())


@app.command("gate-bench")
@handle_errors
def gate_bench_command(
    conditions: Annotated[
        int, typer.Option(help="Random scenes/distances/illuminances to sample (24 boxes each).")
    ] = 140,
    seed: Annotated[int, typer.Option(help="Seed of the conditions and lens offsets.")] = 0,
    sharp_brisque_max: Annotated[
        float,
        typer.Option("--sharp-brisque-max", help="The gate's BRISQUE limit for an unclipped box."),
    ] = 18.0,
    blur_limit_px: Annotated[
        float,
        typer.Option(
            "--blur-limit-px",
            help="The scene-independent stop rule's limit on the box's estimated blur (px).",
        ),
    ] = 2.5,
    conditions_set: ConditionSetName = "paper",
    split: SplitName = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """How often A_L's stop rules end the search in focus, by blur (simulator ground truth):
    the BRISQUE gate (with and without its clipped-highlight allowance) and the box's blur
    estimate on sampled boxes, and the threshold-free peak rule on one sweep through focus
    per condition."""
    from dasha.bench.gate import run_gate_bench
    from dasha.envs.config import EpisodeConfig

    episode = EpisodeConfig(**episode_conditions(conditions_set, split, "test", None))
    result = run_gate_bench(
        conditions, seed, sharp_brisque_max, not json_out, episode, blur_limit_px
    )
    if json_out:
        print_json(result)
        return
    typer.echo(
        f"{result['boxes']} boxes from {conditions} conditions (seed {seed}), "
        f"{result['detected_rate']:.1%} detected; share the gate passes:"
    )
    for band, rate in result["gate"].items():
        flat = result["flat_gate"][band]
        typer.echo(f"  {band:<26} with allowance {_percent(rate):>6}   flat {_percent(flat):>6}")
    typer.echo("stop rules (target: >= 98 % within 2 px, < 5 % beyond 3 px):")
    for rule, rates in result["stop_rules"].items():
        counts = ("sweeps", "solvable", "frames_mean", "meets_targets")
        bands = "  ".join(
            f"{band} {_percent(rate)}" for band, rate in rates.items() if band not in counts
        )
        if "solvable" in rates:  # the peak rule is scored per sweep through focus
            bands += f"  ({rates['solvable']} solvable of {rates['sweeps']} sweeps)"
        typer.echo(f"  {rule:<14} {bands}  meets targets: {rates['meets_targets']}")


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.1%}"


@app.command("dfd-bench")
@handle_errors
def dfd_bench_command(
    conditions: Annotated[
        int, typer.Option(help="Random scenes/distances/illuminances (16 frame pairs each).")
    ] = 60,
    seed: Annotated[int, typer.Option(help="Seed of the conditions and sides.")] = 0,
    conditions_set: ConditionSetName = "full",
    split: SplitName = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """How far from focus depth from defocus still finds it: the estimate's error (in
    brackets of the peak rule) from two frames, by how far the nearer one is from focus,
    with both frames on one side of focus or one on each (simulator ground truth)."""
    from dasha.bench.dfd import run_dfd_bench
    from dasha.envs.config import EpisodeConfig

    episode = EpisodeConfig(**episode_conditions(conditions_set, split, "test", None))
    result = run_dfd_bench(conditions, seed, not json_out, episode)
    if json_out:
        print_json(result)
        return
    typer.echo(
        f"depth from defocus on {conditions} conditions of {result['condition_set']}"
        f" ({result['split'] or 'no split'}), seed {seed}; one bracket = {result['bracket']:g}"
        " of the lens range"
    )
    typer.echo(
        "nearer frame   blur px   one side: within 1 / median   both sides: within 1 / median"
    )
    one, both = result["by_offset"]["one side"], result["by_offset"]["both sides"]
    for near in one:
        typer.echo(
            f"  {near:>3} brackets  {one[near].get('near_blur_px', float('nan')):7.1f}"
            f"   {_percent(one[near].get('within_1_bracket'))} / "
            f"{one[near].get('median_error_brackets', float('nan')):.2f}"
            f"            {_percent(both[near].get('within_1_bracket'))} / "
            f"{both[near].get('median_error_brackets', float('nan')):.2f}"
        )
    typer.echo("nearer frame <= 10 brackets out, by distance band:")
    for band, rates in result["by_distance_band"].items():
        typer.echo(
            f"  {band:<14} {rates['pairs']:>4} pairs  within 1: {_percent(rates.get('within_1_bracket'))}"
        )
