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

The classifier is a composition: a :class:`~emotionkd.sdk.pipeline.StreamPipeline`
(segments → the model contract's ``ekd-gsr`` preprocessing → windows every ``hop_s`` with the
source flags counted → quality gate) and a :class:`~emotionkd.sdk.prediction.Predictor`
(onnxruntime on the windows that passed, now) with the stream's label decision → :class:`Prediction`.
``push`` gives exactly the predictions ``predict`` gives on the same samples, whatever the
chunk sizes (the preprocessing is causal and stateful), once :meth:`EmotionClassifier.flush`
has been called at the end.
"""

from __future__ import annotations

from _thread import allocate_lock  # threading.Lock itself: threading only for a background stream
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy.typing as npt

from emotionkd.firmware_bridge.errors import ModelError
from emotionkd.firmware_bridge.samples import SampleBlock
from emotionkd.firmware_bridge.units import normalise_unit
from emotionkd.sdk.contract import ModelContract
from emotionkd.sdk.logs import get_logger
from emotionkd.sdk.pipeline import MAX_FILLED_GAP_S, StreamRecipe, block_reaches, check_rate
from emotionkd.sdk.prediction import MODEL_ERROR, Prediction, Predictor
from emotionkd.sdk.quality import QualityConfig

if TYPE_CHECKING:  # onnxruntime is imported only when a model is loaded
    from emotionkd.sdk.model import OnnxEmotionModel


PredictionCallback = Callable[["Prediction"], None]


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
        hysteresis: 0 (default) labels each window at 0.5; above 0, labels change only when
            the probability crosses the far side of a band this wide around 0.5 (enter "high"
            at 0.5 + h/2, leave below 0.5 - h/2; see :class:`~emotionkd.sdk.prediction.LabelRule`).
            Probabilities are never changed, only the ``*_label`` fields.

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
        hysteresis: float = 0.0,
    ) -> None:
        from emotionkd.sdk.model import OnnxEmotionModel, bundled_model_path

        if isinstance(model, OnnxEmotionModel):
            self.model = model
        else:
            self.model = OnnxEmotionModel(bundled_model_path() if model is None else model, threads=threads)
        self.contract: ModelContract = self.model.contract
        baseline_us: float | None = None
        if baseline is not None:
            from emotionkd.sdk.calibration import resting_conductance_us

            baseline_us = resting_conductance_us(baseline, self.contract.preprocessing_config())
        try:
            #: what this classifier's stream (and a gateway's streams) are built from
            self.recipe = StreamRecipe.for_contract(self.contract, hop_s=hop_s, quality=quality,
                                                    hysteresis=hysteresis, baseline_us=baseline_us)
        except ModelError as exc:
            raise ModelError(f"model {str(self.model.path)!r}: {exc}") from exc
        self.preprocessing = self.recipe.preprocessing
        self.baseline_us = baseline_us
        self.hop_samples = self.recipe.hop_samples
        self.quality = self.recipe.quality
        self.label_rule = self.recipe.label_rule
        self._callbacks: list[PredictionCallback] = [on_prediction] if on_prediction else []
        self._pipeline = self.recipe.new_pipeline()
        self._predictor = Predictor(self.model)
        self._labels = self.recipe.new_labels()
        self._lock = allocate_lock()

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
        return self._pipeline.latency_s

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
                    get_logger(__name__).exception("prediction callback %r raised", callback)

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
        pipeline = self.recipe.new_pipeline()
        gated = pipeline.push_array(gsr, check_rate(sample_rate_hz), normalise_unit(unit), flags)
        return self._predictor.predict(gated + pipeline.flush(), self.recipe.new_labels())

    # -- streaming --------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the current stream (the next :meth:`push` starts a new one at time 0)."""
        with self._lock:
            self._pipeline.reset()
            self._labels.reset()

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
                gated = self._pipeline.push_block(samples)
            else:
                gated = self._pipeline.push_array(samples, sample_rate_hz, unit, flags)
            predictions = self._predictor.predict(gated, self._labels) if gated else []
        if predictions and self._callbacks:
            self._notify(predictions)
        return predictions

    def flush(self) -> list[Prediction]:
        """End of the stream: the predictions the last samples complete; then :meth:`reset`."""
        with self._lock:
            predictions = self._predictor.predict(self._pipeline.flush(), self._labels)
            self._labels.reset()
        self._notify(predictions)
        return predictions

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
            yield from self.classify_blocks(src.blocks(), duration_s=duration_s)

    def classify_blocks(self, blocks: Iterable[SampleBlock], *, duration_s: float | None = None) -> Iterator[Prediction]:
        """Predictions from blocks of an already open source (the loop of :meth:`stream`).

        Stops after the block that reaches ``duration_s`` of stream time; when ``blocks`` ends
        first (a replayed file), the stream is flushed, so its last windows are predicted too.
        A caller that shows or records the blocks passes a generator that does so and yields
        each block on (what ``emotionkd-sdk stream`` does).
        """
        for block in blocks:
            yield from self.push(block)
            if block_reaches(block, duration_s):
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
                if block_reaches(block, duration_s):
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
        import threading  # here: a wearable's push-only process never starts a thread

        self._thread = threading.Thread(target=self._run, name=f"emotionkd {source.url}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for prediction in self._classifier.stream(self.source, duration_s=self._duration_s):
                try:
                    self._callback(prediction)
                except Exception:
                    get_logger(__name__).exception("prediction callback raised")
        except BaseException as exc:  # reported to the app, never lost in a thread
            self.error = exc
            if self._on_error is not None:
                self._on_error(exc)
            else:
                get_logger(__name__).error("stream %s ended with an error: %s", self.source.url, exc)

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


__all__ = ["MAX_FILLED_GAP_S", "MODEL_ERROR", "BackgroundStream", "EmotionClassifier", "Prediction"]
