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
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from emotionkd.firmware_bridge.errors import ConfigError
from emotionkd.firmware_bridge.samples import SampleFlag
from emotionkd.firmware_bridge.units import normalise_unit
from emotionkd.sdk.classifier import Prediction
from emotionkd.sdk.preprocessing import GsrPreprocessor, PreprocessingConfig, Windows
from emotionkd.sdk.quality import (
    OK,
    FlagTracker,
    QualityConfig,
    QualityVerdict,
    judge_window,
    window_levels_us,
    windows_pass,
)


@dataclass(frozen=True)
class LockstepBatch:
    """The windows one push completed for S streams, judged, waiting for the model.

    Attributes:
        windows: :class:`Windows` with a leading stream axis (features ``(S, N, W)``).
        good: ``(S, N)`` bool, the windows that passed the quality gate.
        levels_us: ``(S, N)`` median conductance per window (µS; NaN if none).
        failed: ``{(stream, window): verdict}`` for the windows that did not pass.
    """

    windows: Windows
    good: npt.NDArray[np.bool_]
    levels_us: npt.NDArray[np.float64]
    failed: dict[tuple[int, int], QualityVerdict]

    @property
    def streams(self) -> int:
        return int(self.good.shape[0])

    def good_features(self) -> npt.NDArray[np.float32]:
        """``(n_good, W)`` model inputs of the windows that passed, stream by stream, in time order."""
        return self.windows.features[self.good]


class LockstepStreams:
    """S GSR streams of one rate and unit, pushed together; windows and verdicts vectorised.

    Args:
        streams: S.
        sample_rate_hz: the source rate of every stream.
        unit: their unit (``uS``, ``kOhm`` …).
        config: the model contract's preprocessing.
        hop_samples: model-rate samples between windows.
        quality: the quality gate's thresholds.
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
        self.flags = FlagTracker(self.sample_rate_hz, streams=streams)

    def push(self, samples: npt.ArrayLike, flags: npt.ArrayLike | None = None) -> LockstepBatch:
        """Feed the next ``(S, n)`` samples (NaN = missing) and optional ``(S, n)``
        :class:`SampleFlag` bits (default: ``GAP`` where NaN, as ``EmotionClassifier.push``)."""
        values = np.asarray(samples, dtype=np.float64)
        if values.ndim != 2 or values.shape[0] != self.streams:
            raise ConfigError(f"a cohort of {self.streams} streams takes samples of shape ({self.streams}, n), "
                              f"got {values.shape}")
        if flags is None:
            flag_array = np.where(np.isnan(values), SampleFlag.GAP, 0).astype(np.uint8)
        else:
            flag_array = np.asarray(flags, dtype=np.uint8)
            if flag_array.shape != values.shape:
                raise ConfigError(f"flags has shape {flag_array.shape} for samples of shape {values.shape}")
        self.flags.push(flag_array)
        return self._judge(self.preprocessor.push(values))

    def flush(self) -> LockstepBatch:
        """End of every stream: the windows the last samples complete."""
        return self._judge(self.preprocessor.flush())

    def _judge(self, windows: Windows) -> LockstepBatch:
        n = len(windows)
        levels = window_levels_us(windows.conductance_us)
        good = np.zeros((self.streams, n), dtype=bool)
        failed: dict[tuple[int, int], QualityVerdict] = {}
        for i in range(n):  # windows in stream order: the flag tracker forgets what they passed
            counts = self.flags.count_streams(float(windows.start_s[i]), float(windows.end_s[i]))
            good[:, i] = windows_pass(windows.conductance_us[:, i], windows.usable[:, i], counts.electrode_off,
                                      counts.saturated, counts.source_samples, self.quality, levels[:, i])
            for s in np.flatnonzero(~good[:, i]):  # the reason, in words, from the one gate
                failed[(int(s), i)] = judge_window(windows.conductance_us[s, i], bool(windows.usable[s, i]),
                                                   int(windows.samples_missing[s, i]), counts.of(int(s)),
                                                   self.quality)
        return LockstepBatch(windows, good, levels, failed)


def assemble(batch: LockstepBatch, probabilities: dict[str, npt.NDArray[np.float32]],
             class_names: tuple[str, ...], origin_s: float = 0.0) -> list[list[Prediction]]:
    """Per stream, the :class:`Prediction` of each window of ``batch`` (as
    ``EmotionClassifier`` makes them), given the model's ``{target: (n_good, 2)}`` probabilities
    of :meth:`LockstepBatch.good_features`."""
    windows = batch.windows
    start = (origin_s + windows.start_s).tolist()
    end = (origin_s + windows.end_s).tolist()
    missing = windows.samples_missing.tolist()
    levels = batch.levels_us.tolist()
    arousal = probabilities["arousal"][:, 1].tolist() if batch.good.any() else []
    valence = probabilities["valence"][:, 1].tolist() if batch.good.any() else []
    low, high = class_names[0], class_names[1]
    out: list[list[Prediction]] = []
    row = 0
    for s, good in enumerate(batch.good.tolist()):
        predictions = []
        for i, ok in enumerate(good):
            if ok:
                a, v = arousal[row], valence[row]
                row += 1
                predictions.append(Prediction(start[i], end[i], a, v, high if a >= 0.5 else low,
                                              high if v >= 0.5 else low, OK, "", missing[s][i], levels[s][i]))
            else:
                verdict = batch.failed[(s, i)]
                predictions.append(Prediction(start[i], end[i], None, None, None, None, verdict.reason,
                                              verdict.detail, missing[s][i], levels[s][i]))
        out.append(predictions)
    return out


__all__ = ["LockstepBatch", "LockstepStreams", "assemble"]
