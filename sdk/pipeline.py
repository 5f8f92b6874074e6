"""One stream's pipeline: samples in, windows through the quality gate out (no model).

``StreamPipeline`` = segmenting (the stream's time axis) → preprocessing (``ekd-gsr``, with the
source flags carried to the windows) → quality gate. It is the part every live consumer shares:
:class:`~emotionkd.sdk.classifier.EmotionClassifier` runs the model on what each push completes,
:class:`~emotionkd.sdk.gateway.Gateway` queues it for a batched call (see
:mod:`emotionkd.sdk.prediction`). Many streams in lockstep use
:class:`~emotionkd.sdk.batch_pipeline.LockstepStreams`, the same maths on ``(S, n)`` arrays.

Segments: a block that skips ahead (samples lost on the way) is filled with missing samples up
to :data:`MAX_FILLED_GAP_S` (and never more than the sample axis' fill bound), so windows keep
a true time axis; a longer gap, a rate or unit change, or a source whose sample counter went
backwards (a device restart) starts a new segment (fresh preprocessing) that continues the
stream's time axis. The kind of each jump is the sample axis' one rule
(:func:`emotionkd.firmware_bridge.sample_axis.classify_jump`, what decoders, recorder, replay
and LSL use); :meth:`StreamPipeline.push_block` applies it with the classifier's bounds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from emotionkd.firmware_bridge.bounds import MAX_HOP_S
from emotionkd.firmware_bridge.errors import ConfigError, ModelError
from emotionkd.firmware_bridge.sample_axis import Jump, classify_jump, gap_block, max_gap_samples
from emotionkd.firmware_bridge.samples import SampleBlock
from emotionkd.firmware_bridge.units import normalise_unit
from emotionkd.sdk.contract import ModelContract
from emotionkd.sdk.logs import get_logger
from emotionkd.sdk.prediction import LabelDecision, LabelRule
from emotionkd.sdk.preprocessing import GsrPreprocessor, PreprocessingConfig, Windows
from emotionkd.sdk.quality import GatedWindows, QualityConfig, gate_windows

#: a gap longer than this (s) starts a new segment instead of being filled with NaN samples
MAX_FILLED_GAP_S: Final = 60.0


@dataclass(frozen=True)
class StreamRecipe:
    """What every stream of one model and one set of options is built from: a
    :class:`StreamPipeline` and a :class:`~emotionkd.sdk.prediction.LabelDecision` each.

    :class:`~emotionkd.sdk.classifier.EmotionClassifier` holds one for its stream,
    :class:`~emotionkd.sdk.gateway.Gateway` one for all of its streams (use
    :meth:`for_contract` to build one checked).

    Attributes:
        preprocessing: the contract's ``ekd-gsr`` parameters.
        hop_samples: model-rate samples between windows.
        quality: the gate's thresholds.
        label_rule: threshold and hysteresis of the labels.
        class_names: the contract's (low, high) names.
        baseline_us: seed of a v2 model's causal baseline (µS), or None.
    """

    preprocessing: PreprocessingConfig
    hop_samples: int
    quality: QualityConfig
    label_rule: LabelRule
    class_names: tuple[str, ...]
    baseline_us: float | None = None

    @classmethod
    def for_contract(cls, contract: ModelContract, *, hop_s: float, quality: QualityConfig | None = None,
                     hysteresis: float = 0.0, baseline_us: float | None = None) -> StreamRecipe:
        """The recipe of ``contract``'s model with these options, each checked.

        Raises:
            ModelError: the model has neither an arousal nor a valence head.
            ConfigError: ``hop_s`` or ``hysteresis`` out of range.
        """
        if not {"arousal", "valence"} & set(contract.targets):
            raise ModelError(f"the model has neither an 'arousal' nor a 'valence' head (targets {contract.targets})")
        if not (math.isfinite(hop_s) and 0 < hop_s <= MAX_HOP_S):
            raise ConfigError(f"hop_s must be a positive number of seconds up to {MAX_HOP_S:g}, got {hop_s!r}")
        return cls(contract.preprocessing_config(), max(1, int(round(hop_s * contract.sample_rate_hz))),
                   quality or QualityConfig(), LabelRule(hysteresis=hysteresis), tuple(contract.class_names),
                   baseline_us)

    def new_pipeline(self) -> StreamPipeline:
        """A fresh pipeline for one stream."""
        return StreamPipeline(self.preprocessing, self.hop_samples, self.quality, self.baseline_us)

    def new_labels(self) -> LabelDecision:
        """A fresh label state for one stream."""
        return LabelDecision(self.label_rule, self.class_names)


class _Segment:
    """Preprocessing state of one contiguous segment of one stream."""

    __slots__ = ("index_base", "origin_s", "preprocessor", "sample_rate_hz", "samples_in", "unit")

    def __init__(self, pipeline: StreamPipeline, sample_rate_hz: float, unit: str, origin_s: float) -> None:
        self.preprocessor = GsrPreprocessor(sample_rate_hz, unit, pipeline.preprocessing, pipeline.hop_samples,
                                            initial_baseline_us=pipeline.baseline_us)
        self.sample_rate_hz = float(sample_rate_hz)
        self.unit = unit
        self.origin_s = origin_s  # stream time of this segment's sample 0
        self.samples_in = 0  # samples of this segment consumed
        self.index_base: int | None = None  # source index of this segment's sample 0 (blocks)

    @property
    def end_s(self) -> float:
        return self.origin_s + self.samples_in / self.sample_rate_hz


class StreamPipeline:
    """Preprocess → flags → quality gate for one stream, in segments.

    Args:
        preprocessing: the model contract's preprocessing.
        hop_samples: model-rate samples between windows.
        quality: the gate's thresholds.
        baseline_us: seed of a v2 model's causal baseline (µS), or None.

    Every push returns the :class:`GatedWindows` it completed (at most one batch per segment it
    touched), in stream order; :meth:`flush` ends the stream.
    """

    def __init__(self, preprocessing: PreprocessingConfig, hop_samples: int, quality: QualityConfig,
                 baseline_us: float | None = None) -> None:
        self.preprocessing = preprocessing
        self.hop_samples = int(hop_samples)
        self.quality = quality
        self.baseline_us = baseline_us
        self._segment: _Segment | None = None

    @property
    def latency_s(self) -> float:
        """Delay from a window's last sample to its prediction for the current stream (s)."""
        return self._segment.preprocessor.latency_s if self._segment else math.nan

    def reset(self) -> None:
        """Forget the stream (the next push starts a new one at time 0)."""
        self._segment = None

    def flush(self) -> list[GatedWindows]:
        """End of the stream: the windows its last samples complete; then :meth:`reset`."""
        segment, self._segment = self._segment, None
        return self._gate(segment, segment.preprocessor.flush()) if segment else []

    def push_array(self, samples: npt.ArrayLike, sample_rate_hz: float | None, unit: str,
                   flags: npt.ArrayLike | None) -> list[GatedWindows]:
        """The next ``(n,)`` samples in ``unit`` (NaN = missing) and optional flag bits."""
        segment = self._segment
        unit = normalise_unit(unit) if segment is None or unit != segment.unit else unit
        rate = check_rate(sample_rate_hz) if sample_rate_hz is not None else (segment.sample_rate_hz if segment else None)
        if rate is None:
            raise ConfigError("the first push of an array needs sample_rate_hz=…")
        if segment is None or segment.sample_rate_hz != rate or segment.unit != unit:
            segment = self._segment = _Segment(self, rate, unit, segment.end_s if segment else 0.0)
        values = np.asarray(samples, dtype=np.float64).reshape(-1)
        flag_array = None
        if flags is not None:
            flag_array = np.asarray(flags, dtype=np.uint8).reshape(-1)
            if flag_array.size != values.size:
                raise ConfigError(f"flags has {flag_array.size} entries for {values.size} samples")
        return self._push(segment, values, flag_array)

    def push_block(self, block: SampleBlock) -> list[GatedWindows]:
        """The next :class:`SampleBlock` (rate, flags and position come with it).

        Where the block lies against the samples already consumed is decided by the sample
        axis' one rule (:func:`~emotionkd.firmware_bridge.sample_axis.classify_jump`), with
        this pipeline's bounds: forward, gaps up to :data:`MAX_FILLED_GAP_S` are filled (never
        more than the axis' fill bound) and a longer one starts a segment where the block
        claims to lie; backward, up to one block (at least one second) is an overlap or a
        repeat, further back the device restarted its counter: a new segment that continues
        the time axis.
        """
        segment = self._segment
        if segment is not None and segment.index_base is None:
            segment.index_base = block.first_index - segment.samples_in  # arrays, then blocks
        if segment is None or segment.sample_rate_hz != block.rate_hz or segment.unit != "uS":
            segment = self._new_segment(block, segment.end_s if segment else block.start_s)
        rate = segment.sample_rate_hz
        delta = block.first_index - (segment.index_base or 0) - segment.samples_in
        bound = max_gap_samples(rate, MAX_FILLED_GAP_S) if delta > 0 else max(len(block), int(rate))
        jump = classify_jump(delta, len(block), bound)
        if block.first_index < (segment.index_base or 0):
            jump = Jump("discontinuity")  # before the segment's own start: a restart too
        values, flags = block.conductance_us, block.flags
        gated: list[GatedWindows] = []
        if jump.kind == "duplicate":
            return []  # a block repeated: already seen
        if jump.kind == "overlap":
            values, flags = values[jump.skip:], flags[jump.skip:]
        elif jump.kind == "gap":
            fill = gap_block(block.first_index - jump.fill, jump.fill, rate)
            gated += self._push(segment, fill.conductance_us, fill.flags)
        elif jump.kind == "discontinuity":
            if delta < 0:  # the counter went far back: the device restarted its sample counter
                get_logger(__name__).info("source sample counter went back from %d to %d; new segment",
                                          segment.samples_in + (segment.index_base or 0), block.first_index)
                origin_s = segment.end_s
            else:  # a gap too long to fill: the new segment starts where the block lies
                origin_s = segment.end_s + delta / rate
            segment = self._new_segment(block, origin_s)
        return gated + self._push(segment, np.asarray(values, np.float64), np.asarray(flags, np.uint8))

    def _new_segment(self, block: SampleBlock, origin_s: float) -> _Segment:
        segment = _Segment(self, check_rate(block.rate_hz), "uS", origin_s)
        segment.index_base = block.first_index
        self._segment = segment
        return segment

    def _push(self, segment: _Segment, values: npt.NDArray[np.float64],
              flags: npt.NDArray[np.uint8] | None) -> list[GatedWindows]:
        segment.samples_in += values.size
        return self._gate(segment, segment.preprocessor.push(values, flags))

    def _gate(self, segment: _Segment, windows: Windows) -> list[GatedWindows]:
        if len(windows) == 0:
            return []
        return [gate_windows(windows, self.quality, segment.origin_s)]


def check_rate(sample_rate_hz: float | None) -> float:
    """``sample_rate_hz`` as a float, or a :class:`ConfigError` naming the bad value."""
    if sample_rate_hz is None or not (math.isfinite(float(sample_rate_hz)) and float(sample_rate_hz) > 0):
        raise ConfigError(f"sample_rate_hz must be a positive number of hertz, got {sample_rate_hz!r}")
    return float(sample_rate_hz)


def block_reaches(block: SampleBlock, duration_s: float | None) -> bool:
    """True when ``block`` ends at or after ``duration_s`` of stream time (None: never)."""
    return duration_s is not None and block.start_s + len(block) / block.rate_hz >= duration_s


def blocks_until(blocks: Iterable[SampleBlock], duration_s: float | None) -> Iterator[SampleBlock]:
    """``blocks`` up to and including the one that reaches ``duration_s`` of stream time."""
    for block in blocks:
        yield block
        if block_reaches(block, duration_s):
            return


__all__ = ["MAX_FILLED_GAP_S", "StreamPipeline", "StreamRecipe", "block_reaches", "blocks_until", "check_rate"]
