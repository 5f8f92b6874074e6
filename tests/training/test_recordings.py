"""Labelled GSR recordings: the CSV layout, segment files and Empatica E4 folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from emotionkd.firmware_bridge.errors import DataError, UnitError
from emotionkd.firmware_bridge.gsr_synth import GsrSynthConfig, synthesize_gsr
from emotionkd.sdk.preprocessing import PAPER_PREPROCESSING, GsrPreprocessor
from emotionkd.training.datasets import DatasetConfig, load_dataset

PAPER = DatasetConfig(preprocessing=PAPER_PREPROCESSING)  # 4 s windows: these segments are short


def _csv(path: Path, rate_hz: float, seconds: float, header: str, label_of_time, gsr_of_us=lambda g: g) -> np.ndarray:  # type: ignore[no-untyped-def]
    gsr = synthesize_gsr(seconds, 0.5, seed=1, config=GsrSynthConfig(rate_hz=rate_hz))
    lines = ["# test recording", header]
    for i, g in enumerate(gsr):
        t = i / rate_hz
        lines.append(f"{t:.6f},{gsr_of_us(g):.6f},{label_of_time(t)}")
    path.write_text("\n".join(lines) + "\n")
    return gsr


def _e4(folder: Path, seconds: float, labels: str) -> np.ndarray:
    folder.mkdir(parents=True)
    eda = synthesize_gsr(seconds, 0.4, seed=2, config=GsrSynthConfig(rate_hz=4.0))
    (folder / "EDA.csv").write_text("1600000000.000000\n4.000000\n" + "\n".join(f"{v:.6f}" for v in eda) + "\n")
    (folder / "labels.csv").write_text(labels)
    (folder / "TEMP.csv").write_text("1600000000.000000\n4.000000\n33.1\n")  # other E4 files are ignored
    return eda


def test_csv_with_label_columns_and_resistance_unit(tmp_path: Path) -> None:
    gsr = _csv(tmp_path / "s07_lab.csv", 32.0, 60.0, "time_s,gsr_kOhm,arousal,valence",
               lambda t: "1,0" if t < 24 else ("," if t < 30 else "0,1"), lambda g: 1e3 / g)
    data = load_dataset("recordings", tmp_path, PAPER, workers=1)
    assert data.eeg is None and set(data.subject.tolist()) == {7}
    assert sorted(set(data.trial.tolist())) == [1, 2]
    assert data.labels[data.trial == 1].tolist()[0] == [1, 0] and data.labels[data.trial == 2].tolist()[0] == [0, 1]
    assert np.isnan(data.ratings).all()  # binary labels carry no rating
    expected = GsrPreprocessor(32.0, "kOhm", PAPER_PREPROCESSING).apply(1e3 / gsr[: 24 * 32])
    np.testing.assert_allclose(data.gsr[data.trial == 1], expected.features[expected.usable], atol=1e-3)


def test_csv_with_a_segment_file_and_ratings(tmp_path: Path) -> None:
    _csv(tmp_path / "anna.csv", 16.0, 40.0, "time_s,gsr", lambda t: "")
    text = (tmp_path / "anna.csv").read_text().replace(",\n", "\n")
    (tmp_path / "anna.csv").write_text(text)
    (tmp_path / "anna.labels.csv").write_text("start_s,end_s,arousal_rating,valence_rating\n0,20,7.5,2\n20,40,5,6\n")
    with pytest.raises(UnitError, match=r"anna\.csv.*no unit"):
        load_dataset("recordings", tmp_path, workers=1)
    data = load_dataset("recordings", tmp_path, DatasetConfig(PAPER_PREPROCESSING, label_rule="ge"), workers=1, gsr_unit="uS")
    assert data.labels[data.trial == 1][0].tolist() == [1, 0]
    assert data.labels[data.trial == 2][0].tolist() == [1, 1]  # 5 >= 5
    np.testing.assert_array_equal(data.ratings[data.trial == 1][0], [7.5, 2.0])


def test_empatica_e4_folder(tmp_path: Path) -> None:
    _e4(tmp_path / "P12", 100.0, "start_unix,end_unix,arousal,valence\n1600000000,1600000040,1,1\n1600000050,1600000100,0,1\n")
    data = load_dataset("recordings", tmp_path, PAPER, workers=1)
    assert set(data.subject.tolist()) == {12} and sorted(set(data.trial.tolist())) == [1, 2]
    assert (data.trial == 1).sum() >= 9 and (data.trial == 2).sum() >= 11  # 40 s and 50 s at 4 Hz
    assert data.start_s[data.trial == 2][0] == 0.0


@pytest.mark.parametrize(
    ("write", "error", "message"),
    [
        (lambda p: _csv(p / "s1.csv", 8, 20, "time_s,gsr_furlong,arousal,valence", lambda t: "1,1"), UnitError, "furlong"),
        (lambda p: _csv(p / "s1.csv", 8, 20, "time_s,gsr_uS,arousal,valence", lambda t: "1,nan"), DataError, "non-finite label"),
        (lambda p: _csv(p / "s1.csv", 8, 20, "time_s,gsr_uS,arousal,valence", lambda t: "2,1"), DataError, "0 or 1"),
        (lambda p: _csv(p / "s1.csv", 8, 20, "time,gsr_uS,arousal,valence", lambda t: "1,1"), DataError, "no time_s"),
        (lambda p: _e4(p / "P1", 30, "start_s,end_s,arousal,valence\n0,10,1,inf\n"), DataError, "non-finite label"),
        (lambda p: _e4(p / "P1", 30, "start_s,end_s,mood\n0,10,1\n"), DataError, "label columns"),
    ],
)
def test_bad_recordings(tmp_path: Path, write, error: type, message: str) -> None:  # type: ignore[no-untyped-def]
    write(tmp_path)
    with pytest.raises(error, match=message) as info:
        load_dataset("recordings", tmp_path, workers=1)
    assert "s1.csv" in str(info.value) or "labels.csv" in str(info.value)


def test_irregular_and_truncated_files(tmp_path: Path) -> None:
    path = tmp_path / "s1.csv"
    _csv(path, 8, 20, "time_s,gsr_uS,arousal,valence", lambda t: "1,1")
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:50] + lines[60:]) + "\n")  # a 1.25 s hole in time_s
    with pytest.raises(DataError, match=r"s1\.csv:\d+: irregular sampling"):
        load_dataset("recordings", tmp_path, workers=1)
    path.write_text("\n".join(lines[:50] + ["3.1,2.0"]) + "\n")
    with pytest.raises(DataError, match=r"s1\.csv:\d+: 2 fields.*truncated"):
        load_dataset("recordings", tmp_path, workers=1)
    path.unlink()
    (tmp_path / "P2").mkdir()
    (tmp_path / "P2" / "EDA.csv").write_text("1600000000\n")
    (tmp_path / "P2" / "labels.csv").write_text("start_s,end_s,arousal\n0,10,1\n")
    with pytest.raises(DataError, match=r"EDA\.csv.*truncated"):
        load_dataset("recordings", tmp_path, workers=1)
