"""EmotionClassifier: skin conductance in, arousal and valence out, with a quality verdict.

::

    from emotionkd.sdk import EmotionClassifier

    clf = EmotionClassifier()                        # the bundled model (or model="student.onnx")
    for p in clf.stream("sim://?rate=32"):           # or serial://…, ble://…, replay://…, lsl://…
        print(p.start_s, p.arousal, p.valence, p.quality)

    predictions = clf.predict(gsr, sample_rate_hz=4.0, unit="uS")   # a whole recording
    for chunk in chunks:                             # your own transport
        for p in clf.push(chunk, sample_rate_hz=32.0):
            ...

The pipeline is preprocess (the model contract's ``ekd-gsr`` preprocessing) → window (4 s every
``hop_s``) → quality gate → onnxruntime → :class:`Prediction`. ``push`` gives exactly the
predictions ``predict`` gives on the same samples, whatever the chunk sizes (the preprocessing
is causal and stateful), once :meth:`EmotionClassifier.flush` has been called at the end.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt

from emotionkd.firmware_bridge.bounds import MAX_HOP_S
from emotionkd.firmware_bridge.errors import ConfigError, ModelError
from emotionkd.firmware_bridge.samples import SampleBlock, SampleFlag
from emotionkd.firmware_bridge.units import normalise_unit
from emotionkd.sdk.contract import ModelContract
from emotionkd.sdk.preprocessing import GsrPreprocessor, Windows
from emotionkd.sdk.quality import FlagTracker, QualityConfig, QualityVerdict, judge_window

if TYPE_CHECKING:  # onnxruntime is imported only when a model is loaded
    from emotionkd.sdk.model import OnnxEmotionModel

logger = logging.getLogger(__name__)

#: a gap longer than this (s) starts a new segment instead of being filled with NaN samples
MAX_FILLED_GAP_S: Final = 60.0
#: quality of a window the model answered with a non-finite number (a broken or corrupt model)
MODEL_ERROR: Final = "model_error"
PredictionCallback = Callable[["Prediction"], None]


@dataclass(frozen=True)
class Prediction:
    """The classifier's answer for one window.

    Attributes:
        start_s, end_s: the window's span on the stream's time axis (s since its first sample).
        arousal, valence: probability of "high" (0–1); None when the window failed the gate or
            the model has no such head (an arousal-only model: ``valence`` is always None).
        arousal_label, valence_label: the contract's class name (``low``/``high``) at 0.5; None
            when not predicted.
        quality: ``ok`` or why the window was not predicted (``gap``, ``electrode_off``,
            ``saturation``, ``flat_line``, ``implausible_unit``, ``model_error``: the model's
            output was not a finite probability).
        quality_detail: the reason in words (empty when ok).
        samples_missing: model-rate samples missing or bridged in the window.
        conductance_us: median skin conductance level in the window (µS; NaN if none).
    """

    start_s: float
    end_s: float
    arousal: float | None
    valence: float | None
    arousal_label: str | None
    valence_label: str | None
    quality: str
    quality_detail: str
    samples_missing: int
    conductance_us: float

    @property
    def ok(self) -> bool:
        """True when the window passed the quality gate and was predicted."""
        return self.quality == "ok"

    def to_dict(self) -> dict[str, Any]:
        """Plain types, JSON-ready (NaN level becomes None)."""
        data = asdict(self)
        if not math.isfinite(self.conductance_us):
            data["conductance_us"] = None
        return data


class _StreamState:
    """Preprocessing state of one contiguous segment of one stream."""

    def __init__(self, classifier: EmotionClassifier, sample_rate_hz: float, unit: str, origin_s: float) -> None:
        self.preprocessor = GsrPreprocessor(sample_rate_hz, unit, classifier.preprocessing, classifier.hop_samples,
                                            initial_baseline_us=classifier.baseline_us)
        self.flags = FlagTracker(sample_rate_hz)
        self.sample_rate_hz = float(sample_rate_hz)
        self.unit = unit
        self.origin_s = origin_s  # stream time of this segment's sample 0
        self.samples_in = 0  # samples of this segment consumed
        self.index_base: int | None = None  # source index of this segment's sample 0 (blocks)

    @property
    def end_s(self) -> float:
        return self.origin_s + self.samples_in / self.sample_rate_hz

    def push(self, values: npt.NDArray[np.float64], flags: npt.NDArray[np.uint8]) -> Windows:
        self.flags.push(flags)
        self.samples_in += values.size
        return self.preprocessor.push(values)


class EmotionClassifier:
    """Arousal and valence from skin conductance with an emotionkd ONNX model.

    Args:
        model: an ``.onnx`` file from ``emotionkd-export``; None for the bundled model; or an
            already loaded :class:`~emotionkd.sdk.model.OnnxEmotionModel` to share one session
            between classifiers (what :class:`~emotionkd.sdk.gateway.Gateway` does).
        hop_s: seconds between predictions (windows overlap when shorter than the window).
        quality: thresholds of the quality gate.
        on_prediction: a callback called with every :class:`Prediction` (see
            :meth:`add_callback`).
        threads: onnxruntime threads.
        baseline: personal calibration for ekd-gsr v2 models: the wearer's resting conductance
            (µS), or a rest recording (2–5 minutes; an ``emotionkd-sdk record`` CSV or an E4
            ``EDA.csv``) whose resting level seeds the causal baseline instead of the first
            sample of each stream (see :mod:`emotionkd.sdk.calibration`).

    Raises:
        ModelError: no model can be loaded (no bundled model, missing or malformed file).
        ContractError: the model's contract asks for preprocessing this emotionkd lacks.
    """

    def __init__(
        self,
        model: str | Path | OnnxEmotionModel | None = None,
        *,
        hop_s: float = 1.0,
        quality: QualityConfig | None = None,
        on_prediction: PredictionCallback | None = None,
        threads: int = 1,
        baseline: float | str | Path | None = None,
    ) -> None:
        from emotionkd.sdk.model import OnnxEmotionModel, bundled_model_path

        if isinstance(model, OnnxEmotionModel):
            self.model = model
        else:
            self.model = OnnxEmotionModel(bundled_model_path() if model is None else model, threads=threads)
        self.contract: ModelContract = self.model.contract
        # serve the heads the model has (an arousal-only fine-tune is a valid model)
        if not {"arousal", "valence"} & set(self.contract.targets):
            raise ModelError(f"model {str(self.model.path)!r} has neither an 'arousal' nor a 'valence' head "
                             f"(targets {self.contract.targets})")
        self.preprocessing = self.contract.preprocessing_config()
        self.baseline_us: float | None = None
        if baseline is not None:
            from emotionkd.sdk.calibration import resting_conductance_us

            self.baseline_us = resting_conductance_us(baseline, self.preprocessing)
        if not (math.isfinite(hop_s) and 0 < hop_s <= MAX_HOP_S):
            raise ConfigError(f"hop_s must be a positive number of seconds up to {MAX_HOP_S:g}, got {hop_s!r}")
        self.hop_samples = max(1, int(round(hop_s * self.contract.sample_rate_hz)))
        self.quality = quality or QualityConfig()
        self._callbacks: list[PredictionCallback] = [on_prediction] if on_prediction else []
        self._state: _StreamState | None = None
        self._lock = threading.Lock()

    # -- properties -------------------------------------------------------------------------
    @property
    def hop_s(self) -> float:
        return self.hop_samples / self.contract.sample_rate_hz

    @property
    def window_s(self) -> float:
        return self.contract.window_s

    @property
    def trained_on_synthetic_data(self) -> bool:
        """True when the model's contract says it was trained on synthetic data only."""
        return self.contract.is_synthetic

    @property
    def latency_s(self) -> float:
        """Delay from a window's last sample to its prediction for the current stream (s)."""
        return self._state.preprocessor.latency_s if self._state else math.nan

    # -- callbacks --------------------------------------------------------------------------
    def add_callback(self, callback: PredictionCallback) -> None:
        """Call ``callback(prediction)`` for every prediction :meth:`push` or a stream makes.

        A callback that raises is logged and kept (one bad handler must not stop the stream).
        """
        self._callbacks.append(callback)

    def remove_callback(self, callback: PredictionCallback) -> None:
        self._callbacks.remove(callback)

    def _notify(self, predictions: list[Prediction]) -> None:
        for prediction in predictions:
            for callback in list(self._callbacks):
                try:
                    callback(prediction)
                except Exception:
                    logger.exception("prediction callback %r raised", callback)

    # -- offline ----------------------------------------------------------------------------
    def predict(
        self,
        gsr: npt.ArrayLike,
        sample_rate_hz: float,
        unit: str = "uS",
        flags: npt.ArrayLike | None = None,
    ) -> list[Prediction]:
        """Predictions for a whole recording (does not touch the :meth:`push` stream).

        Args:
            gsr: (n,) samples in ``unit`` (NaN = missing).
            sample_rate_hz: their rate (any rate; resampled as the contract says).
            unit: ``uS``, ``nS``, ``Ohm``, ``kOhm``, ``MOhm`` … (resistance is inverted).
            flags: optional (n,) :class:`SampleFlag` bits per sample.

        Returns:
            One :class:`Prediction` per window (every ``hop_s``), in time order.
        """
        state = _StreamState(self, _rate(sample_rate_hz), normalise_unit(unit), 0.0)
        values, flag_array = _as_samples(gsr, flags)
        windows = state.push(values, flag_array)
        tail = state.preprocessor.flush()
        return self._predict(state, windows) + self._predict(state, tail)

    # -- streaming --------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the current stream (the next :meth:`push` starts a new one at time 0)."""
        with self._lock:
            self._state = None

    def push(
        self,
        samples: SampleBlock | npt.ArrayLike,
        *,
        sample_rate_hz: float | None = None,
        unit: str = "uS",
        flags: npt.ArrayLike | None = None,
    ) -> list[Prediction]:
        """Feed the next chunk of a stream; return the predictions it completes.

        Args:
            samples: a :class:`SampleBlock` (rate, flags and position come with it) or an
                ``(n,)`` array in ``unit``.
            sample_rate_hz: the array's rate (needed on the first push; a different rate later
                starts a new segment).
            unit: the array's unit.
            flags: optional (n,) :class:`SampleFlag` bits for an array.

        A block that skips ahead (samples lost on the way) is filled with missing samples, so
        windows keep a true time axis; a gap over a minute, a rate change or a source whose
        sample counter went backwards (a device restart) starts a new segment that continues
        the time axis.
        """
        with self._lock:
            if isinstance(samples, SampleBlock):
                predictions = self._push_block(samples)
            else:
                predictions = self._push_array(samples, sample_rate_hz, unit, flags)
        self._notify(predictions)
        return predictions

    def flush(self) -> list[Prediction]:
        """End of the stream: the predictions the last samples complete; then :meth:`reset`."""
        with self._lock:
            state, self._state = self._state, None
            predictions = self._predict(state, state.preprocessor.flush()) if state else []
        self._notify(predictions)
        return predictions

    def _push_array(
        self, samples: npt.ArrayLike, sample_rate_hz: float | None, unit: str, flags: npt.ArrayLike | None
    ) -> list[Prediction]:
        state = self._state
        unit = normalise_unit(unit)
        rate = _rate(sample_rate_hz) if sample_rate_hz is not None else (state.sample_rate_hz if state else None)
        if rate is None:
            raise ConfigError("the first push of an array needs sample_rate_hz=…")
        if state is None or state.sample_rate_hz != rate or state.unit != unit:
            state = self._state = _StreamState(self, rate, unit, state.end_s if state else 0.0)
        values, flag_array = _as_samples(samples, flags)
        return self._predict(state, state.push(values, flag_array))

    def _push_block(self, block: SampleBlock) -> list[Prediction]:
        state = self._state
        if state is not None and state.index_base is None:
            state.index_base = block.first_index - state.samples_in  # arrays, then blocks
        if state is None or state.sample_rate_hz != block.rate_hz or state.unit != "uS":
            state = self._new_segment(block, state.end_s if state else block.start_s)
        position = block.first_index - (state.index_base or 0)
        values, flags = block.conductance_us, block.flags
        if position < state.samples_in:
            overlap = state.samples_in - position
            if position < 0 or overlap > max(len(block), state.sample_rate_hz):
                # The counter went far back: the device restarted its sample counter.
                logger.info("source sample counter went back from %d to %d; new segment",
                            state.samples_in + (state.index_base or 0), block.first_index)
                state = self._new_segment(block, state.end_s)
                position = 0
            elif overlap >= len(block):
                return []  # a block repeated: already seen
            else:
                values, flags, position = values[overlap:], flags[overlap:], state.samples_in
        missing = position - state.samples_in
        predictions: list[Prediction] = []
        if missing > MAX_FILLED_GAP_S * state.sample_rate_hz:
            state = self._new_segment(block, state.origin_s + position / state.sample_rate_hz)
        elif missing > 0:
            predictions += self._predict(state, state.push(np.full(missing, np.nan), np.full(missing, SampleFlag.GAP, np.uint8)))
        return predictions + self._predict(state, state.push(np.asarray(values, np.float64), np.asarray(flags, np.uint8)))

    def _new_segment(self, block: SampleBlock, origin_s: float) -> _StreamState:
        state = _StreamState(self, _rate(block.rate_hz), "uS", origin_s)
        state.index_base = block.first_index
        self._state = state
        return state

    def _predict(self, state: _StreamState, windows: Windows) -> list[Prediction]:
        if len(windows) == 0:
            return []
        verdicts = self._judge(state, windows)
        good = np.array([v.ok for v in verdicts], dtype=bool)
        probabilities = self.model.run(windows.features[good]) if good.any() else {}
        return self._assemble(state.origin_s, windows, verdicts, probabilities)

    def _judge(self, state: _StreamState, windows: Windows) -> list[QualityVerdict]:
        """The quality verdict of each window (asks the flag tracker in stream order, so it
        runs when the windows are emitted; the model may run later, as a gateway batches it)."""
        return [
            judge_window(
                windows.conductance_us[i],
                bool(windows.usable[i]),
                int(windows.samples_missing[i]),
                state.flags.count(float(windows.start_s[i]), float(windows.end_s[i])),
                self.quality,
            )
            for i in range(len(windows))
        ]

    def _assemble(
        self,
        origin_s: float,
        windows: Windows,
        verdicts: list[QualityVerdict],
        probabilities: dict[str, npt.NDArray[np.float32]],
    ) -> list[Prediction]:
        """Predictions from the verdicts and the model's ``{target: (n_ok, 2)}`` probabilities
        of the windows that passed the gate, in order."""
        high = {t: p[:, 1] for t, p in probabilities.items()}
        names = self.contract.class_names
        out: list[Prediction] = []
        row = 0
        for i, verdict in enumerate(verdicts):
            level = windows.conductance_us[i]
            median = float(np.nanmedian(level)) if np.isfinite(level).any() else math.nan
            quality, detail = verdict.reason, verdict.detail
            labels: tuple[str | None, str | None] = (None, None)
            arousal = valence = None
            if verdict.ok:
                # a head the model lacks stays None (see Prediction)
                a = float(high["arousal"][row]) if "arousal" in high else None
                v = float(high["valence"][row]) if "valence" in high else None
                row += 1
                served = [x for x in (a, v) if x is not None]
                if all(math.isfinite(x) for x in served):
                    arousal, valence = a, v
                    labels = (None if a is None else names[int(a >= 0.5)],
                              None if v is None else names[int(v >= 0.5)])
                else:  # a broken model: a per-window verdict, never a label taken from NaN
                    quality, detail = MODEL_ERROR, "the model's output is not a finite probability: a broken model file"
            out.append(Prediction(
                start_s=origin_s + float(windows.start_s[i]),
                end_s=origin_s + float(windows.end_s[i]),
                arousal=arousal,
                valence=valence,
                arousal_label=labels[0],
                valence_label=labels[1],
                quality=quality,
                quality_detail=detail,
                samples_missing=int(windows.samples_missing[i]),
                conductance_us=median,
            ))
        return out

    # -- sources ----------------------------------------------------------------------------
    def stream(self, source: str | Any, *, duration_s: float | None = None) -> Iterator[Prediction]:
        """Predictions from a live source, as they complete (blocking iterator).

        Args:
            source: a URL (``serial://…``, ``ble://…``, ``replay://…``, ``sim://…``,
                ``lsl://…``) or an unopened :class:`~emotionkd.sdk.sources.Source`.
            duration_s: stop after this much of the stream's time (s); None = until the
                source ends (a replayed file) or the loop is left.

        A source that ends (a replayed file) is flushed, so its last windows are predicted too.
        The stream state is reset at the start.
        """
        src = _open(source)
        self.reset()
        with src:
            for block in src.blocks():
                yield from self.push(block)
                if duration_s is not None and block.start_s + len(block) / block.rate_hz >= duration_s:
                    return
            yield from self.flush()

    async def astream(self, source: str | Any, *, duration_s: float | None = None) -> AsyncIterator[Prediction]:
        """The async form of :meth:`stream` (``async for p in clf.astream(url)``)."""
        src = _open(source)
        self.reset()
        src.open()
        try:
            async for block in src.ablocks():
                for prediction in self.push(block):
                    yield prediction
                if duration_s is not None and block.start_s + len(block) / block.rate_hz >= duration_s:
                    return
            for prediction in self.flush():
                yield prediction
        finally:
            src.close()

    def run_in_background(
        self,
        source: str | Any,
        callback: PredictionCallback,
        *,
        on_error: Callable[[BaseException], None] | None = None,
        duration_s: float | None = None,
    ) -> BackgroundStream:
        """Stream ``source`` on a worker thread and call ``callback`` with each prediction.

        For apps built around callbacks (a GUI, a game loop). ``on_error`` receives the error
        that ended the stream, if any. Returns a handle with ``stop()`` and ``join()``.
        """
        return BackgroundStream(self, _open(source), callback, on_error, duration_s)


class BackgroundStream:
    """A stream running on its own thread (see :meth:`EmotionClassifier.run_in_background`).

    Attributes:
        source: the source being streamed.
        error: the exception that ended the stream, if one did.
    """

    def __init__(
        self,
        classifier: EmotionClassifier,
        source: Any,
        callback: PredictionCallback,
        on_error: Callable[[BaseException], None] | None,
        duration_s: float | None,
    ) -> None:
        self.source = source
        self.error: BaseException | None = None
        self._classifier, self._callback, self._on_error = classifier, callback, on_error
        self._duration_s = duration_s
        self._thread = threading.Thread(target=self._run, name=f"emotionkd {source.url}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for prediction in self._classifier.stream(self.source, duration_s=self._duration_s):
                try:
                    self._callback(prediction)
                except Exception:
                    logger.exception("prediction callback raised")
        except BaseException as exc:  # reported to the app, never lost in a thread
            self.error = exc
            if self._on_error is not None:
                self._on_error(exc)
            else:
                logger.error("stream %s ended with an error: %s", self.source.url, exc)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Close the source and wait for the thread to end."""
        self.source.close()
        self.join(timeout_s)

    def join(self, timeout_s: float | None = None) -> None:
        self._thread.join(timeout_s)


def _open(source: str | Any) -> Any:
    if isinstance(source, str):
        from emotionkd.sdk.sources import open_source

        return open_source(source)
    return source


def _rate(sample_rate_hz: float | None) -> float:
    if sample_rate_hz is None or not (math.isfinite(float(sample_rate_hz)) and float(sample_rate_hz) > 0):
        raise ConfigError(f"sample_rate_hz must be a positive number of hertz, got {sample_rate_hz!r}")
    return float(sample_rate_hz)


def _as_samples(samples: npt.ArrayLike, flags: npt.ArrayLike | None) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.uint8]]:
    values = np.asarray(samples, dtype=np.float64).reshape(-1)
    if flags is None:
        flag_array = np.where(np.isnan(values), SampleFlag.GAP, 0).astype(np.uint8)
    else:
        flag_array = np.asarray(flags, dtype=np.uint8).reshape(-1)
        if flag_array.size != values.size:
            raise ConfigError(f"flags has {flag_array.size} entries for {values.size} samples")
    return values, flag_array


__all__ = ["MAX_FILLED_GAP_S", "BackgroundStream", "EmotionClassifier", "Prediction"]
