"""Rig safety, grid capture (atomic, resumable) and replay, on real code paths: the pylon
camera emulator and the pty-emulated Varioptic board."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

os.environ.setdefault("PYLON_CAMEMU", "2")  # before pylon's transport layer factory exists
from pypylon import pylon  # noqa: F401 - after PYLON_CAMEMU is set

from dasha.errors import ConfigError, DisconnectedError
from dasha.hardware import open_camera, open_lens
from dasha.hardware.recording import Recording, capture_grid
from dasha.hardware.session import Rig, open_rig
from dasha.hardware.varioptic_emulator import VariopticEmulator

EXPOSURES = [1000.0, 4000.0]
FOCUS = [30.0, 40.0, 50.0]


@pytest.fixture
def emu() -> Iterator[VariopticEmulator]:
    with VariopticEmulator() as emulator:
        yield emulator


def real_rig(emu: VariopticEmulator) -> Rig:
    return open_rig(
        "basler",
        "varioptic-serial",
        camera_options={"roi": (64, 48), "pixel_format": "Mono12"},
        lens_options={"port": emu.port, "timeout_s": 0.2},
    )


def no_wait(_: float) -> None:
    pass


def test_rig_parks_the_lens_and_closes_on_ctrl_c(emu: VariopticEmulator) -> None:
    with pytest.raises(KeyboardInterrupt), real_rig(emu) as rig:
        rig.lens.set_focus(55.0)
        assert emu.focus_v == 55.0
        raise KeyboardInterrupt
    assert emu.focus_v == 24.0  # parked
    assert rig.camera._camera is None  # type: ignore[attr-defined]  # stopped and closed


def test_a_lens_disconnect_mid_capture_keeps_the_frames_taken(
    emu: VariopticEmulator, tmp_path: Path
) -> None:
    def pull_cable(done: int, total: int) -> None:
        if done == 2:
            emu.disconnect()

    out = tmp_path / "rec"
    with pytest.raises(DisconnectedError, match="lost the lens"), real_rig(emu) as rig:
        capture_grid(rig, out, EXPOSURES, FOCUS, sleep=no_wait, progress=pull_cable)
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(manifest["frames"]) == ["e000_f000", "e000_f001"]
    assert not manifest["complete"]
    assert not list(out.rglob("*.tmp"))  # no half-written file


def test_capture_resume_and_replay(emu: VariopticEmulator, tmp_path: Path) -> None:
    out = tmp_path / "rec"
    seen: list[tuple[int, int]] = []

    def interrupt(done: int, total: int) -> None:
        seen.append((done, total))
        if done == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), real_rig(emu) as rig:
        capture_grid(rig, out, EXPOSURES, FOCUS, sleep=no_wait, progress=interrupt,
                     conditions={"illuminance_lux": 100})  # fmt: skip
    assert seen[-1] == (4, 6) and emu.focus_v == 24.0
    writes_before = len(emu.focus_history_v)
    with real_rig(emu) as rig:
        capture_grid(rig, out, EXPOSURES, FOCUS, sleep=no_wait)
    # only the two missing frames were taken, then the lens was parked
    moves = emu.focus_history_v[writes_before:]
    assert moves[:2] == [40.0, 50.0] and set(moves[2:]) == {24.0}

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] and len(manifest["frames"]) == 6
    assert manifest["focus_unit"] == "V" and manifest["bit_depth"] == 12
    assert manifest["camera"]["backend"] == "basler" and manifest["lens"]["port"] == emu.port
    assert manifest["conditions"] == {"illuminance_lux": 100}
    stored = cv2.imread(str(out / "frames" / "e001_f002.png"), cv2.IMREAD_UNCHANGED)
    assert stored.dtype == np.uint16 and stored.shape == (48, 64)

    with pytest.raises(ConfigError, match="another grid"), real_rig(emu) as rig:
        capture_grid(rig, out, [2000.0], FOCUS, sleep=no_wait)

    cam = open_camera("replay", path=str(out))
    lens = open_lens("replay", camera=cam)
    assert lens.unit == "V" and (lens.focus_range.min, lens.focus_range.max) == (30.0, 50.0)
    assert cam.set_exposure_us(3000) == 4000.0  # nearest on a log scale
    assert lens.set_focus(48.0) == 50.0
    frame = cam.grab()
    assert np.array_equal(frame.image, stored) and frame.bit_depth == 12
    assert frame.meta["recording"]["key"] == "e001_f002"
    assert frame.timestamp_s == pytest.approx(0.05 + 0.004)  # settle + exposure, simulated
    with pytest.raises(ConfigError, match="outside the device limits"):
        lens.set_focus(60.0)
    with pytest.raises(ConfigError, match="needs the replay camera"):
        open_lens("replay")


def test_recording_refuses_foreign_directories(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(ConfigError, match="not a readable DASHA recording"):
        Recording.open(tmp_path)


def test_sim_capture_then_replay_round_trip(sim_rig: tuple, tmp_path: Path) -> None:
    camera, lens = sim_rig
    out = tmp_path / "sim-rec"
    with Rig(camera, lens) as rig:
        capture_grid(rig, out, [5000.0, 20000.0], [40.0, 41.0, 42.0],
                     conditions={"scene": "motorcycle", "distance_cm": 170})  # fmt: skip
    recording = Recording.open(out)
    assert recording.complete and recording.focus_unit == "V"
    first = recording.frame(0, 0)
    assert "focus_v" in first.meta  # the simulator's ground truth travels with the frame

    replay = open_camera("replay", path=out)
    replay_lens = open_lens("replay", camera=replay)
    replay.set_exposure_us(20000.0)
    replay_lens.set_focus(41.2)
    frame = replay.grab()
    assert frame.meta["recording"]["key"] == "e001_f001" and frame.meta["focus_v"] == 41.0
    assert np.array_equal(frame.image, recording.frame(1, 1).image)
    # brighter with the longer exposure, as recorded
    assert recording.frame(1, 1).image.mean() > recording.frame(0, 1).image.mean()
