"""The Varioptic USB-M driver board's serial protocol, as pure functions (no I/O).

Requests (host -> board), one frame each::

    0x02 | cmd | register | count | data[count] (writes only) | sum

``cmd`` is 0x37 (write ``count`` registers from ``register`` on) or 0x38 (read ``count``
registers). ``sum`` is the 8-bit sum of *every preceding byte of the frame, STX
included*, modulo 256 (see ``checksum``, the only place that computes it).

Replies (board -> host). The board answers every request with a frame that starts like
the request and carries a status byte, ACK 0x06 or NACK 0x15::

    write:  0x02 | 0x37 | ACK or NACK | sum                         (4 bytes)
    read:   0x02 | 0x38 | ACK | data[count] | sum                  (4 + count bytes)
            0x02 | 0x38 | NACK | sum                               (refused, 4 bytes)

The write reply matches a public driver for this board; the read reply's status byte
is our design choice (it keeps a refused read and a data byte of 0x15 apart). Both reply
layouts live only in ``encode_reply`` / ``decode_reply``: if a board answers differently,
those two functions are what to change.

Registers: focus = (V - 24) * 1000 as 16 bits, low byte in 0x00 and high byte in 0x01,
at most 0xB3B0 (70 V); mode 0x03 (bit 0 stand-by, bit 1 analog input); fault 0x0A
(bit 0 driver overload, bit 1 driver not responding, bit 2 thermal shutdown).

The decoders raise only ``ProtocolError`` (a ``HardwareError``), whatever the bytes:
``tests/test_hw_varioptic_protocol.py`` fuzzes them.
"""

from __future__ import annotations

from dataclasses import dataclass

from dasha.errors import HardwareError

STX = 0x02
WRITE = 0x37
READ = 0x38
ACK = 0x06
NACK = 0x15

REG_FOCUS_LOW = 0x00
REG_FOCUS_HIGH = 0x01
REG_MODE = 0x03
REG_FAULT = 0x0A

MODE_STANDBY = 0x01
MODE_ANALOG = 0x02
FAULT_BITS = {
    0x01: "driver overload",
    0x02: "driver not responding on I2C",
    0x04: "thermal shutdown",
}

FOCUS_MIN_V = 24.0
FOCUS_MAX_V = 70.0
FOCUS_MAX_CODE = 0xB3B0  # 46000 = (70 V - 24 V) * 1000
MAX_COUNT = 16  # the board has few registers; a longer frame is garbage, not a request


class ProtocolError(HardwareError):
    """Bytes from the lens that are not a valid frame (retrying may help)."""


class ChecksumError(ProtocolError):
    """A frame whose last byte is not the sum of the others."""


class NackError(ProtocolError):
    """The board refused a request (answered NACK)."""


@dataclass(frozen=True)
class Request:
    cmd: int
    register: int
    count: int
    data: bytes = b""


@dataclass(frozen=True)
class Reply:
    cmd: int
    status: int
    data: bytes = b""


def checksum(frame_without_sum: bytes) -> int:
    """The 8-bit sum of all bytes before the checksum (STX included), modulo 256."""
    return sum(frame_without_sum) & 0xFF


def _seal(body: bytes) -> bytes:
    return body + bytes([checksum(body)])


def _check_byte(value: int, name: str) -> int:
    if not 0 <= value <= 0xFF:
        raise ProtocolError(f"{name}={value} does not fit in one byte")
    return value


def encode_write(register: int, data: bytes) -> bytes:
    if not 1 <= len(data) <= MAX_COUNT:
        raise ProtocolError(f"a write carries 1..{MAX_COUNT} bytes, not {len(data)}")
    return _seal(bytes([STX, WRITE, _check_byte(register, "register"), len(data)]) + data)


def encode_read(register: int, count: int = 1) -> bytes:
    if not 1 <= count <= MAX_COUNT:
        raise ProtocolError(f"a read asks for 1..{MAX_COUNT} registers, not {count}")
    return _seal(bytes([STX, READ, _check_byte(register, "register"), count]))


def encode_reply(reply: Reply) -> bytes:
    """A board's answer (used by the emulator; the layout is in the module docstring)."""
    return _seal(bytes([STX, reply.cmd, reply.status]) + reply.data)


def _split(buffer: bytes, length: int) -> tuple[bytes, int] | None:
    """The first ``length`` bytes as a checked frame, or None if more bytes are needed."""
    if len(buffer) < length:
        return None
    frame = bytes(buffer[:length])
    if frame[-1] != checksum(frame[:-1]):
        raise ChecksumError(
            f"bad checksum in {frame.hex(' ')}: expected {checksum(frame[:-1]):#04x}"
        )
    return frame, length


def decode_request(buffer: bytes) -> tuple[Request, int] | None:
    """Parse one request at the start of ``buffer``: (request, bytes used), or None if incomplete."""
    if not buffer:
        return None
    if buffer[0] != STX:
        raise ProtocolError(f"a frame starts with 0x02, not {buffer[0]:#04x}")
    if len(buffer) < 4:
        return None
    cmd, register, count = buffer[1], buffer[2], buffer[3]
    if cmd not in (READ, WRITE):
        raise ProtocolError(f"unknown command {cmd:#04x}")
    if not 1 <= count <= MAX_COUNT:
        raise ProtocolError(f"register count {count} outside 1..{MAX_COUNT}")
    split = _split(buffer, 5 + (count if cmd == WRITE else 0))
    if split is None:
        return None
    frame, used = split
    return Request(cmd, register, count, frame[4:-1] if cmd == WRITE else b""), used


def decode_reply(buffer: bytes, request: Request) -> tuple[Reply, int] | None:
    """Parse the board's answer to ``request``: (reply, bytes used), or None if incomplete.

    A NACK is returned as a reply (status NACK), not raised: the caller decides to retry.
    """
    if not buffer:
        return None
    if buffer[0] != STX:
        raise ProtocolError(f"a reply starts with 0x02, not {buffer[0]:#04x}")
    if len(buffer) < 3:
        return None
    cmd, status = buffer[1], buffer[2]
    if cmd != request.cmd:
        raise ProtocolError(f"reply to command {cmd:#04x}, expected {request.cmd:#04x}")
    if status not in (ACK, NACK):
        raise ProtocolError(f"status byte {status:#04x} is neither ACK nor NACK")
    length = 4 + (request.count if cmd == READ and status == ACK else 0)
    split = _split(buffer, length)
    if split is None:
        return None
    frame, used = split
    return Reply(cmd, status, frame[3:-1]), used


def focus_to_code(focus_v: float) -> int:
    """Volts to the 16-bit register value, rounded to the board's 1 mV step."""
    focus_v = float(focus_v)
    if not FOCUS_MIN_V - 0.0005 <= focus_v < FOCUS_MAX_V + 0.0005:  # also refuses NaN
        raise ProtocolError(f"focus {focus_v} V outside {FOCUS_MIN_V:g}..{FOCUS_MAX_V:g} V")
    return min(max(round((focus_v - FOCUS_MIN_V) * 1000), 0), FOCUS_MAX_CODE)


def code_to_focus(code: int) -> float:
    return FOCUS_MIN_V + code / 1000.0


def focus_bytes(focus_v: float) -> bytes:
    """The data of one write to registers 0x00 (low byte) and 0x01 (high byte)."""
    return focus_to_code(focus_v).to_bytes(2, "little")


def describe_faults(fault: int) -> list[str]:
    """Names of the bits set in the fault register (unknown bits are named by value)."""
    names = [name for bit, name in FAULT_BITS.items() if fault & bit]
    unknown = fault & ~sum(FAULT_BITS)
    return [*names, f"unknown fault bits {unknown:#04x}"] if unknown else names
