"""Personal calibration: the wearer's resting conductance from a short rest recording.

Preprocessing v2 (``log_baseline``) subtracts a slow causal baseline of ln conductance. Started
cold, that baseline begins at the first sample and needs a few time constants (the contract's
``baseline_tau_s``, 90 s for the bundled model) to settle; seeded with the wearer's resting level (:func:`rest_baseline_us` of 2–5 minutes of rest)
it starts where the wearer's rest is. ``EmotionClassifier(baseline=...)`` and
``emotionkd-sdk stream --baseline rest.csv`` use this.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import numpy.typing as npt

from emotionkd.firmware_bridge.errors import ConfigError, DataError
from emotionkd.sdk.preprocessing import PreprocessingConfig, rest_baseline_us

#: a rest recording larger than this is refused before it is read (memory stays bounded)
MAX_REST_BYTES = 256 * 1024 * 1024


def read_rest_recording(path: str | Path) -> tuple[npt.NDArray[np.float64], float]:
    """(µS samples, rate in Hz) of a rest recording: an ``emotionkd-sdk record`` CSV or an
    Empatica E4 ``EDA.csv`` (line 1 start time, line 2 rate, then µS).

    Raises:
        DataError: missing, too large or not one of the two formats (names the file).
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise DataError(f"{path}: cannot read the rest recording ({exc})", path=str(path)) from exc
    if size > MAX_REST_BYTES:
        raise DataError(f"{path}: {size / 2**20:.0f} MiB is too large for a rest recording (2-5 minutes)",
                        path=str(path))
    with open(path, encoding="utf-8", errors="replace") as f:
        first = f.readline()
    if first.startswith("#"):
        from emotionkd.sdk.recording import read_recording

        recording = read_recording(path)
        return recording.conductance_us, recording.rate_hz
    lines = path.read_text(encoding="utf-8", errors="replace").split()
    try:
        rate_hz = float(lines[1].split(",")[0])
        values = np.array([float(v.split(",")[0]) for v in lines[2:]])
    except (IndexError, ValueError) as exc:
        raise DataError(f"{path}: not a rest recording (an emotionkd-sdk record CSV or an Empatica E4 EDA.csv)",
                        path=str(path)) from exc
    if not (math.isfinite(rate_hz) and 0 < rate_hz <= 10_000) or values.size == 0:
        raise DataError(f"{path}: an E4 EDA.csv needs a rate (Hz) on line 2 and samples after it", path=str(path))
    return values, rate_hz


def resting_conductance_us(baseline: float | str | Path, config: PreprocessingConfig) -> float:
    """The resting conductance (µS) that seeds the causal baseline: ``baseline`` itself when a
    number, else :func:`rest_baseline_us` of the rest recording at that path.

    Raises:
        ConfigError: the preprocessing has no baseline to seed (v1 models), or the number is
            not a positive conductance.
        DataError: the rest recording is unreadable or holds no valid sample.
    """
    if config.normalisation != "log_baseline":
        raise ConfigError(f"this model's preprocessing ({config.normalisation}) has no causal baseline to seed; "
                          "a rest recording helps only models with ekd-gsr v2 (log_baseline)")
    if isinstance(baseline, (int, float)):
        if not (math.isfinite(baseline) and baseline > 0):
            raise ConfigError(f"baseline must be a positive resting conductance in µS, got {baseline!r}")
        return float(baseline)
    samples, rate_hz = read_rest_recording(baseline)
    return rest_baseline_us(samples, rate_hz, "uS", config)


__all__ = ["read_rest_recording", "resting_conductance_us"]
