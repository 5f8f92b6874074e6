"""Shimmer3 GSR+ over Bluetooth Classic SPP (a serial port): commands, packets, calibration.

Facts (Shimmer3 LogAndStream firmware; pyshimmer and the Shimmer APIs agree):

* Commands are single opcodes, each acknowledged by ``0xFF``: inquiry ``0x01`` (answered by
  ``0xFF`` then ``0x02`` + u16 sampling divider + u32 config + u8 channel count + u8 buffer size +
  one id per channel), set sensors ``0x08`` + 3 bytes (GSR = ``0x04`` in byte 0), set sampling
  rate ``0x05`` + u16 divider of the 32768 Hz clock, start ``0x07``, stop ``0x20``.
* Data packets: ``0x00`` + 3-byte little-endian timestamp (32768 Hz, wraps every 512 s) + the
  channels in inquiry order (sizes per channel id below). GSR (id ``0x1C``) is a u16 LE word:
  bits 15–14 the range, bits 11–0 the ADC value.
* Calibration: ``R[kΩ] = Rf[range] / ((ADC·3.0/4095)/0.5 − 1)`` with Rf = 40.2, 287, 1000,
  3300 kΩ; ``µS = 1000 / R[kΩ]``. A non-positive denominator (ADC < 683) is an open circuit:
  NaN with ELECTRODE_OFF. A range change marks the sample SETTLING.

Sync: packets have no checksum. A packet is accepted when it starts with ``0x00`` and carries the
expected next timestamp (± a quarter period); any other packet (a gap, a duplicate, or garbage
that starts with 0x00) is accepted only if the packet after it is exactly one period later.
Anything else makes the decoder slide one byte and try again. Timestamps
give lost samples (gap = Δt / divider − 1, filled with NaN); a repeated timestamp is a duplicate.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

import numpy as np

from emotionkd.firmware_bridge.decoding import DEFAULT_MAX_GAP_S, Decoder, DecoderCounters
from emotionkd.firmware_bridge.errors import ConfigError
from emotionkd.firmware_bridge.samples import SampleBlock, SampleFlag

CLOCK_HZ: Final = 32768
#: sampling rate the host asks for when the URL gives none (Hz; the device registry reads it)
DEFAULT_RATE_HZ: Final = 128.0
TIMESTAMP_WRAP: Final = 1 << 24

DATA_PACKET: Final = 0x00
INQUIRY_COMMAND: Final = 0x01
INQUIRY_RESPONSE: Final = 0x02
SET_SAMPLING_RATE_COMMAND: Final = 0x05
START_STREAMING_COMMAND: Final = 0x07
SET_SENSORS_COMMAND: Final = 0x08
STOP_STREAMING_COMMAND: Final = 0x20
ACK: Final = 0xFF

GSR_CHANNEL: Final = 0x1C
SENSOR_GSR_BYTE0: Final = 0x04
#: GSR feedback resistors per range (kΩ)
GSR_RF_KOHM: Final = (40.2, 287.0, 1000.0, 3300.0)

#: bytes per channel id in a data packet
CHANNEL_SIZES: Final[dict[int, int]] = {
    **{c: 2 for c in range(0x00, 0x14)},  # accelerometers, battery, magnetometer, gyro, ADCs
    0x1A: 2, 0x1B: 3,  # BMP temperature, pressure
    GSR_CHANNEL: 2,
    0x1D: 1, 0x1E: 3, 0x1F: 3, 0x20: 1, 0x21: 3, 0x22: 3,  # ExG status + 24-bit
    0x23: 2, 0x24: 2, 0x25: 2, 0x26: 2,  # ExG 16-bit
    0x27: 2, 0x28: 2,  # strain gauge
}
_INQUIRY_HEAD: Final = struct.Struct("<HIBB")


def gsr_to_us(words: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """GSR words → (µS, range, open-circuit mask). NaN where open circuit."""
    words = np.asarray(words, dtype=np.uint16).astype(np.int64)
    ranges = (words >> 14) & 0x3
    adc = (words & 0x0FFF).astype(np.float64)
    denom = (adc * 3.0 / 4095.0) / 0.5 - 1.0
    rf = np.asarray(GSR_RF_KOHM)[ranges]
    open_circuit = denom <= 0
    us = np.full(adc.shape, np.nan)
    ok = ~open_circuit
    us[ok] = 1000.0 * denom[ok] / rf[ok]
    return us, ranges, open_circuit


def us_to_gsr_word(us: float, gsr_range: int) -> int:
    """Inverse of :func:`gsr_to_us` (for the emulator): the word the device would send."""
    denom = us * GSR_RF_KOHM[gsr_range] / 1000.0
    adc = int(round((denom + 1.0) * 0.5 * 4095.0 / 3.0))
    return (gsr_range << 14) | max(0, min(adc, 4095))


def rate_to_divider(rate_hz: float) -> int:
    divider = int(round(CLOCK_HZ / rate_hz))
    if not 1 <= divider <= 0xFFFF:
        raise ConfigError(f"Shimmer3 rate {rate_hz!r} Hz is out of range (0.5 … 32768 Hz)")
    return divider


@dataclass
class Shimmer3Counters(DecoderCounters):
    """Shimmer3 counters. ``frames`` = data packets.

    Attributes:
        acks: 0xFF acknowledgements seen.
        inquiries: inquiry responses parsed.
        open_circuit: samples with the electrodes open.
        range_changes: samples where the GSR range switched.
        sync_losses: times the decoder lost packet alignment.
    """

    acks: int = 0
    inquiries: int = 0
    open_circuit: int = 0
    range_changes: int = 0
    sync_losses: int = 0


class Shimmer3Decoder(Decoder[Shimmer3Counters]):
    """Shimmer3 GSR+ byte stream → µS on the device's 32768 Hz time base.

    Args:
        rate_hz: the sampling rate to request (sent as a divider of 32768 Hz).
        channels: the packet layout when already known; otherwise learnt from the inquiry
            response that :meth:`startup_commands` asks for.
    """

    protocol = "shimmer3"

    def __init__(self, rate_hz: float = DEFAULT_RATE_HZ, *, channels: tuple[int, ...] | None = None,
                 max_gap_s: float = DEFAULT_MAX_GAP_S) -> None:
        self.divider = rate_to_divider(rate_hz)
        super().__init__(CLOCK_HZ / self.divider, max_gap_s)
        self.counters = Shimmer3Counters()
        self.channels: tuple[int, ...] | None = None
        self.problem: str | None = None
        self._buf = bytearray()
        self._locked = False
        self._last_ts: int | None = None
        self._expect_ts: int | None = None  # timestamp the next packet should carry
        self._last_range: int | None = None
        if channels is not None:
            self._set_layout(tuple(channels))

    def _set_layout(self, channels: tuple[int, ...]) -> None:
        unknown = [c for c in channels if c not in CHANNEL_SIZES]
        if unknown:
            raise ConfigError(f"Shimmer3 channel ids {unknown} are unknown to this decoder")
        self.channels = channels
        self._packet_size = 4 + sum(CHANNEL_SIZES[c] for c in channels)
        if GSR_CHANNEL in channels:
            i = channels.index(GSR_CHANNEL)
            self._gsr_offset = 4 + sum(CHANNEL_SIZES[c] for c in channels[:i])
            self.problem = None
        else:
            self._gsr_offset = -1
            self.problem = "the Shimmer3 does not stream GSR; enable it (set sensors 0x08 04 00 00)"

    def startup_commands(self) -> list[bytes]:
        return [
            bytes([STOP_STREAMING_COMMAND]),  # in case it still streams from a previous session
            bytes([SET_SENSORS_COMMAND, SENSOR_GSR_BYTE0, 0x00, 0x00]),
            bytes([SET_SAMPLING_RATE_COMMAND]) + struct.pack("<H", self.divider),
            bytes([INQUIRY_COMMAND]),
            bytes([START_STREAMING_COMMAND]),
        ]

    def stop_commands(self) -> list[bytes]:
        return [bytes([STOP_STREAMING_COMMAND])]

    def link_reset(self, down_s: float | None = None) -> list[SampleBlock]:
        self.counters.bytes_skipped += len(self._buf)
        self._buf.clear()
        self._locked = False
        self._pending_outage_s = down_s
        return []

    # -- parsing ---------------------------------------------------------------------------
    def _feed(self, data: bytes, now: float) -> list[SampleBlock]:
        self._buf += data
        buf = self._buf
        pos = 0
        words: list[int] = []
        stamps: list[int] = []
        out: list[SampleBlock] = []
        while pos < len(buf):
            kind = buf[pos]
            if kind == ACK:
                # an ACK means commands are flowing (an inquiry response may follow): stop
                # trusting the packet alignment until data packets confirm it again
                self.counters.acks += 1
                self._locked = False
                pos += 1
                continue
            if kind == INQUIRY_RESPONSE and not self._locked:
                used = self._inquiry(buf, pos)
                if used == 0:
                    break  # incomplete: wait for more bytes
                if used > 0:
                    pos += used
                    continue
            if kind == DATA_PACKET and self.channels is not None:
                size = self._packet_size
                if pos + size > len(buf):
                    break
                ts = buf[pos + 1] | (buf[pos + 2] << 8) | (buf[pos + 3] << 16)
                if not self._is_expected(ts):
                    # not the next timestamp: a gap, a duplicate, or garbage that happens to
                    # start with 0x00. The following packet decides.
                    verdict = self._confirmed_by_next(buf, pos + size, ts)
                    if verdict is None:
                        break  # wait for more bytes
                    if not verdict:
                        self._lose_sync()
                        self._skip(1)
                        pos += 1
                        continue
                self._locked = True
                self._expect_ts = (ts + self.divider) % TIMESTAMP_WRAP
                off = self._gsr_offset
                words.append(buf[pos + off] | (buf[pos + off + 1] << 8) if off >= 0 else 0)
                stamps.append(ts)
                self.counters.frames += 1
                pos += size
                continue
            # anything else at a packet boundary is garbage (or a lost byte): slide
            self._lose_sync()
            self._skip(1)
            pos += 1
        del buf[:pos]
        if len(buf) > 4096:  # cannot happen with a sane layout; keeps memory bounded regardless
            self._skip(len(buf))
            buf.clear()
        if stamps and self._gsr_offset >= 0:
            out += self._samples(stamps, words, now)
        return out

    def _skip(self, n: int) -> None:
        self.counters.bytes_skipped += n

    def _lose_sync(self) -> None:
        if self._locked:
            self._locked = False
            self.counters.sync_losses += 1

    def _is_expected(self, ts: int) -> bool:
        if self._expect_ts is None:
            return False
        delta = (ts - self._expect_ts) % TIMESTAMP_WRAP
        tolerance = self.divider // 4
        return delta <= tolerance or TIMESTAMP_WRAP - delta <= tolerance

    def _confirmed_by_next(self, buf: bytearray, at: int, ts: int) -> bool | None:
        """True when a data packet one period later follows (ACKs may sit between); None = wait."""
        while at < len(buf) and buf[at] == ACK:
            at += 1
        if at + 4 > len(buf):
            return None
        if buf[at] != DATA_PACKET:
            return False
        next_ts = buf[at + 1] | (buf[at + 2] << 8) | (buf[at + 3] << 16)
        return abs((next_ts - ts) % TIMESTAMP_WRAP - self.divider) <= self.divider // 4

    def _inquiry(self, buf: bytearray, pos: int) -> int:
        """Parse an inquiry response at ``pos``: bytes used, 0 = incomplete, −1 = not one."""
        head = 1 + _INQUIRY_HEAD.size
        if len(buf) - pos < head:
            return 0
        divider, _config, n_channels, _buffer = _INQUIRY_HEAD.unpack_from(buf, pos + 1)
        if not 1 <= n_channels <= 40 or divider == 0:
            return -1
        if len(buf) - pos < head + n_channels:
            return 0
        channels = tuple(buf[pos + head : pos + head + n_channels])
        if any(c not in CHANNEL_SIZES for c in channels):
            return -1
        self._set_layout(channels)
        self.divider = divider
        if self.axis.next_index == 0:
            self.axis.rate_hz = CLOCK_HZ / divider
        self.counters.inquiries += 1
        return head + n_channels

    def _samples(self, stamps: list[int], words: list[int], now: float) -> list[SampleBlock]:
        us, ranges, open_circuit = gsr_to_us(np.asarray(words))
        flags = np.zeros(us.size, dtype=np.uint8)
        flags[open_circuit] |= np.uint8(SampleFlag.ELECTRODE_OFF)
        self.counters.open_circuit += int(open_circuit.sum())
        prev = np.concatenate([[ranges[0] if self._last_range is None else self._last_range], ranges[:-1]])
        changed = ranges != prev
        flags[changed] |= np.uint8(SampleFlag.SETTLING)
        self.counters.range_changes += int(changed.sum())
        self._last_range = int(ranges[-1])
        out: list[SampleBlock] = []
        start = 0
        for i, ts in enumerate(stamps):
            if self._last_ts is None:
                self._last_ts = ts
                continue
            delta = (ts - self._last_ts) % TIMESTAMP_WRAP
            periods = int(round(delta / self.divider))
            if periods == 1:
                self._last_ts = ts
                continue
            # close the run so far, then handle the jump
            if i > start:
                out.append(self.axis.samples(us[start:i], flags[start:i], now))
            if periods == 0:
                self.counters.duplicates += 1
                start = i + 1
                continue
            out += self._fill_lost(periods - 1, now)
            self._pending_outage_s = None
            self._last_ts = ts
            start = i
        if start < len(stamps):
            out.append(self.axis.samples(us[start:], flags[start:], now))
        return out


__all__ = [
    "CHANNEL_SIZES",
    "CLOCK_HZ",
    "GSR_CHANNEL",
    "GSR_RF_KOHM",
    "Shimmer3Counters",
    "Shimmer3Decoder",
    "gsr_to_us",
    "rate_to_divider",
    "us_to_gsr_word",
]
