"""``dasha serve``: a web page to watch and steer the autofocus live."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated, Any

import typer

from dasha.cli import rig_options as ro
from dasha.cli.app import app, handle_errors


@app.command("serve")
@handle_errors
def serve_command(
    camera: ro.CameraName = "sim",
    lens: Annotated[
        str | None,
        typer.Option("--lens", help="Lens backend (default: the camera's own: sim, uvc, replay)."),
    ] = None,
    lens_port: Annotated[
        str | None,
        typer.Option("--lens-port", help="Serial port of the varioptic-serial lens."),
    ] = None,
    settings: ro.Settings = None,
    scene: Annotated[str, typer.Option(help="Simulator: the scene it starts with.")] = "motorcycle",
    distance_cm: Annotated[float, typer.Option(help="Simulator: target distance (cm).")] = 170.0,
    lux: Annotated[float, typer.Option(help="Simulator: illuminance (lux).")] = 100.0,
    algorithm: Annotated[
        str,
        typer.Option(
            help="AfAlgorithm it starts with: dasha, coarse-fine, hill-climb, golden, sweep."
        ),
    ] = "coarse-fine",
    target: Annotated[
        str | None, typer.Option(help="AfTarget it starts with: a detector class or face.")
    ] = None,
    host: Annotated[
        str, typer.Option(help="Address to listen on; anything but loopback exposes the camera.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port of the page.", min=1, max=65535)] = 8765,
    speed: Annotated[
        float,
        typer.Option(
            help="Camera seconds per wall second (simulator: 1 = real time, 0 = as fast as it renders).",
            min=0.0,
        ),
    ] = 1.0,
    max_fps: Annotated[
        float, typer.Option(help="Frames per second the live view grabs at most.", min=1.0)
    ] = 25.0,
    screenshot: Annotated[
        Path | None,
        typer.Option(
            help="Open the page in headless Chromium, trigger a cycle, save a PNG of it, exit."
        ),
    ] = None,
) -> None:
    """Serve a live view at http://HOST:PORT/: the frame with the AF window and detection,
    the AF state, lens, exposure, histogram and BRISQUE, each cycle's moves, and the controls
    (AfMode, trigger, algorithm, target, AF window, lens; scene/distance/light on the sim)."""
    from dasha.camera.api import open_camera
    from dasha.errors import ConfigError

    try:
        from dasha.web.server import check_address, serve
    except ModuleNotFoundError as exc:  # installed without the web extra
        raise ConfigError(f"dasha serve needs {exc.name}: pip install -e '.[web]'") from exc

    loopback = check_address(host, port)
    if not loopback:
        typer.secho(
            f"warning: listening on {host}: anyone who can reach this machine can watch and "
            "move the camera (there is no login). Use --host 127.0.0.1 to keep it local.",
            fg="yellow",
            err=True,
        )
    camera_options, lens_options = ro.parse_settings(settings)
    if lens_port is not None:
        lens_options["port"] = lens_port
    options: dict[str, Any] = dict(camera_options)
    if camera == "sim":
        options = {"scene": scene, "distance_cm": distance_cm, "illuminance_lux": lux, **options}
    with open_camera(camera, lens=lens, lens_options=lens_options, **options) as cam:
        cam.set_controls({"AfAlgorithm": algorithm, "AfTarget": target})
        tour = None
        if screenshot is not None:
            from dasha.web.browser import tour_page

            def tour(url: str) -> None:
                tour_page(url, screenshot_png=screenshot)

        # A second Ctrl-C during shutdown must not skip the park the ``with`` does.
        with contextlib.suppress(KeyboardInterrupt):
            serve(
                cam, host, port, speed=speed, max_fps=max_fps, while_serving=tour, echo=typer.echo
            )
    lens_device = cam.rig.lens
    try:  # the simulator's lens still answers after close; a closed serial lens may not
        where = f"{lens_device.focus:g} {lens_device.unit}"
    except Exception:
        where = "unknown (the closed lens does not answer)"
    typer.echo(
        f"stopped; lens parked: now at {where}, its safe value is "
        f"{lens_device.safe_focus:g} {lens_device.unit}"
    )
