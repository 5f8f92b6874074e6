"""What every decoder and source hands upward: blocks of samples in µS with per-sample flags.

Samples sit on a continuous sample axis: a sample the device lost (a ``t0`` or sequence gap)
is present as NaN with :attr:`SampleFlag.GAP`, so downstream windows keep a true time axis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntFlag

import numpy as np
import numpy.typing as npt

from emotionkd.firmware_bridge.errors import ConfigError


class SampleFlag(IntFlag):
    """Per-sample condition bits (bits 0–4 mirror the EKD frame flags, PROTOCOL.md)."""

    NONE = 0
    SATURATED = 1  # ADC at a rail
    ELECTRODE_OFF = 2  # open circuit / no skin contact
    SETTLING = 4  # range switch or filter settling
    CLOCK_RESYNC = 8  # device clock was resynchronised
    DEVICE_OVERFLOW = 16  # the device dropped samples before this one
    GAP = 32  # sample missing (value is NaN): lost frame, t0 gap, invalid reading
    HOST_TIMED = 64  # no device time base: time = host arrival + nominal rate


@dataclass(frozen=True)
class SampleBlock:
    """Consecutive samples from one source.

    Attributes:
        first_index: index of the first sample on the source's continuous sample axis
            (0 = first sample of the stream; monotonic; gaps are filled, never skipped).
        conductance_us: (n,) float64 skin conductance in µS, NaN where missing.
        flags: (n,) uint8 :class:`SampleFlag` bits.
        rate_hz: nominal sampling rate of the source (Hz).
        host_time_s: host clock (``time.time()``) when the bytes arrived.
    """

    first_index: int
    conductance_us: npt.NDArray[np.float64]
    flags: npt.NDArray[np.uint8]
    rate_hz: float
    host_time_s: float = 0.0

    def __post_init__(self) -> None:
        # every block's time axis divides by the rate: a rate of 0 or NaN read from a file or a
        # device must have been refused before a block is made (see bounds.py)
        if not self.rate_hz > 0 or self.rate_hz == math.inf:
            raise ConfigError(f"a SampleBlock needs a positive, finite rate_hz, got {self.rate_hz!r}")

    def __len__(self) -> int:
        return int(self.conductance_us.size)

    @property
    def start_s(self) -> float:
        """Time of the first sample on the source's time axis (s since stream start)."""
        return self.first_index / self.rate_hz


__all__ = ["SampleBlock", "SampleFlag"]
