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


def parse_pairs(items: list[str] | None, option: str) -> dict[str, Any]:
    """``KEY=VALUE`` items (``--condition illuminance_lux=120``) as a dict."""
    pairs: dict[str, Any] = {}
    for item in items or []:
        key, eq, value = item.partition("=")
        if not (eq and key.strip()):
            raise ConfigError(f"{option} {item!r}: write KEY=VALUE, e.g. illuminance_lux=120")
        pairs[key.strip()] = parse_value(value)
    return pairs


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


# The CLI flag of each backend option, for the messages.
_FLAG = {
    "serial_number": "--camera-serial",
    "device": "--device",
    "path": "--recording",
    "port": "--port",
    "dll_path": "--dll-path",
}
# A camera that renders through its own lens model: a real lens next to it would be moved
# while the frames ignore it, so the pair is refused instead of reporting a voltage.
# (A real lens on the sim camera is driven instead: hardware.sim.DrivenSimLens.)
_OWN_LENS = {"replay": "replay"}


def rig_options(
    camera: str,
    lens: str,
    *,
    port: str | None = None,
    camera_serial: str | None = None,
    dll_path: str | None = None,
    device: str | None = None,
    recording: str | None = None,
    settings: list[str] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(camera options, lens options) of the flags and ``--set`` items, checked: every flag
    given must apply to the chosen backends, and every ``--set`` key be one they declare."""
    from dasha.hardware import check_options

    camera_options, lens_options = parse_settings(settings)
    given = {
        "serial_number": camera_serial,
        "device": device,
        "path": recording,
        "port": port,
        "dll_path": dll_path,
    }
    used = {_CAMERA_OPTION.get(camera), _LENS_OPTION.get(lens)}
    if lens == "uvc" and camera != "uvc":
        used.add("device")  # a uvc lens of its own, beside another camera
    for key, value in given.items():
        if value is None:
            continue
        if key not in used:
            takers = [f"--camera {b}" for b, k in _CAMERA_OPTION.items() if k == key] + [
                f"--lens {b}" for b, k in _LENS_OPTION.items() if k == key
            ]
            raise ConfigError(
                f"{_FLAG[key]} does not apply to --camera {camera} --lens {lens}; "
                f"it is for {' or '.join(takers) or '--lens uvc'}"
            )
        if key == _CAMERA_OPTION.get(camera):
            camera_options[key] = value
        else:
            lens_options[key] = value
    check_options("camera", camera, camera_options)
    check_options("lens", lens, lens_options)
    _require_camera_options(camera, camera_options)
    own = _OWN_LENS.get(camera)
    if own is not None and lens != own:
        raise ConfigError(
            f"--camera {camera} renders its frames with its own {own} lens, so --lens {lens} "
            f"would move a lens the frames never see; use --lens {own}, or a real camera "
            "(--camera basler or uvc) with a real lens"
        )
    return camera_options, lens_options


def _require_camera_options(name: str, options: dict[str, Any]) -> None:
    """A camera option without a default (the replay camera's recording) must be given."""
    from dasha.hardware import CAMERA_BACKENDS, _load, declared_options

    for key, param in declared_options(_load(CAMERA_BACKENDS, "camera", name)).items():
        if param.default is param.empty and key not in options:
            given_by = _FLAG.get(key, f"--set camera.{key}=VALUE")
            raise ConfigError(f"the {name} camera needs {given_by}")


def open_rig_from_cli(camera: str, lens: str, **flags: Any) -> Rig:
    """Open the rig the options describe (the lens given the camera)."""
    camera_options, lens_options = rig_options(camera, lens, **flags)
    return open_rig(camera, lens, camera_options=camera_options, lens_options=lens_options)
