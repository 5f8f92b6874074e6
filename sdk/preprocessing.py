"""The one GSR preprocessing implementation, shared by training and the device.

Pipeline (``ekd-gsr`` version 1), stateful and causal, identical offline and streaming:

1. **Unit conversion** to skin conductance in µS (resistance inverted; invalid → NaN).
2. **Short-gap hold**: the first ``hold_max_s`` of a run of missing samples repeat the last
   valid value (a lost BLE packet must not void a 4 s window); those samples stay *flagged* and
   are counted as missing. Longer gaps stay NaN.
3. **Resampling + smoothing** to ``rate_hz`` with one linear-phase FIR (see
   :mod:`emotionkd.sdk.resampling`): anti-aliasing, image rejection and a ``lowpass_hz``
   smoothing low-pass; delay compensated, so samples keep their true time.
4. **Windowing**: ``window_samples`` every ``hop_samples`` on the true time axis. A window is
   *usable* when it holds no NaN and at most ``max_missing_fraction`` flagged samples.
5. **Normalisation** (``window_zscore``): ``(x − mean(x)) / max(std(x), zscore_floor_us)`` per
   window. Chosen because it needs nothing but the window itself: a device computes it from the
   stream alone, it removes the between-person differences in tonic level and electrode gain
   that a model meeting new users cannot know, and the floor keeps sensor noise in a flat window
   from being blown up to unit variance. ``none`` passes µS through (for models that learn
   their own scaling).

:meth:`GsrPreprocessor.apply` (what training calls) is literally the streaming path fed in one
chunk and flushed, so there is no train/serve skew by construction.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from emotionkd.firmware_bridge.errors import ConfigError, ContractError
from emotionkd.firmware_bridge.units import normalise_unit, to_conductance_us
from emotionkd.sdk.resampling import StreamingResampler
from emotionkd.sdk.windowing import Windower

PREPROCESSING_NAME: Final = "ekd-gsr"
PREPROCESSING_VERSION: Final = 1
NORMALISATIONS: Final = ("window_zscore", "none")


@dataclass(frozen=True)
class PreprocessingConfig:
    """Parameters of the ``ekd-gsr`` preprocessing (recorded in every model contract).

    Attributes:
        rate_hz: model sampling rate (Hz).
        window_samples: samples per model window (512 = 4 s at 128 Hz).
        lowpass_hz: smoothing low-pass cutoff, -6 dB (Hz); None for anti-aliasing only.
        attenuation_db: stopband attenuation of the resampling filter (dB).
        hold_max_s: longest run of missing samples bridged by holding the last value (s).
        max_missing_fraction: most flagged samples a usable window may hold (0–1).
        normalisation: ``window_zscore`` or ``none``.
        zscore_floor_us: smallest standard deviation divided by (µS).
    """

    rate_hz: float = 128.0
    window_samples: int = 512
    lowpass_hz: float | None = 5.0
    attenuation_db: float = 60.0
    hold_max_s: float = 0.25
    max_missing_fraction: float = 0.05
    normalisation: str = "window_zscore"
    zscore_floor_us: float = 0.05

    def __post_init__(self) -> None:
        def positive(name: str, value: float) -> None:
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ConfigError(f"preprocessing {name} must be a positive number, got {value!r}")

        positive("rate_hz", self.rate_hz)
        positive("attenuation_db", self.attenuation_db)
        positive("zscore_floor_us", self.zscore_floor_us)
        if self.lowpass_hz is not None:
            positive("lowpass_hz", self.lowpass_hz)
        if not (isinstance(self.window_samples, int) and self.window_samples >= 2):
            raise ConfigError(f"window_samples must be an integer >= 2, got {self.window_samples!r}")
        if not (0.0 <= self.hold_max_s < math.inf):
            raise ConfigError(f"hold_max_s must be >= 0 seconds, got {self.hold_max_s!r}")
        if not (0.0 <= self.max_missing_fraction <= 1.0):
            raise ConfigError(f"max_missing_fraction must be in [0, 1], got {self.max_missing_fraction!r}")
        if self.normalisation not in NORMALISATIONS:
            raise ConfigError(
                f"unknown normalisation {self.normalisation!r}; use one of {', '.join(NORMALISATIONS)}"
            )

    @property
    def window_s(self) -> float:
        """Window length in seconds."""
        return self.window_samples / self.rate_hz

    def to_params(self) -> dict[str, Any]:
        """Plain-type parameters for a model contract."""
        return asdict(self)

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> PreprocessingConfig:
        """Inverse of :meth:`to_params`; unknown parameters are refused (a newer preprocessing)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ContractError(
                f"preprocessing parameters {unknown} are unknown to this emotionkd; upgrade emotionkd",
                field="preprocessing.params",
            )
        return cls(**params)


@dataclass(frozen=True)
class Windows:
    """Preprocessed windows, a batch of ``N`` windows of ``W`` samples at the model rate.

    Attributes:
        start_index: (N,) int64, first sample of each window at the model rate (0 = the
            stream's first sample).
        start_s, end_s: (N,) float64, window span in seconds on the stream's time axis.
        conductance_us: (N, W) float64, smoothed conductance (NaN where missing).
        features: (N, W) float32, normalised model input (NaN rows where not usable).
        samples_missing: (N,) int64, samples missing at the source or lost to a gap.
        usable: (N,) bool, the window may be given to the model.
    """

    start_index: npt.NDArray[np.int64]
    start_s: npt.NDArray[np.float64]
    end_s: npt.NDArray[np.float64]
    conductance_us: npt.NDArray[np.float64]
    features: npt.NDArray[np.float32]
    samples_missing: npt.NDArray[np.int64]
    usable: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return int(self.start_index.size)

    @staticmethod
    def concatenate(parts: list[Windows], window_samples: int) -> Windows:
        """Join batches in order (an empty list gives an empty batch of width W)."""
        if not parts:
            return _empty_windows(window_samples)
        return Windows(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Windows)))


def _empty_windows(window_samples: int) -> Windows:
    return Windows(
        np.zeros(0, np.int64),
        np.zeros(0),
        np.zeros(0),
        np.zeros((0, window_samples)),
        np.zeros((0, window_samples), np.float32),
        np.zeros(0, np.int64),
        np.zeros(0, bool),
    )


def normalise_windows(conductance_us: npt.NDArray[np.float64], config: PreprocessingConfig) -> npt.NDArray[np.float32]:
    """Apply the configured per-window normalisation to ``(N, W)`` µS; returns float32 ``(N, W)``."""
    x = np.asarray(conductance_us, dtype=np.float64)
    if config.normalisation == "none":
        return x.astype(np.float32)
    mean = x.mean(axis=-1, keepdims=True)
    std = x.std(axis=-1, keepdims=True)
    return ((x - mean) / np.maximum(std, config.zscore_floor_us)).astype(np.float32)


class GsrPreprocessor:
    """Streaming GSR preprocessing for one source: samples in, model-ready windows out.

    Args:
        sample_rate_hz: the source rate (any rate; resampled to ``config.rate_hz``).
        unit: unit of the samples pushed (``uS``, ``nS``, ``Ohm``, ``kOhm``, ``MOhm`` …).
        config: the preprocessing parameters (from the model contract).
        hop_samples: samples between window starts at the model rate (default: one window,
            i.e. no overlap, as in training; the SDK streams with a 1 s hop).

    Feed :meth:`push` chunks of any size (missing samples as NaN in place) and call
    :meth:`flush` at the end of a recording; the windows are the same for every chunking.
    """

    def __init__(
        self,
        sample_rate_hz: float,
        unit: str = "uS",
        config: PreprocessingConfig | None = None,
        hop_samples: int | None = None,
    ) -> None:
        self.config = config or PreprocessingConfig()
        self.unit = normalise_unit(unit)
        self.sample_rate_hz = float(sample_rate_hz)
        self.hop_samples = int(hop_samples or self.config.window_samples)
        self._resampler = StreamingResampler(
            self.sample_rate_hz, self.config.rate_hz, self.config.lowpass_hz, self.config.attenuation_db
        )
        self._windower = Windower(self.config.window_samples, self.hop_samples)
        self._hold_max = int(round(self.config.hold_max_s * self.sample_rate_hz))
        self._last_valid = math.nan
        self._run = 0  # length of the current run of missing samples
        self._flags_in = np.zeros(0, dtype=bool)  # source flags not yet mapped to outputs
        self._flags_start = 0  # input index of _flags_in[0]

    @property
    def latency_s(self) -> float:
        """Delay between a sample's arrival and the earliest window that can contain it (s)."""
        return self._resampler.latency_s

    def _hold(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        missing = np.isnan(x)
        if not missing.any():
            self._last_valid, self._run = float(x[-1]), 0
            return x
        position = np.arange(x.size)
        last_valid_index = np.maximum.accumulate(np.where(missing, -1, position))
        seen = last_valid_index >= 0  # a valid sample occurred earlier in this chunk
        fill = np.where(seen, x[np.maximum(last_valid_index, 0)], self._last_valid)
        # Length of the missing run each sample is in (runs may continue from the last chunk).
        run = np.where(seen, position - last_valid_index, self._run + position + 1)
        out = np.where(missing & (run <= self._hold_max), fill, x)
        if seen[-1]:
            self._last_valid = float(x[last_valid_index[-1]])
        self._run = int(run[-1]) if missing[-1] else 0
        return out

    def push(self, samples: npt.ArrayLike) -> Windows:
        """Feed samples (shape ``(n,)``, in ``unit``; NaN = missing); return completed windows."""
        conductance = to_conductance_us(np.asarray(samples, dtype=np.float64).reshape(-1), self.unit)
        if conductance.size == 0:
            return _empty_windows(self.config.window_samples)
        self._flags_in = np.concatenate([self._flags_in, np.isnan(conductance)])
        held = self._hold(conductance)
        return self._emit(self._resampler.push(held))

    def flush(self) -> Windows:
        """End of the recording: emit the windows that the last samples complete."""
        return self._emit(self._resampler.flush())

    def apply(self, samples: npt.ArrayLike) -> Windows:
        """Preprocess a whole recording: exactly :meth:`push` of everything, then :meth:`flush`."""
        return Windows.concatenate([self.push(samples), self.flush()], self.config.window_samples)

    def _emit(self, resampled: npt.NDArray[np.float64]) -> Windows:
        if resampled.size == 0:
            return _empty_windows(self.config.window_samples)
        k = np.arange(self._resampler.samples_out - resampled.size, self._resampler.samples_out)
        source = self._resampler.output_to_input_index(k) - self._flags_start
        source = np.clip(source, 0, max(self._flags_in.size - 1, 0))
        flagged = self._flags_in[source] if self._flags_in.size else np.zeros(k.size, bool)
        # Source flags older than the next output's source sample are no longer needed.
        keep_from = int(source[-1])
        self._flags_in = self._flags_in[keep_from:]
        self._flags_start += keep_from
        raw = self._windower.push(resampled, flagged)
        if len(raw) == 0:
            return _empty_windows(self.config.window_samples)
        cfg = self.config
        nan = np.isnan(raw.values)
        missing = (nan | raw.flagged).sum(axis=1).astype(np.int64)
        usable = ~nan.any(axis=1) & (raw.flagged.sum(axis=1) <= cfg.max_missing_fraction * cfg.window_samples)
        features = normalise_windows(raw.values, cfg)
        features[~usable] = np.nan
        start_s = raw.start_index / cfg.rate_hz
        return Windows(
            start_index=raw.start_index,
            start_s=start_s,
            end_s=start_s + cfg.window_s,
            conductance_us=raw.values,
            features=features,
            samples_missing=missing,
            usable=usable,
        )


def preprocess_recording(
    samples: npt.ArrayLike,
    sample_rate_hz: float,
    unit: str = "uS",
    config: PreprocessingConfig | None = None,
    hop_samples: int | None = None,
) -> Windows:
    """Preprocess one whole recording (shape ``(n,)``) into windows; see :class:`GsrPreprocessor`."""
    return GsrPreprocessor(sample_rate_hz, unit, config, hop_samples).apply(samples)


__all__ = [
    "NORMALISATIONS",
    "PREPROCESSING_NAME",
    "PREPROCESSING_VERSION",
    "GsrPreprocessor",
    "PreprocessingConfig",
    "Windows",
    "normalise_windows",
    "preprocess_recording",
]
