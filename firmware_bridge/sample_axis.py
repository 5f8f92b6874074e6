# size: the one owner of the sample axis; the producer axis, the jump rules, the aligner and the clock share those rules (split, they would drift apart again)
"""The one owner of the sample axis: bounded gap filling, overlap trimming, restarts, segments.

Every sample a source hands upward sits on a continuous *sample axis* (index 0 = the stream's
first sample; ``time_s = index / rate_hz``). Whoever turns claimed positions (a device's sample
counter, an LSL time stamp, a block's ``first_index`` after a queue dropped blocks) into that
axis uses this module, so the rules are the same everywhere:

* **Jumps** (:func:`classify_jump`): a block that starts ``delta`` samples after the position
  expected next is ``continue`` (|delta| within the jitter tolerance), a ``gap`` (filled with
  NaN + :attr:`SampleFlag.GAP`), an ``overlap`` (its first samples were emitted already:
  trimmed), a ``duplicate`` (all of it was emitted: dropped) or a ``discontinuity`` (a jump
  forward longer than the bound, a jump back further than the bound = the source restarted its
  counter, or a claim that is not a finite number).
* **Bounded fill.** A gap is filled sample by sample only up to :attr:`GapPolicy.max_gap_s`
  (default :data:`DEFAULT_MAX_GAP_S` = 10 s, never more than
  :data:`~emotionkd.firmware_bridge.bounds.MAX_GAP_FILL_SAMPLES`). A discontinuity gets exactly
  that bounded fill (enough to break every window: windows are far shorter) and the first sample
  after it carries :attr:`SampleFlag.CLOCK_RESYNC`; the true number of lost samples, where
  known, is still counted. So no claim, however large (a time jump of 10^9 s, a corrupt counter),
  makes the host allocate more than the bound.
* **Segments.** With ``GapPolicy(on_long_gap="segment")`` a discontinuity is not filled: the
  caller starts a new segment (a consumer whose state must not span the jump, e.g. a
  classifier's filter) and :attr:`Placement.new_segment` says so. A measured forward jump still
  advances the axis (no samples are made), so the new segment starts at its true time; a
  restart continues the axis where it was.

The parts:

:class:`SampleAxis`
    the *producer* side (decoders): emits samples and bounded fills, with a fill credit so that
    frames claiming many jumps cannot make the host emit unbounded NaN.
:class:`AxisAligner`
    the *consumer* side (source refill, recorder, LSL, replay): places blocks that carry their
    own claimed position onto one continuous output axis, filling, trimming and re-basing.
:class:`StreamClock`
    maps the output axis back to the source's own clock (LSL time), so that a prediction can
    be stamped with the time of its window's end on that clock.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from emotionkd.firmware_bridge.bounds import MAX_GAP_FILL_SAMPLES, rate_problem
from emotionkd.firmware_bridge.errors import ConfigError
from emotionkd.firmware_bridge.samples import SampleBlock, SampleFlag

#: default longest gap filled sample by sample (s)
DEFAULT_MAX_GAP_S: Final = 10.0
#: NaN fill samples each real sample earns (see :attr:`SampleAxis.fill_credit`)
FILL_CREDIT_PER_SAMPLE: Final = 4

JumpKind = Literal["continue", "gap", "overlap", "duplicate", "discontinuity"]


def _check_max_gap(max_gap_s: float, name: str = "max_gap_s") -> float:
    if not (max_gap_s > 0 and math.isfinite(max_gap_s)):
        raise ConfigError(f"{name} must be a positive number of seconds, got {max_gap_s!r}")
    return float(max_gap_s)


def max_gap_samples(rate_hz: float, max_gap_s: float = DEFAULT_MAX_GAP_S) -> int:
    """The most samples one gap may fill at ``rate_hz``: ``max_gap_s · rate_hz`` rounded, at least
    1, at most :data:`MAX_GAP_FILL_SAMPLES`."""
    return max(1, min(MAX_GAP_FILL_SAMPLES, int(round(max_gap_s * rate_hz))))


@dataclass(frozen=True)
class GapPolicy:
    """How an :class:`AxisAligner` treats jumps.

    Attributes:
        max_gap_s: the longest gap filled sample by sample; a longer jump is a discontinuity
            (bounded fill of this length, or a new segment).
        jitter_s: a jump of at most this much either way is clock jitter, not a gap or an
            overlap (LSL time stamps); 0 for sample counters.
        on_long_gap: ``"fill"``: a discontinuity gets a ``max_gap_s`` NaN fill and the
            CLOCK_RESYNC flag; ``"segment"``: no fill, :attr:`Placement.new_segment` is set.
        on_overlap: ``"trim"``: samples claimed at positions already emitted are dropped as
            duplicates (sample counters: a block sent twice); ``"keep"``: the claim's clock
            stepped back, every sample is kept and the axis re-based (time stamps: the sender's
            clock was set back; nothing recorded is lost).
        max_overlap_s: the furthest a claim may go back and still be an overlap (trimmed);
            further back is a restart (a discontinuity). None: ``max_gap_s``.
    """

    max_gap_s: float = DEFAULT_MAX_GAP_S
    jitter_s: float = 0.0
    on_long_gap: Literal["fill", "segment"] = "fill"
    on_overlap: Literal["trim", "keep"] = "trim"
    max_overlap_s: float | None = None

    def __post_init__(self) -> None:
        _check_max_gap(self.max_gap_s)
        if not (self.jitter_s >= 0 and math.isfinite(self.jitter_s)):
            raise ConfigError(f"jitter_s must be >= 0 s, got {self.jitter_s!r}")
        if self.on_long_gap not in ("fill", "segment"):
            raise ConfigError(f"on_long_gap must be 'fill' or 'segment', got {self.on_long_gap!r}")
        if self.max_overlap_s is not None:
            _check_max_gap(self.max_overlap_s, "max_overlap_s")
        if self.on_overlap not in ("trim", "keep"):
            raise ConfigError(f"on_overlap must be 'trim' or 'keep', got {self.on_overlap!r}")

    def max_gap_samples(self, rate_hz: float) -> int:
        return max_gap_samples(rate_hz, self.max_gap_s)

    def jitter_samples(self, rate_hz: float) -> int:
        return int(round(self.jitter_s * rate_hz))

    def max_overlap_samples(self, rate_hz: float) -> int:
        if self.max_overlap_s is None:
            return self.max_gap_samples(rate_hz)
        return max_gap_samples(rate_hz, self.max_overlap_s)


@dataclass(frozen=True)
class Jump:
    """How a block relates to the position expected next (see :func:`classify_jump`).

    Attributes:
        kind: continue, gap, overlap, duplicate or discontinuity.
        fill: NaN samples to place before the block (gaps only; bounded).
        skip: leading samples of the block already emitted (overlap; all of it for a duplicate).
        lost: samples the claim says are missing (may exceed ``fill``; 0 when unknown).
    """

    kind: JumpKind
    fill: int = 0
    skip: int = 0
    lost: int = 0


def classify_jump(delta: float, n_samples: int, max_gap: int, jitter: int = 0, max_overlap: int | None = None) -> Jump:
    """Classify a block of ``n_samples`` claimed to start ``delta`` samples after the next expected.

    Args:
        delta: claimed start minus expected start (samples; float so that an absurd claim such as
            1e300 stays a number; NaN or ±inf is a discontinuity).
        n_samples: the block's length.
        max_gap: the longest gap accepted, in samples.
        jitter: |delta| up to this is a ``continue``.
        max_overlap: the furthest back a block may start and be an overlap (None: ``max_gap``);
            further back is a restart.
    """
    if not math.isfinite(delta):
        return Jump("discontinuity")
    step = int(round(delta))
    if abs(step) <= jitter:
        return Jump("continue")
    if step > 0:
        if step > max_gap:
            return Jump("discontinuity", lost=step)
        return Jump("gap", fill=step, lost=step)
    behind = -step
    if behind > (max_gap if max_overlap is None else max_overlap):
        return Jump("discontinuity")  # the source restarted its counter
    if behind >= n_samples:
        return Jump("duplicate", skip=n_samples)
    return Jump("overlap", skip=behind)


def gap_block(first_index: int, n_samples: int, rate_hz: float, host_time_s: float = 0.0,
              flags: int = SampleFlag.GAP) -> SampleBlock:
    """``n_samples`` of NaN with ``flags`` (a fill), refusing a fill over the bound."""
    if not 0 <= n_samples <= MAX_GAP_FILL_SAMPLES:
        raise ConfigError(f"a gap fill of {n_samples} samples is outside 0 … {MAX_GAP_FILL_SAMPLES}")
    return SampleBlock(first_index, np.full(n_samples, np.nan), np.full(n_samples, flags, dtype=np.uint8),
                       rate_hz, host_time_s)


class SampleAxis:
    """The producer's output axis (decoders): turns values and gaps into :class:`SampleBlock` s.

    Args:
        rate_hz: nominal rate written into the blocks.
        max_gap_s: longest gap filled sample by sample (see the module docstring).
    """

    def __init__(self, rate_hz: float, max_gap_s: float = DEFAULT_MAX_GAP_S) -> None:
        problem = rate_problem(rate_hz)
        if problem is not None:
            raise ConfigError(f"decoder {problem}; give a sampling rate in that range")
        self.rate_hz = float(rate_hz)
        self.max_gap_s = _check_max_gap(max_gap_s)
        self.next_index = 0
        self._resync_pending = False
        self._fill_credit = MAX_GAP_FILL_SAMPLES
        self._credit_time_s: float | None = None  # host time the credit was last earned at

    @property
    def max_gap_samples(self) -> int:
        return max_gap_samples(self.rate_hz, self.max_gap_s)

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


@dataclass(frozen=True)
class Placement:
    """What :meth:`AxisAligner.place` made of one block.

    Attributes:
        blocks: the output, on the aligner's axis: a bounded NaN fill (if any), then the block's
            samples not emitted before (trimmed, re-indexed); empty for a duplicate.
        jump: how the block related to the position expected next.
        new_segment: ``on_long_gap="segment"`` and a discontinuity: the caller starts a new
            segment at ``blocks[0]`` (no fill was made; after a measured forward jump its
            ``first_index`` is past the jump, after a restart it continues the axis).
    """

    blocks: list[SampleBlock]
    jump: Jump
    new_segment: bool = False


class AxisAligner:
    """Places blocks that claim a position onto one continuous output axis (consumer side).

    A block claims where it starts (``first_index``, or a position computed from a time stamp,
    see :meth:`place_values`); the aligner compares that with where the previous block ended
    and fills, trims, drops or re-bases by :func:`classify_jump`. Output indices are the input
    indices plus an offset that changes only at a discontinuity, so jitter never accumulates.

    Args:
        rate_hz: the stream's rate (Hz).
        policy: the bounds (see :class:`GapPolicy`).
        start_index: the output index of the first sample; None: the first block's own index
            (nothing before it is padded in).

    Attributes:
        samples: real samples placed; gap_samples: NaN samples filled; lost_samples: samples the
        claims say were lost (may exceed the fill); discontinuities: jumps beyond the bound;
        duplicate_samples: samples dropped as already placed; clock_steps_back: backward claims
        kept (``on_overlap="keep"``).
    """

    def __init__(self, rate_hz: float, policy: GapPolicy | None = None, *, start_index: int | None = None) -> None:
        problem = rate_problem(rate_hz)
        if problem is not None:
            raise ConfigError(f"sample axis {problem}")
        self.rate_hz = float(rate_hz)
        self.policy = policy or GapPolicy()
        self._max_gap = self.policy.max_gap_samples(self.rate_hz)
        self._max_overlap = self.policy.max_overlap_samples(self.rate_hz)
        self._jitter = min(self.policy.jitter_samples(self.rate_hz), self._max_gap - 1)
        self.next_index: int | None = start_index  # output index of the next sample
        self._offset: float | None = None  # output index - claimed index
        self._resync_pending = False
        self.samples = 0
        self.gap_samples = 0
        self.lost_samples = 0
        self.discontinuities = 0
        self.duplicate_samples = 0
        self.clock_steps_back = 0

    def counters(self) -> dict[str, int]:
        """The counts as a plain dict (for a source's ``counters()``)."""
        return {"samples": self.samples, "gap_samples": self.gap_samples, "samples_lost": self.lost_samples,
                "discontinuities": self.discontinuities, "duplicate_samples": self.duplicate_samples,
                "clock_steps_back": self.clock_steps_back}

    def place(self, block: SampleBlock) -> Placement:
        """Place a block that claims ``block.first_index`` (its rate must be the aligner's)."""
        if block.rate_hz != self.rate_hz:
            raise ConfigError(f"a {block.rate_hz:g} Hz block cannot go onto a {self.rate_hz:g} Hz axis")
        return self.place_values(float(block.first_index), block.conductance_us, block.flags, block.host_time_s)

    def place_values(self, claimed_index: float, values_us: npt.NDArray[np.float64], flags: npt.NDArray[np.uint8],
                     host_time_s: float = 0.0) -> Placement:
        """Place ``values_us`` (n,) with ``flags`` (n,) claimed to start at ``claimed_index``.

        ``claimed_index`` may be any float (e.g. ``(lsl_time - first_time) · rate``): NaN, ±inf
        or an absurd value is a discontinuity, never an allocation.
        """
        values = np.asarray(values_us, dtype=np.float64)
        flag_array = np.asarray(flags, dtype=np.uint8)
        n = int(values.size)
        if self.next_index is None:  # the first block starts the axis where it claims to
            self.next_index = int(round(claimed_index)) if math.isfinite(claimed_index) else 0
            self._offset = 0.0 if math.isfinite(claimed_index) else float(self.next_index)
        if self._offset is None:  # start_index given: the claims count from it
            self._offset = 0.0
        expected_claim = self.next_index - self._offset
        jump = classify_jump(claimed_index - expected_claim, n, self._max_gap, self._jitter, self._max_overlap)
        out: list[SampleBlock] = []
        new_segment = False
        if jump.kind in ("overlap", "duplicate") and self.policy.on_overlap == "keep":
            self.clock_steps_back += 1
            self._offset = self.next_index - claimed_index
            jump = Jump("continue")
        if jump.kind == "duplicate":
            self.duplicate_samples += n
            return Placement([], jump)
        if jump.kind == "overlap":
            self.duplicate_samples += jump.skip
            values, flag_array = values[jump.skip:], flag_array[jump.skip:]
        elif jump.kind == "gap":
            out.append(gap_block(self.next_index, jump.fill, self.rate_hz, host_time_s))
            self.next_index += jump.fill
            self.gap_samples += jump.fill
            self.lost_samples += jump.lost
        elif jump.kind == "discontinuity":
            self.discontinuities += 1
            self.lost_samples += jump.lost
            if self.policy.on_long_gap == "fill":
                out.append(gap_block(self.next_index, self._max_gap, self.rate_hz, host_time_s))
                self.next_index += self._max_gap
                self.gap_samples += self._max_gap
                self._resync_pending = True
            else:
                # a new segment: nothing is filled, but a measured forward jump still moves the
                # axis (index arithmetic, no allocation), so times after it stay true
                new_segment = True
                self.next_index += jump.lost
            # re-base: this block's claim now maps to the next output index (a non-finite
            # claim cannot be a base: the next finite claim is then measured from 0)
            self._offset = self.next_index - claimed_index if math.isfinite(claimed_index) else float(self.next_index)
        if values.size:
            if self._resync_pending:
                flag_array = flag_array.copy()
                flag_array[0] |= SampleFlag.CLOCK_RESYNC
                self._resync_pending = False
            out.append(SampleBlock(self.next_index, values, flag_array, self.rate_hz, host_time_s))
            self.next_index += int(values.size)
            self.samples += int(values.size)
        return Placement(out, jump, new_segment)


class StreamClock:
    """Maps a source's sample axis to its own clock (LSL time, or any monotonic clock).

    The source marks each block it emits with the clock time of its samples; :meth:`time_at`
    answers "what was the clock when the axis was at ``time_s``" (e.g. a prediction's ``end_s``)
    by interpolating within the block that holds it, or extrapolating at the nominal rate from
    the nearest block before it. Only the last ``max_blocks`` marks are kept (bounded memory);
    older times extrapolate from the oldest mark kept.

    Args:
        rate_hz: the axis' rate (Hz).
        max_blocks: marks kept.
    """

    def __init__(self, rate_hz: float, max_blocks: int = 4096) -> None:
        self.rate_hz = float(rate_hz)
        # (first index, n, clock time of the first sample, clock time of the last sample)
        self._marks: deque[tuple[int, int, float, float]] = deque(maxlen=max(1, int(max_blocks)))

    def mark(self, first_index: int, clock_s: npt.ArrayLike) -> None:
        """Samples ``first_index …`` were taken at clock times ``clock_s`` (n,)."""
        stamps = np.asarray(clock_s, dtype=np.float64).reshape(-1)
        if stamps.size == 0 or not np.isfinite(stamps[[0, -1]]).all():
            return
        self._marks.append((int(first_index), int(stamps.size), float(stamps[0]), float(stamps[-1])))

    def time_at(self, time_s: float) -> float | None:
        """The clock time of axis time ``time_s`` (s since the stream's first sample), or None
        before any mark."""
        if not self._marks:
            return None
        index = time_s * self.rate_hz
        chosen = self._marks[0]
        for mark in reversed(self._marks):
            if mark[0] <= index:
                chosen = mark
                break
        first, n, t_first, t_last = chosen
        if n > 1 and index <= first + n - 1:
            return t_first + (index - first) * (t_last - t_first) / (n - 1)
        if index > first + n - 1:
            return t_last + (index - (first + n - 1)) / self.rate_hz
        return t_first + (index - first) / self.rate_hz


__all__ = [
    "DEFAULT_MAX_GAP_S",
    "FILL_CREDIT_PER_SAMPLE",
    "AxisAligner",
    "GapPolicy",
    "Jump",
    "JumpKind",
    "Placement",
    "SampleAxis",
    "StreamClock",
    "classify_jump",
    "gap_block",
    "max_gap_samples",
]
