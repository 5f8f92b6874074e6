"""What every live source is: a context manager that yields :class:`SampleBlock` s.

A source is addressed by URL (parsed once into a spec, :mod:`~emotionkd.firmware_bridge.source_spec`)
and offers the same blocks in two shapes: a blocking iterator (:meth:`Source.blocks`) for scripts
and threads, and an async iterator (:meth:`Source.ablocks`) for asyncio apps. Files, the
simulator and LSL implement ``blocks`` and get ``ablocks`` from a worker thread; the device source
(:class:`~emotionkd.firmware_bridge.sources.GsrSource`) implements both itself (BLE is async end
to end in ``ablocks``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass

from emotionkd.firmware_bridge.sample_axis import StreamClock
from emotionkd.firmware_bridge.samples import SampleBlock


@dataclass(frozen=True)
class SourceInfo:
    """What a source says about itself (recorded in a recording's metadata).

    Attributes:
        device: the source as a person reads it (its spec's
            :meth:`~emotionkd.firmware_bridge.source_spec.SourceSpec.describe`, with what the
            source learned once open: ``EKD-GSR-01 (serial)``, ``replay of a.csv (recorded from …)``).
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

    async def aopen(self) -> None:
        """:meth:`open` for asyncio (a worker thread by default; the device source connects BLE
        in the running loop)."""
        await asyncio.to_thread(self.open)

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
        """Blocks in order, blocking until each arrives; ends when the source ends or is closed.
        Every source implements it (a source whose transport is async runs it in its own loop,
        as :class:`~emotionkd.firmware_bridge.sources.GsrSource` does for BLE)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement blocks()")

    async def ablocks(self) -> AsyncIterator[SampleBlock]:
        """Async iterator over the same blocks as :meth:`blocks`. This default suits a source whose
        transport is synchronous (a file, the simulator, LSL): a worker thread takes each block;
        a source with an async transport overrides it (the device source: BLE in this loop)."""
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


__all__ = ["Source", "SourceInfo"]
