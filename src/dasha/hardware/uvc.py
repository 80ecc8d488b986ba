"""UVC webcams on Linux: V4L2 controls through linuxpy, frames through OpenCV.

A webcam with manual focus is both a ``Camera`` and a ``Lens``: the lens backend drives
the same device's ``focus_absolute`` control, in the driver's own steps (``unit ==
"step"``, not volts). Auto exposure and continuous autofocus are switched off on open.

V4L2 control names vary between kernels (``exposure_time_absolute`` since Linux 5.x,
``exposure_absolute`` before; ``focus_automatic_continuous`` / ``focus_auto``), so each
is looked up among its candidates. ``exposure_time_absolute`` counts 100 us units.
UVC gain has no defined unit, so this backend leaves gain alone and reports 0 dB.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from dasha.errors import ConfigError, DisconnectedError, HardwareError, require
from dasha.hardware.base import Camera, Frame, Lens, Range, Roi

EXPOSURE_NAMES = ("exposure_time_absolute", "exposure_absolute")
AUTO_EXPOSURE_NAMES = ("auto_exposure", "exposure_auto")
FOCUS_NAMES = ("focus_absolute",)
AUTOFOCUS_NAMES = ("focus_automatic_continuous", "focus_auto")
EXPOSURE_UNIT_US = 100.0  # V4L2: exposure_time_absolute is in 100 us units
MANUAL_EXPOSURE = 1  # V4L2_EXPOSURE_MANUAL in the auto_exposure menu
SETTLE_S = 0.2  # a webcam's focus motor plus a frame or two of pipeline (estimate)
STALE_FRAMES = 2  # frames still queued from before a setting change


class UvcControls:
    """A device's V4L2 controls by name, in the units DASHA uses.

    ``controls`` maps linuxpy's ``config_name`` (e.g. ``focus_absolute``) to objects with
    ``value``, ``minimum``, ``maximum`` and ``step``, as linuxpy's controls have.
    """

    def __init__(self, controls: Mapping[str, Any], device: str = "webcam") -> None:
        self._controls = dict(controls)
        self.device = device

    def find(self, names: tuple[str, ...], purpose: str) -> Any:
        for name in names:
            if name in self._controls:
                return self._controls[name]
        raise HardwareError(
            f"{self.device} has no {purpose} control ({' or '.join(names)}); it offers: "
            f"{', '.join(sorted(self._controls)) or 'none'}"
        )

    def manual_mode(self) -> None:
        """Switch off auto exposure and continuous autofocus (where the device has them)."""
        for names, manual in ((AUTO_EXPOSURE_NAMES, MANUAL_EXPOSURE), (AUTOFOCUS_NAMES, 0)):
            control = next((self._controls[n] for n in names if n in self._controls), None)
            if control is not None:
                control.value = manual

    @staticmethod
    def range(control: Any, scale: float, unit: str) -> Range:
        return Range(control.minimum * scale, control.maximum * scale, unit)

    @staticmethod
    def set(control: Any, value: float, scale: float) -> float:
        """Set ``value`` (user units) rounded to the control's step; return what was set."""
        step = max(int(control.step), 1)
        raw = control.minimum + round((value / scale - control.minimum) / step) * step
        control.value = int(min(max(raw, control.minimum), control.maximum))
        return float(control.value) * scale


def _open_controls(device: str) -> tuple[Any, UvcControls]:
    video = require("linuxpy.video.device", "uvc")
    if not Path(device).exists():
        raise ConfigError(f"no video device {device!r}; `dasha devices` lists the cameras found")
    try:
        handle = video.Device(device)
        handle.open()
        controls = {c.config_name: c for c in handle.controls.values()}
    except OSError as exc:
        raise HardwareError(f"cannot open {device!r} for its controls: {exc}") from exc
    return handle, UvcControls(controls, device)


class UvcCamera(Camera):
    """A V4L2 webcam with manual exposure; frames converted to 8-bit grey."""

    name = "uvc"

    def __init__(
        self, device: str = "/dev/video0", *, width: int | None = None, height: int | None = None
    ) -> None:
        cv2 = require("cv2", "uvc")
        self.device = device
        self._handle, self.controls = _open_controls(device)
        self._capture = cv2.VideoCapture(device, cv2.CAP_V4L2)
        if not self._capture.isOpened():
            self.close()
            raise HardwareError(
                f"OpenCV cannot stream from {device!r} (in use by another program?)"
            )
        for prop, value in ((cv2.CAP_PROP_FRAME_WIDTH, width), (cv2.CAP_PROP_FRAME_HEIGHT, height)):
            if value:
                self._capture.set(prop, value)
        self._capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        self.controls.manual_mode()
        self._exposure = self.controls.find(EXPOSURE_NAMES, "manual exposure")
        self._stale = STALE_FRAMES
        self._index = 0

    @property
    def exposure_range_us(self) -> Range:
        return UvcControls.range(self._exposure, EXPOSURE_UNIT_US, "us")

    @property
    def gain_range_db(self) -> Range:
        return Range(0.0, 0.0, "dB")

    @property
    def exposure_us(self) -> float:
        return float(self._exposure.value) * EXPOSURE_UNIT_US

    def set_exposure_us(self, exposure_us: float) -> float:
        value = self.exposure_range_us.check(exposure_us, "exposure_us")
        self.changed()
        return UvcControls.set(self._exposure, value, EXPOSURE_UNIT_US)

    @property
    def gain_db(self) -> float:
        return 0.0

    def set_gain_db(self, gain_db: float) -> float:
        return self.gain_range_db.check(gain_db, "gain_db")

    @property
    def roi(self) -> Roi:
        import cv2

        width = int(self._capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        return Roi(width, int(self._capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))

    def changed(self) -> None:
        """A setting changed: the frames already queued are dropped on the next grab."""
        self._stale = STALE_FRAMES

    def grab(self, timeout_s: float = 5.0) -> Frame:
        import cv2

        deadline = time.monotonic() + timeout_s
        while True:
            ok, image = self._capture.read()
            if not ok:
                if not Path(self.device).exists():
                    raise DisconnectedError(f"the webcam {self.device} was disconnected")
                if time.monotonic() > deadline:
                    raise HardwareError(f"no frame from {self.device} within {timeout_s:g} s")
                continue
            if self._stale > 0:
                self._stale -= 1
                continue
            break
        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
        self._index += 1
        return Frame(
            np.ascontiguousarray(grey, dtype=np.uint8), 8, self.exposure_us, 0.0,
            time.monotonic(), self._index,
        )  # fmt: skip

    def close(self) -> None:
        capture, self._capture = getattr(self, "_capture", None), None
        if capture is not None:
            capture.release()
        handle, self._handle = getattr(self, "_handle", None), None
        if handle is not None:
            handle.close()

    def info(self) -> dict[str, Any]:
        return {"backend": self.name, "device": self.device}


class UvcLens(Lens):
    """The focus motor of a UVC webcam, in the driver's steps."""

    name = "uvc"
    unit = "step"

    def __init__(
        self, controls: UvcControls, camera: UvcCamera | None = None, handle: Any = None
    ) -> None:
        self.controls = controls
        self._camera = camera
        self._handle = handle  # closed with the lens when the lens opened the device itself
        self._focus = controls.find(FOCUS_NAMES, "manual focus")
        controls.manual_mode()

    @property
    def focus_range(self) -> Range:
        return UvcControls.range(self._focus, 1.0, "step")

    @property
    def settle_s(self) -> float:
        return SETTLE_S

    @property
    def focus(self) -> float:
        return float(self._focus.value)

    def set_focus(self, value: float) -> float:
        step = self.focus_range.check(value, "focus_step")
        if self._camera is not None:
            self._camera.changed()
        return UvcControls.set(self._focus, step, 1.0)

    def close(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.close()

    def info(self) -> dict[str, Any]:
        return {"backend": self.name, "device": self.controls.device, "unit": self.unit}


def open_uvc_camera(*, device: str | int = "/dev/video0", **options: Any) -> UvcCamera:
    """Open a webcam: ``device=`` path or index (0 -> /dev/video0), ``width=``, ``height=``."""
    return UvcCamera(f"/dev/video{device}" if isinstance(device, int) else device, **options)


def open_uvc_lens(camera: Camera | None = None, *, device: str | int | None = None) -> UvcLens:
    """The focus of the webcam ``camera`` (a ``uvc`` camera), or of ``device`` on its own."""
    if isinstance(camera, UvcCamera):
        return UvcLens(camera.controls, camera)
    if device is None:
        raise ConfigError("the uvc lens needs --camera uvc, or a device= of its own")
    handle, controls = _open_controls(f"/dev/video{device}" if isinstance(device, int) else device)
    return UvcLens(controls, handle=handle)
