"""DEAP loading: formats, channels, units, labels, windows, cache, and the restricted unpickler."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from emotionkd.firmware_bridge.errors import DataError
from emotionkd.sdk.preprocessing import DEFAULT_PREPROCESSING, PAPER_PREPROCESSING, GsrPreprocessor
from emotionkd.training.datasets import DatasetConfig, SynthConfig, generate, load_dataset
from emotionkd.training.datasets.channels import EEG_28, GENEVA_32, GENEVA_TO_28
from emotionkd.training.datasets.deap import read_deap_subject, write_deap_dat
from emotionkd.training.datasets.safe_pickle import safe_load

SUBJECTS, TRIALS = 3, 4
PAPER = DatasetConfig(preprocessing=PAPER_PREPROCESSING)  # 4 s at 128 Hz, hop one window


@pytest.fixture(scope="module")
def deap_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("deap")
    generate("deap", root, subjects=SUBJECTS, trials=TRIALS, seed=3, matlab=True)
    return root


def test_channel_map_drops_the_midline_only() -> None:
    assert len(EEG_28) == 28 and not {"Fz", "Cz", "Pz", "Oz"} & set(EEG_28)
    assert [GENEVA_32[i] for i in GENEVA_TO_28] == list(EEG_28)
    assert EEG_28[14:] == ("Fp2", "AF4", "F4", "F8", "FC6", "FC2", "C4", "T8", "CP6", "CP2", "P4", "P8", "PO4", "O2")


def test_files_look_like_deap(deap_root: Path) -> None:
    path = deap_root / "data_preprocessed_python" / "s01.dat"
    with open(path, "rb") as f:  # what TorchEEG and every DEAP script do
        content = pickle.load(f, encoding="latin1")
    assert set(content) == {"data", "labels"}
    assert content["data"].shape == (TRIALS, 40, 8064) and content["labels"].shape == (TRIALS, 4)
    assert content["data"].dtype == np.float64
    assert 1.0 <= content["labels"].min() and content["labels"].max() <= 9.0
    resistance = content["data"][:, 36]
    assert 2e4 < np.median(resistance) < 5e6  # skin resistance in Ohm (0.2–50 µS)
    eeg = content["data"][:, :32]
    assert 3 < eeg.std() < 60  # µV
    assert np.abs(eeg.mean(axis=1)).max() < 1e-6  # common average reference
    # band-limited to 4–45 Hz: almost no power below 3 Hz or above 47 Hz
    spectrum = np.abs(np.fft.rfft(eeg[0, 0])) ** 2
    freqs = np.fft.rfftfreq(eeg.shape[-1], 1 / 128)
    assert spectrum[(freqs < 3) | (freqs > 47)].sum() < 1e-3 * spectrum.sum()


def test_python_and_matlab_files_hold_the_same_arrays(deap_root: Path) -> None:
    a = read_deap_subject(deap_root / "data_preprocessed_python" / "s02.dat")
    b = read_deap_subject(deap_root / "data_preprocessed_matlab" / "s02.mat")
    assert a.subject == b.subject == 2
    np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_array_equal(a.labels, b.labels)


def test_windows_follow_the_sdk_preprocessing(deap_root: Path) -> None:
    data = load_dataset("deap", deap_root, PAPER, workers=1)
    assert len(data) == SUBJECTS * TRIALS * 15 and data.eeg is not None
    assert data.eeg.shape[1:] == (28, 512) and data.gsr.shape[1] == 512
    subject = read_deap_subject(deap_root / "data_preprocessed_python" / "s01.dat")
    # trial 2 of subject 1: GSR through the device preprocessing, baseline (3 s) dropped
    expected = GsrPreprocessor(128.0, "Ohm", PAPER_PREPROCESSING).apply(subject.data[1, 36, 384:])
    rows = (data.subject == 1) & (data.trial == 2)
    np.testing.assert_array_equal(data.gsr[rows], expected.features[expected.usable])
    np.testing.assert_allclose(data.start_s[rows], np.arange(15) * 4.0)
    # EEG: same sample range, 28 channels in METHOD.md order, z-scored per window and channel
    raw = subject.data[1, GENEVA_TO_28, 384 + 512 * 3: 384 + 512 * 4]
    zscored = (raw - raw.mean(-1, keepdims=True)) / raw.std(-1, keepdims=True)
    np.testing.assert_allclose(data.eeg[rows][3], zscored, atol=1e-4)
    # labels: ratings > 5 → high; DEAP's columns are valence, arousal
    np.testing.assert_allclose(data.ratings[rows][0], subject.labels[1, [1, 0]], rtol=1e-6)
    np.testing.assert_array_equal(data.labels[rows][0], (subject.labels[1, [1, 0]] > 5).astype(int))
    assert data.meta["dataset"] == "deap" and data.meta["data_kind"] == "synthetic"
    assert data.meta["eeg_normalisation"]["method"] == "window_zscore"


def test_v2_windows_have_32_s_of_gsr_and_the_eeg_of_their_last_4_s(deap_root: Path) -> None:
    data = load_dataset("deap", deap_root, DatasetConfig(subjects=(1,)), workers=1)
    assert data.gsr.shape[1] == 512 and data.eeg is not None and data.eeg.shape[1:] == (28, 512)
    rows = data.trial == 2
    assert rows.sum() == 8  # 32 s windows every 4 s in a 60 s trial: starts 0, 4, ..., 28 s
    np.testing.assert_allclose(data.start_s[rows], np.arange(8) * 4.0)
    subject = read_deap_subject(deap_root / "data_preprocessed_python" / "s01.dat")
    expected = GsrPreprocessor(128.0, "Ohm", DEFAULT_PREPROCESSING, hop_samples=64).apply(subject.data[1, 36, 384:])
    np.testing.assert_array_equal(data.gsr[rows], expected.features[expected.usable])
    # window 3 spans 12-44 s of GSR; its EEG is 40-44 s (the end of the GSR window)
    raw = subject.data[1, GENEVA_TO_28, 384 + 40 * 128: 384 + 44 * 128]
    zscored = (raw - raw.mean(-1, keepdims=True)) / raw.std(-1, keepdims=True)
    np.testing.assert_allclose(data.eeg[rows][3], zscored, atol=1e-4)
    assert data.meta["preprocessing"]["version"] == 2 and data.meta["hop_samples"] == 64
    assert data.meta["eeg_window_samples"] == 512
    paper = load_dataset("deap", deap_root, PAPER, workers=1)
    assert paper.meta["preprocessing"]["version"] == 1
    assert paper.meta["cache_key"] != data.meta["cache_key"]


def test_label_rule_is_configurable(tmp_path: Path) -> None:
    data = np.zeros((2, 40, 8064)) + 1e6
    write_deap_dat(tmp_path / "s01.dat", data, np.array([[5.0, 5.0, 5, 5], [4.0, 6.0, 5, 5]]))
    gt = load_dataset("deap", tmp_path, workers=1)
    ge = load_dataset("deap", tmp_path, DatasetConfig(label_rule="ge"), workers=1)
    assert gt.labels[gt.trial == 1][0].tolist() == [0, 0] and ge.labels[ge.trial == 1][0].tolist() == [1, 1]
    assert gt.labels[gt.trial == 2][0].tolist() == [1, 0]  # arousal 6 high, valence 4 low


def test_eeg_normalisation_options(deap_root: Path) -> None:
    none = load_dataset("deap", deap_root, DatasetConfig(eeg_normalisation="none", subjects=(1,)), workers=1)
    centre = load_dataset("deap", deap_root, DatasetConfig(eeg_normalisation="window_center", subjects=(1,)), workers=1)
    assert none.eeg is not None and centre.eeg is not None
    assert 3 < none.eeg.std() < 60  # µV kept
    np.testing.assert_allclose(centre.eeg, none.eeg - none.eeg.mean(-1, keepdims=True), atol=1e-3)
    assert set(none.subject.tolist()) == {1}


def test_overlapping_windows(deap_root: Path) -> None:
    data = load_dataset("deap", deap_root, DatasetConfig(PAPER_PREPROCESSING, hop_samples=256, subjects=(1,)), workers=1)
    rows = data.trial == 1
    assert rows.sum() == 29  # (7680 - 512) / 256 + 1
    np.testing.assert_allclose(data.start_s[rows][:3], [0.0, 2.0, 4.0])
    assert data.meta["hop_samples"] == 256


def test_parallel_equals_serial(deap_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from emotionkd.training.datasets import loading

    monkeypatch.setattr(loading, "PARALLEL_MIN_BYTES", 0)  # use the processes even for tiny inputs
    serial = load_dataset("deap", deap_root, workers=1)
    parallel = load_dataset("deap", deap_root, workers=2)
    np.testing.assert_array_equal(serial.gsr, parallel.gsr)
    np.testing.assert_array_equal(serial.eeg, parallel.eeg)
    np.testing.assert_array_equal(serial.subject, parallel.subject)


def test_cache_hit_and_invalidation(deap_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "deap"
    generate("deap", root, subjects=1, trials=2, seed=5, config=SynthConfig(trial_s=36))
    cache = tmp_path / "cache"
    first = load_dataset("deap", root, cache_dir=cache, workers=1)
    assert len(list(cache.glob("*.npz"))) == 1
    again = load_dataset("deap", root, cache_dir=cache, workers=1)
    np.testing.assert_array_equal(first.gsr, again.gsr)
    assert again.meta == first.meta
    # another config → another entry
    load_dataset("deap", root, DatasetConfig(label_threshold=4.0), cache_dir=cache, workers=1)
    assert len(list(cache.glob("*.npz"))) == 2
    # a changed input file → never the stale entry
    path = root / "data_preprocessed_python" / "s01.dat"
    content = safe_load(path)
    content["labels"][:, :2] = 9.0
    write_deap_dat(path, content["data"], content["labels"])
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    changed = load_dataset("deap", root, cache_dir=cache, workers=1)
    assert changed.labels.min() == 1 and changed.meta["cache_key"] != first.meta["cache_key"]


def test_code_changes_change_the_cache_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from emotionkd.training.datasets import cache

    files = [tmp_path / "s01.dat"]
    files[0].write_bytes(b"x")
    key = cache.cache_key("deap", files, {"a": 1})
    assert cache.cache_key("deap", files, {"a": 1}) == key
    assert cache.cache_key("deap", files, {"a": 2}) != key
    assert cache.cache_key("deap", files, {"a": 1}, content_hash=True) != key
    monkeypatch.setattr(cache, "code_version", lambda: "another-version")
    assert cache.cache_key("deap", files, {"a": 1}) != key


def test_the_cache_key_follows_the_code_the_preparation_imports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from emotionkd.training.datasets import cache

    modules = cache.code_modules()
    # imported by the roots, not named among them: a module split off the preprocessing counts too
    assert {"emotionkd.firmware_bridge.bounds", "emotionkd.sdk.preprocessing"} <= set(modules)
    assert "emotionkd.firmware_bridge.bounds" not in cache._CODE_ROOTS
    assert not any(m.startswith(("emotionkd.training.trainer", "emotionkd.training.models", "emotionkd.exporters"))
                   for m in modules)  # training code does not decide the prepared windows
    before = cache.code_version()
    edited = tmp_path / "bounds.py"
    edited.write_bytes(cache._source_path("emotionkd.firmware_bridge.bounds").read_bytes() + b"\n# edited\n")
    real = cache._source_path
    monkeypatch.setattr(cache, "_source_path",
                        lambda name: edited if name == "emotionkd.firmware_bridge.bounds" else real(name))
    assert cache.code_version() != before


def test_windowed_dataset_npz_round_trip(tmp_path: Path, deap_root: Path) -> None:
    from emotionkd.training.windowed import WindowedDataset

    data = load_dataset("deap", deap_root, DatasetConfig(subjects=(2,)), workers=1)
    for eeg in (data.eeg, None):
        original = WindowedDataset(data.gsr, eeg, data.labels, data.ratings, data.subject, data.trial,
                                   data.start_s, data.meta)
        original.save_npz(tmp_path / "d.npz")
        loaded = WindowedDataset.load_npz(tmp_path / "d.npz")
        assert loaded.meta == original.meta
        for name in ("gsr", "labels", "ratings", "subject", "trial", "start_s"):
            np.testing.assert_array_equal(getattr(loaded, name), getattr(original, name))
        assert (loaded.eeg is None) == (eeg is None)
    (tmp_path / "bad.npz").write_bytes((tmp_path / "d.npz").read_bytes()[:1000])
    with pytest.raises(DataError, match=r"bad\.npz"):
        WindowedDataset.load_npz(tmp_path / "bad.npz")


class _Evil:
    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, (f"touch {self.target}",))


def test_a_pickle_that_runs_code_is_refused_and_never_runs(tmp_path: Path) -> None:
    target = tmp_path / "pwned"
    path = tmp_path / "s01.dat"
    path.write_bytes(pickle.dumps({"data": _Evil(target), "labels": np.zeros((1, 4))}, protocol=2))
    with pytest.raises(DataError, match=r"s01\.dat.*refused.*system"):
        read_deap_subject(path)
    assert not target.exists()
    with pytest.raises(DataError, match="refused"):
        load_dataset("deap", tmp_path, workers=1)
    assert not target.exists()


def test_numpy_pickles_of_this_python_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "s01.dat"
    arrays = {"data": np.random.default_rng(0).normal(size=(1, 40, 1000)), "labels": np.full((1, 4), 3.0)}
    for protocol in (2, 4, 5):
        path.write_bytes(pickle.dumps(arrays, protocol=protocol))
        np.testing.assert_array_equal(read_deap_subject(path).data, arrays["data"])


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "not found"),
        (lambda p: p.write_bytes(Path(p.parent / "good.dat").read_bytes()[:5000]), "truncated"),
        (lambda p: write_deap_dat(p, np.zeros((2, 32, 8064)), np.ones((2, 4))), r"shape \(2, 32, 8064\)"),
        (lambda p: write_deap_dat(p, np.zeros((2, 40, 8064)), np.ones((2, 2))), r"'labels' has shape \(2, 2\)"),
        (lambda p: write_deap_dat(p, np.zeros((1, 40, 8064)), np.array([[np.nan, 5, 5, 5]])), "non-finite rating"),
        (lambda p: write_deap_dat(p, np.zeros((1, 40, 8064)), np.array([[0.0, 5, 5, 5]])), "1–9"),
        (lambda p: p.write_bytes(pickle.dumps([1, 2], protocol=2)), "expected a dict"),
    ],
)
def test_bad_files_give_clear_errors(tmp_path: Path, make, message: str) -> None:  # type: ignore[no-untyped-def]
    write_deap_dat(tmp_path / "good.dat", np.zeros((2, 40, 8064)), np.ones((2, 4)))
    path = tmp_path / "s01.dat"
    make(path)
    with pytest.raises(DataError, match=message) as info:
        from emotionkd.training.datasets.deap import prepare_deap_subject

        prepare_deap_subject(path, DatasetConfig())
    assert "s01.dat" in str(info.value)


def test_truncated_matlab_file(tmp_path: Path, deap_root: Path) -> None:
    good = (deap_root / "data_preprocessed_matlab" / "s01.mat").read_bytes()
    bad = tmp_path / "s01.mat"
    bad.write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match=r"s01\.mat"):
        read_deap_subject(bad)


def test_missing_folder_and_subject(tmp_path: Path, deap_root: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        load_dataset("deap", tmp_path / "nope")
    with pytest.raises(DataError, match="no DEAP subject files"):
        load_dataset("deap", tmp_path)
    with pytest.raises(DataError, match=r"subjects \[9\] not found"):
        load_dataset("deap", deap_root, DatasetConfig(subjects=(1, 9)))
