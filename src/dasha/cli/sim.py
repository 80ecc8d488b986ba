"""``dasha sim ...``: look at the simulated camera (snapshots, contact sheets, speed)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from dasha.cli.app import app, handle_errors, print_json
from dasha.cli.options import parse_values

sim_app = typer.Typer(
    help="The simulated camera + liquid lens (no hardware needed).", no_args_is_help=True
)
app.add_typer(sim_app, name="sim")

Scene = Annotated[
    str,
    typer.Option(
        help="Built-in scene name (motorcycle, motorcycle_right, cameraman, grace_hopper), a library scene id (`dasha scenes` lists them) or an image path with a sidecar JSON."
    ),
]
DistanceCm = Annotated[float, typer.Option("--distance-cm", help="Target distance (cm).")]
Lux = Annotated[float, typer.Option("--lux", help="Scene illuminance (lux).")]
BackgroundCm = Annotated[
    float, typer.Option("--background-cm", help="Background plane distance (cm).")
]
TargetSizeCm = Annotated[
    float | None,
    typer.Option(
        "--target-size-cm",
        help="The target's physical height (cm): its image then follows the thin lens "
        "(f / (d - f)); default: the scene's own framing at any distance.",
    ),
]
Seed = Annotated[int, typer.Option(help="Noise seed: the same seed gives the same frame.")]
BitDepth = Annotated[
    int,
    typer.Option("--bit-depth", help="ADC bits: 8 (Mono8) or 12 (Mono12, saved as 16-bit PNG)."),
]
GainDb = Annotated[
    float | None,
    typer.Option(
        "--gain-db", help="Analog gain (dB), 1.02..24.08; default 1.02 (GainRaw 36, as the paper)."
    ),
]


def _open(
    scene: str,
    distance_cm: float,
    lux: float,
    background_cm: float,
    seed: int,
    bit_depth: int,
    target_size_cm: float | None = None,
) -> Any:
    from dasha.hardware.sim import sim_rig

    return sim_rig(
        scene=scene,
        distance_cm=distance_cm,
        illuminance_lux=lux,
        background_cm=background_cm,
        target_size_cm=target_size_cm,
        seed=seed,
        bit_depth=bit_depth,
    )


def frame_summary(frame: Any) -> dict[str, Any]:
    """Levels of a frame plus the simulator's ground truth."""
    image = frame.image
    return {
        "mean_level": float(image.mean()),
        "saturated_fraction": float((image >= frame.max_level).mean()),
        "exposure_us": frame.exposure_us,
        "gain_db": frame.gain_db,
        **{
            k: frame.meta[k]
            for k in (
                "focus_v",
                "in_focus_v",
                "blur_px",
                "background_blur_px",
                "in_focus",
                "scene",
                "target_class",
                "target_box",
                "distance_cm",
                "illuminance_lux",
                "sim_time_s",
            )
        },
    }


@sim_app.command()
@handle_errors
def snapshot(
    out: Annotated[Path, typer.Option(help="Where to write the frame (PNG/TIFF).")],
    scene: Scene = "motorcycle",
    distance_cm: DistanceCm = 170.0,
    lux: Lux = 100.0,
    exposure_us: Annotated[
        float, typer.Option("--exposure-us", help="Exposure time (us), 24..1000000.")
    ] = 80_000.0,
    focus_v: Annotated[
        float | None,
        typer.Option("--focus-v", help="Lens voltage 24..70 V; default: the in-focus voltage."),
    ] = None,
    background_cm: BackgroundCm = 500.0,
    target_size_cm: TargetSizeCm = None,
    gain_db: GainDb = None,
    seed: Seed = 0,
    bit_depth: BitDepth = 8,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print one JSON object with levels and ground truth.")
    ] = False,
) -> None:
    """Grab one simulated frame and write it to a file."""
    from dasha.io import write_image

    camera, lens = _open(scene, distance_cm, lux, background_cm, seed, bit_depth, target_size_cm)
    if gain_db is not None:
        camera.set_gain_db(gain_db)
    camera.set_exposure_us(exposure_us)
    lens.set_focus(camera.world.in_focus_v() if focus_v is None else focus_v)
    frame = camera.grab()
    write_image(out, frame.image)
    summary = {**frame_summary(frame), "out": str(out)}
    if json_out:
        print_json(summary)
    else:
        typer.echo(
            f"wrote {out}: mean level {summary['mean_level']:.1f}, target blur {summary['blur_px']:.2f} px "
            f"(in focus at {summary['in_focus_v']:.2f} V), {summary['sim_time_s'] * 1e3:.0f} ms simulated"
        )


@sim_app.command()
@handle_errors
def sheet(
    out: Annotated[Path, typer.Option(help="Where to write the contact sheet (PNG).")],
    scene: Scene = "motorcycle",
    distance_cm: DistanceCm = 170.0,
    lux: Lux = 100.0,
    exposures_us: Annotated[
        str,
        typer.Option("--exposures-us", help="Exposure times (us): comma list or start:stop:step."),
    ] = "10000,40000,160000,640000",
    focus_v: Annotated[
        str | None,
        typer.Option(
            "--focus-v",
            help="Lens voltages: comma list or start:stop:step; default: around the in-focus voltage.",
        ),
    ] = None,
    background_cm: BackgroundCm = 500.0,
    seed: Seed = 0,
) -> None:
    """A contact sheet of frames across focus voltages (columns) and exposure times (rows)."""
    from dasha.plots import contact_sheet

    camera, lens = _open(scene, distance_cm, lux, background_cm, seed, 8)
    v0 = camera.world.in_focus_v()
    voltages = (
        parse_values(focus_v, "focus-v")
        if focus_v
        else [round(v0 + d, 2) for d in (-3, -1, -0.3, 0, 0.3, 1, 3)]
    )
    exposures = parse_values(exposures_us, "exposures-us")
    rows = []
    for exposure in exposures:
        camera.set_exposure_us(exposure)
        row = []
        for v in voltages:
            lens.set_focus(v)
            frame = camera.grab()
            row.append((frame.image, f"{v:.2f} V, blur {frame.meta['blur_px']:.1f} px"))
        rows.append((f"{exposure / 1000:g} ms", row))
    title = f"{scene}: target at {distance_cm:g} cm (in focus at {v0:.2f} V), {lux:g} lx"
    contact_sheet(rows, title, out)
    typer.echo(f"wrote {out} ({len(exposures)} exposures x {len(voltages)} focus voltages)")


@sim_app.command()
@handle_errors
def bench(
    frames: Annotated[
        int, typer.Option(help="Frames to time (after a warm-up of the same size).")
    ] = 1000,
    scene: Scene = "motorcycle",
    seed: Seed = 0,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Frames rendered per second at 417x404 on one core, with focus and exposure changing every frame.

    Focus voltages are drawn on the 0.01 V grid over 24..70 V and exposures from the paper's
    table, as a training run would. `cold` is the first pass (every blur computed), `warm`
    the second (blurred layers reused from the cache).
    """
    import cv2
    import numpy as np

    cv2.setNumThreads(1)  # one core, as promised
    camera, lens = _open(scene, 170.0, 100.0, 500.0, seed, 8)
    rng = np.random.default_rng(seed)
    focus = np.round(rng.uniform(24.0, 70.0, frames), 2)
    exposure = rng.choice(np.arange(1000.0, 45000.0, 1000.0), frames)

    def run() -> float:
        start = time.perf_counter()
        for v, t in zip(focus, exposure, strict=False):
            lens.set_focus(float(v))
            camera.set_exposure_us(float(t))
            camera.grab()
        return frames / (time.perf_counter() - start)

    cold, warm = run(), run()
    result = {
        "frames_per_s": warm,
        "frames_per_s_cold": cold,
        "ms_per_frame": 1e3 / warm,
        "frames": frames,
        "width": camera.roi.width,
        "height": camera.roi.height,
        "threads": 1,
    }
    if json_out:
        print_json(result)
    else:
        typer.echo(
            f"{warm:.0f} frames/s warm, {cold:.0f} frames/s cold ({1e3 / warm:.2f} ms/frame, 417x404, 1 core)"
        )
