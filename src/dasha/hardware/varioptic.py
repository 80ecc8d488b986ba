"""The Corning Varioptic liquid lens through its USB-M driver board's serial port (pyserial).

Every request is retried a bounded number of times when the board NACKs it, answers
with a bad checksum or garbage, or stays silent; a focus write is confirmed by reading
the focus registers back. A vanished port (cable pulled) raises ``DisconnectedError``
at once, without retries. ``close`` parks the lens at its safe voltage first.
The frame format is in ``varioptic_protocol``; ``varioptic_emulator`` is a fake board.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from dasha.errors import ConfigError, DisconnectedError, HardwareError, require
from dasha.hardware import varioptic_protocol as vp
from dasha.hardware.base import Camera, Lens, Range

BAUDRATE = 57600  # 8N1, the USB-M board's default
SETTLE_S = 0.05  # liquid lens response time is a few tens of ms (datasheet order of magnitude)


class VariopticSerialLens(Lens):
    """A Varioptic lens on a serial port, focus in volts (24..70 V)."""

    name = "varioptic-serial"
    unit = "V"

    def __init__(
        self,
        port: str,
        *,
        baudrate: int = BAUDRATE,
        timeout_s: float = 0.5,
        retries: int = 3,
        settle_s: float = SETTLE_S,
        focus_min_v: float = vp.FOCUS_MIN_V,
        focus_max_v: float = vp.FOCUS_MAX_V,
        safe_focus_v: float | None = None,
    ) -> None:
        serial = require("serial", "serial")
        device = Range(vp.FOCUS_MIN_V, vp.FOCUS_MAX_V, "V")
        self._range = Range(
            device.check(focus_min_v, "focus_min_v"), device.check(focus_max_v, "focus_max_v"), "V"
        )
        self._safe_v = self._range.check(
            self._range.min if safe_focus_v is None else safe_focus_v, "safe_focus_v"
        )
        self.port_name = port
        self.timeout_s = float(timeout_s)
        self.retries = int(retries)
        self._settle_s = float(settle_s)
        try:
            self._port: Any = serial.Serial(
                port, baudrate, timeout=self.timeout_s, write_timeout=self.timeout_s
            )
        except (serial.SerialException, OSError) as exc:
            raise HardwareError(
                f"cannot open the lens port {port!r} ({exc}); check `dasha devices`, and on "
                "Linux that you are in the 'dialout' group"
            ) from exc
        self.last_focus = float("nan")  # the last voltage the board confirmed
        self._serial_errors = _link_errors(serial)
        try:
            self._prepare()
        except BaseException:
            self._port.close()
            raise

    # -- Lens interface -------------------------------------------------------------
    @property
    def focus_range(self) -> Range:
        return self._range

    @property
    def safe_focus(self) -> float:
        return self._safe_v

    @property
    def settle_s(self) -> float:
        return self._settle_s

    @property
    def focus(self) -> float:
        return vp.code_to_focus(self._read_focus_code())

    def set_focus(self, value: float) -> float:
        focus_v = self._range.check(value, "focus_v")
        code = vp.focus_to_code(focus_v)
        self.write_registers(vp.REG_FOCUS_LOW, code.to_bytes(2, "little"))
        readback = self._read_focus_code()
        if readback != code:
            faults = ", ".join(self.faults()) or "no fault flagged"
            raise HardwareError(
                f"lens on {self.port_name} reads {vp.code_to_focus(readback):.3f} V after being "
                f"set to {focus_v:.3f} V ({faults})"
            )
        self.last_focus = vp.code_to_focus(code)
        self._check_state()
        return self.last_focus

    def close(self) -> None:
        if not self._port.is_open:
            return
        try:
            with contextlib.suppress(HardwareError):  # parking is best effort on a dead link
                self.write_registers(vp.REG_FOCUS_LOW, vp.focus_bytes(self._safe_v))
        finally:
            self._port.close()

    # -- board access ---------------------------------------------------------------
    def faults(self) -> list[str]:
        """The fault register, decoded (an empty list when all is well)."""
        return vp.describe_faults(self.read_registers(vp.REG_FAULT, 1)[0])

    def read_registers(self, register: int, count: int) -> bytes:
        request = vp.Request(vp.READ, register, count)
        return self._transact(vp.encode_read(register, count), request).data

    def write_registers(self, register: int, data: bytes) -> None:
        request = vp.Request(vp.WRITE, register, len(data), data)
        self._transact(vp.encode_write(register, data), request)

    def info(self) -> dict[str, Any]:
        return {"backend": self.name, "port": self.port_name, "unit": self.unit}

    def _check_state(self) -> None:
        """After every move: the board may have left register control (standby, analog) or
        flagged a fault (thermal shutdown, over-voltage) since the last one; either stops
        the episode here instead of grabbing frames through a dead lens."""
        status = self.read_registers(vp.REG_MODE, vp.REG_FAULT - vp.REG_MODE + 1)
        faults = vp.describe_faults(status[vp.REG_FAULT - vp.REG_MODE])
        if faults:
            raise HardwareError(
                f"lens driver on {self.port_name} reports: {', '.join(faults)} "
                f"(last set to {self.last_focus:.3f} V); the episode is stopped"
            )
        if status[0] & (vp.MODE_STANDBY | vp.MODE_ANALOG):
            raise HardwareError(
                f"lens driver on {self.port_name} left register control (mode register "
                f"0x{status[0]:02x}: standby or analog input); the episode is stopped"
            )

    def _prepare(self) -> None:
        """Put the board under register control and refuse to drive a faulty one."""
        mode = self.read_registers(vp.REG_MODE, 1)[0]
        if mode & (vp.MODE_STANDBY | vp.MODE_ANALOG):
            self.write_registers(vp.REG_MODE, bytes([0]))  # active, focus from registers
        faults = self.faults()
        if faults:
            raise HardwareError(f"lens driver on {self.port_name} reports: {', '.join(faults)}")

    def _read_focus_code(self) -> int:
        return int.from_bytes(self.read_registers(vp.REG_FOCUS_LOW, 2), "little")

    def _transact(self, frame: bytes, request: vp.Request) -> vp.Reply:
        """Send ``frame`` and return the ACKed reply, retrying NACKs, garbage and silence."""
        if not self._port.is_open:
            raise HardwareError(f"lens on {self.port_name} is closed")
        problems: list[str] = []
        for _ in range(1 + max(0, self.retries)):
            try:
                self._port.reset_input_buffer()  # drop the tail of a failed exchange
                self._port.write(frame)
                reply = self._read_reply(request)
            except self._serial_errors as exc:
                raise DisconnectedError(
                    f"lost the lens on {self.port_name} ({exc}); reconnect it and start again"
                ) from exc
            except vp.ProtocolError as exc:
                problems.append(str(exc))
                continue
            if reply is None:
                problems.append(f"no answer within {self.timeout_s:g} s")
            elif reply.status == vp.NACK:
                problems.append("request refused (NACK)")
            else:
                return reply
        raise HardwareError(
            f"lens on {self.port_name} failed {len(problems)} tries of {frame.hex(' ')}: "
            f"{'; '.join(problems)}; is it powered and on this port?"
        )

    def _read_reply(self, request: vp.Request) -> vp.Reply | None:
        buffer = b""
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            chunk = self._port.read(max(1, self._port.in_waiting))
            if not chunk:
                continue
            buffer += chunk
            parsed = vp.decode_reply(buffer, request)
            if parsed is not None:
                return parsed[0]
        return None


def _link_errors(serial: Any) -> tuple[type[BaseException], ...]:
    """What a dead serial link raises: pyserial's own error, OS errors, and on POSIX the
    ``termios.error`` that pyserial lets through from a flush on a vanished device."""
    errors: list[type[BaseException]] = [serial.SerialException, OSError]
    with contextlib.suppress(ImportError):
        import termios

        errors.append(termios.error)
    return tuple(errors)


def open_varioptic_lens(
    camera: Camera | None = None, *, port: str | None = None, **options: Any
) -> VariopticSerialLens:
    """Open the lens on ``port`` (e.g. ``/dev/ttyUSB0``, ``COM3``); ``camera`` is unused."""
    if not port:
        raise ConfigError(
            "the varioptic-serial lens needs a port, e.g. --port /dev/ttyUSB0 "
            "(`dasha devices` lists serial ports; cp210x ones are likely the lens board)"
        )
    return VariopticSerialLens(port, **options)
