"""Consistent Overhead Byte Stuffing (COBS): the framing of EKD frames on a serial line.

COBS rewrites a frame so that it contains no 0x00 byte; a single 0x00 then marks the end of each
frame, so a receiver that lost bytes resynchronises at the next 0x00 (PROTOCOL.md, Transports).
Overhead: one byte per started run of 254 non-zero bytes (at most ⌈n/254⌉ + 1 bytes).
"""

from __future__ import annotations

from emotionkd.firmware_bridge.errors import ProtocolError


def cobs_encode(data: bytes) -> bytes:
    """COBS-encode ``data`` (no trailing delimiter; the caller appends ``b"\\x00"``)."""
    out = bytearray()
    code_at = 0
    out.append(0)  # placeholder for the first code byte
    code = 1
    for byte in data:
        if byte == 0:
            out[code_at] = code
            code_at = len(out)
            out.append(0)
            code = 1
            continue
        out.append(byte)
        code += 1
        if code == 0xFF:  # a full block of 254 data bytes: start a new block, no implied zero
            out[code_at] = code
            code_at = len(out)
            out.append(0)
            code = 1
    out[code_at] = code
    return bytes(out)


def cobs_decode(data: bytes | bytearray | memoryview) -> bytes:
    """Decode one COBS block sequence (without its 0x00 delimiter).

    Raises:
        ProtocolError: a zero byte inside the data, or a code byte that points past the end.
    """
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        code = data[i]
        if code == 0:
            raise ProtocolError("COBS: unexpected 0x00 inside a frame")
        end = i + code
        if end > n:
            raise ProtocolError("COBS: block runs past the end of the frame")
        block = data[i + 1 : end]
        if 0 in block:
            raise ProtocolError("COBS: unexpected 0x00 inside a block")
        out += block
        i = end
        if code < 0xFF and i < n:
            out.append(0)
    return bytes(out)


def cobs_block_boundaries(data: bytes | bytearray) -> list[int]:
    """Offsets where a COBS code byte starts, walking the code chain from offset 0.

    A frame whose 0x00 delimiter was corrupted merges with the next frame; the first frame's code
    chain still ends exactly where its delimiter was, so these offsets are the only places where
    a lost delimiter can be (used by the serial decoder to split such a merge).
    """
    points = []
    i, n = 0, len(data)
    while i < n:
        points.append(i)
        code = data[i]
        if code == 0:
            break
        i += code
    return points


def max_encoded_size(raw_size: int) -> int:
    """Largest COBS encoding of ``raw_size`` bytes (without delimiter)."""
    return raw_size + raw_size // 254 + 1


__all__ = ["cobs_block_boundaries", "cobs_decode", "cobs_encode", "max_encoded_size"]
