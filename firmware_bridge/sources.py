"""Sources: a transport + a decoder behind one façade, addressed by URL.

::

    serial:///dev/ttyUSB0?protocol=ekd&baud=115200
    serial:///dev/ttyACM0?protocol=ascii&unit=adc&rate=10&baud=9600
    serial:///dev/rfcomm0?protocol=shimmer3&rate=128
    serial:///dev/rfcomm1?protocol=bitalino&rate=100&channels=2&eda=2
    ble://AA:BB:CC:DD:EE:FF?protocol=ekd          (by address; macOS: the CoreBluetooth UUID)
    ble://EKD-GSR-01?protocol=ekd                  (by advertised name)
    ble://AA:BB:CC:DD:EE:FF?protocol=ekd&mode=nus  (EKD serial stream over Nordic UART)

A :class:`GsrSource` runs its transport in a background thread and hands decoded
:class:`~emotionkd.firmware_bridge.samples.SampleBlock` s through a bounded queue, usable as
``for block in source`` or ``async for block in source``. When the consumer falls behind, the
oldest blocks are dropped and counted (``queue_drops``) and the iterator fills their samples
with NaN + GAP, so the sample axis stays true. A lost link is reconnected with capped
exponential backoff; the decoder measures the outage on the device's time base (or the host
clock for host-timed devices). If the first connection fails, or ``reconnect=False`` and the
link drops, iteration raises :class:`TransportError`.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from emotionkd.firmware_bridge.ascii_lines import AsciiLineDecoder
from emotionkd.firmware_bridge.bitalino import BitalinoDecoder
from emotionkd.firmware_bridge.decoding import Decoder
from emotionkd.firmware_bridge.ekd_decoder import EkdBleDecoder, EkdSerialDecoder
from emotionkd.firmware_bridge.errors import ConfigError, TransportError
from emotionkd.firmware_bridge.sample_axis import AxisAligner, GapPolicy
from emotionkd.firmware_bridge.samples import SampleBlock
from emotionkd.firmware_bridge.shimmer3 import Shimmer3Decoder

logger = logging.getLogger(__name__)

PROTOCOLS = ("ekd", "ascii", "shimmer3", "bitalino")
DEFAULT_BAUD = {"ekd": 115200, "ascii": 9600, "shimmer3": 115200, "bitalino": 115200}
DEFAULT_RATE_HZ = {"ekd": 128.0, "ascii": 10.0, "shimmer3": 128.0, "bitalino": 100.0}
_BLE_ADDRESS = re.compile(r"^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$|^[0-9A-Fa-f]{8}-([0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}$")


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff: ``initial_s · factor^attempt``, at most ``max_s``."""

    initial_s: float = 0.2
    factor: float = 2.0
    max_s: float = 5.0

    def delay_s(self, attempt: int) -> float:
        return min(self.max_s, self.initial_s * self.factor ** max(0, attempt))


@dataclass(frozen=True)
class SourceSpec:
    """A parsed source URL.

    Attributes:
        scheme: ``"serial"`` or ``"ble"``.
        target: serial device path, or BLE address / name.
        protocol: one of :data:`PROTOCOLS`.
        baud: serial baud rate.
        rate_hz: nominal (or requested) sampling rate.
        by_name: BLE: ``target`` is an advertised name, not an address.
        options: the remaining query parameters (protocol-specific: unit, channels, eda, mode …).
    """

    scheme: str
    target: str
    protocol: str
    baud: int
    rate_hz: float
    by_name: bool = False
    options: dict[str, str] = field(default_factory=dict)


def parse_source_url(url: str) -> SourceSpec:
    """Parse a ``serial://`` or ``ble://`` URL (see the module docstring).

    Raises:
        ConfigError: unknown scheme or protocol, missing target, malformed numbers.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    protocol = query.pop("protocol", "ekd").lower()
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {protocol!r} in {url!r}; use one of {', '.join(PROTOCOLS)}")
    try:
        baud = int(query.pop("baud", DEFAULT_BAUD[protocol]))
        rate_hz = float(query.pop("rate", DEFAULT_RATE_HZ[protocol]))
    except ValueError as exc:
        raise ConfigError(f"baud and rate must be numbers in {url!r}") from exc
    if baud <= 0 or not rate_hz > 0:
        raise ConfigError(f"baud and rate must be positive in {url!r}")
    if scheme == "serial":
        target = unquote(parts.netloc + parts.path)
        if not target:
            raise ConfigError(f"no serial device in {url!r}; write serial:///dev/ttyUSB0?protocol=ekd")
        return SourceSpec("serial", target, protocol, baud, rate_hz, False, query)
    if scheme == "ble":
        target = unquote(parts.netloc + parts.path).strip("/")
        name = query.pop("name", "")
        if name:
            target = name
        if not target:
            raise ConfigError(f"no BLE address or name in {url!r}; write ble://AA:BB:CC:DD:EE:FF?protocol=ekd")
        if protocol not in ("ekd",) and query.get("mode", "") != "nus":
            raise ConfigError(f"protocol {protocol!r} has no BLE transport here; its devices appear as serial ports")
        return SourceSpec("ble", target, protocol, baud, rate_hz, not _BLE_ADDRESS.match(target), query)
    raise ConfigError(f"unknown source scheme {parts.scheme!r} in {url!r}; use serial:// or ble://")


def make_decoder(spec: SourceSpec) -> Decoder[Any]:
    """The decoder a source URL asks for (protocol options come from the query)."""
    opts = dict(spec.options)
    try:
        if spec.protocol == "ekd":
            if spec.scheme == "ble" and opts.get("mode", "gatt") != "nus":
                return EkdBleDecoder(spec.rate_hz)
            return EkdSerialDecoder(spec.rate_hz)
        if spec.protocol == "ascii":
            kwargs: dict[str, Any] = {"unit": opts.get("unit", "adc")}
            if "cal" in opts:
                kwargs["grove_cal"] = float(opts["cal"])
            return AsciiLineDecoder(spec.rate_hz, **kwargs)
        if spec.protocol == "shimmer3":
            return Shimmer3Decoder(spec.rate_hz)
        channels = tuple(int(c) for c in opts.get("channels", "2").split(",") if c != "")
        eda = int(opts.get("eda", channels[0] if len(channels) == 1 else 2))
        return BitalinoDecoder(spec.rate_hz, channels=channels, eda_channel=eda)
    except ValueError as exc:
        raise ConfigError(f"bad option for protocol {spec.protocol!r}: {exc}") from exc


# --- the queue between the transport thread and the consumer ----------------------------------

class BlockQueue:
    """Bounded FIFO of blocks; a full queue drops its oldest block (counted)."""

    def __init__(self, max_blocks: int = 1024) -> None:
        self._items: collections.deque[SampleBlock | BaseException] = collections.deque()
        self._max = int(max_blocks)
        self._cond = threading.Condition()
        self.drops = 0
        self.dropped_samples = 0

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

    def get(self, timeout_s: float | None) -> SampleBlock | BaseException | None:
        with self._cond:
            if not self._items:
                self._cond.wait(timeout_s)
            return self._items.popleft() if self._items else None

    def __len__(self) -> int:
        return len(self._items)


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


class GsrSource:
    """A live source of samples: ``for block in source`` / ``async for block in source``.

    Args:
        url: source URL (see :func:`parse_source_url`).
        reconnect: reconnect after the link drops (the first connection must succeed).
        backoff: delays between reconnection attempts.
        stall_timeout_s: silence that counts as a lost link (None: never).
        max_queue_blocks: capacity of the block queue.
        connect_timeout_s: how long :meth:`start` waits for the first connection.
        decoder: a decoder to use instead of the one the URL names.
        gap_policy: the bound on the NaN fill that stands for blocks the queue dropped.
    """

    def __init__(self, url: str, *, reconnect: bool = True, backoff: Backoff | None = None,
                 stall_timeout_s: float | None = 5.0, max_queue_blocks: int = 1024,
                 connect_timeout_s: float = 20.0, decoder: Decoder[Any] | None = None,
                 gap_policy: GapPolicy | None = None) -> None:
        self.url = url
        self.spec = parse_source_url(url)
        self.decoder = decoder or make_decoder(self.spec)
        self.reconnect = reconnect
        self.backoff = backoff or Backoff()
        self.stall_timeout_s = stall_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.transport_counters = SourceCounters()
        self._queue = BlockQueue(max_queue_blocks)
        self._stop = threading.Event()
        self._first_result = threading.Event()
        self._first_error: TransportError | None = None
        self._thread: threading.Thread | None = None
        self._aligner: AxisAligner | None = None
        self.gap_policy = gap_policy or GapPolicy()
        self._closed = False
        self._decoder_lock = threading.Lock()

    # -- lifecycle -----------------------------------------------------------------------
    @property
    def rate_hz(self) -> float:
        return self.decoder.rate_hz

    def start(self) -> GsrSource:
        """Connect (waits for the first connection) and start streaming.

        Raises:
            TransportError: the first connection failed (names the device and the fix).
        """
        if self._thread is not None:
            return self
        from emotionkd.firmware_bridge.transports import run_ble, run_serial

        target = run_serial if self.spec.scheme == "serial" else run_ble
        self._thread = threading.Thread(target=target, args=(self,), name=f"emotionkd-source {self.url}", daemon=True)
        self._thread.start()
        if not self._first_result.wait(self.connect_timeout_s):
            self.close()
            raise TransportError(f"no connection to {self.url} within {self.connect_timeout_s:g} s; "
                                 "is the device on and in range?", url=self.url)
        if self._first_error is not None:
            self.close()
            raise self._first_error
        return self

    def close(self) -> None:
        """Stop the transport (sends the protocol's stop command when connected)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10.0)
        self._thread = None
        self._closed = True

    def __enter__(self) -> GsrSource:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> GsrSource:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.close)

    # -- called by the transport thread ------------------------------------------------------
    def _connected(self) -> None:
        self.transport_counters.connects += 1
        self._first_result.set()

    def _failed_first(self, error: TransportError) -> None:
        self._first_error = error
        self._first_result.set()

    def _deliver(self, blocks: list[SampleBlock]) -> None:
        for block in blocks:
            self._queue.put(block)

    def _fatal(self, error: TransportError) -> None:
        self.transport_counters.last_error = str(error)
        self._queue.put(error)

    def _feed(self, data: bytes) -> None:
        self.transport_counters.bytes_read += len(data)
        with self._decoder_lock:
            blocks = self.decoder.feed(data)
        self._deliver(blocks)

    # -- consumer side -------------------------------------------------------------------------
    def read(self, timeout_s: float | None = 1.0) -> list[SampleBlock]:
        """The next block(s), or ``[]`` after ``timeout_s`` without data.

        Blocks the queue dropped come back as NaN + GAP fills (several blocks then).

        Raises:
            TransportError: the link failed and will not be re-established.
        """
        item = self._queue.get(timeout_s)
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
        # blocks the queue dropped come back as a bounded NaN fill (sample_axis owns the rules)
        return aligner.place(item).blocks

    def collect(self, seconds: float) -> list[SampleBlock]:
        """All blocks that arrive within ``seconds`` (for scripts and tests)."""
        blocks: list[SampleBlock] = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            blocks += self.read(min(0.1, max(0.0, end - time.monotonic())))
        return blocks

    def __iter__(self) -> Iterator[SampleBlock]:
        if self._thread is None:
            self.start()
        while not (self._closed and not len(self._queue)):
            yield from self.read(0.25)

    async def __aiter__(self) -> AsyncIterator[SampleBlock]:
        if self._thread is None:
            await asyncio.to_thread(self.start)
        while not (self._closed and not len(self._queue)):
            for block in await asyncio.to_thread(self.read, 0.25):
                yield block

    def counters(self) -> dict[str, Any]:
        """Decoder and transport counters as one plain dict."""
        return {**self.decoder.describe(), **asdict(self.transport_counters)}


def open_source(url: str, **kwargs: Any) -> GsrSource:
    """Create and start a :class:`GsrSource` (see its arguments)."""
    return GsrSource(url, **kwargs).start()



__all__ = [
    "DEFAULT_BAUD",
    "DEFAULT_RATE_HZ",
    "PROTOCOLS",
    "Backoff",
    "BlockQueue",
    "GsrSource",
    "SourceCounters",
    "SourceSpec",
    "make_decoder",
    "open_source",
    "parse_source_url",
]
