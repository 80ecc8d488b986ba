"""``dasha devices`` and ``dasha capture`` through the real command line."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from dasha.cli import app, register_all
from dasha.hardware.recording import Recording
from dasha.hardware.varioptic_emulator import VariopticEmulator

register_all()
runner = CliRunner()


def test_devices_lists_or_says_none_found() -> None:
    result = runner.invoke(app, ["devices", "--json"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert set(found) == {"cameras", "serial_ports", "notes"}
    text = runner.invoke(app, ["devices"])
    assert text.exit_code == 0
    assert ("Cameras" in text.stdout) and ("Serial ports" in text.stdout)


def test_capture_on_sim_camera_with_the_serial_lens_then_resume(tmp_path: Path) -> None:
    out = tmp_path / "rec"
    with VariopticEmulator() as emu:
        args = ["capture", "--out", str(out), "--exposures", "5000,20000", "--focus", "40:41:0.5",
                "--lens", "varioptic-serial", "--port", emu.port, "--set", "lens.timeout_s=0.2",
                "--set", "camera.scene=motorcycle", "--condition", "illuminance_lux=100", "--json"]  # fmt: skip
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout.splitlines()[-1]) == {
            "out": str(out), "frames": 6, "complete": True,
        }  # fmt: skip
        moves = len(emu.focus_history_v)
        again = runner.invoke(app, args)  # everything on disk: nothing retaken
        assert again.exit_code == 0
        assert set(emu.focus_history_v[moves:]) <= {24.0}  # only parking
        assert emu.focus_v == 24.0
    recording = Recording.open(out)
    assert recording.manifest["lens"]["backend"] == "varioptic-serial"
    assert recording.manifest["conditions"] == {"illuminance_lux": 100}


def test_capture_errors_are_one_line(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["capture", "--out", str(tmp_path / "x"), "--exposures", "5000", "--focus", "40",
              "--lens", "varioptic-serial"],
    )  # fmt: skip
    assert result.exit_code == 2 and "needs a port" in result.output
    result = runner.invoke(
        app, ["capture", "--out", str(tmp_path / "x"), "--exposures", "5000", "--focus", "80"]
    )
    assert result.exit_code == 2 and "outside the device limits" in result.output
