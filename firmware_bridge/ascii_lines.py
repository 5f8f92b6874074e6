"""Plain ASCII lines: one reading per line (Seeed Grove GSR on Arduino, most hobby sketches).

The first number on each line is the reading; its unit is declared by the user because the line
does not say it: ``"adc"`` (Grove raw ``analogRead``, converted with Grove's formula), or any
unit of :mod:`emotionkd.firmware_bridge.units` (``uS``, ``nS``, ``Ohm``, ``kOhm``, ``MOhm`` …).

Grove GSR: ``R[Ω] = ((1024 + 2·ADC) · 10000) / (CAL − ADC)`` with ``CAL ≈ 512`` (the reading
with the electrodes open; calibrate it per board). ``ADC ≥ CAL`` is an open circuit: NaN with
ELECTRODE_OFF.

These devices have no clock of their own: samples are **host-timed** (arrival order at the
nominal rate, :attr:`SampleFlag.HOST_TIMED` on every sample). A pause in the device's output
is invisible while connected; across a reconnect the outage is filled from the host clock.
Lines without a number (banners, debug prints) are skipped and counted; a line longer than
``max_line_bytes`` is dropped up to its end.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Final

import numpy as np

from emotionkd.firmware_bridge.decoding import DEFAULT_MAX_GAP_S, Decoder, DecoderCounters
from emotionkd.firmware_bridge.errors import ConfigError
from emotionkd.firmware_bridge.samples import SampleBlock, SampleFlag
from emotionkd.firmware_bridge.units import to_conductance_us

_NUMBER = re.compile(rb"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_LINE_END = re.compile(rb"[\r\n]")

#: Grove GSR open-circuit calibration value (Seeed wiki)
GROVE_CAL_DEFAULT = 512.0
#: the rate a host-timed sketch is assumed to print at when the URL gives none (Hz; the device
#: registry reads it)
DEFAULT_RATE_HZ: Final = 10.0


def grove_adc_to_us(adc: np.ndarray, cal: float = GROVE_CAL_DEFAULT) -> np.ndarray:
    """Grove GSR raw ``analogRead`` values → conductance in µS (NaN where ADC ≥ CAL)."""
    adc = np.asarray(adc, dtype=np.float64)
    out = np.full(adc.shape, np.nan)
    valid = np.isfinite(adc) & (adc < cal) & (adc >= 0)
    ohm = ((1024.0 + 2.0 * adc[valid]) * 10000.0) / (cal - adc[valid])
    out[valid] = 1e6 / ohm
    return out


@dataclass
class AsciiCounters(DecoderCounters):
    """ASCII counters. ``frames`` = lines with a number.

    Attributes:
        lines_without_number: lines skipped because they hold no number.
        overlong_lines: lines longer than the limit (dropped).
        invalid_readings: readings that gave no conductance (open circuit, non-positive resistance).
    """

    lines_without_number: int = 0
    overlong_lines: int = 0
    invalid_readings: int = 0


class AsciiLineDecoder(Decoder[AsciiCounters]):
    """One number per line → µS, host-timed.

    Args:
        rate_hz: nominal rate the device prints at (Hz).
        unit: ``"adc"`` for Grove raw values or a unit of ``units`` (``"uS"``, ``"kOhm"`` …).
        grove_cal: Grove open-circuit value (only for ``unit="adc"``).
        max_line_bytes: longest accepted line.
        max_gap_s: longest outage filled sample by sample after a reconnect.

    Raises:
        UnitError: unknown unit. ConfigError: bad rate or calibration.
    """

    protocol = "ascii"

    def __init__(self, rate_hz: float = DEFAULT_RATE_HZ, unit: str = "adc", *, grove_cal: float = GROVE_CAL_DEFAULT,
                 max_line_bytes: int = 256, max_gap_s: float = DEFAULT_MAX_GAP_S) -> None:
        super().__init__(rate_hz, max_gap_s)
        self.unit = unit.strip()
        if self.unit.lower() != "adc":
            to_conductance_us(np.zeros(1), self.unit)  # raises UnitError for unknown units
        if not (grove_cal > 0 and math.isfinite(grove_cal)):
            raise ConfigError(f"grove_cal must be positive, got {grove_cal!r}")
        self.grove_cal = float(grove_cal)
        self.max_line_bytes = int(max_line_bytes)
        self.counters = AsciiCounters()
        self._partial = bytearray()
        self._dropping = False

    def convert(self, readings: np.ndarray) -> np.ndarray:
        """Readings in the declared unit → µS."""
        if self.unit.lower() == "adc":
            return grove_adc_to_us(readings, self.grove_cal)
        return to_conductance_us(readings, self.unit)

    def _feed(self, data: bytes, now: float) -> list[SampleBlock]:
        readings: list[float] = []
        pos = 0
        for match in _LINE_END.finditer(data):
            piece = data[pos : match.start()]
            pos = match.end()
            if self._dropping:
                self.counters.bytes_skipped += len(piece)
                self._dropping = False
                continue
            line = bytes(self._partial) + piece if self._partial else piece
            self._partial.clear()
            self._line(line, readings)
        rest = data[pos:]
        if self._dropping:
            self.counters.bytes_skipped += len(rest)
        else:
            self._partial += rest
            if len(self._partial) > self.max_line_bytes:
                self.counters.overlong_lines += 1
                self.counters.bytes_skipped += len(self._partial)
                self._partial.clear()
                self._dropping = True
        if not readings:
            return []
        values = self.convert(np.asarray(readings))
        invalid = ~np.isfinite(values)
        self.counters.invalid_readings += int(invalid.sum())
        flags = np.full(values.size, SampleFlag.HOST_TIMED, dtype=np.uint8)
        flags[invalid] |= np.uint8(SampleFlag.ELECTRODE_OFF)
        return [self.axis.samples(values, flags, now)]

    def _line(self, line: bytes, readings: list[float]) -> None:
        if not line.strip():
            return  # blank lines (e.g. the \n of \r\n) carry nothing
        if len(line) > self.max_line_bytes:
            self.counters.overlong_lines += 1
            self.counters.bytes_skipped += len(line)
            return
        match = _NUMBER.search(line)
        if match is None:
            self.counters.lines_without_number += 1
            self.counters.bytes_skipped += len(line)
            return
        self.counters.frames += 1
        readings.append(float(match.group()))

    def link_reset(self, down_s: float | None = None) -> list[SampleBlock]:
        self.counters.bytes_skipped += len(self._partial)
        self._partial.clear()
        self._dropping = False
        if not down_s or down_s <= 0 or self.axis.next_index == 0:
            return []
        missing = int(round(down_s * self.axis.rate_hz))
        self.counters.samples_lost += missing
        block = self.axis.gap(missing, 0.0, SampleFlag.HOST_TIMED)
        if block is not None and len(block) < missing:
            self.counters.discontinuities += 1
        if block is None:
            return []
        self.counters.samples += len(block)
        return [block]


__all__ = ["GROVE_CAL_DEFAULT", "AsciiCounters", "AsciiLineDecoder", "grove_adc_to_us"]
