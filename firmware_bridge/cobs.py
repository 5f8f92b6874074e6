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


def cobs_decode_head(data: bytes | bytearray, start: int, size: int) -> bytes | None:
    """The first ``size`` decoded bytes of the COBS run starting at ``data[start]``, or None when
    the code chain breaks (a 0x00 code, a block past the end) before ``size`` bytes."""
    out = bytearray()
    i, n = start, len(data)
    while len(out) < size:
        if i >= n:
            return None
        code = data[i]
        if code == 0 or i + code > n:
            return None
        out += data[i + 1 : i + code]
        i += code
        if code < 0xFF:
            out.append(0)  # the implied zero (dropped below if it was the run's last block)
    return bytes(out[:size])


def cobs_run_end(data: bytes | bytearray, start: int, decoded_size: int) -> int | None:
    """Where a COBS run starting at ``data[start]`` that decodes to exactly ``decoded_size``
    bytes ends (exclusive offset), or None when the code chain cannot end there.

    A frame whose delimiter was deleted or corrupted, or that follows garbage without a 0x00,
    still has an intact code chain; walking it for the length its header announces finds the
    frame's end inside a merged run (used by the serial decoder to resynchronise).
    """
    decoded = 0
    i, n = start, len(data)
    while i < n:
        code = data[i]
        if code == 0 or i + code > n:
            return None
        decoded += code - 1
        i += code
        if decoded > decoded_size:
            return None
        if decoded == decoded_size and code < 0xFF:
            return i
        if code < 0xFF:
            decoded += 1  # implied zero between blocks
    return None


def max_encoded_size(raw_size: int) -> int:
    """Largest COBS encoding of ``raw_size`` bytes (without delimiter)."""
    return raw_size + raw_size // 254 + 1


__all__ = ["cobs_decode", "cobs_decode_head", "cobs_encode", "cobs_run_end", "max_encoded_size"]
