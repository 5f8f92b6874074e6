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
