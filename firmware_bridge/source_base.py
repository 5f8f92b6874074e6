"""What every live source is: a context manager that yields :class:`SampleBlock` s.

A source is addressed by URL (parsed once into a spec, :mod:`~emotionkd.firmware_bridge.source_spec`)
and offers the same blocks in two shapes: a blocking iterator (:meth:`Source.blocks`) for scripts
and threads, and an async iterator (:meth:`Source.ablocks`) for asyncio apps. A source implements
the face its transport has natively: files, the simulator and LSL implement ``blocks`` and get
``ablocks`` from a worker thread; the device source
(:class:`~emotionkd.firmware_bridge.sources.GsrSource`) implements both itself (BLE is async end
to end in ``ablocks``).
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from emotionkd.firmware_bridge.sample_axis import StreamClock
from emotionkd.firmware_bridge.samples import SampleBlock


@dataclass(frozen=True)
class SourceInfo:
    """What a source says about itself (recorded in a recording's metadata).

    Attributes:
        device: a human name of the device or file.
        protocol: the wire protocol or file format (``ekd``, ``ascii``, ``e4``, ``sim`` …).
        rate_hz: nominal sampling rate (Hz); 0 while unknown (a device that has not said hello).
        unit: unit of the blocks' values (always ``uS``: sources convert).
    """

    device: str
    protocol: str
    rate_hz: float
    unit: str = "uS"


class Source:
    """A stream of :class:`SampleBlock` s in µS from one device, file or network stream.

    Use it as a context manager (``with open_source(url) as src: for block in src.blocks()``).
    Subclasses implement :meth:`blocks` or :meth:`ablocks` (at least one), and may override
    :meth:`open`, :meth:`close`, :attr:`info` and :meth:`counters`.

    Attributes:
        url: the URL the source was opened from.
    """

    url: str = ""

    def __init__(self, url: str) -> None:
        self.url = url
        self._closed = threading.Event()

    # -- life cycle -------------------------------------------------------------------------
    def open(self) -> None:
        """Acquire the device or file (raise :class:`TransportError` / :class:`DataError`)."""

    def close(self) -> None:
        """Release the device; makes a blocked :meth:`blocks` return soon. Idempotent."""
        self._closed.set()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def __enter__(self) -> Source:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- description ------------------------------------------------------------------------
    @property
    def info(self) -> SourceInfo:
        return SourceInfo(device=self.url, protocol="unknown", rate_hz=0.0)

    @property
    def clock(self) -> StreamClock | None:
        """The source's own clock along its sample axis (LSL time for ``lsl://``), or None when it
        has none; outputs use it to stamp a prediction with its window's end."""
        return None

    def counters(self) -> Mapping[str, int]:
        """Counters of the transport and decoder (frames, lost, CRC failures …), for displays."""
        return {}

    # -- data -------------------------------------------------------------------------------
    def blocks(self) -> Iterator[SampleBlock]:
        """Blocks in order, blocking until each arrives; ends when the source ends or is closed."""
        if type(self).ablocks is Source.ablocks:
            raise NotImplementedError(f"{type(self).__name__} implements neither blocks() nor ablocks()")
        return _iterate_async_in_thread(self)

    async def ablocks(self) -> AsyncIterator[SampleBlock]:
        """Async iterator over the same blocks as :meth:`blocks`."""
        if type(self).blocks is Source.blocks:
            raise NotImplementedError(f"{type(self).__name__} implements neither blocks() nor ablocks()")
        iterator = self.blocks()
        done = object()
        try:
            while True:
                block = await asyncio.to_thread(next, iterator, done)
                if block is done:
                    return
                yield block  # type: ignore[misc]
        finally:
            self.close()


def _iterate_async_in_thread(source: Source) -> Iterator[SampleBlock]:
    """Run ``source.ablocks()`` in an event loop on a worker thread; yield its blocks here."""
    handover: queue.Queue[Any] = queue.Queue(maxsize=256)
    done = object()

    async def pump() -> None:
        try:
            async for block in source.ablocks():
                while not source.closed:
                    try:
                        handover.put(block, timeout=0.1)
                        break
                    except queue.Full:
                        await asyncio.sleep(0)
                if source.closed:
                    return
        except BaseException as exc:  # handed to the consumer's thread, raised there
            handover.put(exc)
            return
        handover.put(done)

    worker = threading.Thread(target=lambda: asyncio.run(pump()), name=f"source {source.url}", daemon=True)
    worker.start()
    try:
        while True:
            try:
                item = handover.get(timeout=0.1)
            except queue.Empty:
                if not worker.is_alive():
                    return
                continue
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        source.close()
        worker.join(timeout=2.0)


__all__ = ["Source", "SourceInfo"]
