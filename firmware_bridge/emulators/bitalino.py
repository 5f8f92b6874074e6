"""The BITalino emulator with the EDA sensor on A3 (set rate, start, stop, version)."""

from __future__ import annotations

import numpy as np

from emotionkd.firmware_bridge import bitalino
from emotionkd.firmware_bridge.emulators.base import DeviceEmulator, EmulatorConfig
from emotionkd.firmware_bridge.errors import ConfigError


class BitalinoEmulator(DeviceEmulator):
    """A BITalino with the EDA sensor on A3: set rate, start (channel mask), stop, version."""

    device = "bitalino"

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        super().__init__(config)
        if int(self.rate_hz) not in bitalino.RATE_CODES or self.rate_hz != int(self.rate_hz):
            raise ConfigError(f"BITalino samples at 1, 10, 100 or 1000 Hz, not {self.rate_hz!r}")
        self.channels: tuple[int, ...] = (bitalino.DEFAULT_EDA_CHANNEL,)
        self._seq = 0

    def _on_host_bytes(self, data: bytes) -> None:
        for cmd in data:
            self.counters.commands += 1
            if self.streaming:
                if cmd == 0x00:
                    self._streaming = False
                continue
            if cmd & 0x03 == 0x01:
                mask = cmd >> 2
                self.channels = tuple(c for c in range(6) if mask & (1 << c)) or self.channels
                self._streaming = True
            elif cmd == 0x07:
                self._write(b"BITalino_v5.2\n")
            # 0x03 | code << 6 sets the rate: the emulator's rate is fixed by its config

    def _encode(self, values_us: np.ndarray, first_index: int) -> list[bytes]:
        eda_pos = self.channels.index(bitalino.DEFAULT_EDA_CHANNEL) if bitalino.DEFAULT_EDA_CHANNEL in self.channels else -1
        units = []
        for us in values_us:
            values = [512] * len(self.channels)
            if eda_pos >= 0:
                bits = 10 if eda_pos < 4 else 6
                values[eda_pos] = 0 if self.electrode_off else bitalino.us_to_eda_adc(float(us), bits)
            for k in range(4, len(values)):
                values[k] &= 0x3F
            units.append(bitalino.pack_frame(values, self._seq))
            self._seq = (self._seq + 1) & 0x0F
        return units
