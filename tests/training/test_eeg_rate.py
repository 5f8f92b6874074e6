"""The teacher's EEG at a decimated rate: a longer EEG context in the same number of samples."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from emotionkd.firmware_bridge.errors import ConfigError, DataError
from emotionkd.training.baselines import eeg_band_powers, eeg_bands_below
from emotionkd.training.config import load_config
from emotionkd.training.datasets import DatasetConfig, generate, load_dataset
from emotionkd.training.datasets.channels import GENEVA_TO_28
from emotionkd.training.datasets.deap import read_deap_subject
from emotionkd.training.datasets.trials import decimate_eeg
from emotionkd.training.models import TeacherConfig
from emotionkd.training.trainer import TensorSet, train_teacher


@pytest.fixture(scope="module")
def deap_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("deap-rate")
    generate("deap", root, subjects=1, trials=2, seed=5)
    return root


def test_rate_must_divide_128_hz() -> None:
    assert DatasetConfig(eeg_window_s=8.0, eeg_rate_hz=64.0).eeg_window_samples == 512
    assert DatasetConfig(eeg_window_s=8.0, eeg_rate_hz=64.0).eeg_decimation == 2
    for bad in (50.0, 256.0, 0.0, -64.0):
        with pytest.raises(ConfigError, match="eeg_rate_hz"):
            DatasetConfig(eeg_rate_hz=bad)
    config = load_config(overrides={"data.eeg_window_s": 16.0, "data.eeg_rate_hz": 32.0})
    assert config.data.dataset_config().eeg_window_samples == 512


def test_decimation_keeps_slow_rhythms_in_place_and_removes_what_would_alias() -> None:
    t = np.arange(60 * 128) / 128.0
    alpha = np.sin(2 * np.pi * 10.0 * t)  # kept at 64 Hz, and not shifted in time
    gamma = np.sin(2 * np.pi * 40.0 * t)  # above 32 Hz: would fold onto 24 Hz
    out = decimate_eeg(np.stack([alpha, gamma]), 2)
    assert out.shape == (2, 30 * 128)
    inner = slice(256, -256)  # away from the filter's edges at the trial's ends
    np.testing.assert_allclose(out[0, inner], alpha[::2][inner], atol=0.02)
    assert np.abs(out[1, inner]).max() < 0.01
    with pytest.raises(DataError, match="too short to decimate"):
        decimate_eeg(np.zeros((2, 100)), 2)


def test_an_8_s_window_at_64_hz_ends_where_the_gsr_window_ends(deap_root: Path) -> None:
    config = DatasetConfig(eeg_window_s=8.0, eeg_rate_hz=64.0, eeg_normalisation="window_center")
    data = load_dataset("deap", deap_root, config, workers=1)
    assert data.eeg is not None and data.eeg.shape[1:] == (28, 512) and data.gsr.shape[1] == 512
    assert data.meta["eeg_rate_hz"] == 64.0 and data.meta["eeg_window_samples"] == 512
    subject = read_deap_subject(deap_root / "data_preprocessed_python" / "s01.dat")
    # trial 2, window 3: GSR 12-44 s, so its EEG is 36-44 s of the trial (after DEAP's 3 s baseline)
    trial = decimate_eeg(subject.data[1, GENEVA_TO_28, 384:], 2)
    expected = trial[:, 36 * 64: 44 * 64]
    rows = data.trial == 2
    np.testing.assert_allclose(data.eeg[rows][3], expected - expected.mean(-1, keepdims=True), atol=1e-3)
    # the 128 Hz cache entry is another one
    assert load_dataset("deap", deap_root, DatasetConfig(), workers=1).meta["cache_key"] != data.meta["cache_key"]


def test_band_powers_leave_out_bands_above_nyquist() -> None:
    assert list(eeg_bands_below(128.0)) == ["theta", "alpha", "beta", "gamma"]
    assert list(eeg_bands_below(64.0)) == ["theta", "alpha", "beta"]
    eeg = np.random.default_rng(0).normal(size=(3, 2, 512))
    assert eeg_band_powers(eeg, 64.0).shape == (3, 2 * 3)
    assert eeg_band_powers(eeg, 128.0).shape == (3, 2 * 4)
    with pytest.raises(DataError, match="Nyquist"):
        eeg_band_powers(eeg, 8.0)


def test_teacher_refuses_eeg_windows_of_another_length() -> None:
    config = TeacherConfig(window_samples=64, filters=8, heads=1, head_dim=8, ff_dim=16)
    data = TensorSet(eeg=torch.zeros(4, 28, 128), gsr=torch.zeros(4, 64), labels=torch.tensor([0, 1, 0, 1]))
    optim = load_config(preset="pipeline").teacher_optim
    with pytest.raises(DataError, match="eeg_window_s x data.eeg_rate_hz"):
        train_teacher(data, config, optim, l2=0.0)
