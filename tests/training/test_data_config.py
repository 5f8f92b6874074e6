"""``data.*`` settings → dataset options: v2 by default, the paper input for the paper preset."""

from __future__ import annotations

import pytest

from emotionkd.firmware_bridge.errors import ConfigError
from emotionkd.sdk.preprocessing import DEFAULT_PREPROCESSING, PAPER_PREPROCESSING
from emotionkd.training.config import ExperimentConfig, load_config
from emotionkd.training.datasets import DatasetConfig


def test_default_is_v2_with_a_4_s_hop_and_a_4_s_eeg_window() -> None:
    options = ExperimentConfig().data.dataset_config()
    assert options.preprocessing == DEFAULT_PREPROCESSING and options.preprocessing.window_s == 32.0
    assert options.hop == 64 and options.eeg_window_samples == 512  # 4 s at 16 Hz; 4 s at 128 Hz
    assert options == DatasetConfig()  # the loaders' default is the same


def test_paper_preset_selects_the_faithful_input() -> None:
    options = load_config(preset="paper").data.dataset_config()
    assert options.preprocessing == PAPER_PREPROCESSING and options.preprocessing.version == 1
    assert options.hop == 512  # 4 s at 128 Hz: one window, no overlap, as the paper cut them
    assert options.eeg_normalisation == "window_zscore"  # the paper's per-window EEG z-score
    assert load_config(preset="experiment").data.dataset_config().eeg_normalisation == "subject_channel"


def test_overrides_and_cache_relevant_options_reach_the_dataset() -> None:
    config = load_config(overrides={"data.hop_s": 8.0, "data.eeg_window_s": 2.0, "data.label_rule": "ge"})
    options = config.data.dataset_config()
    assert options.hop == 128 and options.eeg_window_samples == 256 and options.label_rule == "ge"
    assert options.to_dict() != DatasetConfig().to_dict()  # so the cache key differs
    assert DatasetConfig.from_dict(options.to_dict()) == options
    assert load_config(overrides={"data.hop_samples": 16}).data.dataset_config().hop == 16
    with pytest.raises(ConfigError, match="data.preprocessing"):
        load_config(overrides={"data.preprocessing": "v3"})
    eeg = load_config(overrides={"data.eeg_normalisation": "subject_channel"}).data.dataset_config()
    assert eeg.eeg_normalisation == "subject_channel" and eeg.to_dict() != DatasetConfig().to_dict()
    with pytest.raises(ConfigError, match="data.eeg_normalisation"):
        load_config(overrides={"data.eeg_normalisation": "zscore"})


def test_experiment_preset_yields_at_least_3_windows_per_trial_on_8_subjects() -> None:
    data = load_config(preset="experiment").data
    options = data.dataset_config()
    assert data.subjects >= 8 and data.trials >= 40
    windows_per_trial = int((data.trial_s - options.preprocessing.window_s) // data.hop_s) + 1
    assert windows_per_trial >= 3


def test_dataset_options_are_validated() -> None:
    with pytest.raises(ConfigError, match="hop_s"):
        DatasetConfig(hop_s=0.01)  # less than one sample at 16 Hz
    with pytest.raises(ConfigError, match="eeg_window_s"):
        DatasetConfig(eeg_window_s=0.0)


def test_windowed_dataset_holds_eeg_windows_of_another_length(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    from emotionkd.firmware_bridge.errors import DataError
    from emotionkd.training.windowed import WindowedDataset

    n = 3
    data = WindowedDataset(gsr=np.zeros((n, 512), np.float32), eeg=np.ones((n, 28, 256), np.float32),
                           labels=np.zeros((n, 2), np.int64), ratings=np.zeros((n, 2), np.float32),
                           subject=np.arange(n), trial=np.arange(n), start_s=np.zeros(n, np.float32))
    assert data.window_samples == 512 and data.eeg_window_samples == 256
    data.save_npz(tmp_path / "w.npz")
    again = WindowedDataset.load_npz(tmp_path / "w.npz").subset([0, 2])
    assert again.eeg is not None and again.eeg.shape == (2, 28, 256)
    with pytest.raises(DataError, match="one window per gsr window"):
        WindowedDataset(gsr=data.gsr, eeg=data.eeg[:2], labels=data.labels, ratings=data.ratings,
                        subject=data.subject, trial=data.trial, start_s=data.start_s)


def test_synthetic_files_of_other_settings_are_refused_not_reused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A changed ``data`` section (here the GSR drive noise or the trial length) must not read
    the files an earlier run generated with other settings."""
    from emotionkd.firmware_bridge.errors import DataError
    from emotionkd.training.datasets import SynthConfig, generate
    from emotionkd.training.experiment import check_synthetic_files

    generate("deap", tmp_path, subjects=1, trials=2, seed=3, config=SynthConfig(trial_s=36.0, gsr_drive_noise=0.15))
    check_synthetic_files(tmp_path, 1, 2, 3, SynthConfig(trial_s=36.0, gsr_drive_noise=0.15))  # same: accepted
    with pytest.raises(DataError, match=r"other settings \(config\).*delete the folder"):
        check_synthetic_files(tmp_path, 1, 2, 3, SynthConfig(trial_s=36.0))
    with pytest.raises(DataError, match=r"other settings \(seed, trials\)"):
        check_synthetic_files(tmp_path, 1, 3, 4, SynthConfig(trial_s=36.0, gsr_drive_noise=0.15))
    (tmp_path / "SYNTHETIC.json").write_text("{", encoding="utf-8")
    with pytest.raises(DataError, match="cannot read the synthetic manifest"):
        check_synthetic_files(tmp_path, 1, 2, 3, SynthConfig(trial_s=36.0, gsr_drive_noise=0.15))
    with pytest.raises(ConfigError, match="gsr_drive_noise"):
        load_config(overrides={"data.gsr_drive_noise": -0.1})
