"""Decoders for devices people own: ASCII lines (Grove), Shimmer3 GSR+, BITalino."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emotionkd.firmware_bridge.ascii_lines import AsciiLineDecoder, grove_adc_to_us
from emotionkd.firmware_bridge.bitalino import (
    BitalinoDecoder,
    crc4,
    eda_to_us,
    frame_size,
    pack_frame,
    unpack_channels,
    us_to_eda_adc,
)
from emotionkd.firmware_bridge.decoding import Decoder
from emotionkd.firmware_bridge.errors import ConfigError, UnitError
from emotionkd.firmware_bridge.samples import SampleBlock, SampleFlag
from emotionkd.firmware_bridge.shimmer3 import Shimmer3Decoder, gsr_to_us, us_to_gsr_word


def collect(decoder: Decoder, stream: bytes, cuts: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    blocks: list[SampleBlock] = []
    start = 0
    for cut in sorted(set(cuts or [])) + [len(stream)]:
        blocks += decoder.feed(stream[start:cut], host_time_s=0.0)
        start = cut
    expected = 0
    for b in blocks:
        assert b.first_index == expected
        expected += len(b)
    if not blocks:
        return np.zeros(0), np.zeros(0, dtype=np.uint8)
    return np.concatenate([b.conductance_us for b in blocks]), np.concatenate([b.flags for b in blocks])


def assert_same(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> None:
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


# --- ASCII ------------------------------------------------------------------------------------

def test_grove_formula() -> None:
    # R = ((1024 + 2·300)·10000)/(512 − 300) Ω
    expected = 1e6 / ((1024 + 600) * 10000 / 212)
    np.testing.assert_allclose(grove_adc_to_us(np.array([300.0])), [expected])
    assert np.isnan(grove_adc_to_us(np.array([512.0, 600.0]))).all()


ASCII_STREAM = b"Grove GSR ready\r\n300\r\n301.5\r\n\r\nGSR: 299 avg\r\n-5\r\n600\n" + b"x" * 300 + b"\n302\n"


def test_ascii_lines_parse_first_number_and_flag_host_time() -> None:
    d = AsciiLineDecoder(rate_hz=10.0, unit="adc")
    values, flags = collect(d, ASCII_STREAM)
    assert values.size == 6  # 300, 301.5, 299, -5, 600, 302
    np.testing.assert_allclose(values[[0, 2, 5]], grove_adc_to_us(np.array([300.0, 299.0, 302.0])))
    assert (flags & SampleFlag.HOST_TIMED).all()
    assert flags[4] & SampleFlag.ELECTRODE_OFF and np.isnan(values[4])  # 600 ≥ CAL: open circuit
    assert np.isnan(values[3])  # negative ADC is not a reading
    c = d.counters
    assert (c.frames, c.lines_without_number, c.overlong_lines, c.invalid_readings) == (6, 1, 1, 2)


@given(st.lists(st.integers(0, len(ASCII_STREAM)), max_size=30))
def test_ascii_same_output_for_every_split(cuts: list[int]) -> None:
    d1, d2 = AsciiLineDecoder(unit="adc"), AsciiLineDecoder(unit="adc")
    assert_same(collect(d1, ASCII_STREAM), collect(d2, ASCII_STREAM, cuts))
    assert d1.counters == d2.counters


def test_ascii_units_declared_by_user() -> None:
    values, _ = collect(AsciiLineDecoder(unit="kOhm"), b"200\n100\n")
    np.testing.assert_allclose(values, [5.0, 10.0])
    values, _ = collect(AsciiLineDecoder(unit="uS"), b"4.5\n")
    np.testing.assert_allclose(values, [4.5])
    with pytest.raises(UnitError):
        AsciiLineDecoder(unit="volts")


def test_ascii_reconnect_fills_outage() -> None:
    d = AsciiLineDecoder(rate_hz=10.0, unit="uS")
    d.feed(b"1\n2\n", host_time_s=0.0)
    (fill,) = d.link_reset(down_s=1.0)
    assert len(fill) == 10 and fill.first_index == 2 and np.isnan(fill.conductance_us).all()
    (block,) = d.feed(b"3\n", host_time_s=0.0)
    assert block.first_index == 12 and d.counters.samples_lost == 10


# --- Shimmer3 ----------------------------------------------------------------------------------

DIVIDER = 256  # 128 Hz


def shimmer_packet(ts: int, word: int, battery: int | None = None) -> bytes:
    out = bytes([0x00]) + (ts % (1 << 24)).to_bytes(3, "little")
    if battery is not None:
        out += struct.pack("<H", battery)
    return out + struct.pack("<H", word)


def shimmer_inquiry(channels: list[int]) -> bytes:
    return b"\xff\x02" + struct.pack("<HIBB", DIVIDER, 0, len(channels), 1) + bytes(channels)


def shimmer_stream(n: int, *, ts0: int = 1000, skip: tuple[int, ...] = (), battery: bool = False) -> tuple[bytes, list[int]]:
    words = [(i % 3 << 14) | (1500 + 7 * i) for i in range(n)]
    channels = [0x03, 0x1C] if battery else [0x1C]
    body = b"\xff" * 3 + shimmer_inquiry(channels) + b"\xff"
    for i, w in enumerate(words):
        if i not in skip:
            body += shimmer_packet(ts0 + i * DIVIDER, w, 3000 if battery else None)
    return body, words


def test_shimmer_calibration_formula() -> None:
    us, ranges, open_circuit = gsr_to_us(np.array([2000, (3 << 14) | 600], dtype=np.uint16))
    denom = (2000 * 3.0 / 4095) / 0.5 - 1
    np.testing.assert_allclose(us[0], 1000 / (40.2 / denom))
    assert ranges.tolist() == [0, 3] and open_circuit.tolist() == [False, True]
    assert abs(gsr_to_us(np.array([us_to_gsr_word(5.0, 2)]))[0][0] - 5.0) < 0.05


def test_shimmer_stream_decodes_with_layout_from_inquiry() -> None:
    stream, words = shimmer_stream(40, battery=True)
    d = Shimmer3Decoder(rate_hz=128.0)
    values, flags = collect(d, stream)
    np.testing.assert_allclose(values, gsr_to_us(np.array(words))[0])
    assert d.channels == (0x03, 0x1C) and d.counters.inquiries == 1 and d.counters.acks == 5
    assert d.counters.bytes_skipped == 0 and d.counters.frames == 40
    assert (flags[1:] & SampleFlag.SETTLING).all()  # the test words change range every sample


def test_shimmer_lost_packets_and_duplicates() -> None:
    stream, _ = shimmer_stream(20, skip=(5, 6))
    # a repeated packet is confirmed as real (not garbage) by the packet after it
    dup = shimmer_packet(1000 + 19 * DIVIDER, 1500) + shimmer_packet(1000 + 20 * DIVIDER, 1500)
    d = Shimmer3Decoder()
    values, flags = collect(d, stream + dup)
    assert values.size == 21 and np.isnan(values[5:7]).all() and (flags[5:7] & SampleFlag.GAP).all()
    assert d.counters.samples_lost == 2 and d.counters.duplicates == 1


def test_shimmer_timestamp_wraps() -> None:
    stream, _ = shimmer_stream(30, ts0=(1 << 24) - 10 * DIVIDER)
    d = Shimmer3Decoder()
    values, _ = collect(d, stream)
    assert values.size == 30 and d.counters.samples_lost == 0


@given(st.lists(st.integers(0, 400), max_size=30))
def test_shimmer_same_output_for_every_split(cuts: list[int]) -> None:
    stream, _ = shimmer_stream(60)
    d1, d2 = Shimmer3Decoder(), Shimmer3Decoder()
    assert_same(collect(d1, stream), collect(d2, stream, cuts))
    assert d1.counters == d2.counters


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=60)
@given(st.integers(20, 300), st.binary(min_size=1, max_size=20))
def test_shimmer_resyncs_after_garbage(at: int, garbage: bytes) -> None:
    stream, words = shimmer_stream(60)
    d = Shimmer3Decoder()
    values, _ = collect(d, stream[:at] + garbage + stream[at:])
    finite = np.isfinite(values).sum()
    assert finite >= 60 - 4  # the damaged packet and the packets needed to relock
    assert values.size <= 60 + 10


def test_shimmer_startup_commands() -> None:
    cmds = Shimmer3Decoder(rate_hz=128.0).startup_commands()
    assert cmds[1] == b"\x08\x04\x00\x00" and cmds[2] == b"\x05\x00\x01" and cmds[-1] == b"\x07"


# --- BITalino ----------------------------------------------------------------------------------

def test_bitalino_frame_layout_and_crc() -> None:
    assert [frame_size(n) for n in range(1, 7)] == [3, 4, 6, 7, 8, 8]
    frame = pack_frame([512], seq=9)
    assert frame[-1] >> 4 == 9 and crc4(frame) == frame[-1] & 0x0F
    assert unpack_channels(frame, 1) == [512]
    bad = bytes([frame[0] ^ 0x10]) + frame[1:]
    assert crc4(bad) != bad[-1] & 0x0F
    np.testing.assert_allclose(eda_to_us(np.array([512.0])), [512 / 1024 * 3.3 / 0.132])


def bitalino_stream(n: int, skip: tuple[int, ...] = (), channels: int = 1) -> tuple[bytes, np.ndarray]:
    adc = [us_to_eda_adc(2.0 + 0.01 * i) for i in range(n)]
    out = b""
    for i, a in enumerate(adc):
        if i not in skip:
            out += pack_frame([a] + [100] * (channels - 1), seq=i & 0x0F)
    return out, eda_to_us(np.array(adc, dtype=float))


def test_bitalino_decodes_and_fills_sequence_gaps() -> None:
    stream, expected = bitalino_stream(50, skip=(20, 21, 22))
    d = BitalinoDecoder(rate_hz=100)
    values, flags = collect(d, stream)
    assert values.size == 50
    np.testing.assert_allclose(np.delete(values, [20, 21, 22]), np.delete(expected, [20, 21, 22]))
    assert np.isnan(values[20:23]).all() and d.counters.frames_lost == 3


def test_bitalino_eda_channel_among_several() -> None:
    stream = b"".join(pack_frame([10, 20, 300, 40], seq=i) for i in range(6))
    d = BitalinoDecoder(channels=(0, 1, 2, 3), eda_channel=2)
    values, _ = collect(d, stream)
    np.testing.assert_allclose(values, eda_to_us(np.full(6, 300.0)))


@given(st.lists(st.integers(0, 150), max_size=30))
def test_bitalino_same_output_for_every_split(cuts: list[int]) -> None:
    stream, _ = bitalino_stream(50)
    d1, d2 = BitalinoDecoder(), BitalinoDecoder()
    assert_same(collect(d1, stream), collect(d2, stream, cuts))
    assert d1.counters == d2.counters


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=80)
@given(st.integers(10, 140), st.integers(0, 7))
def test_bitalino_flipped_bit_loses_at_most_one_frame(pos: int, bit: int) -> None:
    stream, expected = bitalino_stream(50)
    damaged = bytearray(stream)
    damaged[pos] ^= 1 << bit
    values, _ = collect(BitalinoDecoder(), bytes(damaged))
    assert values.size == 50
    good = np.isclose(values, expected)
    assert good.sum() >= 49


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=60)
@given(st.integers(10, 140), st.binary(min_size=1, max_size=12))
def test_bitalino_resyncs_after_garbage(at: int, garbage: bytes) -> None:
    stream, expected = bitalino_stream(60)
    d = BitalinoDecoder()
    values, _ = collect(d, stream[:at] + garbage + stream[at:])
    matched = np.isin(np.round(values, 9), np.round(expected, 9)).sum()
    assert matched >= 60 - 5


def test_bitalino_config_errors() -> None:
    with pytest.raises(ConfigError):
        BitalinoDecoder(rate_hz=50)
    with pytest.raises(ConfigError):
        BitalinoDecoder(channels=(0,), eda_channel=2)
    assert BitalinoDecoder(rate_hz=1000, channels=(2,)).startup_commands() == [b"\x00", bytes([0xC3]), bytes([0x11])]
