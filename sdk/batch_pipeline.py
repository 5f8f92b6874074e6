"""Many streams in lockstep: preprocessing and the quality gate vectorised across streams.

A gateway that serves thousands of wearers spends as much CPU in per-window Python (one
preprocessor, flag tracker and quality verdict per stream and window) as in a compact model.
When S streams share a source rate and unit and arrive at the same pace -- a hub assembling one
tick of every wearer, missing samples as NaN -- one :class:`LockstepStreams` runs the very same
``ekd-gsr`` maths (:class:`~emotionkd.sdk.preprocessing.GsrPreprocessor` with ``streams=S``)
and the same gate (:func:`~emotionkd.sdk.quality.windows_pass`) on ``(S, n)`` arrays, so a tick
costs a handful of numpy calls whatever S is. Each stream gets exactly the windows, verdicts
and (after the model) predictions an :class:`~emotionkd.sdk.classifier.EmotionClassifier` fed
its row would give (tested); :class:`~emotionkd.sdk.gateway.Gateway` uses it for cohorts
(``add_cohort`` / ``push_cohort``) and batches the model call across everything queued.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from emotionkd.firmware_bridge.errors import ConfigError
from emotionkd.firmware_bridge.units import normalise_unit
from emotionkd.sdk.preprocessing import GsrPreprocessor, PreprocessingConfig
from emotionkd.sdk.quality import GatedWindows, QualityConfig, gate_windows


class LockstepStreams:
    """S GSR streams of one rate and unit, pushed together; windows and verdicts vectorised.

    Args:
        streams: S.
        sample_rate_hz: the source rate of every stream.
        unit: their unit (``uS``, ``kOhm`` …).
        config: the model contract's preprocessing.
        hop_samples: model-rate samples between windows.
        quality: the quality gate's thresholds.

    Every push returns one :class:`~emotionkd.sdk.quality.GatedWindows` with a leading stream
    axis (``good`` ``(S, N)``); :func:`emotionkd.sdk.prediction.assemble` with ``stream=s``
    makes stream ``s``'s predictions from it.
    """

    def __init__(self, streams: int, sample_rate_hz: float, unit: str, config: PreprocessingConfig,
                 hop_samples: int, quality: QualityConfig | None = None) -> None:
        if not (isinstance(streams, int) and streams >= 1):
            raise ConfigError(f"a cohort needs a positive number of streams, got {streams!r}")
        if not (math.isfinite(sample_rate_hz) and sample_rate_hz > 0):
            raise ConfigError(f"sample_rate_hz must be a positive number of hertz, got {sample_rate_hz!r}")
        self.streams = streams
        self.sample_rate_hz = float(sample_rate_hz)
        self.unit = normalise_unit(unit)
        self.quality = quality or QualityConfig()
        self.preprocessor = GsrPreprocessor(self.sample_rate_hz, self.unit, config, hop_samples, streams=streams)

    def push(self, samples: npt.ArrayLike, flags: npt.ArrayLike | None = None) -> GatedWindows:
        """Feed the next ``(S, n)`` samples (NaN = missing) and optional ``(S, n)``
        :class:`SampleFlag` bits, as ``EmotionClassifier.push`` takes them."""
        values = np.asarray(samples, dtype=np.float64)
        if values.ndim != 2 or values.shape[0] != self.streams:
            raise ConfigError(f"a cohort of {self.streams} streams takes samples of shape ({self.streams}, n), "
                              f"got {values.shape}")
        if flags is not None and np.shape(flags) != values.shape:
            raise ConfigError(f"flags has shape {np.shape(flags)} for samples of shape {values.shape}")
        return gate_windows(self.preprocessor.push(values, flags), self.quality)

    def flush(self) -> GatedWindows:
        """End of every stream: the windows the last samples complete."""
        return gate_windows(self.preprocessor.flush(), self.quality)


__all__ = ["LockstepStreams"]
