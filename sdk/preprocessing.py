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
from emotionkd.sdk.normalisation import LogBaseline, normalise_windows
from emotionkd.sdk.resampling import StreamingResampler
from emotionkd.sdk.source_flags import SourceFlags
from emotionkd.sdk.windowing import RawWindows, Windower, Windows
from emotionkd.sdk.windowing import empty_windows as _empty_windows

PREPROCESSING_NAME: Final = "ekd-gsr"
PREPROCESSING_VERSION: Final = 2
SUPPORTED_VERSIONS: Final = (1, 2)
NORMALISATIONS: Final = ("window_zscore", "none", "log_baseline")
#: normalisations that version 1 of ``ekd-gsr`` knows; a config using only these is written as v1
V1_NORMALISATIONS: Final = ("window_zscore", "none")
#: parameters added in version 2 (absent from v1 contracts; their values do not matter in v1)
V2_FIELDS: Final = ("baseline_tau_s", "log_scale", "baseline_seed")
#: how a model's training streams started their causal baseline (``log_baseline`` only):
#: ``first_sample`` (every v2 model before this field) or ``rest`` (seeded from the wearer's
#: rest recording, :func:`rest_baseline_us`); the computation is the same, the advice differs
BASELINE_SEEDS: Final = ("first_sample", "rest")


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
        baseline_seed: ``log_baseline`` only: how the training streams started the baseline,
            ``first_sample`` or ``rest`` (seeded from a rest recording). It changes nothing in the
            computation; a ``rest`` model is at its measured accuracy only when the stream's
            baseline is seeded from the wearer's rest too (``EmotionClassifier(baseline=...)``,
            ``emotionkd-sdk stream --baseline rest.csv``).

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
    baseline_seed: str = "first_sample"

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
        if self.baseline_seed not in BASELINE_SEEDS:
            raise ConfigError(f"unknown baseline_seed {self.baseline_seed!r}; use one of {', '.join(BASELINE_SEEDS)}")
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
        so an emotionkd that only knows version 1 still runs it; ``baseline_seed`` appears only
        when it is ``rest``, so earlier v2 contracts stay as they were written)."""
        params = asdict(self)
        if self.version == 1:
            for name in V2_FIELDS:
                params.pop(name)
        elif self.baseline_seed == "first_sample":
            params.pop("baseline_seed")
        return params

    @property
    def wants_rest_baseline(self) -> bool:
        """True when the model was trained on streams whose baseline was seeded from a rest recording."""
        return self.normalisation == "log_baseline" and self.baseline_seed == "rest"

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
        self._baseline: LogBaseline | None = None
        if self.config.normalisation == "log_baseline":
            self._baseline = LogBaseline(self.config, initial_baseline_us, streams)
        # log_baseline: conductance and features are cut by one windower, as channels 0 and 1
        self._windower = Windower(self.config.window_samples, self.hop_samples,
                                  channels=None if self._baseline is None else 2)
        self._hold_max = int(round(self.config.hold_max_s * self.sample_rate_hz))
        # per stream, () or (S,): the last valid sample and the length of the current missing run
        self._last_valid = np.full(self._streams, np.nan)
        self._run = np.zeros(self._streams, dtype=np.int64)
        # the source samples' missing marks and flags, until no window needs them
        self._flags = SourceFlags(self._resampler.output_to_input_index, self.config.window_samples, self._streams)

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

    def _hold(self, x: npt.NDArray[np.float64], missing: npt.NDArray[np.bool_]) -> npt.NDArray[np.float64]:
        """``x`` with missing runs up to ``hold_max_s`` held at the last valid sample (``missing``: ``isnan(x)``)."""
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

    def push(self, samples: npt.ArrayLike, flags: npt.ArrayLike | None = None) -> Windows:
        """Feed samples (shape ``(n,)``, or ``(S, n)`` in lockstep; in ``unit``; NaN = missing)
        and optionally their :class:`SampleFlag` bits (same shape; counted per window as
        ``electrode_off`` / ``saturated``); return completed windows."""
        conductance = to_conductance_us(np.asarray(samples, dtype=np.float64).reshape(self._streams + (-1,)), self.unit)
        if conductance.shape[-1] == 0:
            return _empty_windows(self.config.window_samples, self._streams)
        missing = np.isnan(conductance)
        self._flags.push(missing, flags)
        held = self._hold(conductance, missing)
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
        k = np.arange(self._resampler.samples_out - resampled.shape[-1], self._resampler.samples_out)
        if self._baseline is None:
            raw = self._windower.push(resampled, self._flags.missing_at(k))
        else:
            both = self._windower.push(np.stack([resampled, self._baseline.push(resampled)]), self._flags.missing_at(k))
            features = both.values[1].astype(np.float32)
            raw = RawWindows(both.start_index, both.values[0], both.flagged)
        counts = self._flags.window_counts(raw.start_index) if len(raw) else None
        self._flags.forget_before(min(self._windower.next_start, self._resampler.samples_out))
        if counts is None:
            return _empty_windows(self.config.window_samples, self._streams)
        cfg = self.config
        nan = np.isnan(raw.values)
        missing = (nan | raw.flagged).sum(axis=-1, dtype=np.int64)
        usable = ~nan.any(axis=-1) & (raw.flagged.sum(axis=-1) <= cfg.max_missing_fraction * cfg.window_samples)
        if self._baseline is None:
            features = normalise_windows(raw.values, cfg)
        if not usable.all():  # (a live push's one window is usually usable: no masked write then)
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
            source_samples=counts[0],
            electrode_off=counts[1],
            saturated=counts[2],
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
    "BASELINE_SEEDS",
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
