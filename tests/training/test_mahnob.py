"""MAHNOB-HCI: BioSemi BDF + session.xml sessions, Status events, header rates and units."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyedflib
import pytest

from emotionkd.firmware_bridge.errors import DataError, UnitError
from emotionkd.sdk.preprocessing import DEFAULT_PREPROCESSING, GsrPreprocessor
from emotionkd.training.datasets import (
    DatasetConfig,
    SynthConfig,
    generate,
    load_dataset,
    synth_files,
)
from emotionkd.training.datasets.mahnob import read_bdf, read_session_xml, trigger_onsets

PAD_S = 5.0


@pytest.fixture(scope="module")
def mahnob_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mahnob")
    generate("mahnob", root, subjects=2, trials=2, seed=4, config=SynthConfig(trial_s=42.0), mahnob_pad_s=PAD_S)  # stimuli 34-50 s
    return root


def _bdf(root: Path, session: int) -> Path:
    return next((root / "Sessions" / str(session)).glob("*.bdf"))


def test_files_are_biosemi_style_bdf(mahnob_root: Path) -> None:
    path = _bdf(mahnob_root, 1)
    assert path.read_bytes()[:8] == b"\xffBIOSEMI"  # 24-bit BDF identification
    reader = pyedflib.EdfReader(str(path))
    try:
        labels = reader.getSignalLabels()
        assert len(labels) == 47 and labels[0] == "Fp1" and labels[-1] == "Status"
        assert reader.getSampleFrequency(0) == 256.0
        gsr = labels.index("GSR1")
        assert reader.getPhysicalDimension(gsr) == "Ohm"
        assert reader.getDigitalMinimum(0) == -8388608 and reader.getDigitalMaximum(0) == 8388607
        status = reader.readSignal(len(labels) - 1, digital=True)
    finally:
        reader.close()
    onsets = trigger_onsets(status)
    assert onsets[0] == int(PAD_S * 256)  # stimulus starts after the pre-stimulus pad
    assert (status >> 16 & 0xFF).max() > 0  # system status bits, masked by the loader


def test_emotion_sessions_only_and_labels_from_session_xml(mahnob_root: Path) -> None:
    data = load_dataset("mahnob", mahnob_root, workers=1)
    assert data.eeg is not None and data.eeg.shape[1:] == (28, 512)
    assert set(data.subject.tolist()) == {1, 2}
    assert len(data.meta["sessions_skipped"]) == 2  # one implicit-tagging session per subject
    sessions = sorted(set(data.trial.tolist()))
    assert sessions == [1, 2, 4, 5]  # 3 and 6 are the implicit-tagging sessions
    info = read_session_xml(mahnob_root / "Sessions" / "2")
    assert info.ratings is not None and info.subject == 1
    rows = data.trial == 2
    np.testing.assert_array_equal(data.ratings[rows][0], info.ratings)
    np.testing.assert_array_equal(data.labels[rows][0], (np.array(info.ratings) > 5).astype(int))


def test_gsr_windows_come_from_the_stimulus_span_through_the_sdk(mahnob_root: Path) -> None:
    data = load_dataset("mahnob", mahnob_root, workers=1)
    rec = read_bdf(_bdf(mahnob_root, 1))
    assert rec.gsr_unit == "Ohm" and rec.gsr_rate_hz == 256.0
    start, end = rec.stimulus_s
    assert start == PAD_S and 33 <= end - start <= 51
    expected = GsrPreprocessor(256.0, "Ohm", DEFAULT_PREPROCESSING, hop_samples=64).apply(rec.gsr[int(start * 256): int(end * 256)])
    rows = data.trial == 1
    np.testing.assert_array_equal(data.gsr[rows], expected.features[expected.usable][: rows.sum()])
    # EEG: re-referenced, resampled to 128 Hz and band-limited like DEAP's, µV scale
    raw = load_dataset("mahnob", mahnob_root, DatasetConfig(eeg_normalisation="none"), workers=1)
    assert raw.eeg is not None and 2 < raw.eeg.std() < 60
    spectrum = np.abs(np.fft.rfft(raw.eeg[0], axis=-1)) ** 2
    freqs = np.fft.rfftfreq(512, 1 / 128)
    assert spectrum[:, freqs > 50].sum() < 0.01 * spectrum.sum()  # mains hum and > 45 Hz removed


def _write_session(folder: Path, *, monkeypatch: pytest.MonkeyPatch | None = None, unit: str = "Ohm",
                   events: int = 2, felt: str = 'feltArsl="7" feltVlnc="3"') -> None:
    folder.mkdir(parents=True)
    n = 256 * 20
    channels = list(synth_files.MAHNOB_CHANNELS)
    if unit != "Ohm" and monkeypatch is not None:
        channels[40] = ("GSR1", unit, -8388608.0, 8388607.0)
        monkeypatch.setattr(synth_files, "MAHNOB_CHANNELS", tuple(channels))
    rng = np.random.default_rng(0)
    signals = [rng.normal(0, 10, n) for _ in range(40)] + [np.full(n, 2e5)] * 6
    status = np.zeros(n)
    for k in range(events):
        status[256 * (2 + 8 * k): 256 * (2 + 8 * k) + 10] = k + 1
    from datetime import datetime

    synth_files.write_biosemi_bdf(folder / "Part_1_S_Trial1_emotion.bdf", [*signals, status], 256.0, datetime(2010, 1, 1))
    (folder / "session.xml").write_text(f'<session sessionId="{folder.name}" {felt}><subject id="1"/></session>')


def test_bad_sessions_give_clear_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_session(tmp_path / "unit" / "Sessions" / "10", monkeypatch=monkeypatch, unit="furlong")
    with pytest.raises(UnitError, match=r"Part_1_S_Trial1_emotion\.bdf.*GSR1.*furlong"):
        load_dataset("mahnob", tmp_path / "unit", workers=1)
    monkeypatch.undo()
    _write_session(tmp_path / "events" / "Sessions" / "11", events=1)
    with pytest.raises(DataError, match=r"emotion\.bdf: 1 trigger event"):
        load_dataset("mahnob", tmp_path / "events", workers=1)
    _write_session(tmp_path / "label" / "Sessions" / "12", felt='feltArsl="" feltVlnc="3"')
    with pytest.raises(DataError, match=r"session\.xml: non-finite rating"):
        load_dataset("mahnob", tmp_path / "label", workers=1)
    _write_session(tmp_path / "trunc" / "Sessions" / "13")
    bdf = tmp_path / "trunc" / "Sessions" / "13" / "Part_1_S_Trial1_emotion.bdf"
    bdf.write_bytes(bdf.read_bytes()[:20000])
    with pytest.raises(DataError, match=r"emotion\.bdf"):
        load_dataset("mahnob", tmp_path / "trunc", workers=1)
    xml = tmp_path / "xml" / "Sessions" / "14"
    _write_session(xml)
    (xml / "session.xml").write_text("<session sessionId=")
    with pytest.raises(DataError, match=r"session\.xml: not well-formed"):
        load_dataset("mahnob", tmp_path / "xml", workers=1)
    with pytest.raises(DataError, match="not found"):
        load_dataset("mahnob", tmp_path / "nothing")
