"""The teacher's EEG scaling: which normalisations keep a left/right power difference.

Valence lives partly in frontal alpha *asymmetry* (left vs right power, the generator's and the
literature's cue). A per-channel z-score per window sets every channel's power to 1 and erases
it; ``window_common`` and ``subject_channel`` keep it, and ``subject_channel`` also removes a
recording's electrode gain.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from emotionkd.sdk.preprocessing import PAPER_PREPROCESSING
from emotionkd.training.datasets import DatasetConfig, load_dataset
from emotionkd.training.datasets.trials import (
    SubjectWindows,
    TrialWindows,
    normalise_eeg,
    scale_subject_eeg,
)

RATE_HZ = 128.0
ALPHA_HZ = 10.0


def _two_channel_trial(left_amp: float, right_amp: float, *, right_gain: float = 1.0,
                       windows: int = 3, seed: int = 0) -> np.ndarray:
    """(windows, 2, 512) µV: 10 Hz alpha of the given amplitudes, a DC offset and a little noise;
    the right electrode records ``right_gain`` times what is there."""
    rng = np.random.default_rng(seed)
    t = np.arange(512) / RATE_HZ
    alpha = np.sin(2 * np.pi * ALPHA_HZ * t)
    out = np.empty((windows, 2, t.size), np.float32)
    out[:, 0] = 40.0 + left_amp * alpha + 0.01 * rng.standard_normal((windows, t.size))
    out[:, 1] = -25.0 + right_gain * (right_amp * alpha + 0.01 * rng.standard_normal((windows, t.size)))
    return out


def _right_to_left_power(eeg: np.ndarray) -> float:
    power = eeg.astype(np.float64).var(axis=-1).mean(axis=0)  # (2,) mean power per channel
    return float(power[1] / power[0])


def _normalised_subject(method: str, trials: list[np.ndarray]) -> list[np.ndarray]:
    config = DatasetConfig(eeg_normalisation=method)
    part = SubjectWindows(subject=1)
    for i, eeg in enumerate(trials):
        windows = TrialWindows(gsr=np.zeros((len(eeg), 4), np.float32), eeg=normalise_eeg(eeg.copy(), config),
                               start_s=np.zeros(len(eeg), np.float32))
        part.add(i + 1, [5.0, 5.0], [0, 0], windows)
    part = scale_subject_eeg(part, config)
    return [tw.eeg for tw in part.windows if tw.eeg is not None]


def test_window_zscore_erases_a_left_right_power_difference() -> None:
    (eeg,) = _normalised_subject("window_zscore", [_two_channel_trial(1.0, 2.0)])
    assert _right_to_left_power(eeg) == pytest.approx(1.0, rel=1e-3)  # the 4x power ratio is gone


@pytest.mark.parametrize("method", ["window_common", "subject_channel"])
def test_asymmetry_keeping_normalisations_keep_it(method: str) -> None:
    # trial 1: right alpha twice the left; trial 2 the reverse (the asymmetry flips with the state)
    one, two = _normalised_subject(method, [_two_channel_trial(1.0, 2.0), _two_channel_trial(2.0, 1.0, seed=1)])
    assert _right_to_left_power(one) == pytest.approx(4.0, rel=0.02)
    assert _right_to_left_power(two) == pytest.approx(0.25, rel=0.02)
    assert abs(float(one.mean(axis=-1).max())) < 1e-3  # DC offsets removed per window and channel


def test_subject_channel_removes_a_recording_electrode_gain_but_not_the_trial_difference() -> None:
    # the right electrode records 3x (amplitude) throughout: 9x in power
    trials = [_two_channel_trial(1.0, 2.0, right_gain=3.0), _two_channel_trial(2.0, 1.0, right_gain=3.0, seed=1)]
    one, two = _normalised_subject("subject_channel", trials)
    assert _right_to_left_power(one) == pytest.approx(4.0, rel=0.02)
    assert _right_to_left_power(two) == pytest.approx(0.25, rel=0.02)
    common_one, _ = _normalised_subject("window_common", trials)
    assert _right_to_left_power(common_one) == pytest.approx(36.0, rel=0.02)  # gain kept there
    # and the subject's overall power is 1 per channel
    stacked = np.concatenate([one, two])
    np.testing.assert_allclose(np.square(stacked, dtype=np.float64).mean(axis=(0, 2)), 1.0, rtol=1e-3)


def test_generator_frontal_alpha_asymmetry_survives_subject_channel_only(tmp_path: Path) -> None:
    """On the synthetic generator (valence = left < right frontal alpha), the right-minus-left
    log alpha power of F4/F3 separates high from low valence trials as much after
    ``subject_channel`` as in µV, and much less after ``window_zscore``."""
    from emotionkd.training.baselines import eeg_band_powers
    from emotionkd.training.datasets import generate
    from emotionkd.training.datasets.channels import EEG_28
    from emotionkd.training.datasets.synthetic import SynthConfig

    synth = SynthConfig(trial_s=12.0, eeg_state_noise=0.0)
    generate("deap", tmp_path, subjects=1, trials=16, seed=3, config=synth, workers=1)
    left, right = EEG_28.index("F3"), EEG_28.index("F4")

    def asymmetry_gap(method: str) -> float:
        # the 4 s paper GSR window, so that 12 s trials give 3 windows each
        options = DatasetConfig(PAPER_PREPROCESSING, hop_samples=512, eeg_normalisation=method)
        data = load_dataset("deap", tmp_path, options, workers=1, progress=False)
        assert data.eeg is not None and data.meta["eeg_normalisation"]["method"] == method
        powers = eeg_band_powers(data.eeg, RATE_HZ).reshape(len(data), len(EEG_28), -1)
        alpha_gap = powers[:, right, 1] - powers[:, left, 1]  # log alpha power, right - left
        valence = data.ratings[:, 1]
        return float(alpha_gap[valence > 5].mean() - alpha_gap[valence <= 5].mean())

    raw = asymmetry_gap("none")
    assert raw > 0.3  # the generator's cue: right-minus-left alpha is larger at high valence
    # a per-subject channel scale shifts each channel's log power by a constant: the gap is intact
    assert asymmetry_gap("subject_channel") == pytest.approx(raw, rel=1e-3)
    # per-channel z-scoring leaves only the alpha share of each channel's power (0.2 of 0.7 here)
    assert asymmetry_gap("window_zscore") < 0.5 * raw
