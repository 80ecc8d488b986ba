"""The command-line options that pick and configure a camera + lens, shared by every
command that drives a rig (``capture``, ``focus``, ...)::

    dasha focus --camera basler --lens varioptic-serial --port /dev/ttyUSB0

Each backend takes only the options that concern it; anything else goes through
``--set camera.KEY=VALUE`` / ``--set lens.KEY=VALUE`` (e.g. ``camera.pixel_format=Mono12``,
``lens.timeout_s=1``, ``camera.scene=motorcycle``).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from dasha.errors import ConfigError
from dasha.hardware.session import Rig, open_rig

CameraName = Annotated[
    str, typer.Option("--camera", help="Camera backend: sim, basler, uvc, replay.")
]
LensName = Annotated[
    str, typer.Option("--lens", help="Lens backend: sim, varioptic-serial, casp, uvc, replay.")
]
Port = Annotated[
    str | None,
    typer.Option("--port", help="Serial port of the varioptic-serial lens, e.g. /dev/ttyUSB0."),
]
CameraSerial = Annotated[
    str | None,
    typer.Option("--camera-serial", help="Basler serial number (default: first camera)."),
]
DllPath = Annotated[
    str | None, typer.Option("--dll-path", help="Vendor library of the casp lens (ComCasp64.dll).")
]
Device = Annotated[
    str | None, typer.Option("--device", help="Video device of the uvc camera, e.g. /dev/video0.")
]
RecordingPath = Annotated[
    str | None, typer.Option("--recording", help="Recording directory of the replay camera.")
]
Settings = Annotated[
    list[str] | None,
    typer.Option(
        "--set", help="Extra backend option, camera.KEY=VALUE or lens.KEY=VALUE (repeatable)."
    ),
]

# backend -> (its option name, the CLI flag that fills it)
_CAMERA_OPTION = {"basler": "serial_number", "uvc": "device", "replay": "path"}
_LENS_OPTION = {"varioptic-serial": "port", "casp": "dll_path"}


def parse_value(text: str) -> Any:
    """``1`` -> 1, ``2.5`` -> 2.5, ``true`` -> True, ``[1,2]`` -> list, else the string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_settings(settings: list[str] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split ``--set`` items into (camera options, lens options)."""
    camera: dict[str, Any] = {}
    lens: dict[str, Any] = {}
    for item in settings or []:
        target, dot, rest = item.partition(".")
        key, eq, value = rest.partition("=")
        if not (dot and eq and key) or target not in ("camera", "lens"):
            raise ConfigError(f"--set {item!r}: write camera.KEY=VALUE or lens.KEY=VALUE")
        (camera if target == "camera" else lens)[key] = parse_value(value)
    return camera, lens


def open_rig_from_cli(
    camera: str,
    lens: str,
    *,
    port: str | None = None,
    camera_serial: str | None = None,
    dll_path: str | None = None,
    device: str | None = None,
    recording: str | None = None,
    settings: list[str] | None = None,
) -> Rig:
    """Open the rig the options describe (the lens given the camera)."""
    camera_options, lens_options = parse_settings(settings)
    camera_flag = {"serial_number": camera_serial, "device": device, "path": recording}
    lens_flag = {"port": port, "dll_path": dll_path}
    if camera in _CAMERA_OPTION and camera_flag[_CAMERA_OPTION[camera]] is not None:
        camera_options[_CAMERA_OPTION[camera]] = camera_flag[_CAMERA_OPTION[camera]]
    if lens in _LENS_OPTION and lens_flag[_LENS_OPTION[lens]] is not None:
        lens_options[_LENS_OPTION[lens]] = lens_flag[_LENS_OPTION[lens]]
    return open_rig(camera, lens, camera_options=camera_options, lens_options=lens_options)
