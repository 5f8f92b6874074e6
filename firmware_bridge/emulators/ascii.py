"""The ASCII-line (Seeed Grove) emulator: one ADC reading per line, host-timed."""

from __future__ import annotations

import numpy as np

from emotionkd.firmware_bridge.emulators.base import DeviceEmulator, EmulatorConfig
from emotionkd.firmware_bridge.errors import ConfigError


class AsciiEmulator(DeviceEmulator):
    """A Grove GSR sketch: one ``analogRead`` value per line (or µS with ``unit="uS"``)."""

    device = "ascii"
    CAL = 512.0

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        super().__init__(config)
        if self.config.unit not in ("adc", "uS"):
            raise ConfigError(f"the ASCII emulator prints 'adc' or 'uS', not {self.config.unit!r}")
        self._streaming = True

    def _on_connect(self) -> None:
        self._write(b"Grove GSR emulator ready\r\n")

    def _encode(self, values_us: np.ndarray, first_index: int) -> list[bytes]:
        if self.config.unit == "uS":
            if self.electrode_off:
                return [b"0.0000\r\n" for _ in values_us]
            return [f"{v:.4f}\r\n".encode() for v in values_us]
        ohm = 1e6 / values_us
        adc = np.round((ohm * self.CAL - 10_240_000.0) / (ohm + 20_000.0)).astype(int)
        adc = np.clip(adc, 0, 1023)
        if self.electrode_off:
            adc[:] = 520  # ≥ CAL: open circuit
        return [f"{a}\r\n".encode() for a in adc]
