"""Hand-made features for the logistic-regression baselines: each one measures what it says."""

from __future__ import annotations

import numpy as np
import pytest

from emotionkd.firmware_bridge.errors import DataError
from emotionkd.training.baselines import (
    BANDS_HZ,
    GSR_FEATURES,
    eeg_band_powers,
    gsr_features,
    logistic_baseline,
)

RATE_HZ = 128.0


def test_band_powers_find_the_band_of_a_tone() -> None:
    t = np.arange(512) / RATE_HZ
    rng = np.random.default_rng(0)
    eeg = 0.1 * rng.normal(size=(2, 2, 512))
    eeg[0, 1] += np.sin(2 * np.pi * 10 * t)  # alpha on channel 1 of window 0
    powers = eeg_band_powers(eeg, RATE_HZ).reshape(2, 2, len(BANDS_HZ))
    alpha = list(BANDS_HZ).index("alpha")
    assert powers[0, 1].argmax() == alpha
    assert powers[0, 1, alpha] > powers[1, 1, alpha] + 3  # log power: > e³ times larger
    with pytest.raises(DataError, match="N, C, W"):
        eeg_band_powers(eeg[0], RATE_HZ)


def test_gsr_features_level_slope_and_responses() -> None:
    t = np.arange(512) / RATE_HZ
    flat = np.full(512, 2.0)
    ramp = 2.0 + 0.5 * t
    scrs = 2.0 - 0.01 * t  # slow recovery between responses
    for onset_s in (0.5, 2.0):  # two responses: rise 0.3 µS over 1 s, then hold
        scrs = scrs + 0.3 * np.clip((t - onset_s) / 1.0, 0, 1)
    features = gsr_features(np.stack([flat, ramp, scrs]), RATE_HZ)
    level, slope, count, amplitude = (features[:, GSR_FEATURES.index(n)] for n in GSR_FEATURES)
    assert level[0] == pytest.approx(2.0) and slope[0] == pytest.approx(0.0, abs=1e-9)
    assert slope[1] == pytest.approx(0.5)
    assert count[2] == 2 and amplitude[2] == pytest.approx(0.3, abs=0.05)
    assert count[0] == 0 and amplitude[0] == 0.0


def test_logistic_baseline_learns_a_separable_feature() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    x = np.c_[y + 0.1 * rng.normal(size=200), rng.normal(size=200)]
    predictions = logistic_baseline(x[:150], y[:150], x[150:])
    assert (predictions == y[150:]).mean() > 0.95
    assert (logistic_baseline(x[:10], np.ones(10, np.int64), x[150:]) == 1).all()


def test_gsr_baseline_sees_the_students_v2_input() -> None:
    """Under v2 the GSR features are read from exactly the student's window (10·(ln G − causal
    baseline), 32 s at 16 Hz): level is the rise above the wearer's baseline, responses are
    relative rises caught by the 1 %/s criterion; EEG band powers use the EEG rate, not 16 Hz."""
    from dataclasses import asdict

    from emotionkd.sdk.preprocessing import DEFAULT_PREPROCESSING, preprocess_recording
    from emotionkd.training.baselines import scr_rise_threshold_per_s
    from emotionkd.training.experiment import baseline_features
    from emotionkd.training.windowed import WindowedDataset

    source_hz = 128.0
    t = np.arange(int(160 * source_hz)) / source_hz  # last window: 128-160 s
    calm = np.full_like(t, 4.0)
    aroused = 4.0 * (1 + 0.002 * np.clip(t - 100, 0, None))  # tonic rise after 100 s
    for onset_s in (135.0, 148.0):  # two 5 % responses: 1 s rise, 4 s recovery
        shape = np.clip((t - onset_s) / 1.0, 0, 1) * np.exp(-np.clip(t - onset_s - 1.0, 0, None) / 4.0)
        aroused = aroused * (1 + 0.05 * shape)
    params = asdict(DEFAULT_PREPROCESSING)
    windows = [preprocess_recording(x, source_hz, "uS", DEFAULT_PREPROCESSING).features[-1] for x in (calm, aroused)]
    gsr = np.stack(windows).astype(np.float32)
    assert gsr.shape == (2, 512)
    threshold = scr_rise_threshold_per_s(params)
    assert threshold == pytest.approx(0.1)
    features = gsr_features(gsr, DEFAULT_PREPROCESSING.rate_hz, threshold)
    level, slope, count, amplitude = features.T
    assert abs(level[0]) < 1e-3 and count[0] == 0
    assert level[1] > 0.2 and slope[1] > 0
    assert count[1] == 2 and 10 * np.log(1.05) * 0.6 < amplitude[1] < 10 * np.log(1.05) * 1.1

    rng = np.random.default_rng(0)
    eeg = rng.normal(size=(4, 28, 512)).astype(np.float32)
    data = WindowedDataset(gsr=np.r_[gsr, gsr], eeg=eeg, labels=np.array([[0, 0], [1, 1]] * 2),
                           ratings=np.zeros((4, 2), np.float32), subject=np.array([0, 0, 1, 1]),
                           trial=np.array([0, 1, 0, 1]), start_s=np.zeros(4, np.float32),
                           meta={"preprocessing": {"name": "ekd-gsr", "version": 2, "params": params}})
    features_by_name = baseline_features(data, data.subset([0, 1]), data.subset([2, 3]))
    np.testing.assert_allclose(features_by_name["logreg-gsr"][0], features)
    assert features_by_name["logreg-eeg-bands"][0].shape == (2, 4 * 28)  # 16 Hz would have no beta bin
    # the fused baseline reads exactly both inputs: EEG band powers, then the GSR features, per window
    for i in (0, 1):
        np.testing.assert_array_equal(
            features_by_name["logreg-eeg+gsr"][i],
            np.hstack([features_by_name["logreg-eeg-bands"][i], features_by_name["logreg-gsr"][i]]))
    assert features_by_name["logreg-eeg+gsr"][1].shape == (2, 4 * 28 + 4)


def test_fused_baseline_reads_both_inputs() -> None:
    """Arousal split between an EEG cue and a GSR cue: a linear read-out of both side by side
    beats either alone (what ``logreg-eeg+gsr`` measures), and the teacher is compared with it."""
    from emotionkd.training.baselines import logistic_baseline
    from emotionkd.training.experiment import ARM_PAIRS

    rng = np.random.default_rng(1)
    n = 800
    eeg_cue, gsr_cue = rng.normal(size=n), rng.normal(size=n)
    labels = (eeg_cue + gsr_cue > 0).astype(np.int64)
    eeg, gsr = np.c_[eeg_cue, rng.normal(size=(n, 3))], np.c_[gsr_cue, rng.normal(size=(n, 3))]
    train, test = slice(0, 600), slice(600, None)

    def accuracy(x: np.ndarray) -> float:
        return float((logistic_baseline(x[train], labels[train], x[test]) == labels[test]).mean())

    fused = accuracy(np.hstack([eeg, gsr]))
    assert fused > 0.9 and fused > max(accuracy(eeg), accuracy(gsr)) + 0.1
    assert ("teacher", "logreg-eeg+gsr") in ARM_PAIRS
