"""What every sans-IO decoder shares: counters, the output sample axis, the decoder interface.

A decoder is fed bytes in any split (``feed(data)``) and returns
:class:`~emotionkd.firmware_bridge.samples.SampleBlock` s on one continuous sample axis. Lost
samples are filled with NaN + :attr:`SampleFlag.GAP` so windows keep a true time axis.

The axis itself (bounded gap filling, discontinuities, the fill credit) is
:class:`~emotionkd.firmware_bridge.sample_axis.SampleAxis`: the one owner of those rules. A rate a
device claims outside :mod:`~emotionkd.firmware_bridge.bounds` is ignored and counted in
``implausible_claims``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Generic, TypeVar

import numpy as np

from emotionkd.firmware_bridge.sample_axis import DEFAULT_MAX_GAP_S, SampleAxis
from emotionkd.firmware_bridge.samples import SampleBlock


@dataclass
class DecoderCounters:
    """Counters every decoder keeps (subclasses add protocol-specific ones).

    Attributes:
        bytes_received: bytes fed.
        frames: frames (packets, lines) accepted.
        crc_failures: frames dropped for a bad checksum.
        bytes_skipped: bytes discarded while resynchronising (garbage, broken frames).
        frames_lost: frames missing according to the sequence counter.
        samples_lost: samples missing according to the device time base (filled with NaN).
        duplicates: frames received twice (dropped).
        discontinuities: jumps represented by a bounded ``max_gap_s`` NaN fill.
        samples: samples emitted (including NaN fills).
        implausible_claims: device claims (a rate) outside the plausibility bounds, ignored.
    """

    bytes_received: int = 0
    frames: int = 0
    crc_failures: int = 0
    bytes_skipped: int = 0
    frames_lost: int = 0
    samples_lost: int = 0
    duplicates: int = 0
    discontinuities: int = 0
    samples: int = 0
    implausible_claims: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def merge_blocks(blocks: list[SampleBlock]) -> list[SampleBlock]:
    """Join adjacent blocks of the same rate (fewer, larger blocks; same samples)."""
    if len(blocks) <= 1:
        return blocks
    out: list[SampleBlock] = []
    run: list[SampleBlock] = [blocks[0]]
    for block in blocks[1:]:
        last = run[-1]
        if block.rate_hz == last.rate_hz and block.first_index == last.first_index + len(last):
            run.append(block)
            continue
        out.append(_join(run))
        run = [block]
    out.append(_join(run))
    return out


def _join(run: list[SampleBlock]) -> SampleBlock:
    if len(run) == 1:
        return run[0]
    return SampleBlock(
        run[0].first_index,
        np.concatenate([b.conductance_us for b in run]),
        np.concatenate([b.flags for b in run]).astype(np.uint8),
        run[0].rate_hz,
        run[-1].host_time_s,
    )


CountersT = TypeVar("CountersT", bound=DecoderCounters)


class Decoder(Generic[CountersT]):
    """Base of the sans-IO decoders, generic in their counters class.

    Subclasses implement :meth:`_feed` and set ``counters`` (``class X(Decoder[XCounters])``, so
    that ``decoder.counters.crc_failures`` type-checks); the transports use
    :meth:`startup_commands`, :meth:`link_reset` and :attr:`rate_hz`.
    """

    #: protocol name used in URLs (``?protocol=``)
    protocol = "base"
    counters: CountersT

    def __init__(self, rate_hz: float, max_gap_s: float = DEFAULT_MAX_GAP_S) -> None:
        self.axis = SampleAxis(rate_hz, max_gap_s)
        #: host-measured length of the last link outage, until the first samples after it
        self._pending_outage_s: float | None = None

    def _fill_lost(self, lost: int, now: float) -> list[SampleBlock]:
        """NaN for ``lost`` samples that the device's counter says are missing.

        Counters wrap (BITalino: 16 frames, Shimmer3: 512 s), so right after a reconnect a
        host-measured outage longer than ``lost`` wins: a discontinuity of that length (bounded).
        """
        self.counters.samples_lost += lost
        outage, self._pending_outage_s = self._pending_outage_s, None
        if outage is not None and outage * self.rate_hz > lost:
            self.counters.discontinuities += 1
            return [self.axis.discontinuity(now, int(round(outage * self.rate_hz)))]
        block = self.axis.gap(lost, now)
        if block is None:
            return []
        if len(block) < lost:
            self.counters.discontinuities += 1
        return [block]

    @property
    def rate_hz(self) -> float:
        """Nominal sampling rate of the decoded stream (Hz)."""
        return self.axis.rate_hz

    def feed(self, data: bytes | bytearray | memoryview, host_time_s: float | None = None) -> list[SampleBlock]:
        """Decode ``data`` (any split of the stream); returns the completed samples.

        Never raises on bad bytes: they are counted and skipped.
        """
        now = time.time() if host_time_s is None else float(host_time_s)
        self.counters.bytes_received += len(data)
        blocks = merge_blocks([b for b in self._feed(bytes(data), now) if len(b)])
        self.counters.samples += sum(len(b) for b in blocks)
        return blocks

    def _feed(self, data: bytes, now: float) -> list[SampleBlock]:  # pragma: no cover - abstract
        raise NotImplementedError

    def startup_commands(self) -> list[bytes]:
        """Bytes the host sends after (re)connecting, in order (e.g. START)."""
        return []

    def stop_commands(self) -> list[bytes]:
        """Bytes the host sends before closing (e.g. STOP)."""
        return []

    def link_reset(self, down_s: float | None = None) -> list[SampleBlock]:
        """The link was re-established after ``down_s`` seconds: drop partial bytes.

        Decoders with a device time base measure the gap themselves; host-timed ones fill
        ``down_s`` of NaN (bounded). Returns the fill, if any.
        """
        return []

    def describe(self) -> dict[str, Any]:
        """Counters and rate as plain types (for logs and ``--json`` outputs)."""
        return {"protocol": self.protocol, "rate_hz": self.rate_hz, **self.counters.as_dict()}


__all__ = ["DEFAULT_MAX_GAP_S", "CountersT", "Decoder", "DecoderCounters", "SampleAxis", "merge_blocks"]
