"""Between a transport and a decoder: the pyserial-style protocol, the link supervisor, the queue.

A transport (:mod:`~emotionkd.firmware_bridge.transports`) only moves bytes. It talks to two
objects, both public and both owned by the source:

* a :class:`LinkProtocol` (as ``serial.threaded.Protocol``): ``connection_made`` (the link is up:
  returns the start-up commands to send), ``data_received(bytes)``, ``connection_lost(error)``,
  ``stop_commands``. :class:`DecoderProtocol` is the one implementation: it feeds a sans-IO
  decoder and hands the blocks to a sink;
* a :class:`LinkSupervisor`: whether and when to reconnect (capped exponential backoff), and
  the first connection's outcome, which :meth:`GsrSource.start` waits for.

So the transport never reaches into the source, and the decoder never sees I/O.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from emotionkd.firmware_bridge.decoding import Decoder
from emotionkd.firmware_bridge.errors import TransportError
from emotionkd.firmware_bridge.samples import SampleBlock

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff: ``initial_s · factor^attempt``, at most ``max_s``."""

    initial_s: float = 0.2
    factor: float = 2.0
    max_s: float = 5.0

    def delay_s(self, attempt: int) -> float:
        return min(self.max_s, self.initial_s * self.factor ** max(0, attempt))


@dataclass
class SourceCounters:
    """Transport-level counters of a source.

    Attributes:
        connects, disconnects: link events.
        stalls: links dropped by the watchdog (no bytes for ``stall_timeout_s``).
        bytes_read: bytes from the transport.
        queue_drops, queue_dropped_samples: blocks the consumer was too slow for.
        write_errors: commands that could not be sent.
        mtu: BLE ATT MTU of the current link (0 for serial).
        last_error: text of the last transport error.
    """

    connects: int = 0
    disconnects: int = 0
    stalls: int = 0
    bytes_read: int = 0
    queue_drops: int = 0
    queue_dropped_samples: int = 0
    write_errors: int = 0
    mtu: int = 0
    last_error: str = ""


class LinkProtocol(Protocol):
    """What a transport calls (pyserial's ``serial.threaded.Protocol``, extended by the commands
    a device needs on connect and before close)."""

    def connection_made(self) -> list[bytes]: ...

    def data_received(self, data: bytes) -> None: ...

    def connection_lost(self, error: TransportError | None) -> None: ...

    def stop_commands(self) -> list[bytes]: ...


class DecoderProtocol:
    """Feeds a sans-IO decoder from a transport and hands its blocks to ``sink``.

    Thread-safe: a transport thread and the source (which may swap the decoder while probing
    protocols) may call it concurrently.

    Args:
        decoder: the device's decoder.
        sink: receives each non-empty list of decoded blocks (in order).
        counters: the source's transport counters (bytes, connects, disconnects, errors).
    """

    def __init__(self, decoder: Decoder[Any], sink: Callable[[list[SampleBlock]], None],
                 counters: SourceCounters) -> None:
        self.decoder = decoder
        self.sink = sink
        self.counters = counters
        self._lock = threading.Lock()
        self._down_since: float | None = None

    def connection_made(self) -> list[bytes]:
        """The link is up: account for the outage (the decoder drops partial bytes and, for a
        host-timed device, fills the time it was down) and return the start-up commands."""
        with self._lock:
            fill = self.decoder.link_reset(time.monotonic() - self._down_since) if self._down_since else []
            self._down_since = None
            commands = self.decoder.startup_commands()
        if fill:
            self.sink(fill)
        return commands

    def data_received(self, data: bytes) -> None:
        self.counters.bytes_read += len(data)
        with self._lock:
            blocks = self.decoder.feed(data)
        if blocks:
            self.sink(blocks)

    def connection_lost(self, error: TransportError | None) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()
            self.counters.disconnects += 1
        if error is not None:
            self.counters.last_error = str(error)

    def stop_commands(self) -> list[bytes]:
        with self._lock:
            return self.decoder.stop_commands()


class LinkSupervisor:
    """Decides what follows a failure and records the first connection's outcome.

    Args:
        reconnect: reconnect after a link that worked drops.
        backoff: delays between attempts.
        counters: the source's transport counters (connects).
        on_fatal: receives the error that ends the stream (the consumer raises it).
    """

    def __init__(self, reconnect: bool, backoff: Backoff, counters: SourceCounters,
                 on_fatal: Callable[[TransportError], None]) -> None:
        self.reconnect = reconnect
        self.backoff = backoff
        self.counters = counters
        self.on_fatal = on_fatal
        self.first_result = threading.Event()
        self.first_error: TransportError | None = None
        self._connected_once = False
        self._attempt = 0

    @property
    def connected_once(self) -> bool:
        """True once a connection succeeded (later failures are outages, not a failed start)."""
        return self._connected_once

    def connected(self) -> None:
        self.counters.connects += 1
        self._connected_once = True
        self._attempt = 0
        self.first_result.set()

    def link_failed(self, error: TransportError, protocol: LinkProtocol) -> float | None:
        """What a transport does when a connection attempt or a live link ends with ``error``:
        ``protocol`` hears the connection is lost (once one was ever made; a failed start has
        nothing to lose), then :meth:`failed`. Returns the delay before the next attempt, or None
        to give up."""
        if self._connected_once:
            protocol.connection_lost(error)
        return self.failed(error)

    def check_stall(self, silence_s: float, stall_timeout_s: float | None, url: str, what: str) -> None:
        """Count and raise a stalled link: no ``what`` (data, notification) for longer than
        ``stall_timeout_s`` (None: never stalls)."""
        if stall_timeout_s is not None and silence_s > stall_timeout_s:
            self.counters.stalls += 1
            raise TransportError(f"{url}: no {what} for {stall_timeout_s:g} s (stalled link)", url=url)

    def failed(self, error: TransportError) -> float | None:
        """Account a failure; returns the delay before the next attempt, or None to give up."""
        self.counters.last_error = str(error)
        if not self._connected_once:
            self.first_error = error
            self.first_result.set()
            return None
        if not self.reconnect:
            self.on_fatal(error)
            return None
        delay = self.backoff.delay_s(self._attempt)
        self._attempt += 1
        logger.info("%s; reconnecting in %.1f s", error, delay)
        return delay


class BlockQueue:
    """Bounded FIFO of blocks; a full queue drops its oldest block (counted). ``on_put`` runs
    after each put (the async face wakes its reader with it)."""

    def __init__(self, max_blocks: int = 1024) -> None:
        self._items: collections.deque[SampleBlock | BaseException] = collections.deque()
        self._max = int(max_blocks)
        self._cond = threading.Condition()
        self.drops = 0
        self.dropped_samples = 0
        self.on_put: Callable[[], None] | None = None

    def put(self, item: SampleBlock | BaseException) -> None:
        with self._cond:
            if len(self._items) >= self._max and isinstance(item, SampleBlock):
                old = self._items.popleft()
                if isinstance(old, SampleBlock):
                    self.drops += 1
                    self.dropped_samples += len(old)
                else:  # never drop an error: put it back in front
                    self._items.appendleft(old)
            self._items.append(item)
            self._cond.notify_all()
        if self.on_put is not None:
            self.on_put()

    def get(self, timeout_s: float | None) -> SampleBlock | BaseException | None:
        with self._cond:
            if not self._items and timeout_s != 0:
                self._cond.wait(timeout_s)
            return self._items.popleft() if self._items else None

    def clear(self) -> None:
        with self._cond:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


__all__ = ["Backoff", "BlockQueue", "DecoderProtocol", "LinkProtocol", "LinkSupervisor", "SourceCounters"]
