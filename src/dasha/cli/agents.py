"""``dasha train``, ``dasha evaluate``, ``dasha focus``: the two agents, trained and at work."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from dasha.cli import rig_options as ro
from dasha.cli.app import app, handle_errors, print_json
from dasha.cli.options import (
    BackendName,
    BlurPxPerRange,
    ConditionsName,
    DetectorName,
    ExposureMoves,
    FitBlurScale,
    Handover,
    SceneNames,
    SplitName,
    TrustCheckpoint,
    episode_conditions,
)

Encoder = Annotated[
    str, typer.Option(help="Encoder E(I): efficientnet-lite0 (default, offline) or resnet152.")
]
PolicyDir = Annotated[
    Path | None,
    typer.Option(
        "--policy",
        help="Trained policies (a `dasha train` or `dasha pretrain` --out directory) or a shipped pair: pretrained (the default; trained on the scene library, any distance) or ppo (the paper's recipe, RLlib PPO on the four photographs at 140-200 cm).",
    ),
]
Scene = Annotated[
    str, typer.Option(help="Simulator scene: a built-in name or an image with a sidecar JSON.")
]


@app.command("train")
@handle_errors
def train_command(
    out: Annotated[
        Path,
        typer.Option(
            help="Run directory (checkpoints, TensorBoard, policies); an existing run resumes."
        ),
    ],
    agents: Annotated[
        str, typer.Option(help="hierarchical (both, one run), exposure or focus.")
    ] = "hierarchical",
    encoder: Encoder = "efficientnet-lite0",
    backend: BackendName = "auto",
    steps: Annotated[int, typer.Option(help="Environment steps to sample in total.")] = 28_000,
    seed: Annotated[
        int, typer.Option(help="Seed of RLlib, the envs and the network initialisation.")
    ] = 0,
    scenes: SceneNames = None,
    conditions: ConditionsName = "paper",
    split: SplitName = None,
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address", help="Ray cluster address (default: a local Ray on this machine)."
        ),
    ] = None,
    env_runners: Annotated[
        int, typer.Option("--env-runners", help="Remote sampling processes (0: sample in-process).")
    ] = 0,
    env_steps_per_s: Annotated[
        float | None,
        typer.Option(
            "--env-steps-per-s",
            help="One env runner's env steps/s, which sizes its fragments and RLlib's sample timeout (with --env-runners). [default: measured before the run, a few seconds]",
            show_default=False,
        ),
    ] = None,
    batch_steps: Annotated[int, typer.Option(help="Environment steps per PPO update.")] = 512,
    paper: Annotated[
        bool,
        typer.Option(
            "--paper",
            help="The paper's A_L: it sees E(I) only, coarse and fine as two categoricals, any detection ends the search, constant lr, KL target 0.01 (the options below still override).",
        ),
    ] = False,
    sharp_brisque_max: Annotated[
        float | None,
        typer.Option(
            "--sharp-brisque-max",
            help="A_L's search ends only when the detected box's BRISQUE is at most this, plus an allowance for its clipped highlights (measured by `dasha gate-bench`), i.e. the target is sharp. [default: 18; --paper: any detection]",
            show_default=False,
        ),
    ] = None,
    focus_head: Annotated[
        str | None,
        typer.Option(
            help="A_L's action head: jump-step (a jump on the voltage grid or a step from the lens position), grid-gaussian (jump only) or categorical (coarse and fine apart, the paper). [default: jump-step; --paper: categorical]",
            show_default=False,
        ),
    ] = None,
    observe_lens: Annotated[
        bool | None,
        typer.Option(
            "--observe-lens/--no-observe-lens",
            help="A_L also observes where it set the lens, not only E(I). [default: on; --paper: off]",
            show_default=False,
        ),
    ] = None,
    stop_rule: Annotated[
        str | None,
        typer.Option(
            "--stop-rule",
            help="When A_L's search ends: detection (a detection, with the --sharp-brisque-max gate; the paper's without it), peak (the sharpest detected frame is bracketed by less sharp ones: no threshold on the scene) or defocus (the peak rule, or a detected frame where depth from defocus puts focus). [default: detection]",
            show_default=False,
        ),
    ] = None,
    observe_previous: Annotated[
        bool | None,
        typer.Option(
            "--observe-previous/--no-observe-previous",
            help="A_L also observes the previous frame: its E(I), lens position and how much sharper this frame is. [default: off]",
            show_default=False,
        ),
    ] = None,
    observe_defocus: Annotated[
        bool | None,
        typer.Option(
            "--observe-defocus/--no-observe-defocus",
            help="A_L also observes where depth from defocus puts focus, from the frames of its search and their lens positions. [default: off]",
            show_default=False,
        ),
    ] = None,
    focus_action: Annotated[
        str | None,
        typer.Option(
            "--focus-action",
            help="A_L's action units: volts (the Varioptic's 0.01 V grid) or normalised (a grid over the lens's own range: any lens). [default: volts]",
            show_default=False,
        ),
    ] = None,
    lr_final: Annotated[
        float | None,
        typer.Option(
            help="Decay A_L's learning rate (3e-4) linearly to this over --steps (A_H keeps the paper's constant lr). [default: 3e-5; --paper: constant]",
            show_default=False,
        ),
    ] = None,
    kl_target: Annotated[
        float | None,
        typer.Option(
            help="A_L's PPO KL target (A_H keeps the paper's 0.01). [default: 0.05; --paper: 0.01]",
            show_default=False,
        ),
    ] = None,
    trust_checkpoint: TrustCheckpoint = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the run summary as JSON.")
    ] = False,
) -> None:
    """Train DASHA's agents with RLlib PPO (progress bar; TensorBoard logs in OUT/tensorboard)."""
    from dataclasses import replace

    from dasha.agents.train import TRAINING_EPISODE, TrainConfig, recipe, train
    from dasha.errors import ConfigError

    if env_steps_per_s is not None and env_runners == 0:
        raise ConfigError(
            "--env-steps-per-s sizes the fragments of remote env runners: give --env-runners "
            "N (>= 1) too, or leave it out"
        )
    episode = replace(
        TRAINING_EPISODE,
        encoder=encoder,
        backend=backend,
        **episode_conditions(conditions, split, "train", scenes),
    )
    config = TrainConfig(
        out=out,
        agents=agents,
        steps=steps,
        seed=seed,
        ray_address=ray_address,
        num_env_runners=env_runners,
        env_steps_per_s=env_steps_per_s,
        batch_steps=batch_steps,
        trust_checkpoint=trust_checkpoint,
        **recipe(
            paper,
            episode=episode,
            sharp_brisque_max=sharp_brisque_max,
            focus_head=focus_head,
            observe_lens=observe_lens,
            stop_rule=stop_rule,
            observe_previous=observe_previous,
            observe_defocus=observe_defocus,
            focus_action=focus_action,
            lr_final=lr_final,
            kl_target=kl_target,
        ),
    )
    summary = train(config, progress=not json_out)
    if json_out:
        print_json(summary)
    else:
        typer.echo(
            f"trained {summary['env_steps']} steps in {summary['wall_s']:.0f} s "
            f"({summary['env_steps_per_s']} env steps/s); policies in {out / 'policies'}"
        )


@app.command("pretrain")
@handle_errors
def pretrain_command(
    out: Annotated[
        Path, typer.Option(help="Run directory: OUT/policies/focus.pt and OUT/pretrain.json.")
    ],
    encoder: Encoder = "efficientnet-lite0",
    backend: BackendName = "auto",
    scenes: SceneNames = None,
    conditions: ConditionsName = "full",
    split: SplitName = None,
    episodes: Annotated[int, typer.Option(help="A_L episodes collected per round.")] = 800,
    rounds: Annotated[
        int,
        typer.Option(
            help="Collection rounds: the first follows the expert, later ones the network (DAgger)."
        ),
    ] = 3,
    epochs: Annotated[int, typer.Option(help="Passes over the collected states per round.")] = 40,
    exposure_conditions: Annotated[
        int,
        typer.Option(help="Conditions A_H learns from, each tried at every exposure of the table."),
    ] = 600,
    exposure_restarts: Annotated[
        int,
        typer.Option(
            min=0,
            help="Per exposure condition, also this many frames at unsuitable exposures as A_H's starting states, so that A_H can move again from where a failed move left it (dasha evaluate --exposure-moves).",
        ),
    ] = 0,
    seed: Annotated[int, typer.Option(help="Seed of the episodes and the network.")] = 0,
    observe_defocus: Annotated[
        bool,
        typer.Option(
            "--observe-defocus/--no-observe-defocus",
            help="A_L also observes where depth from defocus puts focus (from the frames of its search).",
        ),
    ] = True,
    exposure_observation: Annotated[
        str,
        typer.Option(
            help="What A_H observes: bracket (the histogram and the peak its frame predicts at every exposure of the table) or paper (E(I) and the histogram).",
        ),
    ] = "bracket",
    probe_quantile: Annotated[
        list[float] | None,
        typer.Option(
            "--probe-quantile",
            help="Repeatable: the expert's probe frames come first, at these quantiles (0..1) of where focus lies over the training conditions. [default: 0.25 and 0.75; --no-probes: none]",
            show_default=False,
        ),
    ] = None,
    no_probes: Annotated[
        bool,
        typer.Option(
            "--no-probes", help="No probe frames: the expert goes to the bracket at once."
        ),
    ] = False,
    stop_rule: Annotated[
        str,
        typer.Option(
            help="When A_L's search ends: peak (the sharpest detected frame is bracketed by less sharp ones) or defocus (the peak rule, or a detected frame where depth from defocus puts focus: the expert then goes to focus first)."
        ),
    ] = "defocus",
    focus_head: Annotated[
        str,
        typer.Option(
            help="A_L's action head: jump-step (a jump on the lens grid or a step from the lens position) or jump-step-defocus (also a move around depth from defocus's estimate; needs --observe-defocus)."
        ),
    ] = "jump-step-defocus",
    expert: Annotated[
        str,
        typer.Option(
            help="Where the imitated expert puts focus: defocus (depth from defocus's estimate over the search's frames, which A_L observes too) or truth (the simulator's in-focus position, which A_L cannot see)."
        ),
    ] = "defocus",
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Virtual pre-training of A_L: imitate, from images only, a search that goes where depth
    from defocus puts focus (or, with --expert truth, where the simulator's ground truth
    does; it labels the data, never the policy's input); defocus stop rule, two-frame
    observation with depth from defocus, lens-agnostic (normalised) actions. A_H learns,
    from its first frame, which exposures give a suitable histogram."""
    from dataclasses import replace

    from dasha.agents.pretrain import PRETRAIN_EPISODE, PretrainConfig, pretrain

    episode = replace(
        PRETRAIN_EPISODE,
        encoder=encoder,
        backend=backend,
        observe_defocus=observe_defocus,
        exposure_observation=exposure_observation,
        stop_rule=stop_rule,
        **episode_conditions(conditions, split, "train", scenes),
    )
    config = PretrainConfig(
        out=out,
        episode=episode,
        episodes=episodes,
        rounds=rounds,
        epochs=epochs,
        exposure_conditions=exposure_conditions,
        exposure_restarts=exposure_restarts,
        seed=seed,
        focus_head=focus_head,
        expert=expert,
        **_probe_quantiles(probe_quantile, no_probes),
    )
    summary = pretrain(config, progress=not json_out)
    if json_out:
        print_json(summary)
    else:
        typer.echo(f"pre-trained A_L in {summary['wall_s']:.0f} s: {summary['policy']}")


def _probe_quantiles(quantiles: list[float] | None, none: bool) -> dict[str, Any]:
    from dasha.errors import ConfigError

    if none and quantiles:
        raise ConfigError("--no-probes and --probe-quantile contradict each other: give one")
    if none:
        return {"probe_quantiles": ()}
    return {"probe_quantiles": tuple(quantiles)} if quantiles else {}


@app.command("train-bench")
@handle_errors
def train_bench_command(
    backend: Annotated[
        list[str] | None,
        typer.Option(
            "--backend",
            help="Backends to compare (repeatable; the first is the reference of the ratios): "
            "reference, onnxruntime, onnxruntime-int8, auto. Default: reference, onnxruntime "
            "(when installed) and auto, the default (float encoder, int8 YOLO).",
            show_default=False,
        ),
    ] = None,
    env_runners: Annotated[
        list[int] | None,
        typer.Option(
            "--env-runners",
            help="RLlib env-runner counts to measure (repeatable; 0: sample in-process). Default: 0.",
            show_default=False,
        ),
    ] = None,
    steps: Annotated[
        int, typer.Option(help="Timed environment steps per backend and runner count.")
    ] = 384,
    batch_steps: Annotated[int, typer.Option(help="Environment steps per PPO iteration.")] = 128,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Env steps/s of a short hierarchical PPO run with the perception cache off, under each
    backend in the same run (iterations interleaved, the first one not timed)."""
    from dasha.agents.train_bench import bench_training
    from dasha.errors import ConfigError
    from dasha.perception.bench import available_backends
    from dasha.perception.onnx_runtime import AUTO, BACKENDS, ONNXRUNTIME_INT8

    for name in backend or ():
        if name not in BACKENDS:
            raise ConfigError(f"--backend {name!r}: choose among {', '.join(BACKENDS)}")
    default = [*(b for b in available_backends() if b != ONNXRUNTIME_INT8), AUTO]
    for runners in env_runners or ():
        if not 0 <= runners <= 16:
            raise ConfigError(f"--env-runners {runners}: give 0..16")
    result = bench_training(backend or default, env_runners or [0], steps, batch_steps)
    if json_out:
        print_json(result)
        return
    for key, value in result.items():
        typer.echo(f"{key:24s} {value}")


@app.command("focus")
@handle_errors
def focus_command(
    camera: ro.CameraName = "sim",
    lens: Annotated[
        str | None,
        typer.Option("--lens", help="Lens backend (default: the camera's own for sim/replay/uvc)."),
    ] = None,
    port: ro.Port = None,
    camera_serial: ro.CameraSerial = None,
    dll_path: ro.DllPath = None,
    device: ro.Device = None,
    recording: ro.RecordingPath = None,
    settings: ro.Settings = None,
    scene: Scene = "motorcycle",
    distance_cm: Annotated[
        float, typer.Option("--distance-cm", help="Simulator: target distance (cm).")
    ] = 170.0,
    lux: Annotated[float, typer.Option("--lux", help="Simulator: illuminance (lux).")] = 100.0,
    target: Annotated[
        str | None,
        typer.Option(
            help="Class to focus on (default: the scene's target; `person` on real cameras)."
        ),
    ] = None,
    policy: PolicyDir = None,
    encoder: Encoder = "efficientnet-lite0",
    backend: BackendName = "auto",
    seed: Annotated[int, typer.Option(help="Simulator noise seed.")] = 0,
    blur_px_per_range: BlurPxPerRange = None,
    fit_blur_scale: FitBlurScale = False,
    exposure_moves: ExposureMoves = 1,
    handover: Handover = "always",
    detector: DetectorName = "yolo",
    save_frames: Annotated[
        Path | None,
        typer.Option("--save-frames", help="Write before.png and after.png into this directory."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Expose and focus the camera once with the trained agents (exposure, hand-over, lens moves)."""
    from dasha.agents.run import Policies, run_episode
    from dasha.envs.config import EpisodeConfig
    from dasha.envs.hierarchical import HierarchicalEpisode
    from dasha.hardware.session import Rig
    from dasha.io import write_image

    flags: dict[str, Any] = dict(
        port=port, camera_serial=camera_serial, dll_path=dll_path, device=device,
        recording=recording, settings=settings,
    )  # fmt: skip
    camera_options, lens_options = ro.rig_options(camera, lens or camera, **flags)
    policies = Policies.load(policy, encoder)
    if camera == "sim":
        from dasha.hardware.session import attach_lens
        from dasha.hardware.sim import sim_rig

        sim = {"scene": scene, "distance_cm": distance_cm, "illuminance_lux": lux, "seed": seed}
        sim_camera, sim_lens = sim_rig(**{**camera_options, **sim})
        rig = (
            Rig(sim_camera, sim_lens)
            if (lens or "sim") == "sim"
            else attach_lens(sim_camera, lens or "sim", lens_options)
        )
    else:
        rig = ro.open_rig_from_cli(camera, lens or camera, **flags)
    config = policies.episode(
        EpisodeConfig(
            encoder=encoder,
            backend=backend,
            target=target or (None if camera == "sim" else "person"),
            blur_px_per_range=blur_px_per_range,
            fit_blur_scale=fit_blur_scale,
            exposure_moves=exposure_moves,
            handover=handover,
            detector=detector,
            cache_size=0,  # one episode: nothing to reuse
            randomize=False,  # the user's conditions
        )
    )
    with rig:
        episode = HierarchicalEpisode(config, rig=lambda: (rig.camera, rig.lens))
        policies.check(episode)
        report, before, after = run_episode(episode, policies, seed=seed)
    if save_frames is not None:
        write_image(save_frames / "before.png", before.image)
        write_image(save_frames / "after.png", after.image)
    result = report.to_dict()
    result.pop("decision_ms")
    if json_out:
        print_json(result)
        return
    status = (
        "focused"
        if report.detected
        else "Failed: " + ("no suitable exposure" if not report.handed_over else "target not found")
    )
    if report.handed_over and not report.exposure_suitable:
        status += " (from an unsuitable exposure)"
    truth = (
        ""
        if report.in_focus is None
        else f", in focus by ground truth: {report.in_focus} (blur {report.blur_px:.1f} px)"
    )
    typer.echo(
        f"{status}: exposure {report.final_exposure_us:g} us after {report.exposure_moves} move(s), "
        f"lens {report.final_focus:.2f} {report.focus_unit} after {report.lens_moves} move(s){truth}"
    )


@app.command("evaluate")
@handle_errors
def evaluate_command(
    episodes: Annotated[int, typer.Option(help="Episodes to run.")] = 100,
    seed: Annotated[
        int, typer.Option(help="First evaluation seed (training uses other seeds).")
    ] = 1_000_000,
    policy: PolicyDir = None,
    encoder: Encoder = "efficientnet-lite0",
    backend: BackendName = "auto",
    scenes: SceneNames = None,
    conditions: ConditionsName = "paper",
    split: SplitName = None,
    blur_px_per_range: BlurPxPerRange = None,
    fit_blur_scale: FitBlurScale = False,
    exposure_moves: ExposureMoves = 1,
    handover: Handover = "always",
    detector: DetectorName = "yolo",
    episodes_out: Annotated[
        Path | None,
        typer.Option(
            "--episodes-out",
            help="Write one JSON record per episode (conditions, every move, why it stopped) to this .jsonl file.",
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Run the agents on random simulator conditions of a condition set (paper: 140..200 cm,
    13..300 lx) and report the targets."""
    from tqdm import tqdm

    from dasha.agents.run import (
        Policies,
        decision_latency_ms,
        exposure_solvable,
        run_episode,
        summarize,
    )
    from dasha.envs.config import EpisodeConfig
    from dasha.envs.hierarchical import HierarchicalEpisode

    policies = Policies.load(policy, encoder)
    # No perception cache: every evaluation frame is perceived with its own noise.
    config = policies.episode(
        EpisodeConfig(
            encoder=encoder,
            backend=backend,
            cache_size=0,
            blur_px_per_range=blur_px_per_range,
            fit_blur_scale=fit_blur_scale,
            exposure_moves=exposure_moves,
            handover=handover,
            detector=detector,
            **episode_conditions(conditions, split, "test", scenes),
        )
    )
    episode = HierarchicalEpisode(config)
    policies.check(episode)
    reports = []
    for i in tqdm(range(episodes), disable=json_out, desc="episodes"):
        report = run_episode(episode, policies, seed=seed + i)[0]
        report.exposure_solvable = exposure_solvable(episode, report)
        reports.append(report)
    if episodes_out is not None:
        from dasha.io import write_jsonl

        write_jsonl(
            episodes_out, ({"seed": seed + i, **r.to_dict()} for i, r in enumerate(reports))
        )
    summary = {
        **summarize(reports),
        **decision_latency_ms(episode, policies),
        "seed": seed,
        "encoder": encoder,
        "backend": backend,
        "detector": config.detector,
        "conditions": config.conditions,
        "split": config.split,
    }
    if json_out:
        print_json(summary)
        return
    for key, value in summary.items():
        if isinstance(value, dict):  # per_scene, per_distance_band
            typer.echo(key)
            for name, stats in value.items():
                if stats["episodes"]:
                    typer.echo(
                        f"  {name:30s} success {stats['success_rate']:.3f}, "
                        f"lens moves {stats['lens_moves_mean']:.2f}, {stats['episodes']} episodes"
                    )
        else:
            typer.echo(
                f"{key:32s} {value:.3f}" if isinstance(value, float) else f"{key:32s} {value}"
            )
