"""Real wrist EDA (a Stress-Predict excerpt, MIT) through the recordings loader: per-second label
tables, label alignment, arousal-only data, label provenance, skipped folders, hostile files."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from emotionkd.firmware_bridge.errors import DataError
from emotionkd.sdk.preprocessing import GsrPreprocessor
from emotionkd.training.cli import app
from emotionkd.training.datasets import DatasetConfig, load_dataset

from .conftest import EXCERPT

SOURCE = "binary stress label: stress task = high arousal"


def _raw(subject: int) -> tuple[float, np.ndarray, dict[int, int]]:
    """(unix start, µS samples, {unix second: label}) read here without the loader."""
    lines = (EXCERPT / f"S{subject:02d}" / "EDA.csv").read_text().split()
    labels = {}
    for row in (EXCERPT / "labels.csv").read_text().splitlines()[1:]:
        p, t, lab = row.split(",")
        if int(p) == subject:
            labels[int(t)] = int(lab)
    return float(lines[0]), np.array([float(v) for v in lines[2:]]), labels


def _count(seconds: float) -> int:
    """Windows of the default preparation within ``seconds`` of one labelled span."""
    options = DatasetConfig()
    window_s, hop_s = options.preprocessing.window_s, options.hop / options.preprocessing.rate_hz
    return int((seconds - window_s) // hop_s) + 1


def test_per_second_label_table_aligns_windows_with_the_stress_task(excerpt: Path) -> None:
    data = load_dataset("recordings", excerpt, workers=1, progress=False, label_source=SOURCE)
    assert set(data.subject.tolist()) == {2, 3} and data.meta["data_kind"] == "real"
    # stress labels say nothing about valence: absent (-1), never a made-up "low"
    assert data.meta["targets"] == ["arousal"] and (data.labels[:, 1] == -1).all()
    assert data.meta["label_provenance"] == {"arousal": SOURCE, "valence": None}
    for subject in (2, 3):
        start_unix, eda, labels = _raw(subject)
        stress = sorted(t for t, lab in labels.items() if lab == 1)
        first, last = stress[0], stress[-1] + 1  # one stress task in each excerpt
        mine = data.subject == subject
        trials = np.unique(data.trial[mine])
        assert len(trials) == 3  # rest, stress, rest
        stress_trial = data.trial[mine][data.labels[mine, 0] == 1]
        assert set(stress_trial.tolist()) == {2}
        in_trial = mine & (data.trial == 2)
        options = DatasetConfig()
        assert in_trial.sum() == _count(last - first)  # windows within the task
        # the windows are the samples of exactly those seconds (a shift of one second fails)
        lo, hi = int((first - start_unix) * 4), int((last - start_unix) * 4)
        expected = GsrPreprocessor(4.0, "uS", options.preprocessing, options.hop).apply(eda[lo:hi])
        np.testing.assert_allclose(data.gsr[in_trial], expected.features[expected.usable], atol=1e-4)
        shifted = GsrPreprocessor(4.0, "uS", options.preprocessing, options.hop).apply(eda[lo + 4:hi + 4])
        assert not np.allclose(data.gsr[in_trial][:5], shifted.features[shifted.usable][:5], atol=1e-4)


def test_span_table_subject_choice_and_an_unlabelled_e4_folder(excerpt: Path) -> None:
    (excerpt / "labels.csv").write_text(
        "participant,start_unix,end_unix,arousal\n2,1644228196,1644228572,1\n2,1644227583,1644228196,0\n")
    (excerpt / "S07").mkdir()
    shutil.copy(excerpt / "S03" / "EDA.csv", excerpt / "S07" / "EDA.csv")  # no labels anywhere: skipped
    data = load_dataset("recordings", excerpt, DatasetConfig(subjects=(2, 7)), workers=1, progress=False)
    assert set(data.subject.tolist()) == {2}
    assert [s["path"].endswith("S07") for s in data.meta["skipped"]] == [True]
    assert "'arousal' of stress/labels.csv" in data.meta["label_provenance"]["arousal"]
    assert data.labels[data.trial == 2, 0].tolist() == [1] * _count(376)  # spans sorted by start
    with pytest.raises(DataError, match=r"subjects \[9\] not found"):
        load_dataset("recordings", excerpt, DatasetConfig(subjects=(9,)), workers=1, progress=False)


def test_sdk_recording_with_a_per_second_labels_file(tmp_path: Path) -> None:
    start_unix, eda, labels = _raw(2)
    import datetime as dt

    stamp = dt.datetime.fromtimestamp(start_unix, dt.UTC).isoformat()
    rows = [f"{i / 4:.6f},{v:.6f},0" for i, v in enumerate(eda)]
    (tmp_path / "p2_lab.csv").write_text(f"# emotionkd recording v1\n# rate_hz: 4\n# unit: uS\n# start_time: {stamp}\n"
                                         "time_s,conductance_us,flags\n" + "\n".join(rows) + "\n")
    (tmp_path / "p2_lab.labels.csv").write_text(
        "unix_time_s,label\n" + "\n".join(f"{t},{lab}" for t, lab in sorted(labels.items())) + "\n")
    data = load_dataset("recordings", tmp_path, workers=1, progress=False, label_target="valence")
    assert data.meta["targets"] == ["valence"] and (data.labels[:, 0] == -1).all()
    assert "'label' of p2_lab.labels.csv used as valence" in data.meta["label_provenance"]["valence"]
    assert (data.labels[data.trial == 2, 1] == 1).all() and (data.trial == 2).sum() == _count(376)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("2,16442x,1", r"labels\.csv:4: unix_time_s value '16442x' is not a number"),
        ("2,1644227600,2", r"labels\.csv:4: binary arousal labels must be 0 or 1"),
        ("2,1644227600", r"labels\.csv:4: 2 fields, the header has 3"),
        ("1234567890123456789012345678901234567890,1644227600,1", r"labels\.csv:4: subject '1234"),
        ("2,1644227584,1", r"labels\.csv:4: span starting at 1\.64423e\+09 s overlaps the one of line \d"),
    ],
)
def test_a_malformed_labels_table_is_one_line_naming_file_and_line(excerpt: Path, row: str, message: str) -> None:
    lines = (excerpt / "labels.csv").read_text().splitlines()
    (excerpt / "labels.csv").write_text("\n".join([*lines[:3], row, *lines[3:]]) + "\n")
    with pytest.raises(DataError, match=message) as info:
        load_dataset("recordings", excerpt, workers=1, progress=False)
    assert "\n" not in str(info.value)


def test_hostile_files_give_errors_or_dropped_windows_never_tracebacks(excerpt: Path, tmp_path: Path) -> None:
    # an end of 1e308 s is cut at the recording's end (it overflowed the sample index)
    (excerpt / "labels.csv").write_text("participant,start_s,end_s,arousal\n2,0,1e308,1\n3,0,100,0\n")
    data = load_dataset("recordings", excerpt, workers=1, progress=False)
    assert (data.subject == 2).sum() == _count(1126)
    # 1e308 µS in half a recording: those windows are dropped and counted, none holds NaN
    eda = (excerpt / "S03" / "EDA.csv").read_text().split("\n")
    (excerpt / "S03" / "EDA.csv").write_text("\n".join(eda[:2] + ["1e308"] * 200 + eda[202:]))
    data = load_dataset("recordings", excerpt, workers=1, progress=False)
    assert np.isfinite(data.gsr).all() and data.meta["windows_dropped"] >= 200 // 16
    # a 40-digit subject number in a folder name
    (excerpt / ("S" + "9" * 40)).mkdir()
    shutil.copy(excerpt / "S03" / "EDA.csv", excerpt / ("S" + "9" * 40) / "EDA.csv")
    with pytest.raises(DataError, match="more than 9 digits"):
        load_dataset("recordings", excerpt, workers=1, progress=False)
    shutil.rmtree(excerpt / ("S" + "9" * 40))
    # a symlink to a file outside the folder is never read
    secret = tmp_path / "secret.csv"
    secret.write_text("time_s,gsr_uS,arousal\n0,1,1\n0.25,1,1\n")
    os.symlink(secret, excerpt / "s5.csv")
    os.symlink(secret, excerpt / "S03" / "labels.csv")
    data = load_dataset("recordings", excerpt, workers=1, progress=False)
    assert 5 not in data.subject.tolist()
    assert {Path(s["path"]).name for s in data.meta["skipped"]} == {"s5.csv", "labels.csv"}
    assert all("outside" in s["reason"] for s in data.meta["skipped"])


def test_prepare_command_on_real_e4_folders(excerpt: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["prepare", "recordings", str(excerpt), "--cache-dir", str(tmp_path / "c"),
                                      "--label-source", SOURCE, "--subjects", "3", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "1 subjects" in result.output and "valence (no labels)" in result.output
    assert f"arousal labels: {SOURCE}" in result.output
    bad = CliRunner().invoke(app, ["prepare", "recordings", str(excerpt), "--subjects", "3,x"])
    assert bad.exit_code == 2 and "--subjects" in bad.output
