"""EKD v1 frames: every PROTOCOL.md test vector, CRC, COBS, payload round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emotionkd.firmware_bridge.cobs import cobs_decode, cobs_encode
from emotionkd.firmware_bridge.ekd import (
    Ack,
    Command,
    FrameError,
    FrameType,
    Hello,
    Opcode,
    Status,
    command_frame,
    control_frame,
    crc16,
    data_frame,
    decode_frame,
    serial_encode,
)
from emotionkd.firmware_bridge.errors import ProtocolError


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


# (frame, serial form or None) exactly as in PROTOCOL.md
DATA_NS = h("10 00 07 00 e8 03 00 00 04 02 a0 25 26 00 b0 4c 26 00 00 00 00 00 c0 73 26 00 50 d6")
DATA_NS_SERIAL = h("02 10 02 07 03 e8 03 01 06 04 02 a0 25 26 04 b0 4c 26 01 01 01 01 04 c0 73 26 03 50 d6 00")
DATA_ADC = h("10 02 ff ff f0 ff ff ff 03 20 00 02 00 00 ff 03 0c 0a")
DATA_ADC_SERIAL = h("0b 10 02 ff ff f0 ff ff ff 03 20 02 02 01 05 ff 03 0c 0a 00")
HELLO = h("12 00 00 00 40 e2 01 00 20 00 02 01 00 f4 01 00 0c 01 0a d7 23 3c 00 00 00 bf 45 4b 44 2d "
          "47 53 52 2d 30 31 00 00 00 00 00 00 4f 2d")
CMD_START = h("13 00 01 00 00 00 00 00 01 00 01 fa 35")
CMD_START_SERIAL = h("02 13 02 01 01 01 01 01 02 01 04 01 fa 35 00")
ACK_START = h("14 00 01 00 88 13 00 00 02 00 01 00 c3 03")


def test_crc_check_value() -> None:
    assert crc16(b"123456789") == 0x29B1


def test_vector_data_nanosiemens() -> None:
    assert data_frame(7, 1000, [2500000, 2510000, 0, 2520000], 2) == DATA_NS
    assert serial_encode(DATA_NS) == DATA_NS_SERIAL
    frame = decode_frame(DATA_NS)
    assert (frame.frame_type, frame.seq, frame.t0, frame.n, frame.sample_format) == (FrameType.DATA, 7, 1000, 4, 2)


def test_vector_data_adc_with_flags_and_range() -> None:
    assert data_frame(0xFFFF, 0xFFFFFFF0, [512, 0, 1023], 0, flags=0x02, gain_range=2) == DATA_ADC
    assert serial_encode(DATA_ADC) == DATA_ADC_SERIAL
    frame = decode_frame(DATA_ADC)
    assert frame.flags == 0x02 and frame.gain_range == 2


def test_vector_hello() -> None:
    hello = Hello(0x0102, 128000, 12, 1, 0.01, -0.5, "EKD-GSR-01")
    assert control_frame(FrameType.HELLO, 0, 123456, hello.encode()) == HELLO
    decoded = Hello.decode(decode_frame(HELLO).payload)
    assert decoded.name == "EKD-GSR-01" and decoded.rate_hz == 128.0 and decoded.adc_bits == 12
    assert decoded.gain == pytest.approx(0.01) and decoded.offset == -0.5


def test_vector_cmd_and_ack() -> None:
    assert command_frame(Opcode.START, 1) == CMD_START
    assert serial_encode(CMD_START) == CMD_START_SERIAL
    assert control_frame(FrameType.ACK, 1, 5000, Ack(Opcode.START, 0).encode()) == ACK_START
    assert Ack.decode(decode_frame(ACK_START).payload) == Ack(1, 0)


def test_command_arguments_round_trip() -> None:
    for cmd in (Command(Opcode.SET_RATE, 256000), Command(Opcode.TIMESYNC, 2**40 + 5), Command(Opcode.STOP)):
        assert Command.decode(cmd.encode()) == cmd
    assert Status.decode(Status(3700, 0x02, b"\x01\x02").encode()) == Status(3700, 0x02, b"\x01\x02")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (DATA_NS[:-1] + bytes([DATA_NS[-1] ^ 1]), "crc"),
        (b"\x10\x00", "length"),
    ],
)
def test_rejections_name_the_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(FrameError) as info:
        decode_frame(raw)
    assert info.value.reason == reason


def test_wrong_version_and_length_are_rejected() -> None:
    body = bytearray(DATA_NS[:-2])
    body[0] = 0x20  # version 2
    with pytest.raises(FrameError, match="version") as info:
        decode_frame(bytes(body) + crc16(bytes(body)).to_bytes(2, "little"))
    assert info.value.reason == "version"
    body = bytearray(DATA_NS[:-2])
    body[8] = 5  # n says 5 samples, payload has 4
    with pytest.raises(FrameError) as info:
        decode_frame(bytes(body) + crc16(bytes(body)).to_bytes(2, "little"))
    assert info.value.reason == "length"


def test_encoder_refuses_bad_fields() -> None:
    with pytest.raises(ProtocolError):
        data_frame(0, 0, [70000], 0)  # does not fit u16
    with pytest.raises(ProtocolError):
        data_frame(0, 0, [1] * 256, 2)
    with pytest.raises(ProtocolError):
        Hello(1, 1, 1, 1, 1.0, 0.0, "x" * 17).encode()


@given(st.binary(max_size=700))
def test_cobs_round_trip_has_no_zero(data: bytes) -> None:
    encoded = cobs_encode(data)
    assert 0 not in encoded
    assert cobs_decode(encoded) == data
    assert len(encoded) <= len(data) + len(data) // 254 + 1


def test_cobs_rejects_inconsistent_chain() -> None:
    with pytest.raises(ProtocolError):
        cobs_decode(b"\x05\x01")
    with pytest.raises(ProtocolError):
        cobs_decode(b"\x02\x00")
