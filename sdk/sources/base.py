"""The SDK's view of sources: the :class:`Source` interface (from the firmware bridge, which
defines it so that the device source can implement it), a :class:`Pacer` for file and simulated
sources, and :class:`SourceUrl` (from the firmware bridge's URL parsing), the query helper every
scheme's parser uses.
"""

from __future__ import annotations

import math
import threading
import time

from emotionkd.firmware_bridge.errors import ConfigError
from emotionkd.firmware_bridge.source_base import Source, SourceInfo
from emotionkd.firmware_bridge.source_spec import SourceUrl


class Pacer:
    """Sleeps so that samples come out at ``speed`` × real time (speed 0: as fast as possible).

    Args:
        rate_hz: samples per second of the stream.
        speed: 1 = real time, 2 = twice as fast, 0 = no pacing.
        stop: an event that interrupts the wait.
    """

    def __init__(self, rate_hz: float, speed: float, stop: threading.Event | None = None) -> None:
        if not (speed >= 0 and math.isfinite(speed)):
            raise ConfigError(f"speed must be >= 0 (0 = as fast as possible), got {speed!r}")
        self.rate_hz = rate_hz
        self.speed = speed
        self._stop = stop or threading.Event()
        self._started = time.monotonic()

    def wait_until(self, samples_done: int) -> None:
        """Return when ``samples_done`` samples are due (or at once when not pacing)."""
        if self.speed == 0:
            return
        due = self._started + samples_done / self.rate_hz / self.speed
        delay = due - time.monotonic()
        if delay > 0:
            self._stop.wait(delay)


__all__ = ["Pacer", "Source", "SourceInfo", "SourceUrl"]
