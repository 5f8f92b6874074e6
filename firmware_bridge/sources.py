# size: the one device source: sync and async faces, protocol probing and the no-data diagnosis of one object
"""The device source: one object from a ``serial://`` or ``ble://`` spec to sample blocks.

::

    transport (bytes) ─LinkProtocol─► DecoderProtocol ─► sans-IO decoder ─► BlockQueue
        ─► sample axis (refill of dropped blocks, bounded) ─► blocks() / ablocks()

A :class:`GsrSource` is a :class:`~emotionkd.firmware_bridge.source_base.Source` with two faces:

* **sync** (``with source: for block in source``, :meth:`read`, :meth:`blocks`): the transport
  runs in a background thread (pyserial blocks; BLE gets its own event loop there);
* **async** (``async with source: async for block in source``, :meth:`ablocks`): BLE runs as a
  task in the caller's event loop, end to end (bleak's notifications feed the decoder in that
  loop); serial still reads in a thread, which wakes the loop when blocks arrive.

When the consumer falls behind, the oldest blocks are dropped and counted (``queue_drops``) and
the reader fills their samples with NaN + GAP (bounded: :mod:`~emotionkd.firmware_bridge.sample_axis`).
A lost link is reconnected with capped exponential backoff; the decoder measures the outage on
the device's time base (or the host clock for host-timed devices). ``protocol=auto`` (serial)
tries each protocol of the device registry for ``probe`` s and keeps the first that decodes
samples. No sample within ``timeout`` s of connecting is an error that says why (bytes that do
not decode, or no bytes at all). If the first connection fails, or ``reconnect=False`` and the
link drops, iteration raises :class:`TransportError` (with the fix for ports that cannot be
opened).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict
from typing import Any

import numpy as np

from emotionkd.firmware_bridge.decoding import Decoder
from emotionkd.firmware_bridge.devices import (
    AUTO_ORDER,
    DEFAULT_BAUD,
    DEFAULT_RATE_HZ,
    PROTOCOLS,
    device,
)
from emotionkd.firmware_bridge.errors import ConfigError, ProtocolError, TransportError
from emotionkd.firmware_bridge.link import (
    Backoff,
    BlockQueue,
    DecoderProtocol,
    LinkSupervisor,
    SourceCounters,
)
from emotionkd.firmware_bridge.sample_axis import AxisAligner, GapPolicy
from emotionkd.firmware_bridge.samples import SampleBlock
from emotionkd.firmware_bridge.source_base import Source, SourceInfo
from emotionkd.firmware_bridge.source_spec import (
    BleSpec,
    DeviceSpec,
    SerialSpec,
    SourceSpec,
    parse_source_url,
)

logger = logging.getLogger(__name__)

#: seconds a protocol probe waits for a first byte before it passes over a silent port
SILENT_PROBE_S = 1.2


def make_decoder(spec: DeviceSpec) -> Decoder[Any]:
    """The decoder a device spec asks for (its protocol's, from the device registry)."""
    framed_ble = isinstance(spec, BleSpec) and spec.profile.framed
    return device(spec.protocol).decoder(spec.rate_hz, spec.options, framed_ble=framed_ble)


def _device_spec(spec: str | SourceSpec) -> DeviceSpec:
    parsed = parse_source_url(spec) if isinstance(spec, str) else spec
    if not isinstance(parsed, SerialSpec | BleSpec):
        raise ConfigError(f"{parsed.url!r} is not a device; GsrSource opens serial:// and ble:// URLs")
    return parsed


class GsrSource(Source):
    """A live sensor (see the module docstring).

    Args:
        spec: a :class:`SerialSpec` / :class:`BleSpec`, or a URL (parsed here, once).
        reconnect: reconnect after the link drops (the first connection must succeed).
        backoff: delays between reconnection attempts.
        stall_timeout_s: silence that counts as a lost link (None: never).
        max_queue_blocks: capacity of the block queue.
        connect_timeout_s: how long :meth:`start` waits for the first connection.
        decoder: a decoder to use instead of the one the spec names.
        gap_policy: the bound on the NaN fill that stands for blocks the queue dropped.
    """

    def __init__(self, spec: str | SourceSpec, *, reconnect: bool = True, backoff: Backoff | None = None,
                 stall_timeout_s: float | None = 5.0, max_queue_blocks: int = 1024,
                 connect_timeout_s: float = 20.0, decoder: Decoder[Any] | None = None,
                 gap_policy: GapPolicy | None = None) -> None:
        self.spec: DeviceSpec = _device_spec(spec)
        super().__init__(self.spec.url)
        self.auto = self.spec.protocol == "auto"
        if isinstance(self.spec, SerialSpec) and self.auto:
            self.spec = self.spec.for_protocol(AUTO_ORDER[0])  # _detect tries the others
        self.protocol = self.spec.protocol
        self.decoder = decoder or make_decoder(self.spec)
        self.reconnect = reconnect
        self.backoff = backoff or Backoff()
        self.stall_timeout_s = stall_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.gap_policy = gap_policy or GapPolicy()
        self.transport_counters = SourceCounters()
        self._queue = BlockQueue(max_queue_blocks)
        self._link = DecoderProtocol(self.decoder, self._deliver, self.transport_counters)
        self._supervisor: LinkSupervisor | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task[None] | None = None
        self._aligner: AxisAligner | None = None
        self._pending: list[SampleBlock] = []

    # -- description ---------------------------------------------------------------------
    @property
    def rate_hz(self) -> float:
        return self.decoder.rate_hz

    @property
    def info(self) -> SourceInfo:
        hello = getattr(self.decoder, "hello", None)  # EKD devices say their name
        name = getattr(hello, "name", None)
        return SourceInfo(device=self.spec.describe(name), protocol=self.protocol,
                          rate_hz=self.rate_hz)

    def counters(self) -> dict[str, int]:
        """Decoder and transport counters (integers) as one plain dict."""
        merged = {**self.decoder.describe(), **asdict(self.transport_counters)}
        return {k: v for k, v in merged.items() if isinstance(v, int) and not isinstance(v, bool)}

    # -- life cycle (sync face) ----------------------------------------------------------------
    def _supervise(self, reconnect: bool) -> LinkSupervisor:
        self._stop.clear()
        self._supervisor = LinkSupervisor(reconnect, self.backoff, self.transport_counters, self._fatal)
        return self._supervisor

    def _launch(self, reconnect: bool) -> None:
        """Start the transport thread and wait for the first connection."""
        from emotionkd.firmware_bridge.transports import run_ble, run_serial

        supervisor = self._supervise(reconnect)
        target = run_serial if isinstance(self.spec, SerialSpec) else run_ble
        self._thread = threading.Thread(target=target, name=f"emotionkd-source {self.url}", daemon=True,
                                        args=(self.spec, self._link, supervisor, self._stop, self.stall_timeout_s))
        self._thread.start()
        self._await_first(supervisor.first_result.wait(self.connect_timeout_s))

    def _await_first(self, arrived: bool) -> None:
        supervisor = self._supervisor
        assert supervisor is not None
        if not arrived:
            self._halt()
            raise TransportError(f"no connection to {self.url} within {self.connect_timeout_s:g} s; "
                                 "is the device on and in range?", url=self.url)
        if supervisor.first_error is not None:
            self._halt()
            error = supervisor.first_error
            if isinstance(self.spec, SerialSpec):
                from emotionkd.firmware_bridge.transports import explain_open_error

                line = explain_open_error(error, self.spec.target)
                if line:
                    raise TransportError(line, url=self.url) from error
            raise error

    def start(self) -> GsrSource:
        """Connect (waits for the first connection; probes protocols for ``protocol=auto``) and
        start streaming.

        Raises:
            TransportError: the first connection failed (names the device and the fix).
            ProtocolError: ``protocol=auto`` and bytes arrive that no protocol decodes.
        """
        if self._thread is None and self._task is None:
            if self.auto:
                self._detect()
            else:
                self._launch(self.reconnect)
        return self

    def open(self) -> None:
        """:meth:`start`; on a thread whose event loop is running, connecting is left to
        :meth:`ablocks` (or :meth:`aopen`), which does it in that loop: never block a loop."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            self.start()

    async def aopen(self) -> None:
        await self.astart()

    def _halt(self) -> None:
        """Stop the transport (sends the protocol's stop command when connected)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10.0)
        self._thread = None

    def close(self) -> None:
        self._halt()
        super().close()

    def __enter__(self) -> GsrSource:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _detect(self) -> None:
        """Try each protocol for ``probe_s``; keep the first that decodes valid samples.

        A protocol that gets no byte at all within :data:`SILENT_PROBE_S` of its start command
        is passed over early, and a port silent to every protocol is reported as "no data" (a
        switched-off sensor), not as a protocol mismatch.
        """
        assert isinstance(self.spec, SerialSpec)
        tried: list[tuple[str, int]] = []
        started = time.monotonic()
        probed = self.spec
        for protocol in AUTO_ORDER:
            self.spec = probed.for_protocol(protocol)
            self.protocol, self.decoder = protocol, make_decoder(self.spec)
            self._link.decoder = self.decoder
            self._queue.clear()
            self._launch(reconnect=False)
            blocks: list[SampleBlock] = []
            opened = time.monotonic()
            with contextlib.suppress(TransportError):
                while time.monotonic() < opened + self.spec.probe_s and not self.closed:
                    blocks += self.read(0.1)
                    if any(np.isfinite(b.conductance_us).any() for b in blocks):
                        logger.info("%s speaks %s", self.spec.target, protocol)
                        assert self._supervisor is not None
                        self._supervisor.reconnect = self.reconnect  # probed without; now a live link
                        self._pending = blocks
                        return
                    if time.monotonic() - opened > SILENT_PROBE_S and not self._bytes_in():
                        break
            tried.append((protocol, self._bytes_in()))
            self._halt()
            self._aligner = None
        if not any(n for _, n in tried):
            raise TransportError(
                f"no data from {self.spec.target} in {time.monotonic() - started:.0f} s (tried "
                f"{', '.join(p for p, _ in tried)}): is the sensor switched on and streaming?", url=self.url)
        raise ProtocolError(f"{self.spec.target}: no protocol decodes its bytes (tried "
                            f"{', '.join(f'{p} ({n} bytes, none decoded)' for p, n in tried)}); "
                            "check --baud, or name the protocol with --protocol")

    def _bytes_in(self) -> int:
        return int(self.decoder.counters.bytes_received)

    # -- called by the link -----------------------------------------------------------------------
    def _deliver(self, blocks: list[SampleBlock]) -> None:
        for block in blocks:
            self._queue.put(block)

    def _fatal(self, error: TransportError) -> None:
        self.transport_counters.last_error = str(error)
        self._queue.put(error)

    # -- consumer side (sync) ----------------------------------------------------------------------
    def read(self, timeout_s: float | None = 1.0) -> list[SampleBlock]:
        """The next block(s), or ``[]`` after ``timeout_s`` without data.

        Blocks the queue dropped come back as a bounded NaN + GAP fill (several blocks then).

        Raises:
            TransportError: the link failed and will not be re-established.
        """
        return self._take(self._queue.get(timeout_s))

    def _take(self, item: SampleBlock | BaseException | None) -> list[SampleBlock]:
        self.transport_counters.queue_drops = self._queue.drops
        self.transport_counters.queue_dropped_samples = self._queue.dropped_samples
        if item is None:
            return []
        if isinstance(item, BaseException):
            raise item
        aligner = self._aligner
        if aligner is None or aligner.rate_hz != item.rate_hz:  # first block, or the device changed rate
            start = 0 if aligner is None else aligner.next_index
            aligner = self._aligner = AxisAligner(item.rate_hz, self.gap_policy, start_index=start)
        return aligner.place(item).blocks

    def collect(self, seconds: float) -> list[SampleBlock]:
        """All blocks that arrive within ``seconds`` (for scripts and tests)."""
        blocks: list[SampleBlock] = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            blocks += self.read(min(0.1, max(0.0, end - time.monotonic())))
        return blocks

    def blocks(self) -> Iterator[SampleBlock]:
        """Blocks until the source is closed (raises when no sample arrives within the spec's
        ``timeout`` of connecting, saying whether bytes arrived)."""
        self.start()
        pending, self._pending = self._pending, []
        yield from pending
        got_samples = bool(pending)
        started = time.monotonic()
        while not (self.closed and not len(self._queue)):
            blocks = self.read(0.25)
            if blocks:
                got_samples = True
                yield from blocks
            elif not got_samples and time.monotonic() - started > self.spec.timeout_s:
                raise self._no_data_error()

    def __iter__(self) -> Iterator[SampleBlock]:
        return self.blocks()

    def _no_data_error(self) -> Exception:
        received = self._bytes_in() or self.transport_counters.bytes_read
        if received:
            return ProtocolError(
                f"{received} bytes arrived from {self.spec.target} in {self.spec.timeout_s:g} s but none decode as "
                f"{self.protocol}: wrong protocol or baud rate? (try --protocol auto, or --baud)")
        return TransportError(
            f"no data from {self.spec.target} in {self.spec.timeout_s:g} s: is the sensor switched on, "
            "streaming and (for BLE) in range?", url=self.url)

    # -- consumer side (async) ---------------------------------------------------------------------
    async def astart(self) -> GsrSource:
        """:meth:`start` for asyncio: BLE connects in this loop (a task, no thread); serial opens
        (and probes) in a worker thread once."""
        if self._thread is not None or self._task is not None:
            return self
        if isinstance(self.spec, BleSpec):
            from emotionkd.firmware_bridge.transports import ble_session

            supervisor = self._supervise(self.reconnect)
            self._task = asyncio.get_running_loop().create_task(
                ble_session(self.spec, self._link, supervisor, self._stop, self.stall_timeout_s))
            deadline = time.monotonic() + self.connect_timeout_s
            while not supervisor.first_result.is_set() and time.monotonic() < deadline and not self._task.done():
                await asyncio.sleep(0.02)
            if self._task.done() and not supervisor.first_result.is_set() and self._task.exception() is not None:
                raise TransportError(f"BLE transport for {self.url} failed: {self._task.exception()!r}", url=self.url)
            self._await_first(supervisor.first_result.is_set())
        else:
            await asyncio.to_thread(self.start)
        return self

    async def aclose(self) -> None:
        """:meth:`close` for asyncio (waits for the BLE task to disconnect)."""
        self._stop.set()
        task, self._task = self._task, None
        if task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 10.0)
        await asyncio.to_thread(self.close)

    async def __aenter__(self) -> GsrSource:
        return await self.astart()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def ablocks(self) -> AsyncIterator[SampleBlock]:
        """Async iterator over the same blocks as :meth:`blocks`; the reader waits on an event the
        producer sets (no thread hop per block)."""
        await self.astart()
        loop = asyncio.get_running_loop()
        ready = asyncio.Event()

        def wake() -> None:
            loop.call_soon_threadsafe(ready.set)

        self._queue.on_put = wake
        pending, self._pending = self._pending, []
        for block in pending:
            yield block
        got_samples = bool(pending)
        started = time.monotonic()
        try:
            while not (self.closed and not len(self._queue)):
                blocks = self._take(self._queue.get(0))
                if blocks:
                    got_samples = True
                    for block in blocks:
                        yield block
                    continue
                if not got_samples and time.monotonic() - started > self.spec.timeout_s:
                    raise self._no_data_error()
                ready.clear()
                if not len(self._queue):
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(ready.wait(), 0.25)
        finally:
            self._queue.on_put = None

    def __aiter__(self) -> AsyncIterator[SampleBlock]:
        return self.ablocks()


__all__ = [
    "DEFAULT_BAUD",
    "DEFAULT_RATE_HZ",
    "PROTOCOLS",
    "SILENT_PROBE_S",
    "Backoff",
    "BlockQueue",
    "GsrSource",
    "SourceCounters",
    "make_decoder",
    "parse_source_url",
]
