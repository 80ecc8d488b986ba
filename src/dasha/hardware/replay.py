"""The ``replay`` backend: a camera and lens that serve frames from a recording.

Record a grid once on the real rig (``dasha capture``), then train and test offline:
``set_exposure_us`` / ``set_focus`` snap to the nearest recorded value (and return it,
as a real device returns the value it actually uses), and ``grab`` returns the recorded
frame at the current pair. Time runs on a simulated clock: each grab advances it by the
exposure time, each lens move by the recorded lens's settle time. Deterministic, so the
``dasha/Replay-v0`` env built on it can be seeded.

    cam = open_camera("replay", path="recording/")
    lens = open_lens("replay", camera=cam)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dasha.errors import ConfigError
from dasha.hardware.base import Camera, Frame, Lens, Range, Roi
from dasha.hardware.recording import Recording


class ReplayCamera(Camera):
    name = "replay"

    def __init__(self, recording: Recording, *, exposure_us: float | None = None) -> None:
        self.recording = recording
        self._exposures = recording.exposures_us
        self._focus_values = recording.focus
        self._e = 0
        self._f = 0
        self._grabs = 0
        self.clock_s = 0.0
        first = recording.frame(*recording.nearest(self._exposures[0], self._focus_values[0]))
        self._gain_db = first.gain_db
        self._shape = first.image.shape
        self.set_exposure_us(self._exposures[0] if exposure_us is None else exposure_us)

    @property
    def exposure_range_us(self) -> Range:
        return Range(float(self._exposures.min()), float(self._exposures.max()), "us")

    @property
    def gain_range_db(self) -> Range:
        return Range(self._gain_db, self._gain_db, "dB")

    @property
    def exposure_us(self) -> float:
        return float(self._exposures[self._e])

    def set_exposure_us(self, exposure_us: float) -> float:
        value = self.exposure_range_us.check(exposure_us, "exposure_us")
        self._e = self.recording.nearest(value, self.focus)[0]
        return self.exposure_us

    @property
    def gain_db(self) -> float:
        return self._gain_db

    def set_gain_db(self, gain_db: float) -> float:
        return self.gain_range_db.check(gain_db, "gain_db")

    @property
    def roi(self) -> Roi:
        return Roi(int(self._shape[1]), int(self._shape[0]))

    @property
    def focus(self) -> float:
        return float(self._focus_values[self._f])

    def move_focus(self, focus: float, settle_s: float) -> float:
        """Called by the replay lens: snap to the nearest recorded focus."""
        self._f = self.recording.nearest(self.exposure_us, focus)[1]
        self.clock_s += settle_s
        return self.focus

    def grab(self, timeout_s: float = 5.0) -> Frame:
        i, j = self.recording.nearest(self.exposure_us, self.focus)
        self._grabs += 1
        self.clock_s += self.exposure_us * 1e-6
        recorded = self.recording.frame(i, j, index=self._grabs)
        meta = {**recorded.meta, "recorded_timestamp_s": recorded.timestamp_s}
        return Frame(
            recorded.image, recorded.bit_depth, recorded.exposure_us, recorded.gain_db,
            self.clock_s, self._grabs, meta,
        )  # fmt: skip

    def info(self) -> dict[str, Any]:
        return {"backend": self.name, "path": str(self.recording.path)}


class ReplayLens(Lens):
    name = "replay"

    def __init__(self, camera: ReplayCamera) -> None:
        self._camera = camera
        lens = camera.recording.manifest.get("lens", {})
        self.unit = camera.recording.focus_unit
        self._settle_s = float(lens.get("settle_s", 0.0))
        values = camera.recording.focus
        self._range = Range(float(values.min()), float(values.max()), self.unit)
        self._safe = self._range.clamp(lens.get("safe_focus", self._range.min))

    @property
    def focus_range(self) -> Range:
        return self._range

    @property
    def safe_focus(self) -> float:
        return self._safe

    @property
    def settle_s(self) -> float:
        return self._settle_s

    @property
    def focus(self) -> float:
        return self._camera.focus

    def set_focus(self, value: float) -> float:
        return self._camera.move_focus(self._range.check(value, "focus"), self._settle_s)

    def info(self) -> dict[str, Any]:
        return {"backend": self.name, "unit": self.unit}


def open_replay_camera(*, path: str | Path, exposure_us: float | None = None) -> ReplayCamera:
    """Serve the recording in directory ``path`` (made by ``dasha capture``)."""
    return ReplayCamera(Recording.open(path), exposure_us=exposure_us)


def open_replay_lens(camera: Camera | None = None) -> ReplayLens:
    """The focus axis of a replay camera (open that first: ``open_lens("replay", camera=cam)``)."""
    if not isinstance(camera, ReplayCamera):
        raise ConfigError("the replay lens needs the replay camera: --camera replay --lens replay")
    return ReplayLens(camera)
