"""Faults of the serial lens during a real episode (``dasha focus`` on the simulated camera,
driving the emulated driver board on a pseudo-terminal): the fault stops the episode, the
lens is parked and the error says why; a failed park is reported with the last voltage."""

from __future__ import annotations

from typer.testing import CliRunner

from dasha.cli import app, register_all
from dasha.hardware import varioptic_protocol as vp
from dasha.hardware.varioptic_emulator import VariopticEmulator

register_all()
runner = CliRunner()


def _after_first_move(emu: VariopticEmulator, action) -> None:
    """Run ``action(emu)`` once the first lens move away from the factory 24 V lands."""
    write = emu._write

    def hooked(register: int, data: bytes) -> bool:
        ok = write(register, data)
        if ok and register == vp.REG_FOCUS_LOW and emu.focus_v != vp.FOCUS_MIN_V:
            action(emu)
        return ok

    emu._write = hooked  # type: ignore[method-assign]


def test_the_serial_lens_drives_the_sim_camera() -> None:
    with VariopticEmulator() as emu:
        result = runner.invoke(app, ["focus", "--lens", "varioptic-serial", "--port", emu.port])
        assert result.exit_code == 0, result.output
        moved = [v for v in emu.focus_history_v if v != vp.FOCUS_MIN_V]
        assert moved, "the episode never moved the serial lens"
        assert f"lens {moved[-1]:.2f} V" in result.output  # the voltage the board confirmed
        assert emu.focus_v == vp.FOCUS_MIN_V  # parked


def test_a_thermal_shutdown_mid_episode_stops_it_and_parks() -> None:
    with VariopticEmulator() as emu:
        _after_first_move(emu, lambda e: e.registers.__setitem__(vp.REG_FAULT, 0x04))
        result = runner.invoke(app, ["focus", "--lens", "varioptic-serial", "--port", emu.port])
        assert result.exit_code == 2, result.output
        assert "thermal shutdown" in result.output and "Traceback" not in result.output
        assert len([v for v in emu.focus_history_v if v != vp.FOCUS_MIN_V]) == 1  # stopped
        assert emu.focus_v == vp.FOCUS_MIN_V


def test_a_board_that_drops_to_standby_stops_the_episode() -> None:
    with VariopticEmulator() as emu:
        _after_first_move(emu, lambda e: e.registers.__setitem__(vp.REG_MODE, vp.MODE_STANDBY))
        result = runner.invoke(app, ["focus", "--lens", "varioptic-serial", "--port", emu.port])
        assert result.exit_code == 2, result.output
        assert "left register control" in result.output


def test_a_disconnect_mid_episode_reports_the_failed_park() -> None:
    with VariopticEmulator() as emu:
        args = ["focus", "--lens", "varioptic-serial", "--port", emu.port, "--set",
                "lens.timeout_s=0.1", "--set", "lens.retries=0"]  # fmt: skip
        _after_first_move(emu, lambda e: e._stop.set())  # the board goes silent
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        text = " ".join(result.output.split())
        assert "FAILED to park" in text and "last confirmed at" in text
        assert "Traceback" not in result.output
