"""The ``sim`` backend: the simulated camera and liquid lens as ``Camera`` / ``Lens`` devices.

Both share one ``SimWorld`` and one ``SimClock``. Settings follow the paper's rig: a
Basler acA2000-50gm (exposure 24 us .. 1 s, GainRaw 36..512 = 1.02..24.08 dB) and a
Varioptic lens (24..70 V). Timing on the simulated clock:

- a new exposure applies to frames that start ``exposure_latency_frames`` after the write;
- a lens move is stable ``lens_settle_s`` after the command; frames wait for it;
- a frame takes ``max(frame_period_s, exposure)`` from its start.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from dasha.errors import ConfigError
from dasha.hardware.base import Camera, Frame, Lens, Range, Roi
from dasha.sim.clock import SimClock, Timing
from dasha.sim.optics import LensCalibration, Optics
from dasha.sim.sensor import Sensor
from dasha.sim.world import Conditions, SimWorld

EXPOSURE_RANGE_US = Range(24.0, 1_000_000.0, "us")
GAIN_RANGE_DB = Range(20 * math.log10(36 / 32), 20 * math.log10(512 / 32), "dB")
FOCUS_RANGE_V = Range(24.0, 70.0, "V")
FACTORY_EXPOSURE_US = 20_000.0  # the original code's reset value
FACTORY_GAIN_DB = GAIN_RANGE_DB.min  # GainRaw 36
FACTORY_FOCUS_V = 24.0


class SimCamera(Camera):
    name = "sim"

    def __init__(self, world: SimWorld, timing: Timing | None = None) -> None:
        self.world = world
        self.timing = timing or Timing()
        self.clock = SimClock()
        self.lens: SimLens | None = None
        self._exposure_us = FACTORY_EXPOSURE_US
        self._gain_db = FACTORY_GAIN_DB
        self._exposure_valid_at_s = 0.0

    # -- settings
    @property
    def exposure_range_us(self) -> Range:
        return EXPOSURE_RANGE_US

    @property
    def gain_range_db(self) -> Range:
        return GAIN_RANGE_DB

    @property
    def exposure_us(self) -> float:
        return self._exposure_us

    def set_exposure_us(self, exposure_us: float) -> float:
        value = EXPOSURE_RANGE_US.check(exposure_us, "exposure_us")
        if value != self._exposure_us:
            self._exposure_us = value
            self.clock.exposure_changes += 1
            latency = self.timing.exposure_latency_frames * self.timing.frame_period_s
            self._exposure_valid_at_s = self.clock.now_s + latency
        return value

    @property
    def gain_db(self) -> float:
        return self._gain_db

    def set_gain_db(self, gain_db: float) -> float:
        self._gain_db = GAIN_RANGE_DB.check(gain_db, "gain_db")
        return self._gain_db

    @property
    def roi(self) -> Roi:
        return Roi(self.world.width, self.world.height)

    # -- frames
    def grab(self, timeout_s: float = 5.0) -> Frame:
        focus_v = self.lens.focus if self.lens is not None else FACTORY_FOCUS_V
        settled_at = self.lens.settled_at_s if self.lens is not None else 0.0
        start_s = max(self.clock.now_s, settled_at, self._exposure_valid_at_s)
        duration_s = max(self.timing.frame_period_s, self._exposure_us * 1e-6)
        image = self.world.render(focus_v, self._exposure_us, self._gain_db)
        self.clock.advance_to(start_s + duration_s)
        self.clock.frames += 1
        meta = {"focus_v": focus_v, **self.world.truth(focus_v), **self.clock.snapshot()}
        return Frame(
            image=image,
            bit_depth=self.world.sensor.bit_depth,
            exposure_us=self._exposure_us,
            gain_db=self._gain_db,
            timestamp_s=self.clock.now_s,
            index=self.clock.frames - 1,
            meta=meta,
        )

    def reset(self, seed: int | None = None, **conditions: Any) -> None:
        """Factory settings (exposure 20000 us, lens 24 V), a fresh clock, new conditions."""
        if conditions:
            self.world.set_conditions(**conditions)
        if seed is not None:
            self.world.reseed(seed)
        self.clock = SimClock()
        self._exposure_us, self._gain_db, self._exposure_valid_at_s = (
            FACTORY_EXPOSURE_US,
            FACTORY_GAIN_DB,
            0.0,
        )
        if self.lens is not None:
            self.lens.park()


class SimLens(Lens):
    name = "sim"
    unit = "V"

    def __init__(self, camera: SimCamera) -> None:
        self.camera = camera
        camera.lens = self
        self._focus_v = FACTORY_FOCUS_V
        self.settled_at_s = 0.0

    @property
    def focus_range(self) -> Range:
        return FOCUS_RANGE_V

    @property
    def focus(self) -> float:
        return self._focus_v

    @property
    def settle_s(self) -> float:
        return self.camera.timing.lens_settle_s

    def set_focus(self, value: float) -> float:
        value = FOCUS_RANGE_V.check(value, "focus_v")
        if value != self._focus_v:
            self._focus_v = value
            clock = self.camera.clock
            clock.lens_moves += 1
            self.settled_at_s = clock.now_s + self.settle_s
        return value

    def park(self) -> None:
        self._focus_v, self.settled_at_s = FACTORY_FOCUS_V, 0.0


def open_sim_camera(
    scene: str = "motorcycle",
    distance_cm: float = 170.0,
    illuminance_lux: float = 100.0,
    background_cm: float | None = None,
    target_size_cm: float | None = None,
    seed: int | None = None,
    width: int = 417,
    height: int = 404,
    bit_depth: int = 8,
    f_number: float = 2.5,
    focal_length_mm: float = 25.0,
    calibration: LensCalibration | None = None,
    sensor: Sensor | None = None,
    timing: Timing | None = None,
) -> SimCamera:
    """A simulated camera; every option has the paper rig's value as default."""
    conditions = Conditions(str(scene), distance_cm, illuminance_lux, target_size_cm=target_size_cm)
    if background_cm is not None:
        conditions = replace(conditions, background_cm=background_cm)
    if sensor is None:
        sensor = Sensor(bit_depth=bit_depth)
    optics = Optics(
        focal_length_mm, f_number, sensor.pixel_pitch_um, calibration or LensCalibration()
    )
    world = SimWorld(conditions, optics, sensor, width, height, seed)
    return SimCamera(world, timing)


def open_sim_lens(camera: Camera | None = None) -> SimLens:
    if not isinstance(camera, SimCamera):
        raise ConfigError(
            "the sim lens needs the sim camera: open_lens('sim', camera=open_camera('sim'))"
        )
    return SimLens(camera)


def sim_rig(**options: Any) -> tuple[SimCamera, SimLens]:
    """The simulated camera (``open_sim_camera`` options) and its lens, as a pair."""
    camera = open_sim_camera(**options)
    return camera, SimLens(camera)


class DrivenSimLens(SimLens):
    """A real lens in front of the simulated camera (``--camera sim --lens varioptic-serial``):
    every move goes to the device, and the simulator renders with the voltage the device
    reports, so the frames follow the real lens and a dead lens stops the episode."""

    def __init__(self, camera: SimCamera, device: Lens) -> None:
        if device.unit != "V":
            raise ConfigError(
                f"the sim camera renders a liquid lens in volts; the {device.name} lens moves in "
                f"{device.unit}: use it with its own camera"
            )
        super().__init__(camera)
        self.device = device
        self.name = device.name

    @property
    def focus_range(self) -> Range:
        return self.device.focus_range

    @property
    def focus(self) -> float:
        return self.device.focus

    @property
    def safe_focus(self) -> float:
        return self.device.safe_focus

    @property
    def settle_s(self) -> float:
        return self.device.settle_s

    def set_focus(self, value: float) -> float:
        before = self.device.focus
        reported = self.device.set_focus(value)
        if reported != before:
            clock = self.camera.clock
            clock.lens_moves += 1
            self.settled_at_s = clock.now_s + self.settle_s
        return reported

    def park(self) -> None:
        # The camera's close resets the render state only; Rig.park moves the device.
        self.settled_at_s = 0.0

    def close(self) -> None:
        self.device.close()

    def info(self) -> dict[str, Any]:
        extra = getattr(self.device, "info", None)
        return {"drives_sim_camera": True, **(extra() if callable(extra) else {})}
