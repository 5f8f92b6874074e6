"""BITalino (serial or Bluetooth SPP at 115200 baud): frames, CRC-4, EDA transfer function.

Facts (BITalino API and datasheets):

* Commands: start = ``0x01 | (analog channel mask << 2)`` (A1…A6 = bits 0…5 of the mask),
  sampling rate = ``0x03 | (code << 6)`` with codes 0…3 for 1, 10, 100, 1000 Hz, stop = ``0x00``
  (in live mode).
* Frames of fixed length: ``⌈(12 + 10·n)/8⌉`` bytes for n ≤ 4 channels, ``⌈(52 + 6·(n−4))/8⌉``
  above (3 bytes for one channel). The last byte is the 4-bit sequence number (high nibble) and
  a CRC-4 (x⁴+x+1, low nibble) over the frame with that nibble zeroed; the byte before holds the
  4 digital inputs and the top of the first channel; channels are 10-bit (the 5th and 6th 6-bit),
  packed from the end of the frame.
* EDA sensor ((r)evolution): ``µS = (ADC/2^bits · 3.3) / 0.132``.

There is no sync byte: the decoder locks where ``lock_frames`` consecutive frames pass the CRC
with consecutive sequence numbers, sliding one byte at a time otherwise. While locked, a frame
with a bad CRC is dropped only if the frame after it is good (a flipped bit); two bad frames in a
row (a lost byte) drop the lock. Sequence gaps (mod 16) are filled with NaN.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from emotionkd.firmware_bridge.decoding import DEFAULT_MAX_GAP_S, Decoder, DecoderCounters
from emotionkd.firmware_bridge.errors import ConfigError
from emotionkd.firmware_bridge.samples import SampleBlock, SampleFlag

RATE_CODES: Final[dict[int, int]] = {1: 0, 10: 1, 100: 2, 1000: 3}
#: sampling rate the host asks for when the URL gives none (Hz; the device registry reads it)
DEFAULT_RATE_HZ: Final = 100.0
EDA_VCC: Final = 3.3
EDA_GAIN: Final = 0.132
#: EDA is usually wired to A3 on BITalino (r)evolution boards
DEFAULT_EDA_CHANNEL: Final = 2


def frame_size(n_channels: int) -> int:
    """Bytes per frame for ``n_channels`` analog channels (1…6)."""
    if not 1 <= n_channels <= 6:
        raise ConfigError(f"BITalino acquires 1 to 6 analog channels, got {n_channels}")
    bits = 12 + 10 * n_channels if n_channels <= 4 else 52 + 6 * (n_channels - 4)
    return (bits + 7) // 8


def _crc_step(reg: int, byte: int) -> int:
    """The CRC-4 (x⁴+x+1) register after shifting ``byte`` through it, most significant bit first."""
    x = reg
    for bit in range(7, -1, -1):
        x <<= 1
        if x & 0x10:
            x ^= 0x03
        x ^= (byte >> bit) & 1
    return x & 0x0F


# The register after a byte depends only on (register, byte): a 16×256 table turns the bit loop
# into one lookup per byte (the decoder checks every offset while sliding).
_CRC_TABLE: Final = [[_crc_step(reg, byte) for byte in range(256)] for reg in range(16)]


def _crc_at(buf: bytes | bytearray, pos: int, size: int) -> int:
    """CRC-4 of the ``size``-byte frame at ``pos``, the last byte's low nibble (the CRC's own
    place) taken as zero."""
    if size <= 0:
        return 0
    x = 0
    end = pos + size - 1
    for i in range(pos, end):
        x = _CRC_TABLE[x][buf[i]]
    return int(_CRC_TABLE[x][buf[end] & 0xF0])


def crc4(frame: bytes | bytearray) -> int:
    """CRC-4 (x⁴+x+1) of a frame, computed with the last byte's low nibble taken as zero."""
    return _crc_at(frame, 0, len(frame))


def _crc_ok(buf: bytes | bytearray, pos: int, size: int) -> bool:
    return _crc_at(buf, pos, size) == buf[pos + size - 1] & 0x0F


def unpack_channels(frame: bytes | bytearray, n_channels: int) -> list[int]:
    """The analog channel values of one frame (A-channels in acquisition order)."""
    b = frame
    values = [((b[-2] & 0x0F) << 6) | (b[-3] >> 2)]
    if n_channels > 1:
        values.append(((b[-3] & 0x03) << 8) | b[-4])
    if n_channels > 2:
        values.append((b[-5] << 2) | (b[-6] >> 6))
    if n_channels > 3:
        values.append(((b[-6] & 0x3F) << 4) | (b[-7] >> 4))
    if n_channels > 4:
        values.append(((b[-7] & 0x0F) << 2) | (b[-8] >> 6))
    if n_channels > 5:
        values.append(b[-8] & 0x3F)
    return values


def pack_frame(values: list[int], seq: int, digital: int = 0) -> bytes:
    """One frame (inverse of :func:`unpack_channels`, with sequence and CRC): for the emulator."""
    n = len(values)
    b = bytearray(frame_size(n))
    v = list(values) + [0] * (6 - n)
    b[-1] = (seq & 0x0F) << 4
    b[-2] = ((digital & 0x0F) << 4) | ((v[0] >> 6) & 0x0F)
    b[-3] = (v[0] & 0x3F) << 2
    if n > 1:
        b[-3] |= (v[1] >> 8) & 0x03
        b[-4] = v[1] & 0xFF
    if n > 2:
        b[-5] = (v[2] >> 2) & 0xFF
        b[-6] = (v[2] & 0x03) << 6
    if n > 3:
        b[-6] |= (v[3] >> 4) & 0x3F
        b[-7] = (v[3] & 0x0F) << 4
    if n > 4:
        b[-7] |= (v[4] >> 2) & 0x0F
        b[-8] = (v[4] & 0x03) << 6
    if n > 5:
        b[-8] |= v[5] & 0x3F
    b[-1] |= crc4(b)
    return bytes(b)


def eda_to_us(adc: np.ndarray, bits: int = 10) -> np.ndarray:
    """EDA sensor ADC → µS: ``(ADC/2^bits · 3.3) / 0.132``."""
    return (np.asarray(adc, dtype=np.float64) / (1 << bits) * EDA_VCC) / EDA_GAIN


def us_to_eda_adc(us: float, bits: int = 10) -> int:
    """Inverse of :func:`eda_to_us` (for the emulator)."""
    return max(0, min((1 << bits) - 1, int(round(us * EDA_GAIN / EDA_VCC * (1 << bits)))))


@dataclass
class BitalinoCounters(DecoderCounters):
    """BITalino counters. ``frames`` = frames accepted.

    Attributes:
        sync_losses: times the lock was lost (two bad frames in a row).
        saturated: samples at full scale.
    """

    sync_losses: int = 0
    saturated: int = 0


class BitalinoDecoder(Decoder[BitalinoCounters]):
    """BITalino frames → EDA in µS.

    Args:
        rate_hz: 1, 10, 100 or 1000 Hz.
        channels: acquired analog channels, 0-based (A1 = 0 … A6 = 5), ascending.
        eda_channel: which of them carries the EDA sensor.
        lock_frames: consecutive good frames needed to lock.
    """

    protocol = "bitalino"

    def __init__(self, rate_hz: float = DEFAULT_RATE_HZ, *, channels: tuple[int, ...] = (DEFAULT_EDA_CHANNEL,),
                 eda_channel: int = DEFAULT_EDA_CHANNEL, lock_frames: int = 3,
                 max_gap_s: float = DEFAULT_MAX_GAP_S) -> None:
        if int(rate_hz) not in RATE_CODES or rate_hz != int(rate_hz):
            raise ConfigError(f"BITalino samples at 1, 10, 100 or 1000 Hz, not {rate_hz!r}")
        channels = tuple(sorted(set(int(c) for c in channels)))
        if not channels or any(not 0 <= c <= 5 for c in channels):
            raise ConfigError(f"BITalino channels are 0…5 (A1…A6), got {channels}")
        if eda_channel not in channels:
            raise ConfigError(f"eda_channel {eda_channel} is not among the acquired channels {channels}")
        super().__init__(float(rate_hz), max_gap_s)
        self.channels = channels
        self.eda_position = channels.index(eda_channel)
        self.eda_bits = 10 if self.eda_position < 4 else 6
        self.frame_size = frame_size(len(channels))
        self.lock_frames = max(1, int(lock_frames))
        self.counters = BitalinoCounters()
        self._buf = bytearray()
        self._locked = False
        self._last_seq: int | None = None
        self._expect: int | None = None  # sequence number the next frame should carry

    def startup_commands(self) -> list[bytes]:
        mask = 0
        for c in self.channels:
            mask |= 1 << c
        return [
            bytes([0x00]),  # stop, in case it is still in live mode
            bytes([0x03 | (RATE_CODES[int(self.rate_hz)] << 6)]),
            bytes([0x01 | (mask << 2)]),
        ]

    def stop_commands(self) -> list[bytes]:
        return [bytes([0x00])]

    def link_reset(self, down_s: float | None = None) -> list[SampleBlock]:
        self.counters.bytes_skipped += len(self._buf)
        self._buf.clear()
        self._locked = False
        self._expect = None
        self._pending_outage_s = down_s
        return []

    def _seq_follows(self, buf: bytearray, pos: int, count: int) -> bool:
        size = self.frame_size
        seq = buf[pos + size - 1] >> 4
        for k in range(count):
            at = pos + k * size
            if not _crc_ok(buf, at, size) or buf[at + size - 1] >> 4 != (seq + k) & 0x0F:
                return False
        return True

    def _feed(self, data: bytes, now: float) -> list[SampleBlock]:
        self._buf += data
        buf, size = self._buf, self.frame_size
        pos = 0
        accepted: list[tuple[int, int]] = []  # (seq, adc)
        while True:
            if not self._locked:
                need = self.lock_frames * size
                if len(buf) - pos < need:
                    break
                if self._seq_follows(buf, pos, self.lock_frames):
                    self._locked = True
                    self._expect = None
                    continue
                pos += 1
                self.counters.bytes_skipped += 1
                continue
            if len(buf) - pos < size:
                break
            ok = _crc_ok(buf, pos, size)
            seq = buf[pos + size - 1] >> 4
            if ok and (self._expect is None or seq == self._expect):
                accepted.append(self._read(buf, pos))
                self._expect = (seq + 1) & 0x0F
                pos += size
                continue
            # A bad CRC or an unexpected sequence number: the next frame decides between a
            # flipped bit (drop this frame), a real sequence gap (keep it) and lost alignment.
            if len(buf) - pos < 2 * size:
                break
            next_ok = _crc_ok(buf, pos + size, size)
            next_seq = buf[pos + 2 * size - 1] >> 4
            if ok and next_ok and next_seq == (seq + 1) & 0x0F:
                accepted.append(self._read(buf, pos))
                self._expect = next_seq
                pos += size
                continue
            if not ok and next_ok and (self._expect is None or next_seq == (self._expect + 1) & 0x0F):
                self.counters.crc_failures += 1
                self.counters.bytes_skipped += size
                self._expect = next_seq
                pos += size
                continue
            self.counters.crc_failures += int(not ok)
            self.counters.sync_losses += 1
            self._locked = False
            pos += 1
            self.counters.bytes_skipped += 1
        del buf[:pos]
        return self._samples(accepted, now) if accepted else []

    def _read(self, buf: bytearray, pos: int) -> tuple[int, int]:
        frame = buf[pos : pos + self.frame_size]
        self.counters.frames += 1
        return frame[-1] >> 4, unpack_channels(frame, len(self.channels))[self.eda_position]

    def _samples(self, accepted: list[tuple[int, int]], now: float) -> list[SampleBlock]:
        seqs = [s for s, _ in accepted]
        adc = np.asarray([a for _, a in accepted], dtype=np.float64)
        us = eda_to_us(adc, self.eda_bits)
        flags = np.zeros(us.size, dtype=np.uint8)
        full = adc >= (1 << self.eda_bits) - 1
        flags[full] |= np.uint8(SampleFlag.SATURATED)
        self.counters.saturated += int(full.sum())
        out: list[SampleBlock] = []
        start = 0
        for i, seq in enumerate(seqs):
            if self._last_seq is not None:
                lost = (seq - self._last_seq - 1) & 0x0F
                if lost:
                    if i > start:
                        out.append(self.axis.samples(us[start:i], flags[start:i], now))
                    start = i
                    self.counters.frames_lost += lost
                    out += self._fill_lost(lost, now)
            self._pending_outage_s = None
            self._last_seq = seq
        out.append(self.axis.samples(us[start:], flags[start:], now))
        return out


__all__ = [
    "BitalinoCounters",
    "BitalinoDecoder",
    "crc4",
    "eda_to_us",
    "frame_size",
    "pack_frame",
    "unpack_channels",
    "us_to_eda_adc",
]
