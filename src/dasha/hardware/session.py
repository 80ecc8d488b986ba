"""A camera and a lens used together, left safe whatever happens.

``Rig`` is the one place that knows how to stop a rig: whether the block ends normally,
by an error, a disconnect or Ctrl-C (``KeyboardInterrupt``), the lens is parked at its
safe value, then the lens and the camera are closed (which stops grabbing), and the
original exception goes on up unchanged::

    with open_rig("basler", "varioptic-serial", lens_options={"port": "/dev/ttyUSB0"}) as rig:
        rig.lens.set_focus(45.0)
        frame = rig.camera.grab()
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from dasha.errors import DashaError, HardwareError
from dasha.hardware import open_camera, open_lens
from dasha.hardware.base import Camera, Lens


class Rig:
    """A camera and its lens; ``close`` (also on any exception) parks the lens first."""

    def __init__(self, camera: Camera, lens: Lens) -> None:
        self.camera = camera
        self.lens = lens
        self._closed = False

    def park(self) -> None:
        """Move the lens to its safe value; if that fails, raise a ``HardwareError`` that says
        so with the last voltage the lens confirmed (the lens may still be driven there)."""
        try:
            self.lens.set_focus(self.lens.safe_focus)
        except DashaError as exc:
            last = getattr(getattr(self.lens, "device", self.lens), "last_focus", None)
            where = f"{last:.3f} {self.lens.unit}" if last is not None else "unknown"
            raise HardwareError(
                f"FAILED to park the {self.lens.name} lens at {self.lens.safe_focus:g} "
                f"{self.lens.unit} ({exc}); it was last confirmed at {where}: check the lens "
                "and its driver before the next run"
            ) from exc

    def close(self) -> None:
        """Park the lens, close it, close the camera. Every step runs even if one fails;
        the first failure is raised once all are done."""
        if self._closed:
            return
        self._closed = True
        errors: list[BaseException] = []
        for step in (self.park, self.lens.close, self.camera.close):
            try:
                step()
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]

    def info(self) -> dict[str, Any]:
        return {"camera": device_info(self.camera), "lens": device_info(self.lens)}

    def __enter__(self) -> Rig:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.close()
            return
        # Already failing: clean up and let the original exception be the one raised, but a
        # failed park must not pass unseen (the lens may still be driven).
        try:
            self.close()
        except Exception as cleanup:
            sys.stderr.write(f"warning: {cleanup}\n")
            exc.add_note(str(cleanup))


def open_rig(
    camera: str,
    lens: str,
    *,
    camera_options: Mapping[str, Any] | None = None,
    lens_options: Mapping[str, Any] | None = None,
) -> Rig:
    """Open a camera backend, then a lens backend given that camera; if the lens fails to
    open, the camera is closed again."""
    cam = open_camera(camera, **dict(camera_options or {}))
    try:
        return attach_lens(cam, lens, lens_options)
    except BaseException:
        cam.close()
        raise


def attach_lens(camera: Camera, lens: str, lens_options: Mapping[str, Any] | None = None) -> Rig:
    """A rig of an open camera and the lens backend ``lens``: a real lens on the simulated
    camera drives it (the frames follow the voltage the device reports)."""
    from dasha.hardware.sim import DrivenSimLens, SimCamera

    device = open_lens(lens, camera=camera, **dict(lens_options or {}))
    if isinstance(camera, SimCamera) and device is not camera.lens:
        try:
            device = DrivenSimLens(camera, device)
        except BaseException:
            device.close()
            raise
    return Rig(camera, device)


def device_info(device: Camera | Lens) -> dict[str, Any]:
    """What a recording or a report says about a device: backend, ranges, units, extras."""
    info: dict[str, Any] = {"backend": device.name, "type": type(device).__name__}
    if isinstance(device, Camera):
        for key, rng in (
            ("exposure_range_us", device.exposure_range_us),
            ("gain_range_db", device.gain_range_db),
        ):
            info[key] = [rng.min, rng.max]
    else:
        info.update(
            unit=device.unit,
            focus_range=[device.focus_range.min, device.focus_range.max],
            safe_focus=device.safe_focus,
            settle_s=device.settle_s,
        )
    extra = getattr(device, "info", None)
    if callable(extra):
        info.update(extra())
    return info
