"""The one owner of the sample axis: jump classification, bounded fills, re-basing, the clock."""

from __future__ import annotations

import math

import numpy as np
import pytest

from emotionkd.firmware_bridge.bounds import MAX_GAP_FILL_SAMPLES
from emotionkd.firmware_bridge.errors import ConfigError
from emotionkd.firmware_bridge.sample_axis import (
    AxisAligner,
    GapPolicy,
    StreamClock,
    classify_jump,
    gap_block,
    max_gap_samples,
)
from emotionkd.firmware_bridge.samples import SampleBlock, SampleFlag

RATE = 4.0


def _block(first: int, n: int, value: float = 1.0) -> SampleBlock:
    return SampleBlock(first, np.full(n, value), np.zeros(n, np.uint8), RATE)


def _axis_of(blocks: list[SampleBlock]) -> tuple[list[int], np.ndarray, np.ndarray]:
    starts = [b.first_index for b in blocks]
    return starts, np.concatenate([b.conductance_us for b in blocks]), np.concatenate([b.flags for b in blocks])


@pytest.mark.parametrize(("delta", "n", "kind", "fill", "skip", "lost"), [
    (0, 5, "continue", 0, 0, 0),
    (1, 5, "continue", 0, 0, 0),  # within the jitter of 1
    (7, 5, "gap", 7, 0, 7),
    (40, 5, "gap", 40, 0, 40),
    (41, 5, "discontinuity", 0, 0, 41),
    (-3, 5, "overlap", 0, 3, 0),
    (-5, 5, "duplicate", 0, 5, 0),
    (-41, 5, "discontinuity", 0, 0, 0),
    (math.nan, 5, "discontinuity", 0, 0, 0),
    (math.inf, 5, "discontinuity", 0, 0, 0),
    (1e300, 5, "discontinuity", 0, 0, int(1e300)),
])
def test_classify_jump(delta: float, n: int, kind: str, fill: int, skip: int, lost: int) -> None:
    jump = classify_jump(delta, n, max_gap=40, jitter=1)
    assert (jump.kind, jump.fill, jump.skip, jump.lost) == (kind, fill, skip, lost)


def test_max_gap_samples_is_bounded() -> None:
    assert max_gap_samples(128.0, 10.0) == 1280
    assert max_gap_samples(32768.0, 1e6) == MAX_GAP_FILL_SAMPLES
    assert max_gap_samples(0.5, 0.1) == 1
    with pytest.raises(ConfigError, match="outside"):
        gap_block(0, MAX_GAP_FILL_SAMPLES + 1, RATE)


def test_aligner_fills_gaps_trims_overlaps_and_drops_duplicates() -> None:
    axis = AxisAligner(RATE, GapPolicy(max_gap_s=10.0))
    out = axis.place(_block(100, 4)).blocks  # the first block starts the axis where it claims
    out += axis.place(_block(106, 4)).blocks  # 2 lost
    out += axis.place(_block(108, 4)).blocks  # 2 already placed
    assert axis.place(_block(109, 2)).blocks == []  # all already placed
    starts, values, flags = _axis_of(out)
    assert starts == [100, 104, 106, 110]
    assert values.size == 12 and np.isnan(values[4:6]).all() and not np.isnan(values[6:]).any()
    assert (flags[4:6] == SampleFlag.GAP).all()
    assert axis.counters() == {"samples": 10, "gap_samples": 2, "samples_lost": 2, "discontinuities": 0,
                               "duplicate_samples": 4, "clock_steps_back": 0}


def test_aligner_bounds_a_jump_of_a_billion_seconds_and_rebases() -> None:
    axis = AxisAligner(RATE, GapPolicy(max_gap_s=10.0), start_index=0)
    axis.place(_block(0, 4))
    placed = axis.place(_block(int(1e9 * RATE), 4))
    after = axis.place(_block(int(1e9 * RATE) + 4, 4))  # continues right after the re-based block
    assert placed.jump.kind == "discontinuity"
    fill, samples = placed.blocks
    assert (fill.first_index, len(fill)) == (4, 40)  # max_gap_s of NaN, not 4e9 samples
    assert samples.first_index == 44 and samples.flags[0] & SampleFlag.CLOCK_RESYNC
    assert [b.first_index for b in after.blocks] == [48]
    assert axis.discontinuities == 1 and axis.lost_samples == int(1e9 * RATE) - 4


def test_aligner_restart_and_non_finite_claims_are_bounded_discontinuities() -> None:
    axis = AxisAligner(RATE, GapPolicy(max_gap_s=2.0), start_index=0)
    axis.place(_block(1000, 4))  # start_index 0: the first 1000 are a jump beyond 2 s
    back = axis.place(_block(3, 4))  # far behind: a restart
    nan = axis.place_values(math.nan, np.ones(2), np.zeros(2, np.uint8))
    assert back.jump.kind == "discontinuity" and nan.jump.kind == "discontinuity"
    assert [len(b) for b in back.blocks] == [8, 4] and [len(b) for b in nan.blocks] == [8, 2]
    assert axis.discontinuities == 3 and axis.next_index < 100


def test_aligner_refill_from_start_index() -> None:
    axis = AxisAligner(RATE, start_index=0)
    blocks = axis.place(_block(6, 2)).blocks
    assert [(b.first_index, len(b)) for b in blocks] == [(0, 6), (6, 2)]


def test_segment_policy_does_not_fill() -> None:
    axis = AxisAligner(RATE, GapPolicy(max_gap_s=1.0, on_long_gap="segment"))
    axis.place(_block(0, 4))
    placed = axis.place(_block(500, 4))  # forward: the new segment starts at its true time
    assert placed.new_segment and [(b.first_index, len(b)) for b in placed.blocks] == [(500, 4)]
    assert axis.gap_samples == 0 and axis.lost_samples == 496
    restart = axis.place(_block(2, 4))  # far back: a restart continues the axis
    assert restart.new_segment and [(b.first_index, len(b)) for b in restart.blocks] == [(504, 4)]
    assert [b.first_index for b in axis.place(_block(6, 4)).blocks] == [508]


def test_overlap_and_restart_bounds_are_separate() -> None:
    assert classify_jump(-20, 30, max_gap=40, max_overlap=10).kind == "discontinuity"
    assert classify_jump(-20, 30, max_gap=40).kind == "overlap"
    axis = AxisAligner(RATE, GapPolicy(max_gap_s=60.0, max_overlap_s=1.0, on_long_gap="segment"))
    axis.place(_block(0, 40))
    assert axis.place(_block(38, 4)).jump.kind == "overlap"  # 2 samples back: trimmed
    assert axis.place(_block(10, 4)).new_segment  # 32 samples (8 s) back: a restart
    with pytest.raises(ConfigError, match="max_overlap_s"):
        GapPolicy(max_overlap_s=-1.0)


def test_keep_policy_keeps_samples_when_the_clock_steps_back() -> None:
    axis = AxisAligner(RATE, GapPolicy(max_gap_s=10.0, on_overlap="keep"))
    axis.place(_block(0, 4))
    placed = axis.place(_block(1, 4))
    then = axis.place(_block(5, 4))
    assert [(b.first_index, len(b)) for b in placed.blocks + then.blocks] == [(4, 4), (8, 4)]
    assert axis.clock_steps_back == 1 and axis.duplicate_samples == 0


def test_policy_is_validated() -> None:
    with pytest.raises(ConfigError, match="max_gap_s"):
        GapPolicy(max_gap_s=0)
    with pytest.raises(ConfigError, match="jitter_s"):
        GapPolicy(jitter_s=-1)
    with pytest.raises(ConfigError, match="rate"):
        AxisAligner(0.0)
    with pytest.raises(ConfigError, match="Hz block"):
        AxisAligner(8.0).place(_block(0, 1))


def test_stream_clock_interpolates_extrapolates_and_stays_bounded() -> None:
    clock = StreamClock(RATE, max_blocks=3)
    assert clock.time_at(1.0) is None
    clock.mark(0, 1000.0 + np.arange(4) / RATE)
    clock.mark(14, 5000.0 + np.arange(4) / RATE)  # after a jump: its own clock
    assert clock.time_at(0.5) == pytest.approx(1000.5)
    assert clock.time_at(1.0) == pytest.approx(1001.0)  # one past the first block: extrapolated
    assert clock.time_at(14 / RATE + 0.25) == pytest.approx(5000.25)
    for i in range(10):
        clock.mark(100 + 4 * i, np.arange(4.0))
    assert len(clock._marks) == 3
