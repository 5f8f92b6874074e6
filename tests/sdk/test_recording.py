"""Recording format: metadata, gaps, flush at least every second, read back, damaged files."""

from __future__ import annotations

import numpy as np
import pytest

from emotionkd.firmware_bridge.errors import DataError
from emotionkd.firmware_bridge.samples import SampleBlock, SampleFlag
from emotionkd.sdk.recording import MAGIC, RecordingWriter, read_recording


def _block(first: int, values: list[float], flags: list[int] | None = None, rate: float = 32.0) -> SampleBlock:
    v = np.array(values, float)
    return SampleBlock(first, v, np.array(flags or [0] * v.size, np.uint8), rate)


def test_round_trip_with_metadata_gaps_and_flags(tmp_path) -> None:
    path = tmp_path / "rec.csv"
    with RecordingWriter(path, device="EKD-GSR-01", protocol="ekd", rate_hz=32.0) as writer:
        writer.write(_block(0, [5.0, 5.1, float("nan")], [0, SampleFlag.SATURATED, SampleFlag.GAP]))
        writer.write(_block(5, [5.2, 5.3]))  # two samples lost on the way
        writer.write(_block(6, [5.3, 5.4]))  # overlaps one already written
    text = path.read_text()
    assert text.startswith(MAGIC + "\n# device: EKD-GSR-01\n# protocol: ekd\n# rate_hz: 32\n# unit: uS\n# start_time: ")
    assert "\ntime_s,conductance_us,flags\n0.000000,5,0\n0.031250,5.1,1\n0.062500,,32\n" in text
    rec = read_recording(path)
    assert rec.rate_hz == 32.0 and rec.metadata["protocol"] == "ekd" and len(rec) == 8
    np.testing.assert_array_equal(rec.conductance_us, [5.0, 5.1, np.nan, np.nan, np.nan, 5.2, 5.3, 5.4])
    np.testing.assert_array_equal(rec.flags, [0, 1, 32, 32, 32, 0, 0, 0])


def test_written_data_reaches_the_file_within_the_flush_interval(tmp_path) -> None:
    path = tmp_path / "live.csv"
    writer = RecordingWriter(path, device="d", protocol="sim", rate_hz=4.0, flush_every_s=0.0)
    writer.write(_block(0, [1.0, 2.0], rate=4.0))
    # not closed: what a killed process leaves behind is readable
    assert len(read_recording(path)) == 2
    writer.close()


def test_a_line_cut_by_a_kill_is_ignored(tmp_path) -> None:
    path = tmp_path / "cut.csv"
    with RecordingWriter(path, device="d", protocol="sim", rate_hz=4.0) as writer:
        writer.write(_block(0, [1.0, 2.0, 3.0], rate=4.0))
    path.write_text(path.read_text() + "0.750000,4.")
    assert len(read_recording(path)) == 3


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("time,value\n0,1\n", "not an emotionkd recording"),
        (MAGIC + "\n# device: x\ntime_s,conductance_us,flags\n", "rate_hz"),
        (MAGIC + "\n# rate_hz: 4\ntime_s,conductance_us,flags\n0.0,abc,0\n", "line 4"),
        (MAGIC + "\n# rate_hz: 4\n", "column line"),
    ],
)
def test_damaged_files_are_named(tmp_path, content: str, match: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=match):
        read_recording(path)
    with pytest.raises(DataError, match="cannot read"):
        read_recording(tmp_path / "missing.csv")


def test_a_time_jump_of_a_billion_seconds_keeps_memory_bounded_and_is_reported(tmp_path) -> None:
    """A block claiming to start 10^9 s later (a clock reset, a corrupt index) would need 1.28e11
    GAP rows; the writer writes the bounded max_gap_s (10 s) fill, flags the next sample
    CLOCK_RESYNC and reports the jump in ``gaps``."""
    import tracemalloc

    rate = 128.0
    path = tmp_path / "jump.csv"
    tracemalloc.start()
    try:
        with RecordingWriter(path, device="dev", protocol="ekd", rate_hz=rate) as writer:
            writer.write(SampleBlock(0, np.full(128, 5.0), np.zeros(128, np.uint8), rate))
            writer.write(SampleBlock(int(1e9 * rate), np.full(128, 6.0), np.zeros(128, np.uint8), rate))
            writer.write(SampleBlock(int(1e9 * rate) + 128, np.full(128, 7.0), np.zeros(128, np.uint8), rate))
            gaps = writer.gaps
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    rec = read_recording(path)
    assert len(rec) == 128 + 1280 + 256
    assert np.isnan(rec.conductance_us[128:1408]).all() and (rec.flags[128:1408] & SampleFlag.GAP).all()
    assert rec.flags[1408] & SampleFlag.CLOCK_RESYNC and rec.conductance_us[1408] == 6.0
    assert gaps["discontinuities"] == 1 and gaps["gap_samples"] == 1280
    assert gaps["samples_lost"] == int(1e9 * rate) - 128
    assert peak_bytes < 4_000_000, peak_bytes

