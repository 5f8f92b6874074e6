"""The Shimmer3 GSR+ emulator (inquiry, sampling rate, start/stop; 0x00 data packets)."""

from __future__ import annotations

import logging
import struct
from typing import ClassVar

import numpy as np

from emotionkd.firmware_bridge import shimmer3
from emotionkd.firmware_bridge.emulators.base import DeviceEmulator, EmulatorConfig

logger = logging.getLogger(__name__)


class Shimmer3Emulator(DeviceEmulator):
    """A Shimmer3 GSR+ (LogAndStream): ACKs, inquiry, set sensors/rate, start/stop, data packets."""

    device = "shimmer3"
    _ARG_BYTES: ClassVar[dict[int, int]] = {shimmer3.SET_SENSORS_COMMAND: 3, shimmer3.SET_SAMPLING_RATE_COMMAND: 2}

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        super().__init__(config)
        self.divider = shimmer3.rate_to_divider(self.rate_hz)
        self.sensors = bytes([shimmer3.SENSOR_GSR_BYTE0, 0, 0])
        self._rx = bytearray()
        self._ts0 = 12345

    def _channels(self) -> list[int]:
        # battery first when enabled (bit 13 → byte 1, 0x20), then GSR: the firmware's order
        channels = []
        if self.sensors[1] & 0x20:
            channels.append(0x03)
        if self.sensors[0] & shimmer3.SENSOR_GSR_BYTE0:
            channels.append(shimmer3.GSR_CHANNEL)
        return channels

    def _on_host_bytes(self, data: bytes) -> None:
        self._rx += data
        while self._rx:
            op = self._rx[0]
            need = 1 + self._ARG_BYTES.get(op, 0)
            if len(self._rx) < need:
                return
            args = bytes(self._rx[1:need])
            del self._rx[:need]
            self.counters.commands += 1
            reply = bytes([shimmer3.ACK])
            if op == shimmer3.INQUIRY_COMMAND:
                channels = self._channels()
                reply += bytes([shimmer3.INQUIRY_RESPONSE]) + struct.pack(
                    "<HIBB", self.divider, 0, len(channels), 1) + bytes(channels)
            elif op == shimmer3.SET_SENSORS_COMMAND:
                self.sensors = args
            elif op == shimmer3.SET_SAMPLING_RATE_COMMAND:
                (divider,) = struct.unpack("<H", args)
                if divider != self.divider:
                    logger.info("shimmer3 emulator keeps its divider %d (asked %d)", self.divider, divider)
            elif op == shimmer3.START_STREAMING_COMMAND:
                self._streaming = True
            elif op == shimmer3.STOP_STREAMING_COMMAND:
                self._streaming = False
            self._write(reply)

    def _encode(self, values_us: np.ndarray, first_index: int) -> list[bytes]:
        channels = self._channels()
        units = []
        for i, us in enumerate(values_us):
            ts = (self._ts0 + (first_index + i) * self.divider) % shimmer3.TIMESTAMP_WRAP
            packet = bytearray([shimmer3.DATA_PACKET]) + ts.to_bytes(3, "little")
            for channel in channels:
                if channel == 0x03:
                    packet += struct.pack("<H", 3000)
                else:
                    word = (3 << 14) | 600 if self.electrode_off else shimmer3.us_to_gsr_word(float(us), _range_for(us))
                    packet += struct.pack("<H", word)
            units.append(bytes(packet))
        return units


def _range_for(us: float) -> int:
    """The Shimmer3 auto-range choice for a conductance (ranges 0…3 cover high to low µS)."""
    if us > 18.0:
        return 0
    if us > 4.5:
        return 1
    if us > 1.5:
        return 2
    return 3
