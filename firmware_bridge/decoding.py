"""What every sans-IO decoder shares: counters, the output sample axis, the decoder interface.

A decoder is fed bytes in any split (``feed(data)``) and returns
:class:`~emotionkd.firmware_bridge.samples.SampleBlock` s on one continuous sample axis. Lost
samples are filled with NaN + :attr:`SampleFlag.GAP` so windows keep a true time axis.

**Bounded gap filling.** A gap is filled sample by sample only up to ``max_gap_s`` (default
10 s). A longer gap, or a jump the decoder cannot measure (the device restarted its sample
counter, a timestamp wrapped more than once, the link was down for an unknown time), is a
*discontinuity*: the axis gets exactly ``max_gap_s`` of NaN (enough to break every window, since
windows are far shorter) and the first sample after it carries :attr:`SampleFlag.CLOCK_RESYNC`.
The true number of lost samples, where known, is still counted in ``samples_lost``. So a
corrupt timestamp can never make the host allocate unbounded memory: a fill never exceeds
:data:`~emotionkd.firmware_bridge.bounds.MAX_GAP_FILL_SAMPLES`, and a rate a device claims
outside :mod:`~emotionkd.firmware_bridge.bounds` is ignored and counted in ``implausible_claims``.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from emotionkd.firmware_bridge.bounds import MAX_GAP_FILL_SAMPLES, rate_problem
from emotionkd.firmware_bridge.errors import ConfigError
from emotionkd.firmware_bridge.samples import SampleBlock, SampleFlag

#: default longest gap filled sample by sample (s)
DEFAULT_MAX_GAP_S = 10.0
#: NaN fill samples each real sample earns (see :attr:`SampleAxis.fill_credit`)
FILL_CREDIT_PER_SAMPLE = 4


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


class SampleAxis:
    """The decoder's output axis: turns values and gaps into :class:`SampleBlock` s.

    Args:
        rate_hz: nominal rate written into the blocks.
        max_gap_s: longest gap filled sample by sample (see the module docstring).
    """

    def __init__(self, rate_hz: float, max_gap_s: float = DEFAULT_MAX_GAP_S) -> None:
        problem = rate_problem(rate_hz)
        if problem is not None:
            raise ConfigError(f"decoder {problem}; give a sampling rate in that range")
        if not (max_gap_s > 0 and math.isfinite(max_gap_s)):
            raise ConfigError(f"max_gap_s must be positive, got {max_gap_s!r}")
        self.rate_hz = float(rate_hz)
        self.max_gap_s = float(max_gap_s)
        self.next_index = 0
        self._resync_pending = False
        self._fill_credit = MAX_GAP_FILL_SAMPLES
        self._credit_time_s: float | None = None  # host time the credit was last earned at

    @property
    def max_gap_samples(self) -> int:
        return max(1, min(MAX_GAP_FILL_SAMPLES, int(round(self.max_gap_s * self.rate_hz))))

    @property
    def fill_credit(self) -> int:
        """NaN samples the axis may still fill before the next real sample arrives.

        Real samples earn :data:`FILL_CREDIT_PER_SAMPLE` each, and host time earns the nominal
        rate (a device cannot truly lose more samples than it could have sent meanwhile), up to
        ``max_gap_samples``; fills spend it. Frames that each claim a long jump can therefore not
        make the host emit more than a few NaN per real sample plus the rate's worth per second
        of host time (bounded memory per byte and per second); a fill cut short by the credit is a
        discontinuity (resync flag, counted by the decoder).
        """
        return min(self._fill_credit, self.max_gap_samples)

    def _earn(self, host_time_s: float) -> None:
        last = self._credit_time_s
        if last is not None and host_time_s > last:
            elapsed = min(host_time_s - last, DEFAULT_MAX_GAP_S)
            self._fill_credit = min(self.max_gap_samples, self.fill_credit + int(elapsed * self.rate_hz))
        if last is None or host_time_s > last:
            self._credit_time_s = host_time_s

    def samples(self, values_us: npt.ArrayLike, flags: npt.ArrayLike, host_time_s: float) -> SampleBlock:
        """Real samples (from the device) placed next on the axis."""
        self._earn(host_time_s)
        block = self._emit(values_us, flags, host_time_s)
        self._fill_credit = min(self.max_gap_samples, self.fill_credit + FILL_CREDIT_PER_SAMPLE * len(block))
        return block

    def _emit(self, values_us: npt.ArrayLike, flags: npt.ArrayLike, host_time_s: float) -> SampleBlock:
        values = np.asarray(values_us, dtype=np.float64)
        flag_array = np.asarray(flags, dtype=np.uint8)
        if flag_array.shape != values.shape:
            flag_array = np.broadcast_to(flag_array, values.shape).astype(np.uint8)
        if self._resync_pending and values.size:
            flag_array = flag_array.copy()
            flag_array[0] |= SampleFlag.CLOCK_RESYNC
            self._resync_pending = False
        block = SampleBlock(self.next_index, values, flag_array, self.rate_hz, host_time_s)
        self.next_index += values.size
        return block

    def _fill(self, n_samples: int, flags: int, host_time_s: float) -> SampleBlock:
        self._earn(host_time_s)
        self._fill_credit = max(0, self.fill_credit - n_samples)
        return self._emit(np.full(n_samples, np.nan), np.full(n_samples, flags, dtype=np.uint8), host_time_s)

    def gap(self, n_samples: int, host_time_s: float, extra_flags: int = 0) -> SampleBlock | None:
        """NaN fill for ``n_samples`` lost samples, or ``None`` when there are none.

        A gap longer than ``max_gap_samples`` (or than the fill credit) becomes a discontinuity
        (bounded fill + resync flag).
        """
        if n_samples <= 0:
            return None
        self._earn(host_time_s)
        if n_samples > self.fill_credit:
            return self.discontinuity(host_time_s, n_samples)
        return self._fill(n_samples, SampleFlag.GAP | extra_flags, host_time_s)

    def discontinuity(self, host_time_s: float, fill_samples: int | None = None) -> SampleBlock:
        """A bounded NaN fill (``max_gap_samples``, or ``fill_samples`` when smaller, never more than
        the fill credit, at least one sample) marking a jump."""
        self._earn(host_time_s)
        wanted = self.max_gap_samples if fill_samples is None else fill_samples
        n = max(1, min(wanted, self.fill_credit))
        block = self._fill(n, SampleFlag.GAP, host_time_s)
        self._resync_pending = True
        return block


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


class Decoder:
    """Base of the sans-IO decoders.

    Subclasses implement :meth:`_feed` and set ``counters``; the transports use
    :meth:`startup_commands`, :meth:`link_reset` and :attr:`rate_hz`.
    """

    #: protocol name used in URLs (``?protocol=``)
    protocol = "base"
    counters: DecoderCounters

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


__all__ = ["DEFAULT_MAX_GAP_S", "Decoder", "DecoderCounters", "SampleAxis", "merge_blocks"]
