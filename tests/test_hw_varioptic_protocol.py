"""The Varioptic frame codec: round trips, known frames, and a fuzzed decoder."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dasha.errors import HardwareError
from dasha.hardware import varioptic_protocol as vp


def test_known_frames() -> None:
    # 02 38 00 02 -> sum 0x3C; 45 V = 21000 = 0x5208 -> low 0x08, high 0x52
    assert vp.encode_read(0x00, 2) == bytes([0x02, 0x38, 0x00, 0x02, 0x3C])
    assert vp.focus_bytes(45.0) == bytes([0x08, 0x52])
    frame = vp.encode_write(0x00, vp.focus_bytes(45.0))
    assert frame[:-1] == bytes([0x02, 0x37, 0x00, 0x02, 0x08, 0x52])
    assert frame[-1] == (0x02 + 0x37 + 0x02 + 0x08 + 0x52) % 256
    assert vp.focus_to_code(70.0) == vp.FOCUS_MAX_CODE == 0xB3B0


@pytest.mark.parametrize("focus_v", [23.99, 70.01, float("nan")])
def test_focus_outside_the_board_range_is_refused(focus_v: float) -> None:
    with pytest.raises(vp.ProtocolError):
        vp.focus_to_code(focus_v)


@given(st.integers(0, 255), st.binary(min_size=1, max_size=vp.MAX_COUNT))
def test_request_round_trip(register: int, data: bytes) -> None:
    frame = vp.encode_write(register, data)
    assert vp.decode_request(frame + b"\x02") == (
        vp.Request(vp.WRITE, register, len(data), data),
        len(frame),
    )
    for cut in range(len(frame)):
        assert vp.decode_request(frame[:cut]) is None


@given(st.integers(1, vp.MAX_COUNT), st.data())
def test_read_reply_round_trip(count: int, draw: st.DataObject) -> None:
    data = draw.draw(st.binary(min_size=count, max_size=count))
    request = vp.Request(vp.READ, 0, count)
    frame = vp.encode_reply(vp.Reply(vp.READ, vp.ACK, data))
    assert vp.decode_reply(frame, request) == (vp.Reply(vp.READ, vp.ACK, data), len(frame))
    nack = vp.encode_reply(vp.Reply(vp.READ, vp.NACK))
    assert vp.decode_reply(nack, request) == (vp.Reply(vp.READ, vp.NACK), 4)


@given(st.binary(min_size=4, max_size=20), st.integers(0, 19))
def test_a_flipped_byte_is_always_detected(frame_data: bytes, where: int) -> None:
    frame = vp.encode_write(0, frame_data[: vp.MAX_COUNT])
    broken = bytearray(frame)
    broken[where % len(frame)] ^= 0x01
    try:
        parsed = vp.decode_request(bytes(broken))
    except vp.ProtocolError:
        return
    assert parsed is None or parsed[0] != vp.decode_request(frame)[0]  # type: ignore[index]


@given(
    st.binary(max_size=40),
    st.sampled_from([vp.READ, vp.WRITE]),
    st.integers(0, 255),
    st.integers(1, vp.MAX_COUNT),
)
def test_decoders_raise_only_protocol_errors(
    buffer: bytes, cmd: int, register: int, count: int
) -> None:
    for decode in (
        lambda: vp.decode_reply(buffer, vp.Request(cmd, register, count)),
        lambda: vp.decode_request(buffer),
    ):
        try:
            result = decode()
        except vp.ProtocolError as exc:
            assert isinstance(exc, HardwareError)
            continue
        if result is not None:
            assert 0 < result[1] <= len(buffer)


def test_faults_are_named() -> None:
    assert vp.describe_faults(0) == []
    assert vp.describe_faults(0x05) == ["driver overload", "thermal shutdown"]
    assert vp.describe_faults(0x80) == ["unknown fault bits 0x80"]
