"""Hostile replay files and recordings: a one-line DataError (exit code 2), never a traceback,
never an allocation sized from what the file claims."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from emotionkd.firmware_bridge.errors import EmotionKDError
from emotionkd.firmware_bridge.samples import SampleFlag
from emotionkd.sdk.cli import app
from emotionkd.sdk.recording import COLUMNS, MAGIC, read_recording
from emotionkd.sdk.sources.replay import REPLAY_MAX_GAP_S, ReplaySource, load_signal

MB = 1 << 20
runner = CliRunner()


def recording_text(rate: str = "32", rows: str = "0.0,5.0,0\n0.03125,5.1,0\n0.0625,5.2,0\n") -> str:
    return f"{MAGIC}\n# device: x\n# rate_hz: {rate}\n# unit: uS\n{COLUMNS}\n{rows}"


HOSTILE_FILES: dict[str, str] = {
    "times 0 and 1e308": "time,value\n0,5\n1e308,5\n2e308,5\n",
    "time column with inf": "time,value\n0,5\ninf,5\n1,5\n",
    "times all equal": "time,value\n1,5\n1,5\n1,5\n",
    "rate 0 in a recording": recording_text("0"),
    "rate nan in a recording": recording_text("nan"),
    "rate 1e308 in a recording": recording_text("1e308"),
    "flags 999999": recording_text(rows="0.0,5.0,999999\n0.1,5,0\n0.2,5,0\n"),
    "negative flags": recording_text(rows="0.0,5.0,-1\n0.1,5,0\n0.2,5,0\n"),
    "no rows": "time,value\n",
    "not numbers": "time,value\n0,a\n1,b\n2,c\n",
    "one column without rate": "5\n5\n5\n5\n",
    "binary": "\x00\x01\x02\xff" * 100,
}


@pytest.mark.parametrize("name", sorted(HOSTILE_FILES))
def test_hostile_files_are_one_line_errors(name: str, tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text(HOSTILE_FILES[name], encoding="utf-8", errors="surrogateescape")
    with pytest.raises(EmotionKDError):
        load_signal(path)
    result = runner.invoke(app, ["stream", "--replay", str(path), "--speed", "0", "--format", "jsonl"])
    assert result.exit_code == 2, (name, result.exception, result.stderr)
    assert result.stderr.splitlines()[-1].startswith("error: ") and "Traceback" not in result.stderr


def test_a_50_mb_line_is_a_data_error_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    path.write_text("time,value\n0,5\n1," + "9" * (50 * MB) + "\n2,5\n", encoding="utf-8")
    with pytest.raises(EmotionKDError, match="line 3"):
        load_signal(path)


def test_a_time_jump_of_1e9_s_is_a_bounded_discontinuity(
        tmp_path: Path, peak_bytes: Callable[[Callable[[], Any]], tuple[Any, int]]) -> None:
    path = tmp_path / "jump.csv"
    rows = [f"{i / 32:.6f},5" for i in range(64)] + [f"{1e9 + i / 32:.6f},6" for i in range(64)]
    path.write_text("time,value\n" + "\n".join(rows) + "\n", encoding="utf-8")
    signal, peak = peak_bytes(lambda: load_signal(path))
    assert signal.rate_hz == 32
    assert signal.discontinuities == 1
    assert len(signal.conductance_us) == 128 + int(REPLAY_MAX_GAP_S * 32)  # not 238 GiB
    resync = np.flatnonzero(signal.flags & SampleFlag.CLOCK_RESYNC)
    assert resync.tolist() == [64 + int(REPLAY_MAX_GAP_S * 32)]
    assert signal.conductance_us[resync[0]] == 6
    assert peak < 4 * MB


def test_impossible_readings_become_counted_gaps(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_text("time,value\n0,5\n0.25,1e308\n0.5,-1e9\n0.75,5\n", encoding="utf-8")
    signal = load_signal(path)
    assert signal.implausible_samples == 2
    assert np.isnan(signal.conductance_us[1:3]).all() and (signal.flags[1:3] & SampleFlag.GAP).all()


def test_recording_rate_and_flags_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text(recording_text("0"), encoding="utf-8")
    with pytest.raises(EmotionKDError, match="rate"):
        read_recording(path)
    path.write_text(recording_text(rows="0.0,5.0,999999\n"), encoding="utf-8")
    with pytest.raises(EmotionKDError, match="line 6"):
        read_recording(path)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=st.sampled_from(list("0123456789.,-e+naifx #:\n\r\"")), max_size=400),
       recording=st.booleans())
def test_any_csv_text_loads_or_is_an_emotionkd_error(tmp_path: Path, text: str, recording: bool) -> None:
    path = tmp_path / "fuzz.csv"
    path.write_text((recording_text(rows="") if recording else "") + text, encoding="utf-8")
    try:
        signal = load_signal(path, rate_hz=None if "," in text else 16.0)
    except EmotionKDError:
        return
    assert signal.conductance_us.shape == signal.flags.shape
    assert math.isfinite(signal.rate_hz) and signal.rate_hz > 0


# --- friction found by a user with real data (issue [real], items 1 and 2) ---------------------

NEUROKIT_LAYOUT = "ECG,EDA,Photosensor,RSP\n" + "".join(
    f"{0.1 * math.sin(i):.4f},{5 + 0.01 * i:.4f},5,{math.cos(i):.4f}\n" for i in range(400))


def test_multi_column_csv_without_time_column_by_column_and_rate(tmp_path: Path) -> None:
    path = tmp_path / "bio_eventrelated_100hz.csv"
    path.write_text(NEUROKIT_LAYOUT, encoding="utf-8")
    with pytest.raises(EmotionKDError, match="column=EDA&rate=100"):
        load_signal(path)  # says what to do
    source = ReplaySource(f"replay://{path}?column=EDA&rate=100&speed=0")
    assert source.signal.rate_hz == 100 and len(source.signal.conductance_us) == 400
    assert source.signal.conductance_us[3] == pytest.approx(5.03)
    by_number = load_signal(path, column="2", rate_hz=100)
    np.testing.assert_array_equal(by_number.conductance_us, source.signal.conductance_us)
    with pytest.raises(EmotionKDError, match="no column 'GSR'.*EDA"):
        load_signal(path, column="GSR", rate_hz=100)


def test_cli_column_and_rate_reach_the_replay(tmp_path: Path) -> None:
    path = tmp_path / "bio.csv"
    path.write_text("ECG,EDA\n" + "".join(f"0.1,{5 + 0.001 * i:.4f}\n" for i in range(100 * 40)), encoding="utf-8")  # 40 s: the bundled model reads 32 s windows
    result = runner.invoke(app, ["stream", "--replay", str(path), "--column", "EDA", "--rate", "100",
                                 "--speed", "0", "--format", "jsonl"])
    assert result.exit_code == 0, result.stderr
    assert "100 Hz" in result.stderr and len(result.stdout.splitlines()) >= 5


def test_unit_is_honoured_with_replay_and_adc_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "kohm.csv"
    path.write_text("".join(f"{i / 10:.1f},200\n" for i in range(100)), encoding="utf-8")
    assert load_signal(path, unit="kOhm").conductance_us[0] == pytest.approx(5.0)
    url_of: dict[str, str] = {}

    def fake_stream(url: str, *args: Any, **kwargs: Any) -> Any:
        url_of["url"] = url
        raise KeyboardInterrupt

    import emotionkd.sdk.cli as cli

    original = cli._stream_predictions
    cli._stream_predictions = fake_stream  # type: ignore[assignment]
    try:
        runner.invoke(app, ["stream", "--replay", str(path), "--unit", "kOhm", "--speed", "0"])
    finally:
        cli._stream_predictions = original  # type: ignore[assignment]
    source = ReplaySource(url_of["url"])
    assert source.unit == "kOhm" and source.signal.conductance_us[0] == pytest.approx(5.0)
    adc = ReplaySource(f"replay://{path}?unit=adc&speed=0")  # Grove analogRead values
    assert adc.unit == "adc" and 0 < adc.signal.conductance_us[0] < 100
