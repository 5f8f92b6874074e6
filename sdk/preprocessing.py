"""The one GSR preprocessing implementation, shared by training and the device.

Pipeline (``ekd-gsr`` version 2), stateful and causal, identical offline and streaming:

1. **Unit conversion** to skin conductance in µS (resistance inverted; invalid → NaN).
2. **Short-gap hold**: the first ``hold_max_s`` of a run of missing samples repeat the last
   valid value (a lost BLE packet must not void a 4 s window); those samples stay *flagged* and
   are counted as missing. Longer gaps stay NaN.
3. **Resampling + smoothing** to ``rate_hz`` with one linear-phase FIR (see
   :mod:`emotionkd.sdk.resampling`): anti-aliasing, image rejection and a ``lowpass_hz``
   smoothing low-pass; delay compensated, so samples keep their true time.
4. **Windowing**: ``window_samples`` every ``hop_samples`` on the true time axis. A window is
   *usable* when it holds no NaN and at most ``max_missing_fraction`` flagged samples.
5. **Normalisation**, one of

   ``log_baseline`` (version 2, the default for new models, :data:`DEFAULT_PREPROCESSING`):
   ``feature = log_scale * (ln(conductance_us) - b)`` where ``b`` is a causal exponential moving
   average of ln conductance at the model rate with time constant ``baseline_tau_s`` (90 s),
   initialised from the first valid sample (or from a rest recording, see
   :func:`rest_baseline_us`); NaN samples do not update it. It keeps what carries arousal in
   EDA -- the tonic level and the skin-conductance-response amplitudes -- relative to the
   wearer's own baseline, so it is free of electrode gain (a gain multiplies conductance, i.e.
   adds to ln conductance, and the baseline subtracts it) yet not of the response size. The
   state is one number, so a device computes it from the stream alone.

   ``window_zscore`` (version 1, :data:`PAPER_PREPROCESSING`): ``(x − mean(x)) / max(std(x), zscore_floor_us)`` per
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

from emotionkd.firmware_bridge.errors import ConfigError, ContractError, DataError
from emotionkd.firmware_bridge.units import normalise_unit, to_conductance_us
from emotionkd.sdk.resampling import StreamingResampler
from emotionkd.sdk.windowing import Windower

PREPROCESSING_NAME: Final = "ekd-gsr"
PREPROCESSING_VERSION: Final = 2
SUPPORTED_VERSIONS: Final = (1, 2)
NORMALISATIONS: Final = ("window_zscore", "none", "log_baseline")
#: normalisations that version 1 of ``ekd-gsr`` knows; a config using only these is written as v1
V1_NORMALISATIONS: Final = ("window_zscore", "none")
#: parameters added in version 2 (absent from v1 contracts; their values do not matter in v1)
V2_FIELDS: Final = ("baseline_tau_s", "log_scale")
#: ln conductance range the EMA's closed form may span inside one block (exp(25) ~ 7e10)
_EMA_LOG_RANGE = 25.0


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
        normalisation: ``window_zscore`` (v1), ``none`` (v1) or ``log_baseline`` (v2).
        zscore_floor_us: smallest standard deviation divided by (µS), ``window_zscore`` only.
        baseline_tau_s: time constant of the causal ln-conductance baseline (s),
            ``log_baseline`` only. 90 s: long against one skin-conductance response (~10 s), so
            a response stands out from it, short against a session, so slow drift is followed.
        log_scale: factor on ``ln(conductance / baseline)`` (dimensionless), ``log_baseline``
            only; 10 maps a 10 % rise (a large response) to about 1.

    The bare defaults are the version-1 values (so a v1 parameter dict means what it always
    meant); new models use :data:`DEFAULT_PREPROCESSING`.
    """

    rate_hz: float = 128.0
    window_samples: int = 512
    lowpass_hz: float | None = 5.0
    attenuation_db: float = 60.0
    hold_max_s: float = 0.25
    max_missing_fraction: float = 0.05
    normalisation: str = "window_zscore"
    zscore_floor_us: float = 0.05
    baseline_tau_s: float = 90.0
    log_scale: float = 10.0

    def __post_init__(self) -> None:
        def positive(name: str, value: float) -> None:
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ConfigError(f"preprocessing {name} must be a positive number, got {value!r}")

        positive("rate_hz", self.rate_hz)
        positive("attenuation_db", self.attenuation_db)
        positive("zscore_floor_us", self.zscore_floor_us)
        positive("baseline_tau_s", self.baseline_tau_s)
        positive("log_scale", self.log_scale)
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

    @property
    def version(self) -> int:
        """The oldest ``ekd-gsr`` version that runs this configuration (1 unless ``log_baseline``)."""
        return 1 if self.normalisation in V1_NORMALISATIONS else 2

    def to_params(self) -> dict[str, Any]:
        """Plain-type parameters for a model contract (a v1 configuration omits the v2 fields,
        so an emotionkd that only knows version 1 still runs it)."""
        params = asdict(self)
        if self.version == 1:
            for name in V2_FIELDS:
                params.pop(name)
        return params

    @classmethod
    def from_params(cls, params: dict[str, Any], version: int = PREPROCESSING_VERSION) -> PreprocessingConfig:
        """Inverse of :meth:`to_params`; unknown parameters are refused (a newer preprocessing).

        ``version`` is the contract's preprocessing version: a v1 dict may not use v2 fields or
        normalisations; missing parameters take the bare (v1) defaults, so a v1 dict behaves
        exactly as it did under version 1.
        """
        if version not in SUPPORTED_VERSIONS:
            raise ContractError(
                f"{PREPROCESSING_NAME} version {version} is not implemented here (known: "
                f"{', '.join(map(str, SUPPORTED_VERSIONS))}); upgrade emotionkd", field="preprocessing.version")
        known = {f.name for f in fields(cls)} - (set(V2_FIELDS) if version == 1 else set())
        unknown = sorted(set(params) - known)
        if unknown:
            raise ContractError(
                f"preprocessing parameters {unknown} are unknown to {PREPROCESSING_NAME} version {version}; "
                "upgrade emotionkd",
                field="preprocessing.params",
            )
        config = cls(**params)
        if config.version > version:
            raise ContractError(
                f"normalisation {config.normalisation!r} needs {PREPROCESSING_NAME} version {config.version}, "
                f"the contract says version {version}", field="preprocessing.params")
        return config


#: The faithful EmotionKD configuration (``ekd-gsr`` v1): 4 s at 128 Hz, per-window z-score.
PAPER_PREPROCESSING: Final = PreprocessingConfig()
#: The default for new models (``ekd-gsr`` v2): 32 s at 16 Hz (512 samples, so the models'
#: shapes are unchanged: a 32-sample kernel is 2 s), a 2 Hz low-pass (EDA has no content above
#: ~1 Hz) and the causal log-baseline normalisation.
DEFAULT_PREPROCESSING: Final = PreprocessingConfig(
    rate_hz=16.0, window_samples=512, lowpass_hz=2.0, normalisation="log_baseline")


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

    # Streams in lockstep (``GsrPreprocessor(streams=S)``): the per-window fields get a leading
    # stream axis, ``(S, N, W)`` and ``(S, N)``; the time fields stay ``(N,)`` (shared).

    def __len__(self) -> int:
        return int(self.start_index.size)

    @staticmethod
    def concatenate(parts: list[Windows], window_samples: int) -> Windows:
        """Join batches in order (an empty list gives an empty batch of width W)."""
        if not parts:
            return _empty_windows(window_samples)
        return Windows(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Windows)))


def _empty_windows(window_samples: int, streams: tuple[int, ...] = ()) -> Windows:
    return Windows(
        np.zeros(0, np.int64),
        np.zeros(0),
        np.zeros(0),
        np.zeros(streams + (0, window_samples)),
        np.zeros(streams + (0, window_samples), np.float32),
        np.zeros(streams + (0,), np.int64),
        np.zeros(streams + (0,), bool),
    )


def normalise_windows(conductance_us: npt.NDArray[np.float64], config: PreprocessingConfig) -> npt.NDArray[np.float32]:
    """Apply the configured per-window normalisation to ``(N, W)`` (or ``(S, N, W)``) µS; returns float32 of that shape."""
    x = np.asarray(conductance_us, dtype=np.float64)
    if config.normalisation == "none":
        return x.astype(np.float32)
    shape = x.shape
    x = x.reshape(-1, shape[-1])  # (S, N, W) in lockstep: reduced row by row exactly as (N, W)
    mean = x.mean(axis=-1, keepdims=True)
    std = x.std(axis=-1, keepdims=True)
    return ((x - mean) / np.maximum(std, config.zscore_floor_us)).astype(np.float32).reshape(shape)


class LogBaseline:
    """Causal ``log_baseline`` normalisation of a stream at the model rate (state: one number).

    ``b[k] = a * b[k-1] + (1 - a) * ln(y[k])`` with ``a = exp(-1 / (baseline_tau_s * rate_hz))``
    for valid ``y[k] > 0``; invalid samples (NaN, non-positive) leave ``b`` unchanged and give NaN
    features. ``b`` starts at ``ln(initial_baseline_us)`` or, without one, at the first valid
    sample. Output ``log_scale * (ln y[k] - b[k])``. Vectorised in closed form block by block
    (any chunking gives the same values to rounding). With ``streams=S`` it runs S streams in
    lockstep: push ``(S, n)``, the state is ``(S,)``, each row as its own baseline would be.
    """

    def __init__(self, config: PreprocessingConfig, initial_baseline_us: float | None = None,
                 streams: int | None = None) -> None:
        self.decay = math.exp(-1.0 / (config.baseline_tau_s * config.rate_hz))
        self.scale = float(config.log_scale)
        # Blocks short enough that decay**-count stays far from overflow.
        self._block = max(1, int(_EMA_LOG_RANGE / -math.log(self.decay)))
        start = math.nan
        if initial_baseline_us is not None:
            if not (math.isfinite(initial_baseline_us) and initial_baseline_us > 0):
                raise ConfigError(
                    f"initial_baseline_us must be a positive conductance in µS, got {initial_baseline_us!r}")
            start = math.log(initial_baseline_us)
        #: ln-conductance baseline now, () or (S,) (NaN before the first valid sample)
        self.states: npt.NDArray[np.float64] = np.full(() if streams is None else (streams,), start)

    @property
    def state(self) -> float:
        """The baseline (ln µS) of a single stream (NaN before its first valid sample)."""
        return float(self.states)

    def push(self, conductance_us: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Features (same shape: ``(n,)``, or ``(S, n)`` in lockstep) for the next samples (µS, NaN = missing)."""
        y = np.asarray(conductance_us, dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            x = np.where(y > 0, np.log(np.where(y > 0, y, 1.0)), np.nan)
        out = np.full(x.shape, np.nan)
        state = self.states
        for start in range(0, x.shape[-1], self._block):
            seg = x[..., start : start + self._block]
            valid = np.isfinite(seg)
            if not valid.any():
                continue
            # A stream's baseline starts at its first valid sample.
            first = np.take_along_axis(seg, np.argmax(valid, axis=-1)[..., None], axis=-1)[..., 0]
            state = np.where(np.isnan(state) & valid.any(axis=-1), first, state)
            # b[k] = a^m[k] * (b0 + (1-a) * sum_{j<=k valid} a^-m[j] x[j]), m = valid count so far.
            count = np.cumsum(valid, axis=-1)
            offset = state[..., None]
            weighted = np.where(valid, (seg - offset) * self.decay ** -count.astype(np.float64), 0.0)
            base = offset + self.decay ** count * (1.0 - self.decay) * np.cumsum(weighted, axis=-1)
            out[..., start : start + seg.shape[-1]] = np.where(valid, self.scale * (seg - base), np.nan)
            state = base[..., -1]  # a stream without a valid sample here keeps its state exactly
        self.states = np.asarray(state, dtype=np.float64)
        return out


class GsrPreprocessor:
    """Streaming GSR preprocessing for one source: samples in, model-ready windows out.

    Args:
        sample_rate_hz: the source rate (any rate; resampled to ``config.rate_hz``).
        unit: unit of the samples pushed (``uS``, ``nS``, ``Ohm``, ``kOhm``, ``MOhm`` …).
        config: the preprocessing parameters (from the model contract).
        hop_samples: samples between window starts at the model rate (default: one window,
            i.e. no overlap, as in training; the SDK streams with a 1 s hop).
        initial_baseline_us: ``log_baseline`` only: start the causal baseline at this
            conductance (µS), e.g. :func:`rest_baseline_us` of a rest recording, instead of at
            the first valid sample.
        streams: run this many streams in lockstep (same rate, unit and chunk sizes): every
            push is ``(S, n)`` and the windows carry a leading stream axis (see
            :class:`Windows`); each row is exactly what a preprocessor of its own would give.
            None (default): one stream, pushes of shape ``(n,)``.

    Feed :meth:`push` chunks of any size (missing samples as NaN in place) and call
    :meth:`flush` at the end of a recording; the windows are the same for every chunking.
    """

    def __init__(
        self,
        sample_rate_hz: float,
        unit: str = "uS",
        config: PreprocessingConfig | None = None,
        hop_samples: int | None = None,
        initial_baseline_us: float | None = None,
        streams: int | None = None,
    ) -> None:
        if streams is not None and not (isinstance(streams, int) and streams >= 1):
            raise ConfigError(f"streams must be a positive integer or None, got {streams!r}")
        self.config = config or PreprocessingConfig()
        self._streams: tuple[int, ...] = () if streams is None else (streams,)
        self.unit = normalise_unit(unit)
        self.sample_rate_hz = float(sample_rate_hz)
        self.hop_samples = int(hop_samples or self.config.window_samples)
        self._resampler = StreamingResampler(
            self.sample_rate_hz, self.config.rate_hz, self.config.lowpass_hz, self.config.attenuation_db
        )
        self._windower = Windower(self.config.window_samples, self.hop_samples)
        self._baseline: LogBaseline | None = None
        if self.config.normalisation == "log_baseline":
            self._baseline = LogBaseline(self.config, initial_baseline_us, streams)
            self._feature_windower = Windower(self.config.window_samples, self.hop_samples)
        self._hold_max = int(round(self.config.hold_max_s * self.sample_rate_hz))
        # per stream, () or (S,): the last valid sample and the length of the current missing run
        self._last_valid = np.full(self._streams, np.nan)
        self._run = np.zeros(self._streams, dtype=np.int64)
        self._flags_in = np.zeros(self._streams + (0,), dtype=bool)  # source flags not yet mapped to outputs
        self._flags_start = 0  # input index of _flags_in[0]

    @property
    def baseline_us(self) -> float | None:
        """The causal baseline now (µS); None before the first valid sample or without ``log_baseline``."""
        if self._baseline is None or self._streams or math.isnan(self._baseline.state):
            return None
        return math.exp(self._baseline.state)

    @property
    def latency_s(self) -> float:
        """Delay between a sample's arrival and the earliest window that can contain it (s)."""
        return self._resampler.latency_s

    def _hold(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        missing = np.isnan(x)
        if not missing.any():
            self._last_valid, self._run = x[..., -1].copy(), np.zeros(self._streams, dtype=np.int64)
            return x
        position = np.arange(x.shape[-1])
        last_valid_index = np.maximum.accumulate(np.where(missing, -1, position), axis=-1)
        seen = last_valid_index >= 0  # a valid sample occurred earlier in this chunk
        held = np.take_along_axis(x, np.maximum(last_valid_index, 0), axis=-1)
        fill = np.where(seen, held, self._last_valid[..., None])
        # Length of the missing run each sample is in (runs may continue from the last chunk).
        run = np.where(seen, position - last_valid_index, self._run[..., None] + position + 1)
        out = np.where(missing & (run <= self._hold_max), fill, x)
        self._last_valid = np.where(seen[..., -1], held[..., -1], self._last_valid)
        self._run = np.where(missing[..., -1], run[..., -1], 0)
        return out

    def push(self, samples: npt.ArrayLike) -> Windows:
        """Feed samples (shape ``(n,)``, or ``(S, n)`` in lockstep; in ``unit``; NaN = missing);
        return completed windows."""
        conductance = to_conductance_us(np.asarray(samples, dtype=np.float64).reshape(self._streams + (-1,)), self.unit)
        if conductance.shape[-1] == 0:
            return _empty_windows(self.config.window_samples, self._streams)
        self._flags_in = np.concatenate([self._flags_in, np.isnan(conductance)], axis=-1)
        held = self._hold(conductance)
        return self._emit(self._resampler.push(held))

    def flush(self) -> Windows:
        """End of the recording: emit the windows that the last samples complete."""
        return self._emit(self._resampler.flush())

    def apply(self, samples: npt.ArrayLike) -> Windows:
        """Preprocess a whole recording: exactly :meth:`push` of everything, then :meth:`flush`."""
        return Windows.concatenate([self.push(samples), self.flush()], self.config.window_samples)

    def _emit(self, resampled: npt.NDArray[np.float64]) -> Windows:
        if resampled.shape[-1] == 0:
            return _empty_windows(self.config.window_samples, self._streams)
        held = self._flags_in.shape[-1]
        k = np.arange(self._resampler.samples_out - resampled.shape[-1], self._resampler.samples_out)
        source = self._resampler.output_to_input_index(k) - self._flags_start
        source = np.clip(source, 0, max(held - 1, 0))
        flagged = self._flags_in[..., source] if held else np.zeros(resampled.shape, bool)
        # Source flags older than the next output's source sample are no longer needed.
        keep_from = int(source[-1])
        self._flags_in = self._flags_in[..., keep_from:]
        self._flags_start += keep_from
        raw = self._windower.push(resampled, flagged)
        if self._baseline is not None:
            features = self._feature_windower.push(self._baseline.push(resampled)).values.astype(np.float32)
        if len(raw) == 0:
            return _empty_windows(self.config.window_samples, self._streams)
        cfg = self.config
        nan = np.isnan(raw.values)
        missing = (nan | raw.flagged).sum(axis=-1).astype(np.int64)
        usable = ~nan.any(axis=-1) & (raw.flagged.sum(axis=-1) <= cfg.max_missing_fraction * cfg.window_samples)
        if self._baseline is None:
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


def rest_baseline_us(
    samples: npt.ArrayLike,
    sample_rate_hz: float,
    unit: str = "uS",
    config: PreprocessingConfig | None = None,
) -> float:
    """The wearer's resting conductance (µS) from a rest recording, to seed the causal baseline.

    The recording is smoothed and resampled exactly as the stream will be; the result is the
    median of ln conductance over its valid samples, exponentiated (robust to a response or an
    artefact during the rest). Pass it as ``GsrPreprocessor(..., initial_baseline_us=...)``.

    Args:
        samples: (n,) rest recording in ``unit`` at ``sample_rate_hz`` (NaN = missing).

    Raises:
        DataError: the recording holds no valid (positive, finite) conductance.
    """
    cfg = config or DEFAULT_PREPROCESSING
    resampler = StreamingResampler(float(sample_rate_hz), cfg.rate_hz, cfg.lowpass_hz, cfg.attenuation_db)
    conductance = to_conductance_us(np.asarray(samples, dtype=np.float64).reshape(-1), normalise_unit(unit))
    y = np.concatenate([resampler.push(conductance), resampler.flush()]) if conductance.size else conductance
    valid = y[np.isfinite(y) & (y > 0)]
    if valid.size == 0:
        raise DataError("the rest recording holds no valid conductance sample; record a rest with the sensor on")
    return float(np.exp(np.median(np.log(valid))))


def preprocess_recording(
    samples: npt.ArrayLike,
    sample_rate_hz: float,
    unit: str = "uS",
    config: PreprocessingConfig | None = None,
    hop_samples: int | None = None,
    initial_baseline_us: float | None = None,
) -> Windows:
    """Preprocess one whole recording (shape ``(n,)``) into windows; see :class:`GsrPreprocessor`."""
    return GsrPreprocessor(sample_rate_hz, unit, config, hop_samples, initial_baseline_us).apply(samples)


__all__ = [
    "DEFAULT_PREPROCESSING",
    "NORMALISATIONS",
    "PAPER_PREPROCESSING",
    "SUPPORTED_VERSIONS",
    "LogBaseline",
    "rest_baseline_us",
    "PREPROCESSING_NAME",
    "PREPROCESSING_VERSION",
    "GsrPreprocessor",
    "PreprocessingConfig",
    "Windows",
    "normalise_windows",
    "preprocess_recording",
]
