"""Basler cameras through pypylon (the paper's acA2000-50gm, or any pylon camera).

Feature names differ between camera generations: SFNC 2 cameras (ace 2, USB3) have
``ExposureTime`` (us) and ``Gain`` (dB); older GigE ones such as the acA2000-50gm have
``ExposureTimeAbs`` (us) / ``ExposureTimeRaw`` (x ``ExposureTimeBaseAbs`` us) and
``GainRaw`` (dB = 20*log10(raw/32) on the acA2000) or ``GainAbs``. Each setting is
therefore looked up among its candidates (``_find_control``) and its limits are read
from the device, never assumed.

"Grab the next frame taken entirely with the current settings": a setting change stops
the stream, so the next ``grab`` starts a fresh acquisition instead of returning a frame
exposed before the change (the paper slept 5 s after each change for the same reason).

Tests run on the pylon camera emulator (``PYLON_CAMEMU=1``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dasha.errors import ConfigError, DisconnectedError, HardwareError, require
from dasha.hardware.base import Camera, Frame, Range, Roi

BIT_DEPTHS = {"Mono8": 8, "Mono10": 10, "Mono12": 12, "Mono16": 16}
GAIN_RAW_UNITY = 32  # acA2000-50gm: dB = 20*log10(GainRaw/32) (DESIGN.md)


def _identity(value: float) -> float:
    return value


@dataclass
class _Control:
    """A camera feature seen in user units (us, dB) whatever the device's node is."""

    node: Any
    unit: str
    to_user: Callable[[float], float] = _identity
    to_device: Callable[[float], float] = _identity

    @property
    def name(self) -> str:
        return str(self.node.GetNode().GetName())

    @property
    def range(self) -> Range:
        low, high = self.to_user(self.node.Min), self.to_user(self.node.Max)
        return Range(min(low, high), max(low, high), self.unit)

    @property
    def value(self) -> float:
        return self.to_user(self.node.Value)

    def set(self, value: float) -> float:
        raw = self.to_device(value)
        if isinstance(self.node.Value, int):  # Raw features: integer steps of Inc from Min
            step = max(int(self.node.Inc), 1)
            raw = int(self.node.Min + round((raw - self.node.Min) / step) * step)
        self.node.Value = min(max(raw, self.node.Min), self.node.Max)
        return self.value


def _usable(node: Any, genicam: Any) -> bool:
    return node is not None and genicam.IsAvailable(node) and genicam.IsWritable(node)


def _find_control(camera: Any, genicam: Any, kind: str, forced: str | None) -> _Control:
    """The exposure (us) or gain (dB) control: the first usable candidate node."""
    candidates = {
        "exposure": ["ExposureTime", "ExposureTimeAbs", "ExposureTimeRaw"],
        "gain": ["Gain", "GainAbs", "GainRaw"],
    }[kind]
    names = [forced] if forced else candidates
    for name in names:
        node = _parameter(camera, name)
        if not _usable(node, genicam):
            continue
        if name == "ExposureTimeRaw":
            base = _parameter(camera, "ExposureTimeBaseAbs")
            base_us = float(base.Value) if base is not None and genicam.IsAvailable(base) else 1.0
            return _Control(node, "us", base_us.__mul__, base_us.__rtruediv__)
        if name == "GainRaw":
            return _Control(
                node,
                "dB",
                lambda raw: 20 * math.log10(max(raw, 1) / GAIN_RAW_UNITY),
                lambda db: GAIN_RAW_UNITY * 10 ** (db / 20),
            )
        return _Control(node, "us" if kind == "exposure" else "dB")
    raise HardwareError(
        f"the camera has none of the {kind} features {names} writable "
        f"(model {camera.GetDeviceInfo().GetModelName()}); pass {kind}_node=... to choose one"
    )


def _parameter(camera: Any, name: str) -> Any:
    try:
        return getattr(camera, name)
    except Exception:  # pypylon raises various types for unknown names
        return None


class BaslerCamera(Camera):
    """A pylon camera with manual exposure and gain, monochrome pixel formats."""

    name = "basler"

    def __init__(
        self,
        *,
        serial_number: str | None = None,
        roi: Roi | None = None,
        pixel_format: str = "Mono8",
        exposure_us: float | None = None,
        gain_db: float | None = None,
        frame_rate_hz: float | None = None,
        exposure_node: str | None = None,
        gain_node: str | None = None,
    ) -> None:
        self._pylon = require("pypylon.pylon", "basler")
        self._genicam = require("pypylon.genicam", "basler")
        self._camera: Any = None
        self._index = 0
        try:
            self._camera = self._open(serial_number)
            self._configure(roi, pixel_format, frame_rate_hz)
            self._exposure = _find_control(self._camera, self._genicam, "exposure", exposure_node)
            self._gain = _find_control(self._camera, self._genicam, "gain", gain_node)
            if exposure_us is not None:
                self.set_exposure_us(self.exposure_range_us.clamp(exposure_us))
            self.set_gain_db(self.gain_range_db.min if gain_db is None else gain_db)
        except self._genicam.GenericException as exc:
            self.close()
            raise HardwareError(f"Basler camera setup failed: {exc}") from exc
        except BaseException:
            self.close()
            raise

    def _open(self, serial_number: str | None) -> Any:
        factory = self._pylon.TlFactory.GetInstance()
        devices = factory.EnumerateDevices()
        if not devices:
            raise HardwareError("no Basler camera found (check the cable and `dasha devices`)")
        if serial_number is None:
            info = devices[0]
        else:
            matches = [d for d in devices if d.GetSerialNumber() == str(serial_number)]
            if not matches:
                found = ", ".join(d.GetSerialNumber() for d in devices)
                raise ConfigError(f"no Basler camera with serial {serial_number}; found: {found}")
            info = matches[0]
        camera = self._pylon.InstantCamera(factory.CreateDevice(info))
        camera.Open()
        return camera

    def _configure(self, roi: Roi | None, pixel_format: str, frame_rate_hz: float | None) -> None:
        camera = self._camera
        for auto in ("ExposureAuto", "GainAuto"):
            node = _parameter(camera, auto)
            if _usable(node, self._genicam):
                node.Value = "Off"
        formats = [f for f in camera.PixelFormat.Symbolics if f in BIT_DEPTHS]
        if pixel_format not in formats:
            raise ConfigError(f"pixel_format {pixel_format!r} not offered; choose one of {formats}")
        camera.PixelFormat.Value = pixel_format
        self._bit_depth = BIT_DEPTHS[pixel_format]
        if roi is not None:
            self._set_roi(roi)
        if frame_rate_hz is not None:
            enable = _parameter(camera, "AcquisitionFrameRateEnable")
            if _usable(enable, self._genicam):
                enable.Value = True
            for name in ("AcquisitionFrameRate", "AcquisitionFrameRateAbs"):
                node = _parameter(camera, name)
                if _usable(node, self._genicam):
                    node.Value = min(max(float(frame_rate_hz), node.Min), node.Max)
                    break

    def _set_roi(self, roi: Roi) -> None:
        camera = self._camera
        camera.OffsetX.Value = camera.OffsetY.Value = 0  # so any width/height is allowed
        for name, value in (
            ("Width", roi.width),
            ("Height", roi.height),
            ("OffsetX", roi.offset_x),
            ("OffsetY", roi.offset_y),
        ):
            node = getattr(camera, name)
            step = max(int(node.Inc), 1)
            node.Value = int(min(max(value - value % step, node.Min), node.Max))

    # -- Camera interface -----------------------------------------------------------
    @property
    def exposure_range_us(self) -> Range:
        return self._exposure.range

    @property
    def gain_range_db(self) -> Range:
        return self._gain.range

    @property
    def exposure_us(self) -> float:
        return self._exposure.value

    def set_exposure_us(self, exposure_us: float) -> float:
        return self._change(
            self._exposure, self.exposure_range_us.check(exposure_us, "exposure_us")
        )

    @property
    def gain_db(self) -> float:
        return self._gain.value

    def set_gain_db(self, gain_db: float) -> float:
        return self._change(self._gain, self.gain_range_db.check(gain_db, "gain_db"))

    @property
    def roi(self) -> Roi:
        c = self._camera
        return Roi(c.Width.Value, c.Height.Value, c.OffsetX.Value, c.OffsetY.Value)

    def grab(self, timeout_s: float = 5.0) -> Frame:
        camera = self._camera
        pylon, genicam = self._pylon, self._genicam
        try:
            if not camera.IsGrabbing():
                camera.StartGrabbing(pylon.GrabStrategy_LatestImageOnly)
            result = camera.RetrieveResult(int(timeout_s * 1000), pylon.TimeoutHandling_Return)
        except genicam.GenericException as exc:
            raise self._failure(f"grab failed: {exc}") from exc
        if not result.IsValid():
            raise self._failure(f"no frame within {timeout_s:g} s")
        try:
            if not result.GrabSucceeded():
                raise self._failure(f"grab failed: {result.GetErrorDescription()}")
            image = result.Array.copy()  # the buffer goes back to pylon on Release
            tick = int(result.TimeStamp)
        finally:
            result.Release()
        self._index += 1
        return Frame(
            image=image,
            bit_depth=self._bit_depth,
            exposure_us=self.exposure_us,
            gain_db=self.gain_db,
            timestamp_s=time.monotonic(),
            index=self._index,
            meta={"device_timestamp_ticks": tick, "exposure_node": self._exposure.name},
        )

    def close(self) -> None:
        camera, self._camera = self._camera, None
        if camera is None:
            return
        try:
            if camera.IsGrabbing():
                camera.StopGrabbing()
            camera.Close()
        except self._genicam.GenericException:
            pass  # a removed camera cannot be stopped; nothing is left to release

    def info(self) -> dict[str, Any]:
        device = self._camera.GetDeviceInfo()
        return {
            "backend": self.name,
            "model": device.GetModelName(),
            "serial_number": device.GetSerialNumber(),
            "pixel_format": self._camera.PixelFormat.Value,
            "exposure_node": self._exposure.name,
            "gain_node": self._gain.name,
        }

    def _change(self, control: _Control, value: float) -> float:
        try:
            if self._camera.IsGrabbing():
                self._camera.StopGrabbing()  # no frame exposed before the change is returned
            return control.set(value)
        except self._genicam.GenericException as exc:
            raise self._failure(f"cannot set {control.name}: {exc}") from exc

    def _failure(self, message: str) -> HardwareError:
        if self._camera is not None and self._camera.IsCameraDeviceRemoved():
            return DisconnectedError(f"the Basler camera was disconnected ({message})")
        return HardwareError(f"Basler camera: {message}")


def open_basler_camera(**options: Any) -> BaslerCamera:
    """Open a Basler camera: ``serial_number=`` (default: the first found), ``roi=Roi(...)``,
    ``pixel_format=`` Mono8/Mono12..., ``exposure_us=``, ``gain_db=``, ``frame_rate_hz=``,
    ``exposure_node=``/``gain_node=`` to force a feature name."""
    roi = options.get("roi")
    if isinstance(roi, (tuple, list)):
        options["roi"] = Roi(*roi)
    return BaslerCamera(**options)
