"""An emulated Varioptic driver board on a pseudo-terminal, for tests and demos without the lens.

The emulator owns the master side of a pty and answers in a background thread; the
lens backend opens the slave side (``emulator.port``) with ``serial.Serial`` like a real
``/dev/ttyUSB0``, so the real serial code path runs. Knobs inject the failures a real
USB-UART link shows: NACKs, corrupted checksums, silence and a disconnect (the pty
master is closed, as when the cable is pulled)::

    with VariopticEmulator() as emu:
        lens = open_varioptic_lens(port=emu.port)
        emu.nack_requests = 1        # the next request is refused
        lens.set_focus(45.0)         # retried, then confirmed by reading it back
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import tty
from types import TracebackType

from dasha.hardware import varioptic_protocol as vp


class VariopticEmulator:
    """A driver board with 256 byte registers, answering on a pty (POSIX only)."""

    def __init__(self, *, focus_v: float = vp.FOCUS_MIN_V, fault: int = 0) -> None:
        self.registers = bytearray(256)
        self.registers[vp.REG_FOCUS_LOW : vp.REG_FOCUS_HIGH + 1] = vp.focus_bytes(focus_v)
        self.registers[vp.REG_FAULT] = fault
        # Failure injection: each counts down by one per request it affects.
        self.nack_requests = 0
        self.corrupt_replies = 0
        self.silent_requests = 0
        self.requests: list[vp.Request] = []
        self.focus_history_v: list[float] = []
        self._master, slave = os.openpty()
        tty.setraw(slave)
        self.port = os.ttyname(slave)
        self._slave = slave  # kept open so the pty survives between client opens
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, name="varioptic-emulator", daemon=True)
        self._thread.start()

    @property
    def focus_v(self) -> float:
        low, high = self.registers[vp.REG_FOCUS_LOW], self.registers[vp.REG_FOCUS_HIGH]
        return vp.code_to_focus(low | high << 8)

    def disconnect(self) -> None:
        """Pull the cable: close the pty master, so the client's reads and writes fail."""
        self._stop.set()
        self._thread.join(timeout=2.0)
        with self._lock:
            if self._master >= 0:
                os.close(self._master)
                self._master = -1

    def close(self) -> None:
        self.disconnect()
        if self._slave >= 0:
            os.close(self._slave)
            self._slave = -1

    def __enter__(self) -> VariopticEmulator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _serve(self) -> None:
        buffer = b""
        while not self._stop.is_set():
            ready, _, _ = select.select([self._master], [], [], 0.02)
            if not ready:
                continue
            try:
                buffer += os.read(self._master, 1024)
            except OSError:  # no client has the slave open yet: nothing to read
                continue
            buffer = self._handle(buffer)

    def _handle(self, buffer: bytes) -> bytes:
        """Answer every complete request in ``buffer``; return the unused tail."""
        while buffer:
            try:
                parsed = vp.decode_request(buffer)
            except vp.ProtocolError:
                return b""  # garbage on the line: drop it, answer nothing, like the board
            if parsed is None:
                return buffer
            request, used = parsed
            buffer = buffer[used:]
            self.requests.append(request)
            if self.silent_requests > 0:
                self.silent_requests -= 1
                continue
            self._send(self._answer(request))
        return buffer

    def _answer(self, request: vp.Request) -> vp.Reply:
        last = request.register + request.count
        if self.nack_requests > 0 or last > len(self.registers):
            self.nack_requests = max(0, self.nack_requests - 1)
            return vp.Reply(request.cmd, vp.NACK)
        if request.cmd == vp.READ:
            return vp.Reply(vp.READ, vp.ACK, bytes(self.registers[request.register : last]))
        if not self._write(request.register, request.data):
            return vp.Reply(vp.WRITE, vp.NACK)
        return vp.Reply(vp.WRITE, vp.ACK)

    def _write(self, register: int, data: bytes) -> bool:
        """Apply a write as the board would; False (-> NACK) for a refused one."""
        if register <= vp.REG_FAULT < register + len(data):
            return False  # the fault register is read-only
        candidate = bytearray(self.registers)
        candidate[register : register + len(data)] = data
        code = candidate[vp.REG_FOCUS_LOW] | candidate[vp.REG_FOCUS_HIGH] << 8
        if code > vp.FOCUS_MAX_CODE:
            return False
        self.registers[:] = candidate
        if register <= vp.REG_FOCUS_HIGH:
            self.focus_history_v.append(self.focus_v)
        return True

    def _send(self, reply: vp.Reply) -> None:
        frame = bytearray(vp.encode_reply(reply))
        if self.corrupt_replies > 0:
            self.corrupt_replies -= 1
            frame[-1] ^= 0xFF
        with self._lock, contextlib.suppress(OSError):
            if self._master >= 0:
                os.write(self._master, bytes(frame))
