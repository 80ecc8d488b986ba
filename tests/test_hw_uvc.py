"""The UVC backend's control logic (no webcam here: controls are plain value holders)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from dasha.errors import ConfigError, HardwareError
from dasha.hardware import open_camera, open_lens
from dasha.hardware.uvc import UvcControls, UvcLens


@dataclass
class Control:
    """What a linuxpy control offers: value, minimum, maximum, step."""

    value: int
    minimum: int
    maximum: int
    step: int = 1


def webcam_controls(old_kernel: bool = False) -> dict[str, Control]:
    names = ("exposure_absolute", "exposure_auto", "focus_auto") if old_kernel else (
        "exposure_time_absolute", "auto_exposure", "focus_automatic_continuous"
    )  # fmt: skip
    return {
        names[0]: Control(156, 3, 2047),
        names[1]: Control(3, 0, 3),  # aperture priority (auto)
        names[2]: Control(1, 0, 1),
        "focus_absolute": Control(30, 0, 250, step=5),
    }


@pytest.mark.parametrize("old_kernel", [False, True])
def test_lens_maps_focus_absolute_and_turns_autos_off(old_kernel: bool) -> None:
    raw = webcam_controls(old_kernel)
    lens = UvcLens(UvcControls(raw, "/dev/video9"))
    assert lens.unit == "step" and lens.focus_range.unit == "step"
    assert (lens.focus_range.min, lens.focus_range.max) == (0, 250)
    assert all(c.value in (0, 1) for n, c in raw.items() if "auto" in n)  # manual modes
    assert lens.set_focus(123) == 125  # rounded to the driver's step of 5
    assert lens.focus == 125 and raw["focus_absolute"].value == 125
    with pytest.raises(ConfigError, match="outside the device limits"):
        lens.set_focus(251)


def test_exposure_is_in_100_us_units() -> None:
    controls = UvcControls(webcam_controls())
    exposure = controls.find(("exposure_time_absolute",), "exposure")
    assert UvcControls.range(exposure, 100.0, "us").max == 204700
    assert UvcControls.set(exposure, 20000, 100.0) == 20000 and exposure.value == 200


def test_missing_control_names_what_the_device_offers() -> None:
    with pytest.raises(HardwareError, match=r"no manual focus control.*offers: gain"):
        UvcLens(UvcControls({"gain": Control(0, 0, 10)}, "/dev/video9"))


def test_absent_device_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="no video device '/dev/video99'"):
        open_camera("uvc", device=99)
    with pytest.raises(ConfigError, match="no video device"):
        open_lens("uvc", device="/dev/video99")
    with pytest.raises(ConfigError, match="needs --camera uvc"):
        open_lens("uvc")
