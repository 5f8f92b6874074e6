"""The SDK's view of sources: the :class:`Source` interface (from the firmware bridge, which
defines it so that the device source can implement it), a :class:`Pacer` for file and simulated
sources, and :class:`SourceUrl`, the query helper the SDK's scheme parsers use.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field

from emotionkd.firmware_bridge.errors import ConfigError
from emotionkd.firmware_bridge.source_base import Source, SourceInfo
from emotionkd.firmware_bridge.source_spec import query_of


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


@dataclass
class SourceUrl:
    """A parsed source URL: ``scheme://location?key=value&…``.

    Attributes:
        scheme: ``serial``, ``ble``, ``replay``, ``sim``, ``lsl``.
        location: what follows ``//`` up to ``?`` (a path, an address, a name; may be empty).
        params: query parameters (last value wins).
    """

    scheme: str
    location: str
    params: dict[str, str] = field(default_factory=dict)
    raw: str = ""

    @classmethod
    def parse(cls, url: str) -> SourceUrl:
        parts, params = query_of(url)  # the one URL splitter (firmware_bridge.source_spec)
        return cls(parts.scheme.lower(), parts.netloc + parts.path, params, url)

    def take(self, key: str, default: str | None = None) -> str | None:
        """Remove and return one parameter (so that leftovers can be refused as unknown)."""
        return self.params.pop(key, default)

    def take_float(self, key: str, default: float | None) -> float | None:
        value = self.take(key)
        if value is None or value == "":
            return default
        try:
            return float(value)
        except ValueError as exc:
            raise ConfigError(f"{self.raw}: parameter {key}={value!r} must be a number") from exc

    def take_int(self, key: str, default: int) -> int:
        value = self.take_float(key, float(default))
        assert value is not None
        if value != int(value):
            raise ConfigError(f"{self.raw}: parameter {key} must be an integer, got {value!r}")
        return int(value)

    def refuse_leftovers(self, known: str) -> None:
        """Raise a :class:`ConfigError` naming parameters nobody took."""
        if self.params:
            raise ConfigError(
                f"{self.raw}: unknown parameter(s) {', '.join(sorted(self.params))}; "
                f"{self.scheme}:// takes {known}")


__all__ = ["Pacer", "Source", "SourceInfo", "SourceUrl"]
