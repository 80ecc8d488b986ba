"""What is plugged in: pylon cameras, V4L2 video devices and serial ports.

Each kind is listed independently; a missing SDK becomes a note naming the extra to
install, never an error, so ``dasha devices`` works on any machine.
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Any

from dasha.errors import MissingExtraError, require

CP210X_VID = 0x10C4  # Silicon Labs CP210x USB-UART: the Varioptic USB-M board's bridge


def list_devices() -> dict[str, Any]:
    """``{"cameras": [...], "serial_ports": [...], "notes": [...]}``, each entry a dict."""
    notes: list[str] = []
    cameras = _pylon_cameras(notes) + _video_devices()
    return {"cameras": cameras, "serial_ports": _serial_ports(notes), "notes": notes}


def _pylon_cameras(notes: list[str]) -> list[dict[str, Any]]:
    try:
        pylon = require("pypylon.pylon", "basler")
    except MissingExtraError as exc:
        notes.append(f"Basler cameras not listed: {exc}")
        return []
    try:
        devices = pylon.TlFactory.GetInstance().EnumerateDevices()
    except Exception as exc:  # the pylon runtime can fail in many ways; listing must not
        notes.append(f"pylon could not enumerate cameras: {exc}")
        return []
    return [
        {
            "backend": "basler",
            "name": d.GetFriendlyName(),
            "model": d.GetModelName(),
            "serial_number": d.GetSerialNumber(),
            "open_with": f"--camera basler --camera-serial {d.GetSerialNumber()}",
        }
        for d in devices
    ]


def _video_devices() -> list[dict[str, Any]]:
    found = []
    for path in sorted(glob.glob("/dev/video*")):
        sysfs = Path("/sys/class/video4linux") / Path(path).name / "name"
        name = sysfs.read_text().strip() if sysfs.is_file() else "unknown"
        found.append(
            {
                "backend": "uvc",
                "name": name,
                "device": path,
                "open_with": f"--camera uvc --device {path}",
            }
        )
    return found


def _serial_ports(notes: list[str]) -> list[dict[str, Any]]:
    try:
        list_ports = require("serial.tools.list_ports", "serial")
    except MissingExtraError as exc:
        notes.append(f"serial ports not listed: {exc}")
        return []
    ports = []
    for port in list_ports.comports():
        likely = port.vid == CP210X_VID or "cp210" in (port.description or "").lower()
        ports.append(
            {
                "device": port.device,
                "description": port.description,
                "hwid": port.hwid,
                "likely_varioptic": likely,
                "open_with": f"--lens varioptic-serial --port {port.device}",
            }
        )
    return ports
