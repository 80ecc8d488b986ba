"""The serial lens backend against the emulated board on a pseudo-terminal (real pyserial I/O)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dasha.errors import ConfigError, DisconnectedError, HardwareError
from dasha.hardware import open_lens
from dasha.hardware import varioptic_protocol as vp
from dasha.hardware.varioptic import VariopticSerialLens
from dasha.hardware.varioptic_emulator import VariopticEmulator


@pytest.fixture
def emu() -> Iterator[VariopticEmulator]:
    with VariopticEmulator() as emulator:
        yield emulator


def open_fast(emu: VariopticEmulator, **options: object) -> VariopticSerialLens:
    lens = open_lens("varioptic-serial", port=emu.port, timeout_s=0.2, **options)
    assert isinstance(lens, VariopticSerialLens)
    return lens


def test_set_focus_writes_both_registers_and_reads_back(emu: VariopticEmulator) -> None:
    with open_fast(emu) as lens:
        assert lens.unit == "V" and lens.focus_range.min == 24.0 and lens.focus_range.max == 70.0
        assert lens.set_focus(45.1234) == pytest.approx(45.123)
        assert emu.focus_v == pytest.approx(45.123)
        assert lens.focus == pytest.approx(45.123)
        writes = [r for r in emu.requests if r.cmd == vp.WRITE and r.register == 0]
        assert writes[-1].data == vp.focus_bytes(45.123)
    # closing parks the lens at the safe (lowest) voltage
    assert emu.focus_v == 24.0


def test_out_of_range_is_refused_before_anything_is_sent(emu: VariopticEmulator) -> None:
    with open_fast(emu, focus_max_v=60.0) as lens:
        sent = len(emu.requests)
        with pytest.raises(ConfigError, match="outside the device limits"):
            lens.set_focus(65.0)
        assert len(emu.requests) == sent
        assert lens.set_focus(lens.focus_range.clamp(65.0)) == 60.0


def test_puts_the_board_under_register_control(emu: VariopticEmulator) -> None:
    emu.registers[vp.REG_MODE] = vp.MODE_ANALOG | vp.MODE_STANDBY
    with open_fast(emu):
        assert emu.registers[vp.REG_MODE] == 0


def test_a_faulty_driver_is_refused(emu: VariopticEmulator) -> None:
    emu.registers[vp.REG_FAULT] = 0x04
    with pytest.raises(HardwareError, match="thermal shutdown"):
        open_fast(emu)


@pytest.mark.parametrize("knob", ["nack_requests", "corrupt_replies", "silent_requests"])
def test_transient_failures_are_retried(emu: VariopticEmulator, knob: str) -> None:
    with open_fast(emu, retries=3) as lens:
        setattr(emu, knob, 2)
        assert lens.set_focus(50.0) == 50.0
        assert emu.focus_v == 50.0


@pytest.mark.parametrize("knob", ["nack_requests", "corrupt_replies", "silent_requests"])
def test_persistent_failures_give_up_after_the_retries(emu: VariopticEmulator, knob: str) -> None:
    with open_fast(emu, retries=2) as lens:
        setattr(emu, knob, 100)
        with pytest.raises(HardwareError, match="failed 3 tries") as info:
            lens.set_focus(50.0)
        assert not isinstance(info.value, DisconnectedError)
        setattr(emu, knob, 0)


def test_a_disconnect_is_a_clear_error_and_close_still_works(emu: VariopticEmulator) -> None:
    lens = open_fast(emu)
    lens.set_focus(40.0)
    emu.disconnect()
    with pytest.raises(DisconnectedError, match="lost the lens"):
        lens.set_focus(41.0)
    lens.close()
    lens.close()


def test_missing_port_and_bad_port_are_config_and_hardware_errors() -> None:
    with pytest.raises(ConfigError, match="needs a port"):
        open_lens("varioptic-serial")
    with pytest.raises(HardwareError, match="cannot open the lens port"):
        open_lens("varioptic-serial", port="/dev/does-not-exist")
