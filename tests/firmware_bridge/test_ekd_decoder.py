"""EKD decoders: split invariance, resync after garbage and bit flips, gaps, duplicates, calibration."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emotionkd.firmware_bridge.ekd import (
    FrameType,
    Hello,
    Opcode,
    Status,
    control_frame,
    data_frame,
    decode_frame,
    serial_encode,
)
from emotionkd.firmware_bridge.ekd_decoder import EkdBleDecoder, EkdSerialDecoder, LinearCalibration
from emotionkd.firmware_bridge.samples import SampleBlock, SampleFlag

HELLO_128 = Hello(0x0102, 128000, 12, 1, 0.01, -0.5, "EKD-GSR-01")


def device_frames(n_frames: int, per_frame: int = 8, *, seq0: int = 0, t00: int = 0,
                  fmt: int = 2, hello: bool = True) -> list[bytes]:
    """Raw frames of a well-behaved device: optional HELLO, then DATA frames."""
    frames = []
    seq = seq0
    if hello:
        frames.append(control_frame(FrameType.HELLO, seq, 0, HELLO_128.encode()))
        seq += 1
    t0 = t00
    for _ in range(n_frames):
        if fmt == 2:
            samples = [2_000_000 + 1000 * ((t0 + i) % 997) for i in range(per_frame)]
        else:
            samples = [500 + (t0 + i) % 2000 for i in range(per_frame)]
        frames.append(data_frame(seq & 0xFFFF, t0 & 0xFFFFFFFF, samples, fmt))
        seq += 1
        t0 += per_frame
    return frames


def serial_stream(frames: list[bytes]) -> bytes:
    return b"".join(serial_encode(f) for f in frames)


def flatten(blocks: list[SampleBlock]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(index, value, flags) of every sample, checking the axis is contiguous from 0."""
    index, values, flags = [], [], []
    expected = 0
    for b in blocks:
        assert b.first_index == expected, "blocks must be contiguous on the sample axis"
        index.append(np.arange(b.first_index, b.first_index + len(b)))
        values.append(b.conductance_us)
        flags.append(b.flags)
        expected += len(b)
    if not blocks:
        return np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0, dtype=np.uint8)
    return np.concatenate(index), np.concatenate(values), np.concatenate(flags)


def feed_split(decoder: EkdSerialDecoder, stream: bytes, cuts: list[int]) -> list[SampleBlock]:
    blocks: list[SampleBlock] = []
    start = 0
    for cut in sorted(set(cuts)) + [len(stream)]:
        blocks += decoder.feed(stream[start:cut], host_time_s=0.0)
        start = cut
    return blocks


STREAM = serial_stream(device_frames(12, 6) + device_frames(3, 5, seq0=20, t00=100, hello=False))


@given(st.lists(st.integers(0, len(STREAM)), max_size=40))
def test_same_output_for_every_split(cuts: list[int]) -> None:
    whole_decoder = EkdSerialDecoder()
    whole = flatten(whole_decoder.feed(STREAM, host_time_s=0.0))
    split_decoder = EkdSerialDecoder()
    parts = flatten(feed_split(split_decoder, STREAM, cuts))
    for a, b in zip(whole, parts, strict=True):
        np.testing.assert_array_equal(a, b)
    assert whole_decoder.counters == split_decoder.counters


def test_byte_by_byte_equals_whole() -> None:
    d1, d2 = EkdSerialDecoder(), EkdSerialDecoder()
    whole = flatten(d1.feed(STREAM, host_time_s=0.0))
    one = flatten(feed_split(d2, STREAM, list(range(len(STREAM)))))
    np.testing.assert_array_equal(whole[1], one[1])
    assert d1.counters == d2.counters


def test_gap_filled_with_nan_and_counted() -> None:
    frames = device_frames(6, 4)
    del frames[3]  # the third DATA frame (seq 3, t0 8..11)
    d = EkdSerialDecoder()
    idx, values, flags = flatten(d.feed(serial_stream(frames), host_time_s=0.0))
    assert idx.size == 24
    assert np.isnan(values[8:12]).all() and (flags[8:12] & SampleFlag.GAP).all()
    assert np.isfinite(values[:8]).all() and np.isfinite(values[12:]).all()
    assert (d.counters.frames_lost, d.counters.samples_lost) == (1, 4)


def test_values_converted_to_microsiemens() -> None:
    d = EkdBleDecoder()
    blocks = d.feed(data_frame(0, 0, [2_500_000, 7_250], 2), host_time_s=1.0)
    np.testing.assert_allclose(blocks[0].conductance_us, [2500.0, 7.25])
    assert blocks[0].host_time_s == 1.0


def test_duplicate_and_overlapping_frames_are_dropped() -> None:
    frames = device_frames(4, 4, hello=False)
    overlap = data_frame(9, 10, [2_000_000 + 1000 * i for i in range(10, 18)], 2)  # 10..17, 12..15 new... 16, 17 new
    d = EkdBleDecoder()
    blocks = []
    for f in frames + [frames[2], overlap]:
        blocks += d.feed(f, host_time_s=0.0)
    idx, values, _ = flatten(blocks)
    assert idx.size == 18
    assert d.counters.duplicates == 1 and d.counters.duplicate_samples == 4 + 6
    np.testing.assert_allclose(values[16:], [2016.0, 2017.0])


def test_t0_wraps_without_gap() -> None:
    frames = [data_frame(i, (0xFFFFFFF8 + 4 * i) & 0xFFFFFFFF, [1000] * 4, 2) for i in range(5)]
    d = EkdBleDecoder()
    idx, values, _ = flatten([b for f in frames for b in d.feed(f, host_time_s=0.0)])
    assert idx.size == 20 and np.isfinite(values).all()
    assert d.counters.samples_lost == 0 and d.counters.frames_lost == 0


def test_seq_wraps_and_ack_does_not_count() -> None:
    d = EkdBleDecoder()
    d.feed(data_frame(0xFFFF, 0, [1], 2), host_time_s=0.0)
    d.feed(control_frame(FrameType.ACK, 77, 0, bytes([Opcode.START, 0])), host_time_s=0.0)
    d.feed(data_frame(0, 1, [1], 2), host_time_s=0.0)
    assert d.counters.frames_lost == 0 and d.acks[-1] == (Opcode.START, 0, 77)


def test_long_gap_is_bounded_discontinuity() -> None:
    d = EkdBleDecoder(max_gap_s=2.0)
    d.feed(data_frame(0, 0, [1000] * 4, 2), host_time_s=0.0)
    blocks = d.feed(data_frame(1, 4 + 10_000_000, [1000] * 4, 2), host_time_s=0.0)
    total = sum(len(b) for b in blocks)
    assert total == 256 + 4  # 2 s of NaN at 128 Hz, then the frame
    assert d.counters.samples_lost == 10_000_000 and d.counters.discontinuities == 1
    assert blocks[-1].flags[-4] & SampleFlag.CLOCK_RESYNC


def test_device_restart_is_a_discontinuity() -> None:
    d = EkdBleDecoder(max_gap_s=1.0)
    d.feed(data_frame(10, 50_000, [1000] * 4, 2), host_time_s=0.0)
    d.link_reset(down_s=0.5)
    blocks = d.feed(data_frame(0, 0, [1000] * 4, 2), host_time_s=0.0)
    assert sum(len(b) for b in blocks) == 64 + 4  # the 0.5 s outage, then the samples
    assert d.counters.discontinuities == 1 and d.counters.frames_lost == 0


def test_raw_samples_wait_for_hello_then_convert() -> None:
    d = EkdSerialDecoder()
    adc = serial_encode(data_frame(0, 0, [100, 4095], 0))
    assert d.feed(adc, host_time_s=0.0) == []
    blocks = d.feed(serial_encode(control_frame(FrameType.HELLO, 1, 0, HELLO_128.encode())), host_time_s=0.0)
    _, values, flags = flatten(blocks)
    np.testing.assert_allclose(values, [0.01 * 100 - 0.5, 0.01 * 4095 - 0.5], rtol=1e-6)
    assert flags[1] & SampleFlag.SATURATED and not flags[0] & SampleFlag.SATURATED
    assert d.rate_hz == 128.0 and d.hello is not None


def test_raw_samples_without_hello_become_nan_when_buffer_fills() -> None:
    d = EkdBleDecoder(rate_hz=10.0, max_gap_s=1.0)  # holds 10 samples
    out = []
    for i in range(5):
        out += d.feed(data_frame(i, 4 * i, [1, 2, 3, 4], 0), host_time_s=0.0)
    _, values, flags = flatten(out)
    # 20 samples arrived, at most 10 are held: the 3 oldest frames came out as NaN
    assert values.size == 12 and np.isnan(values).all() and (flags & SampleFlag.GAP).all()
    assert d.counters.samples_uncalibrated == 12


def test_user_calibration_needs_no_hello() -> None:
    d = EkdBleDecoder(calibration=LinearCalibration(0.5, 1.0, 10))
    (block,) = d.feed(data_frame(0, 0, [2, 1023], 0), host_time_s=0.0)
    np.testing.assert_allclose(block.conductance_us, [2.0, 512.5])


def test_frame_flags_reach_samples() -> None:
    d = EkdBleDecoder()
    (block,) = d.feed(data_frame(0, 0, [1000, 2000], 2, flags=0x02 | 0x04 | 0x10), host_time_s=0.0)
    assert np.isnan(block.conductance_us).all()
    assert (block.flags & SampleFlag.ELECTRODE_OFF).all() and (block.flags & SampleFlag.SETTLING).all()
    assert block.flags[0] & SampleFlag.DEVICE_OVERFLOW and not block.flags[1] & SampleFlag.DEVICE_OVERFLOW


def test_status_and_unexpected_frames_are_counted() -> None:
    d = EkdBleDecoder()
    d.feed(control_frame(FrameType.STATUS, 0, 0, Status(3900, 0).encode()), host_time_s=0.0)
    d.feed(control_frame(FrameType.CMD, 1, 0, b"\x01"), host_time_s=0.0)
    d.feed(b"\x01\x02\x03", host_time_s=0.0)
    assert d.counters.battery_mv == 3900 and d.counters.unexpected_frames == 1
    assert d.counters.bad_length == 1 and d.counters.bytes_skipped == 3


def test_startup_commands_request_hello_then_start() -> None:
    d = EkdBleDecoder()
    first, second = (decode_frame(c) for c in d.startup_commands())
    assert (first.payload[0], second.payload[0]) == (Opcode.HELLO_REQUEST, Opcode.START)
    assert second.seq == first.seq + 1


def test_endless_garbage_without_delimiter_is_bounded() -> None:
    d = EkdSerialDecoder()
    for _ in range(50):
        assert d.feed(b"\x55" * 1000, host_time_s=0.0) == []
    assert d.counters.bytes_skipped >= 45_000 and d.counters.oversize_runs >= 1
    assert len(d._buf) <= 5000
    blocks = d.feed(b"\x00" + serial_stream(device_frames(2, 4)), host_time_s=0.0)
    assert sum(len(b) for b in blocks) == 8


FRAMES = device_frames(10, 5)
DATA_SIZES = [0] + [5] * 10  # samples per frame (HELLO first)


def _decoded_frame_indices(stream: bytes) -> set[int]:
    """Which original DATA frames survive: their samples are present and finite."""
    d = EkdSerialDecoder()
    blocks = d.feed(stream, host_time_s=0.0)
    _, values, _ = flatten(blocks) if blocks else (None, np.zeros(0), None)
    kept = set()
    for k in range(10):
        seg = values[5 * k : 5 * k + 5]
        if seg.size == 5 and np.isfinite(seg).all():
            kept.add(k)
    return kept


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=150)
@given(st.data())
def test_garbage_loses_at_most_one_frame(data: st.DataObject) -> None:
    encoded = [serial_encode(f) for f in FRAMES]
    stream = b"".join(encoded)
    at = data.draw(st.integers(0, len(stream)))
    garbage = data.draw(st.binary(min_size=1, max_size=60))
    kept = _decoded_frame_indices(stream[:at] + garbage + stream[at:])
    assert len(kept) >= 9


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=200)
@given(st.data())
def test_flipped_bit_loses_at_most_one_frame(data: st.DataObject) -> None:
    stream = bytearray(b"".join(serial_encode(f) for f in FRAMES))
    pos = data.draw(st.integers(0, len(stream) - 1))
    bit = data.draw(st.integers(0, 7))
    stream[pos] ^= 1 << bit
    assert len(_decoded_frame_indices(bytes(stream))) >= 9


def test_flipped_delimiter_loses_nothing() -> None:
    encoded = [serial_encode(f) for f in FRAMES]
    stream = bytearray(b"".join(encoded))
    end_of_third = sum(len(e) for e in encoded[:4]) - 1
    assert stream[end_of_third] == 0
    stream[end_of_third] = 0x42
    assert _decoded_frame_indices(bytes(stream)) == set(range(10))


def test_bad_frames_do_not_break_ble_stream() -> None:
    d = EkdBleDecoder()
    good = device_frames(3, 4)
    broken = bytearray(good[2])
    broken[12] ^= 0xFF
    for f in [good[0], good[1], bytes(broken), good[3]]:
        d.feed(f, host_time_s=0.0)
    assert d.counters.crc_failures == 1 and d.counters.samples_lost == 4 and d.counters.frames_lost == 1


@pytest.mark.parametrize("bad", [b"", b"\x00", b"\xff" * 2000])
def test_ble_decoder_tolerates_odd_notifications(bad: bytes) -> None:
    EkdBleDecoder().feed(bad, host_time_s=0.0)
