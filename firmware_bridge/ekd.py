"""The EKD wire protocol, version 1 (PROTOCOL.md): frames, CRC, payloads, serial framing.

Pure functions and frozen dataclasses; no I/O. The sample decoders that turn frames into
:class:`~emotionkd.firmware_bridge.samples.SampleBlock` live in ``ekd_decoder``.

Frame layout (little-endian)::

    ver_type u8 | flags u8 | seq u16 | t0 u32 | n u8 | fmt u8 | payload … | crc u16

CRC-16/CCITT-FALSE over every byte before it (``binascii.crc_hqx(data, 0xFFFF)``).
"""

from __future__ import annotations

import binascii
import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from emotionkd.firmware_bridge.cobs import cobs_encode
from emotionkd.firmware_bridge.errors import ProtocolError

VERSION: Final = 1
#: sampling rate before a HELLO says the device's own (Hz; the device registry reads it)
DEFAULT_RATE_HZ: Final = 128.0
HEADER_SIZE: Final = 10
CRC_SIZE: Final = 2
MIN_FRAME_SIZE: Final = HEADER_SIZE + CRC_SIZE
#: the largest frame: 255 samples of 4 bytes
MAX_FRAME_SIZE: Final = HEADER_SIZE + 255 * 4 + CRC_SIZE

_HEADER: Final = struct.Struct("<BBHIBB")

SERVICE_UUID: Final = "049649f8-6032-41a8-8c68-803ad9b53d29"
DATA_CHAR_UUID: Final = "049649f9-6032-41a8-8c68-803ad9b53d29"
CONTROL_CHAR_UUID: Final = "049649fa-6032-41a8-8c68-803ad9b53d29"
NUS_SERVICE_UUID: Final = "6e400001-b5a3-f393-e0a9-e50e24dcca9e"
NUS_RX_CHAR_UUID: Final = "6e400002-b5a3-f393-e0a9-e50e24dcca9e"  # host writes
NUS_TX_CHAR_UUID: Final = "6e400003-b5a3-f393-e0a9-e50e24dcca9e"  # device notifies


class FrameType(IntEnum):
    DATA = 0
    STATUS = 1
    HELLO = 2
    CMD = 3
    ACK = 4


class SampleFormat(IntEnum):
    """Low nibble of ``fmt`` in DATA frames."""

    U16_ADC = 0
    U24_ADC = 1
    U32_NANOSIEMENS = 2


SAMPLE_SIZE: Final[dict[int, int]] = {
    SampleFormat.U16_ADC: 2,
    SampleFormat.U24_ADC: 3,
    SampleFormat.U32_NANOSIEMENS: 4,
}


class Opcode(IntEnum):
    START = 0x01
    STOP = 0x02
    HELLO_REQUEST = 0x03
    SET_RATE = 0x04
    TIMESYNC = 0x05


class FrameFlag(IntEnum):
    SATURATED = 0x01
    ELECTRODE_OFF = 0x02
    SETTLING = 0x04
    CLOCK_RESYNC = 0x08
    DEVICE_OVERFLOW = 0x10


class FrameError(ProtocolError):
    """A frame was rejected.

    Attributes:
        reason: ``"crc"``, ``"version"``, ``"length"``, ``"type"`` or ``"format"`` (the decoders
            count rejections by reason).
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Frame:
    """One EKD frame (header fields plus raw payload)."""

    frame_type: FrameType
    seq: int
    t0: int
    n: int
    fmt: int
    payload: bytes
    flags: int = 0

    @property
    def sample_format(self) -> int:
        return self.fmt & 0x0F

    @property
    def gain_range(self) -> int:
        return self.fmt >> 4


def crc16(data: bytes | bytearray | memoryview) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF); ``crc16(b"123456789") == 0x29B1``."""
    return binascii.crc_hqx(data, 0xFFFF)


def encode_frame(frame: Frame) -> bytes:
    """The frame's bytes including the CRC (validates field ranges).

    Raises:
        ProtocolError: a field is out of range or ``n``/``fmt`` disagree with the payload.
    """
    if not (0 <= frame.seq <= 0xFFFF and 0 <= frame.t0 <= 0xFFFFFFFF and 0 <= frame.flags <= 0xFF):
        raise ProtocolError("EKD frame: seq, t0 or flags out of range (u16, u32, u8)")
    if not (0 <= frame.n <= 255 and 0 <= frame.fmt <= 255):
        raise ProtocolError("EKD frame: n and fmt must fit one byte")
    expected = _payload_size(int(frame.frame_type), frame.n, frame.fmt)
    if expected is None or expected != len(frame.payload):
        raise ProtocolError(
            f"EKD frame: payload of {len(frame.payload)} bytes does not match n={frame.n}, "
            f"fmt={frame.fmt:#04x} for type {FrameType(frame.frame_type).name}"
        )
    head = _HEADER.pack((VERSION << 4) | int(frame.frame_type), frame.flags, frame.seq, frame.t0,
                        frame.n, frame.fmt)
    body = head + frame.payload
    return body + struct.pack("<H", crc16(body))


def _payload_size(frame_type: int, n: int, fmt: int) -> int | None:
    if frame_type == FrameType.DATA:
        size = SAMPLE_SIZE.get(fmt & 0x0F)
        return None if size is None else n * size
    return n


def frame_size(header: bytes | bytearray) -> int | None:
    """Total size (header + payload + CRC) a frame with this 10-byte ``header`` must have, or
    None when the header cannot start a version-1 frame (version, type or sample format)."""
    if len(header) < HEADER_SIZE:
        return None
    ver_type, _flags, _seq, _t0, n, fmt = _HEADER.unpack_from(header, 0)
    kind = ver_type & 0x0F
    if ver_type >> 4 != VERSION or kind > FrameType.ACK:
        return None
    payload = _payload_size(kind, n, fmt)
    return None if payload is None else payload + MIN_FRAME_SIZE


def decode_frame(raw: bytes | bytearray | memoryview) -> Frame:
    """Parse and check one frame (CRC, version, type, length).

    Raises:
        FrameError: with ``reason`` naming the check that failed.
    """
    size = len(raw)
    if size < MIN_FRAME_SIZE:
        raise FrameError(f"EKD frame of {size} bytes is shorter than the {MIN_FRAME_SIZE}-byte minimum", "length")
    body = raw[:-CRC_SIZE]
    (crc,) = struct.unpack_from("<H", raw, size - CRC_SIZE)
    if crc16(body) != crc:
        raise FrameError("EKD frame CRC mismatch", "crc")
    ver_type, flags, seq, t0, n, fmt = _HEADER.unpack_from(raw, 0)
    if ver_type >> 4 != VERSION:
        raise FrameError(f"EKD frame version {ver_type >> 4}, this host speaks version {VERSION}", "version")
    kind = ver_type & 0x0F
    if kind > FrameType.ACK:
        raise FrameError(f"EKD frame type {kind} is unknown", "type")
    expected = _payload_size(kind, n, fmt)
    if expected is None:
        raise FrameError(f"EKD DATA sample format {fmt & 0x0F} is unknown", "format")
    if expected != size - MIN_FRAME_SIZE:
        raise FrameError(
            f"EKD frame length {size} disagrees with n={n}, fmt={fmt:#04x} (expected {expected + MIN_FRAME_SIZE})",
            "length",
        )
    return Frame(FrameType(kind), seq, t0, n, fmt, bytes(raw[HEADER_SIZE : size - CRC_SIZE]), flags)


def serial_encode(frame_bytes: bytes) -> bytes:
    """Serial form of an encoded frame: COBS followed by one 0x00 delimiter."""
    return cobs_encode(frame_bytes) + b"\x00"


# --- payloads -------------------------------------------------------------------------------

_HELLO: Final = struct.Struct("<HIBBff16s")
HELLO_SIZE: Final = _HELLO.size  # 32


class CalibrationKind(IntEnum):
    NANOSIEMENS = 0  # samples are already nS
    LINEAR = 1  # µS = gain · adc + offset


@dataclass(frozen=True)
class Hello:
    """HELLO payload: who the device is and how to convert its samples.

    Attributes:
        firmware_version: u16, e.g. 0x0102 for 1.2.
        rate_mhz: sampling rate in millihertz.
        adc_bits: ADC resolution (saturation is ``2**adc_bits - 1``).
        calibration: :class:`CalibrationKind`.
        gain, offset: linear calibration (µS = gain · adc + offset), float32 on the wire.
        name: device name (≤ 16 UTF-8 bytes).
    """

    firmware_version: int
    rate_mhz: int
    adc_bits: int
    calibration: int
    gain: float
    offset: float
    name: str

    @property
    def rate_hz(self) -> float:
        return self.rate_mhz / 1000.0

    def encode(self) -> bytes:
        name = self.name.encode("utf-8")
        if len(name) > 16:
            raise ProtocolError(f"HELLO device name {self.name!r} is longer than 16 UTF-8 bytes")
        return _HELLO.pack(self.firmware_version, self.rate_mhz, self.adc_bits, self.calibration,
                           self.gain, self.offset, name.ljust(16, b"\x00"))

    @classmethod
    def decode(cls, payload: bytes) -> Hello:
        if len(payload) < HELLO_SIZE:
            raise FrameError(f"HELLO payload of {len(payload)} bytes, expected {HELLO_SIZE}", "length")
        fw, rate, bits, kind, gain, offset, name = _HELLO.unpack_from(payload, 0)
        return cls(fw, rate, bits, kind, gain, offset,
                   name.rstrip(b"\x00").decode("utf-8", errors="replace"))


@dataclass(frozen=True)
class Status:
    """STATUS payload: battery (mV), flags (as the frame flags) and optional vendor bytes."""

    battery_mv: int
    flags: int
    vendor: bytes = b""

    def encode(self) -> bytes:
        return struct.pack("<HB", self.battery_mv, self.flags) + self.vendor

    @classmethod
    def decode(cls, payload: bytes) -> Status:
        if len(payload) < 3:
            raise FrameError(f"STATUS payload of {len(payload)} bytes, expected at least 3", "length")
        mv, flags = struct.unpack_from("<HB", payload, 0)
        return cls(mv, flags, bytes(payload[3:]))


@dataclass(frozen=True)
class Command:
    """CMD payload: opcode and its argument (u32 mHz for SET_RATE, u64 µs for TIMESYNC)."""

    opcode: int
    argument: int | None = None

    def encode(self) -> bytes:
        if self.opcode == Opcode.SET_RATE:
            return struct.pack("<BI", self.opcode, self.argument or 0)
        if self.opcode == Opcode.TIMESYNC:
            return struct.pack("<BQ", self.opcode, self.argument or 0)
        return bytes([self.opcode])

    @classmethod
    def decode(cls, payload: bytes) -> Command:
        if not payload:
            raise FrameError("CMD frame without opcode", "length")
        op = payload[0]
        if op == Opcode.SET_RATE and len(payload) >= 5:
            return cls(op, struct.unpack_from("<I", payload, 1)[0])
        if op == Opcode.TIMESYNC and len(payload) >= 9:
            return cls(op, struct.unpack_from("<Q", payload, 1)[0])
        return cls(op)


@dataclass(frozen=True)
class Ack:
    """ACK payload: the opcode acknowledged and a status (0 = ok)."""

    opcode: int
    status: int = 0

    def encode(self) -> bytes:
        return bytes([self.opcode, self.status])

    @classmethod
    def decode(cls, payload: bytes) -> Ack:
        if len(payload) < 2:
            raise FrameError(f"ACK payload of {len(payload)} bytes, expected 2", "length")
        return cls(payload[0], payload[1])


# --- builders (used by emulators, tests and the host's command path) ------------------------


def data_frame(seq: int, t0: int, samples: list[int] | tuple[int, ...], sample_format: int,
               *, flags: int = 0, gain_range: int = 0) -> bytes:
    """Encoded DATA frame (bytes incl. CRC) from integer samples of ``sample_format``."""
    fmt = int(sample_format)
    size = SAMPLE_SIZE.get(fmt)
    if size is None:
        raise ProtocolError(f"unknown EKD sample format {sample_format}")
    if len(samples) > 255:
        raise ProtocolError(f"a DATA frame carries at most 255 samples, got {len(samples)}")
    limit = 1 << (8 * size)
    payload = bytearray()
    for value in samples:
        v = int(value)
        if not 0 <= v < limit:
            raise ProtocolError(f"sample {v} does not fit {size} bytes")
        payload += v.to_bytes(size, "little")
    return encode_frame(Frame(FrameType.DATA, seq & 0xFFFF, t0 & 0xFFFFFFFF, len(samples),
                              (gain_range << 4) | fmt, bytes(payload), flags))


def control_frame(frame_type: FrameType, seq: int, device_us: int, payload: bytes, *,
                  flags: int = 0) -> bytes:
    """Encoded non-DATA frame (HELLO, STATUS, CMD, ACK)."""
    if len(payload) > 255:
        raise ProtocolError("EKD payload longer than 255 bytes")
    return encode_frame(Frame(frame_type, seq & 0xFFFF, device_us & 0xFFFFFFFF, len(payload), 0,
                              payload, flags))


def command_frame(opcode: int, seq: int, argument: int | None = None, device_us: int = 0) -> bytes:
    """Encoded CMD frame (host → device)."""
    return control_frame(FrameType.CMD, seq, device_us, Command(opcode, argument).encode())


__all__ = [
    "CONTROL_CHAR_UUID",
    "DATA_CHAR_UUID",
    "HELLO_SIZE",
    "MAX_FRAME_SIZE",
    "frame_size",
    "NUS_RX_CHAR_UUID",
    "NUS_SERVICE_UUID",
    "NUS_TX_CHAR_UUID",
    "SERVICE_UUID",
    "Ack",
    "CalibrationKind",
    "Command",
    "Frame",
    "FrameError",
    "FrameFlag",
    "FrameType",
    "Hello",
    "Opcode",
    "SampleFormat",
    "Status",
    "command_frame",
    "control_frame",
    "crc16",
    "data_frame",
    "decode_frame",
    "encode_frame",
    "serial_encode",
]
