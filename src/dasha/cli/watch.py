"""``dasha watch``: continuous autofocus over a scripted, time-varying simulated scene."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dasha.cli.app import app, handle_errors, print_json


@app.command("watch")
@handle_errors
def watch_command(
    scenario: Annotated[
        str,
        typer.Option(
            help="static, depth-step, depth-ramp, light-step, light-ramp, scene-cut, "
            "target-leaves or video-pedestrians "
            "(dasha.sim.scenarios)."
        ),
    ] = "depth-step",
    algorithm: Annotated[
        str,
        typer.Option(
            "--algorithm", help="AfAlgorithm: dasha, coarse-fine, hill-climb, golden, sweep."
        ),
    ] = "coarse-fine",
    target: Annotated[
        str | None, typer.Option(help="AfTarget: a detector class, or face (default: none).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the sensor noise.")] = 0,
    tunable: Annotated[
        list[str] | None,
        typer.Option(
            help="A continuous-mode tunable, NAME=VALUE (repeatable; RetriggerTunables), e.g. "
            "local_rescan=false or dasha_warm_retrigger=false for the full re-scan / reset."
        ),
    ] = None,
    policy: Annotated[
        Path | None,
        typer.Option(
            "--policy",
            help="The policies --algorithm dasha runs: a run directory, or a shipped pair, pretrained (the default) or ppo.",
        ),
    ] = None,
    timeline: Annotated[
        Path | None,
        typer.Option(help="Write every frame's metadata and every cycle to this JSON file."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Run continuous AF over a scenario; per event: frames to re-focus and lens moves; for
    the static stretches: lens moves per 100 frames."""
    from dasha.baselines.af_base import make_tunables
    from dasha.camera.continuous import RetriggerTunables
    from dasha.camera.watch import watch
    from dasha.cli.rig_options import parse_value
    from dasha.errors import ConfigError
    from dasha.io import write_json

    overrides = {}
    for item in tunable or []:
        name, eq, value = item.partition("=")
        if not (eq and name):
            raise ConfigError(f"--tunable {item!r}: write NAME=VALUE, e.g. local_rescan=false")
        overrides[name] = parse_value(value)
    tunables = make_tunables(RetriggerTunables, overrides)
    if policy is not None and algorithm != "dasha":
        raise ConfigError(f"--policy is for --algorithm dasha; {algorithm!r} runs no policy")
    report, cam = watch(
        scenario, algorithm, target=target, seed=seed, tunables=tunables, policy=policy
    )
    if timeline is not None:
        write_json(timeline, {"report": report, "frames": cam.timeline, "cycles": cam.cycles})
    if json_out:
        print_json(report)
        return
    for event in report["events"]:
        typer.echo(
            f"{event['event']}: re-focused in {event['refocus_frames']} frames, "
            f"{event['lens_moves']} lens moves, in focus after: {event['in_focus_after']}"
        )
    typer.echo(
        f"static stretches: {report['static_lens_moves_per_100_frames']:.2f} lens moves "
        f"per 100 frames over {report['static_frames']} frames"
    )
