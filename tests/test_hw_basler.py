"""The Basler backend on the pylon camera emulator (pypylon's bundled runtime, no camera)."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

os.environ.setdefault("PYLON_CAMEMU", "2")  # before pylon's transport layer factory exists
from pypylon import pylon

from dasha.errors import ConfigError, HardwareError
from dasha.hardware import Roi, open_camera
from dasha.hardware.basler import BaslerCamera


def test_open_first_camera_with_roi_format_and_settings() -> None:
    with open_camera(
        "basler", roi=(417, 404, 10, 20), pixel_format="Mono12", exposure_us=20000, gain_db=0
    ) as cam:
        assert isinstance(cam, BaslerCamera)
        assert cam.roi == Roi(417, 404, 10, 20)
        assert cam.exposure_range_us.unit == "us" and cam.exposure_range_us.min > 0
        assert cam.exposure_us == pytest.approx(20000)
        frame = cam.grab(timeout_s=2.0)
        assert frame.image.shape == (404, 417) and frame.image.dtype == np.uint16
        assert frame.bit_depth == 12 and frame.image.max() <= 4095
        assert frame.exposure_us == pytest.approx(20000) and frame.index == 1
        assert cam.set_exposure_us(5000) == pytest.approx(5000)
        assert cam.grab(timeout_s=2.0).exposure_us == pytest.approx(5000)
        assert cam.info()["exposure_node"] == "ExposureTime"


def test_open_by_serial_number_and_unknown_serial() -> None:
    serials = [d.GetSerialNumber() for d in pylon.TlFactory.GetInstance().EnumerateDevices()]
    with open_camera("basler", serial_number=serials[-1]) as cam:
        assert cam.info()["serial_number"] == serials[-1]
    with pytest.raises(ConfigError, match="no Basler camera with serial"):
        open_camera("basler", serial_number="nope")


def test_raw_features_are_converted_to_microseconds_and_decibels() -> None:
    # The acA2000-50gm has only ExposureTimeRaw/Abs and GainRaw; the emulator has both kinds.
    with open_camera("basler", exposure_node="ExposureTimeRaw", gain_node="GainRaw") as cam:
        raw_gain = cam.info()
        assert raw_gain["gain_node"] == "GainRaw"
        low = cam.gain_range_db.min
        assert low == pytest.approx(20 * math.log10(cam._gain.node.Min / 32))
        assert cam.set_gain_db(20.0) == pytest.approx(20.0, abs=0.1)  # raw steps of 1
        assert cam._gain.node.Value == round(32 * 10 ** (20 / 20))
        assert cam.set_exposure_us(12345) == pytest.approx(12345, rel=0.01)
        assert cam.grab(2.0).meta["exposure_node"] == "ExposureTimeRaw"


def test_settings_outside_the_device_limits_are_refused() -> None:
    with open_camera("basler") as cam:
        with pytest.raises(ConfigError, match="outside the device limits"):
            cam.set_exposure_us(cam.exposure_range_us.max * 2)
        with pytest.raises(ConfigError, match="pixel_format"):
            open_camera("basler", pixel_format="RGB8Packed")
        with pytest.raises(HardwareError, match="none of the exposure features"):
            open_camera("basler", exposure_node="NoSuchNode")


def test_close_stops_grabbing_and_is_idempotent() -> None:
    cam = open_camera("basler")
    cam.grab(2.0)
    inner = cam._camera  # type: ignore[attr-defined]
    cam.close()
    cam.close()
    assert not inner.IsOpen()
