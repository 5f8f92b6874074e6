"""Hand-made-feature baselines: logistic regression on EEG band powers and on GSR features.

They sit in the results table beside the networks so that a network is judged against what a
linear model gets from the same windows (issue [model]).

* EEG: per channel, the log mean power (Welch periodogram, 1 s Hann segments) in theta
  (4–8 Hz), alpha (8–13 Hz), beta (13–30 Hz) and gamma (30–45 Hz) → (N, 4·C); bands above the
  Nyquist frequency of the teacher's EEG rate are left out (gamma at 64 Hz: (N, 3·C)).
* GSR, computed from exactly the window the student sees (``WindowedDataset.gsr``, at the
  model rate), so the baseline and the network get the same information:
  level (mean), slope (least-squares, units per second), SCR count and SCR amplitude (peaks
  of the smoothed first difference, :func:`gsr_features`). Hand-written, no neurokit2: four
  numbers per window do not justify a dependency.

  - v2 (``log_baseline``, the default): the window is ``log_scale · (ln G − b)``, 32 s at
    16 Hz, with ``b`` the wearer's causal 90 s baseline. Level is the tonic conductance
    relative to that baseline (0.1 unit = 1 % at ``log_scale`` 10), slope its drift, and
    SCRs are relative rises; the onset criterion is a rise of 1 %/s (≈ 0.05 µS/s at 5 µS,
    the usual absolute criterion), i.e. ``log_scale · 0.01`` units/s
    (:func:`scr_rise_threshold_per_s`).
  - v1 (``window_zscore``): each 4 s window is z-scored, so its level is 0 by construction and
    amplitudes are in window standard deviations: the features describe shape only; the
    criterion is 0.05 standard deviations per second.

  The EEG band powers use the teacher's EEG rate (128 Hz, or its decimated rate), never the GSR
  model rate.

* EEG + GSR (``logreg-eeg+gsr``): both feature sets side by side, (N, B·C + 4): what a linear
  read-out of the teacher's two inputs reaches, i.e. a reference for the fused teacher.

All use scikit-learn: ``StandardScaler`` + ``LogisticRegression`` (class-balanced, L2,
C = 1), fitted on the training split only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from emotionkd.firmware_bridge.errors import DataError

BANDS_HZ: Final = {"theta": (4.0, 8.0), "alpha": (8.0, 13.0), "beta": (13.0, 30.0), "gamma": (30.0, 45.0)}
BAND_SYMBOLS: Final = {"theta": "θ", "alpha": "α", "beta": "β", "gamma": "γ"}
GSR_FEATURES: Final = ("level", "slope_per_s", "scr_count", "scr_amplitude")
BASELINES: Final = ("logreg-eeg-bands", "logreg-gsr", "logreg-eeg+gsr")


def eeg_bands_below(rate_hz: float) -> dict[str, tuple[float, float]]:
    """The :data:`BANDS_HZ` that lie wholly under the Nyquist frequency of ``rate_hz`` (all four
    at 128 Hz; theta, alpha and beta at 64 Hz, whose data keep nothing of 30–45 Hz)."""
    return {name: band for name, band in BANDS_HZ.items() if band[1] <= rate_hz / 2}


def eeg_band_powers(eeg: npt.NDArray[np.floating], rate_hz: float) -> npt.NDArray[np.float64]:
    """(N, C, W) EEG windows at ``rate_hz`` → (N, B·C) log band powers, channel-major (theta,
    alpha, beta, gamma of channel 0, then channel 1, ...), B the bands under the Nyquist
    frequency (:func:`eeg_bands_below`: 4 at 128 Hz, 3 at 64 Hz)."""
    from scipy.signal import welch

    if eeg.ndim != 3:
        raise DataError(f"EEG windows must be (N, C, W), got shape {eeg.shape}")
    bands_hz = eeg_bands_below(rate_hz)
    if not bands_hz:
        raise DataError(f"no EEG band lies under the Nyquist frequency of {rate_hz:g} Hz")
    segment = int(min(eeg.shape[2], round(rate_hz)))
    freqs, power = welch(eeg.astype(np.float64), fs=rate_hz, nperseg=segment, axis=-1)
    bands = []
    for low, high in bands_hz.values():
        mask = (freqs >= low) & (freqs < high)
        if not mask.any():
            raise DataError(f"no frequency bin in {low}-{high} Hz at {rate_hz} Hz and {eeg.shape[2]} samples")
        bands.append(np.log(power[..., mask].mean(-1) + 1e-12))
    return np.stack(bands, axis=-1).reshape(eeg.shape[0], -1)


def gsr_features(gsr: npt.NDArray[np.floating], rate_hz: float,
                 min_rise_per_s: float = 0.05) -> npt.NDArray[np.float64]:
    """(N, W) GSR windows → (N, 4): level, slope (units/s), SCR count, SCR amplitude (units).

    SCRs: the first difference, in units per second and smoothed with a 0.25 s moving average,
    marks an onset where it crosses upwards ``min_rise_per_s`` (0.05 µS/s is a common skin-
    conductance-response criterion; for z-scored v1 windows the unit is one window standard
    deviation); the amplitude is the mean rise from each onset to the next sample where the
    smoothed difference turns negative (0 when there is no SCR).
    """
    if gsr.ndim != 2:
        raise DataError(f"GSR windows must be (N, W), got shape {gsr.shape}")
    x = gsr.astype(np.float64)
    n, width = x.shape
    t_s = np.arange(width) / rate_hz
    centred = t_s - t_s.mean()
    slope = (x - x.mean(1, keepdims=True)) @ centred / float(centred @ centred)
    taps = max(1, int(round(0.25 * rate_hz)))
    kernel = np.ones(taps) / taps
    out = np.zeros((n, len(GSR_FEATURES)))
    out[:, 0], out[:, 1] = x.mean(1), slope
    for i in range(n):
        d = np.convolve(np.diff(x[i]) * rate_hz, kernel, mode="same")
        above = d > min_rise_per_s
        onsets = np.flatnonzero(above[1:] & ~above[:-1]) + 1
        rises = []
        for onset in onsets:
            falling = np.flatnonzero(d[onset:] < 0)
            peak = onset + (int(falling[0]) if falling.size else width - 1 - onset)
            rises.append(x[i, min(peak, width - 1)] - x[i, onset])
        out[i, 2] = len(onsets)
        out[i, 3] = float(np.mean(rises)) if rises else 0.0
    return out


def scr_rise_threshold_per_s(preprocessing_params: Mapping[str, Any]) -> float:
    """The SCR onset criterion (units of the student's input per second) for a preprocessing
    (the ``params`` of a model contract / ``WindowedDataset.meta["preprocessing"]``): a 1 %/s
    relative rise under ``log_baseline`` (``log_scale · 0.01``), else 0.05 units/s."""
    if preprocessing_params.get("normalisation") == "log_baseline":
        return float(preprocessing_params.get("log_scale", 10.0)) * 0.01
    return 0.05


def logistic_baseline(train_x: npt.NDArray[np.floating], train_y: npt.NDArray[np.integer],
                      test_x: npt.NDArray[np.floating], seed: int = 0) -> npt.NDArray[np.int64]:
    """Fit standardise + class-balanced logistic regression on the training features and
    predict the test windows' labels (N_test,)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if len(np.unique(train_y)) < 2:
        # one class in training: the only sensible answer is that class
        return np.full(len(test_x), int(train_y[0]), dtype=np.int64)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, class_weight="balanced",
                                                               random_state=seed))
    model.fit(train_x, train_y)
    return model.predict(test_x).astype(np.int64)


__all__ = ["BANDS_HZ", "BAND_SYMBOLS", "BASELINES", "GSR_FEATURES", "eeg_band_powers", "eeg_bands_below", "gsr_features", "logistic_baseline",
           "scr_rise_threshold_per_s"]
