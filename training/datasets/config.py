"""Options of dataset preparation: windowing, labels and EEG normalisation.

Every option that changes the prepared windows lives in :class:`DatasetConfig`; it is part of
the cache key and recorded in :attr:`WindowedDataset.meta`, so a model always knows how its data
were made.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from emotionkd.firmware_bridge.errors import ConfigError, DataError
from emotionkd.sdk.contract import LABEL_RULE_WORDS
from emotionkd.sdk.preprocessing import DEFAULT_PREPROCESSING, PreprocessingConfig

EEG_NORMALISATIONS: Final = ("window_zscore", "window_common", "subject_channel", "window_center", "none")
EEG_REFERENCES: Final = ("average", "none")
RATING_RANGE: Final = (1.0, 9.0)
#: rate of the teacher's EEG (Hz): DEAP's preprocessed rate, MAHNOB is resampled to it
EEG_RATE_HZ: Final = 128.0


@dataclass(frozen=True)
class DatasetConfig:
    """How recordings become windows and labels.

    Attributes:
        preprocessing: the GSR preprocessing (``ekd-gsr``), the same the device runs; its
            window is the student's context (default v2: 32 s at 16 Hz).
        hop_s: seconds between window starts (4 s: with the 32 s v2 window a 60 s DEAP trial
            gives 8 windows; with the 4 s paper window it is one window, no overlap, 15 per
            trial); None = one window.
        hop_samples: samples between window starts at the model rate; overrides ``hop_s``.
        eeg_window_s: the teacher's EEG window (s), aligned to the END of the GSR window: the
            EEG of the last ``eeg_window_s`` of the student's context.
        eeg_rate_hz: the rate the teacher's EEG is given at (Hz): :data:`EEG_RATE_HZ` (128, as
            recorded) or an integer fraction of it, reached by a zero-phase anti-aliased FIR
            decimation of each whole trial before windowing, so that a longer EEG context fits
            the same number of samples (8 s at 64 Hz = 512 samples, the 4 s at 128 Hz cost).
            Content above 0.4 × this rate is filtered out (64 Hz keeps theta, alpha and beta
            to 25.6 Hz, not gamma).
        label_threshold: rating threshold of the binary labels (1–9 scale).
        label_rule: ``gt`` (rating > threshold → high, the DEAP convention) or ``ge`` (≥).
        eeg_normalisation: teacher-side EEG scaling (never on the device): ``window_zscore``
            (per window and channel: mean 0, std 1; erases power differences between channels,
            e.g. frontal alpha asymmetry), ``window_common`` (per channel mean removed, one
            scale per window for all channels), ``subject_channel`` (per channel mean removed
            per window, divided by that channel's std over all of the subject's windows),
            ``window_center`` (mean removed, µV kept) or ``none`` (µV as recorded).
        eeg_zscore_floor_uv: smallest std divided by (µV), so a flat
            (disconnected) channel is not blown up to unit variance.
        deap_baseline_s: DEAP's pre-trial baseline at the start of each trial, dropped (s).
        mahnob_eeg_band_hz: band-pass applied to MAHNOB-HCI's raw EEG to match DEAP's
            preprocessed data (Hz); None keeps the raw band.
        mahnob_eeg_reference: ``average`` (common average over the 32 EEG channels, like DEAP)
            or ``none``.
        subjects: subject ids to load (None = all found).
    """

    preprocessing: PreprocessingConfig = DEFAULT_PREPROCESSING
    hop_s: float | None = 4.0
    hop_samples: int | None = None
    eeg_window_s: float = 4.0
    eeg_rate_hz: float = EEG_RATE_HZ
    label_threshold: float = 5.0
    label_rule: str = "gt"
    eeg_normalisation: str = "window_zscore"
    eeg_zscore_floor_uv: float = 0.1
    deap_baseline_s: float = 3.0
    mahnob_eeg_band_hz: tuple[float, float] | None = (4.0, 45.0)
    mahnob_eeg_reference: str = "average"
    subjects: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.hop_samples is not None and not (isinstance(self.hop_samples, int) and self.hop_samples >= 1):
            raise ConfigError(f"hop_samples must be a positive integer or None, got {self.hop_samples!r}")
        if self.hop_s is not None and not (math.isfinite(self.hop_s) and self.hop_s * self.preprocessing.rate_hz >= 1):
            raise ConfigError(f"hop_s must be at least one sample at {self.preprocessing.rate_hz:g} Hz, got {self.hop_s!r}")
        if not (math.isfinite(self.eeg_window_s) and 2 <= self.eeg_window_s * EEG_RATE_HZ):
            raise ConfigError(f"eeg_window_s must be a positive number of seconds, got {self.eeg_window_s!r}")
        factor = EEG_RATE_HZ / self.eeg_rate_hz if self.eeg_rate_hz > 0 else math.nan
        if not (math.isfinite(factor) and factor >= 1 and factor == round(factor)):
            raise ConfigError(f"eeg_rate_hz must be {EEG_RATE_HZ:g} Hz divided by a whole number (128, 64, 32, ...), "
                              f"got {self.eeg_rate_hz!r}")
        if self.eeg_window_samples < 2:
            raise ConfigError(f"eeg_window_s {self.eeg_window_s!r} is under 2 samples at eeg_rate_hz {self.eeg_rate_hz:g}")
        if self.label_rule not in LABEL_RULE_WORDS:
            raise ConfigError(f"label_rule must be one of {list(LABEL_RULE_WORDS)} ('gt': rating > threshold), got {self.label_rule!r}")
        if not (math.isfinite(self.label_threshold) and RATING_RANGE[0] <= self.label_threshold <= RATING_RANGE[1]):
            raise ConfigError(f"label_threshold must be within the 1–9 rating scale, got {self.label_threshold!r}")
        if self.eeg_normalisation not in EEG_NORMALISATIONS:
            raise ConfigError(f"eeg_normalisation must be one of {EEG_NORMALISATIONS}, got {self.eeg_normalisation!r}")
        if not self.eeg_zscore_floor_uv > 0:
            raise ConfigError(f"eeg_zscore_floor_uv must be positive, got {self.eeg_zscore_floor_uv!r}")
        if not (0 <= self.deap_baseline_s < 60):
            raise ConfigError(f"deap_baseline_s must be in [0, 60) s, got {self.deap_baseline_s!r}")
        if self.mahnob_eeg_band_hz is not None:
            low, high = self.mahnob_eeg_band_hz
            if not (0 < low < high):
                raise ConfigError(f"mahnob_eeg_band_hz must be (low, high) with 0 < low < high, got {self.mahnob_eeg_band_hz!r}")
        if self.mahnob_eeg_reference not in EEG_REFERENCES:
            raise ConfigError(f"mahnob_eeg_reference must be one of {EEG_REFERENCES}, got {self.mahnob_eeg_reference!r}")

    @property
    def hop(self) -> int:
        """Samples between window starts at the model rate."""
        if self.hop_samples:
            return self.hop_samples
        if self.hop_s is not None:
            return max(1, int(round(self.hop_s * self.preprocessing.rate_hz)))
        return self.preprocessing.window_samples

    @property
    def eeg_decimation(self) -> int:
        """Recorded EEG samples per sample the teacher gets (1 at 128 Hz, 2 at 64 Hz)."""
        return int(round(EEG_RATE_HZ / self.eeg_rate_hz))

    @property
    def eeg_window_samples(self) -> int:
        """Samples of the teacher's EEG window at :attr:`eeg_rate_hz`."""
        return int(round(self.eeg_window_s * self.eeg_rate_hz))

    def to_dict(self) -> dict[str, Any]:
        """Plain types (JSON-ready); inverse of :meth:`from_dict`."""
        out = asdict(self)
        out["preprocessing"] = self.preprocessing.to_params()
        for key in ("mahnob_eeg_band_hz", "subjects"):
            if out[key] is not None:
                out[key] = list(out[key])
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown dataset options {unknown}; known: {sorted(known)}")
        kwargs = dict(data)
        if "preprocessing" in kwargs and isinstance(kwargs["preprocessing"], dict):
            kwargs["preprocessing"] = PreprocessingConfig.from_params(kwargs["preprocessing"])
        for key in ("mahnob_eeg_band_hz", "subjects"):
            if kwargs.get(key) is not None:
                kwargs[key] = tuple(kwargs[key])
        return cls(**kwargs)

    def label_meta(self) -> dict[str, Any]:
        """The label rule as plain types (for ``meta`` and model contracts)."""
        sign = LABEL_RULE_WORDS[self.label_rule]
        return {"threshold": self.label_threshold, "rule": self.label_rule,
                "description": f"rating {sign} {self.label_threshold:g} -> high (1), else low (0)"}


def recorded_eeg_rate_hz(record: Mapping[str, Any]) -> float:
    """The teacher's EEG rate a dataset's ``meta`` (or a run's ``results["data"]``) records;
    :data:`EEG_RATE_HZ` for records made before ``eeg_rate_hz`` existed (always 128 Hz then)."""
    return float(record.get("eeg_rate_hz") or EEG_RATE_HZ)


def ratings_to_labels(ratings: npt.ArrayLike, config: DatasetConfig, *, source: str = "") -> npt.NDArray[np.int64]:
    """Binary labels (1 = high) from 1–9 ratings of any shape.

    Raises:
        DataError: a rating is not finite or lies outside 1–9 (names ``source``).
    """
    r = np.asarray(ratings, dtype=np.float64)
    where = f"{source}: " if source else ""
    if not np.isfinite(r).all():
        bad = np.argwhere(~np.isfinite(r))[0].tolist()
        raise DataError(f"{where}non-finite rating at index {bad}; every trial needs a rating", path=source or None)
    if r.size and (r.min() < RATING_RANGE[0] or r.max() > RATING_RANGE[1]):
        raise DataError(f"{where}ratings must lie in 1–9, found {r.min():g}..{r.max():g}", path=source or None)
    high = r > config.label_threshold if config.label_rule == "gt" else r >= config.label_threshold
    return high.astype(np.int64)


__all__ = [
    "EEG_NORMALISATIONS",
    "EEG_RATE_HZ",
    "EEG_REFERENCES",
    "DatasetConfig",
    "ratings_to_labels",
    "recorded_eeg_rate_hz",
]
