"""Gateway: many sensors, one model, batched onnxruntime calls once per tick.

A hub (a phone, a Raspberry Pi, a server behind a ward of wearables) receives many GSR streams.
Each stream is the composition :class:`~emotionkd.sdk.classifier.EmotionClassifier` is made of,
from the same :class:`~emotionkd.sdk.pipeline.StreamRecipe` -- a
:class:`~emotionkd.sdk.pipeline.StreamPipeline` (segments, preprocessing, flags, quality gate)
and its label decision -- but the gateway only *queues* the gated windows each push completes.
:meth:`Gateway.run_batch` then sends the queued windows of every stream to the model in
batches of ``max_batch`` windows, ``workers`` calls at a time (all cores busy, no per-window
call overhead, the model's work off the receive loops), and hands each stream its
predictions::

    from emotionkd.sdk.gateway import Gateway

    with Gateway("student.int8.onnx", workers=2) as gateway:   # 2 cores: 2 parallel calls
        gateway.add_stream("bed-3")
        gateway.add_callback(lambda stream_id, p: print(stream_id, p.start_s, p.arousal))
        ...
        gateway.push("bed-3", samples, sample_rate_hz=32.0)  # each device's receive loop, any thread
        gateway.run_batch()                                   # once per tick (e.g. every second)

Each stream gets exactly the predictions an :class:`EmotionClassifier` fed the same samples
would give (same windows, verdicts and probabilities; tested), only later: at the next tick.

**Cohorts** (for thousands of wearers): streams of one rate and unit that arrive at the same
pace -- a hub assembling one tick of every wearer, NaN where a sample did not arrive -- are
pushed together as one ``(S, n)`` array; their preprocessing and quality gate then run
vectorised across the streams (:mod:`emotionkd.sdk.batch_pipeline`), with the same results::

    gateway.add_cohort("ward-2", ["bed-1", "bed-2", "bed-3"], sample_rate_hz=16.0)
    gateway.push_cohort("ward-2", samples)   # (3, n) µS, one row per stream
    gateway.run_batch()                      # predictions keyed by stream id, as for lanes
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt

from emotionkd.firmware_bridge.errors import ConfigError, ModelError
from emotionkd.firmware_bridge.samples import SampleBlock
from emotionkd.sdk.batch_pipeline import LockstepStreams
from emotionkd.sdk.pipeline import StreamPipeline, StreamRecipe
from emotionkd.sdk.prediction import LabelDecision, Prediction, Predictor, assemble, take_rows
from emotionkd.sdk.quality import GatedWindows, QualityConfig

logger = logging.getLogger(__name__)

GatewayCallback = Callable[[str, Prediction], None]


class _Pending:
    """Gated windows waiting for :meth:`Gateway.run_batch`, and the lock that guards them (held
    while a push appends, so that a batch takes whole pushes)."""

    def __init__(self) -> None:
        self.queue: list[GatedWindows] = []
        self.lock = threading.Lock()

    def take(self) -> list[GatedWindows]:
        with self.lock:
            queued, self.queue = self.queue, []
        return queued


class _Lane:
    """One stream of a gateway: its pipeline and label state, and the gated windows that wait
    for :meth:`Gateway.run_batch` (everything up to the quality verdict runs at push time)."""

    def __init__(self, gateway: Gateway) -> None:
        self.pipeline: StreamPipeline = gateway.recipe.new_pipeline()
        self.labels: LabelDecision = gateway.recipe.new_labels()
        self.pending = _Pending()


class _Cohort:
    """Streams pushed together (:meth:`Gateway.push_cohort`): one :class:`LockstepStreams`."""

    def __init__(self, gateway: Gateway, stream_ids: list[str], sample_rate_hz: float, unit: str) -> None:
        recipe = gateway.recipe
        self.stream_ids = stream_ids
        self.streams = LockstepStreams(len(stream_ids), sample_rate_hz, unit, recipe.preprocessing,
                                       recipe.hop_samples, recipe.quality)
        self.labels = [recipe.new_labels() for _ in stream_ids]
        self.pending = _Pending()


class Gateway:
    """Many GSR streams classified together, the model batched across streams.

    Args:
        model: an ``.onnx`` file from ``emotionkd-export``; None for the bundled model.
        hop_s: seconds between predictions of each stream.
        quality: thresholds of the quality gate (all streams).
        threads: onnxruntime intra-op threads per call.
        workers: onnxruntime calls run at once (threads of a pool; onnxruntime releases the
            GIL). On a small CPU, ``workers=cores, threads=1`` keeps every core on its own
            batch, which beats splitting each small batch across cores.
        max_batch: most windows per onnxruntime call. Small on purpose: onnxruntime runs the
            graph op by op over the whole batch, and past ~8 windows the attention tensors
            of one op leave the caches (64 windows cost ~25 % more CPU per window than 8; see
            docs/performance.md).
        hysteresis: label hysteresis of every stream (as :class:`EmotionClassifier`).

    Raises:
        ModelError, ContractError: as :class:`EmotionClassifier`.
    """

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        hop_s: float = 1.0,
        quality: QualityConfig | None = None,
        threads: int = 1,
        workers: int = 1,
        max_batch: int = 8,
        hysteresis: float = 0.0,
    ) -> None:
        from emotionkd.sdk.model import OnnxEmotionModel, bundled_model_path

        if not (isinstance(max_batch, int) and max_batch >= 1):
            raise ConfigError(f"max_batch must be a positive integer, got {max_batch!r}")
        if not (isinstance(workers, int) and workers >= 1):
            raise ConfigError(f"workers must be a positive integer, got {workers!r}")
        self.model = OnnxEmotionModel(bundled_model_path() if model is None else model, threads=threads,
                                      memory_arena=True)
        self.contract = self.model.contract
        self.hop_s = hop_s
        self.quality = quality or QualityConfig()
        self.max_batch = max_batch
        self.workers = workers
        try:
            #: what every stream of this gateway is built from (as an EmotionClassifier's stream)
            self.recipe = StreamRecipe.for_contract(self.contract, hop_s=hop_s, quality=self.quality,
                                                    hysteresis=hysteresis)
        except ModelError as exc:
            raise ModelError(f"model {str(self.model.path)!r}: {exc}") from exc
        self._predictor = Predictor(self.model, max_batch=max_batch, workers=workers)
        self._lanes: dict[str, _Lane] = {}
        self._cohorts: dict[str, _Cohort] = {}
        self._callbacks: list[GatewayCallback] = []
        self._lock = threading.Lock()  # guards the lane and cohort tables
        # one model run at a time: each stream's label state advances in time order
        self._run_lock = threading.Lock()

    # -- streams ----------------------------------------------------------------------------
    @property
    def streams(self) -> list[str]:
        """The ids of the open streams (cohorts' included)."""
        return list(self._lanes) + [sid for c in list(self._cohorts.values()) for sid in c.stream_ids]

    def add_cohort(self, cohort_id: str, stream_ids: list[str], *, sample_rate_hz: float, unit: str = "uS") -> None:
        """Open streams that are pushed together (:meth:`push_cohort`), one row each.

        Raises:
            ConfigError: the cohort or one of the stream ids is already open, or ids repeat.
        """
        ids = [str(s) for s in stream_ids]
        with self._lock:
            taken = set(self._lanes) | {s for c in self._cohorts.values() for s in c.stream_ids}
            clash = sorted(set(ids) & taken)
            if cohort_id in self._cohorts or clash or len(set(ids)) != len(ids):
                raise ConfigError(f"cohort {cohort_id!r}: the cohort or streams {clash or 'repeated ids'} are "
                                  "already open; give each stream one id")
            self._cohorts[cohort_id] = _Cohort(self, ids, sample_rate_hz, unit)

    def push_cohort(self, cohort_id: str, samples: npt.ArrayLike, flags: npt.ArrayLike | None = None) -> int:
        """Feed the next ``(S, n)`` samples of a cohort (row ``s`` = stream ``stream_ids[s]``; NaN
        where a sample did not arrive) and optional ``(S, n)`` :class:`SampleFlag` bits.

        Returns:
            how many windows of the cohort now wait for :meth:`run_batch`.
        """
        cohort = self._cohorts.get(cohort_id)
        if cohort is None:
            raise ConfigError(f"no cohort {cohort_id!r} in this gateway (add_cohort it first)")
        with cohort.pending.lock:
            cohort.pending.queue.append(cohort.streams.push(samples, flags))
            return sum(b.good.size for b in cohort.pending.queue)

    def remove_cohort(self, cohort_id: str) -> dict[str, list[Prediction]]:
        """Close a cohort: its last windows (flushed) and anything queued, predicted now."""
        cohort = self._cohorts.get(cohort_id)
        if cohort is None:
            raise ConfigError(f"no cohort {cohort_id!r} in this gateway")
        with cohort.pending.lock:
            cohort.pending.queue.append(cohort.streams.flush())
        with self._run_lock:  # taken and run under one lock: labels advance in time order
            predictions = self._run({}, {cohort_id: cohort.pending.take()})
        with self._lock:
            self._cohorts.pop(cohort_id, None)
        return predictions

    def add_stream(self, stream_id: str) -> None:
        """Open a stream (its rate and unit come with its first push, as for ``push``).

        Raises:
            ConfigError: the id is already open.
        """
        with self._lock:
            if stream_id in self._lanes:
                raise ConfigError(f"stream {stream_id!r} is already open (remove_stream it first)")
            self._lanes[stream_id] = _Lane(self)

    def remove_stream(self, stream_id: str) -> list[Prediction]:
        """Close a stream: its last windows (flushed) and anything still queued, predicted now
        (returned and announced to the callbacks)."""
        lane = self._lane(stream_id)
        with lane.pending.lock:
            lane.pending.queue += lane.pipeline.flush()
        with self._run_lock:
            predictions = self._run({stream_id: lane.pending.take()}, {}).get(stream_id, [])
        with self._lock:
            self._lanes.pop(stream_id, None)
        return predictions

    def push(
        self,
        stream_id: str,
        samples: SampleBlock | npt.ArrayLike,
        *,
        sample_rate_hz: float | None = None,
        unit: str = "uS",
        flags: npt.ArrayLike | None = None,
    ) -> int:
        """Feed the next chunk of one stream (as :meth:`EmotionClassifier.push`).

        Returns:
            how many windows of this stream now wait for :meth:`run_batch`.
        """
        lane = self._lane(stream_id)
        with lane.pending.lock:
            if isinstance(samples, SampleBlock):
                lane.pending.queue += lane.pipeline.push_block(samples)
            else:
                lane.pending.queue += lane.pipeline.push_array(samples, sample_rate_hz, unit, flags)
            return sum(len(q) for q in lane.pending.queue)

    @property
    def pending_windows(self) -> int:
        """Windows queued across all streams."""
        lanes = sum(len(q) for lane in list(self._lanes.values()) for q in lane.pending.queue)
        return lanes + sum(b.good.size for c in list(self._cohorts.values()) for b in c.pending.queue)

    # -- callbacks --------------------------------------------------------------------------
    def add_callback(self, callback: GatewayCallback) -> None:
        """Call ``callback(stream_id, prediction)`` for every prediction :meth:`run_batch` makes.

        A callback that raises is logged and kept.
        """
        self._callbacks.append(callback)

    def remove_callback(self, callback: GatewayCallback) -> None:
        self._callbacks.remove(callback)

    # -- the tick ---------------------------------------------------------------------------
    def run_batch(self) -> dict[str, list[Prediction]]:
        """Run the model over every stream's queued windows; return and announce the predictions.

        Returns:
            ``{stream_id: predictions in time order}`` for the streams that had windows.
        """
        with self._lock:
            lanes = list(self._lanes.items())
            cohorts = list(self._cohorts.items())
        with self._run_lock:
            return self._run({stream_id: lane.pending.take() for stream_id, lane in lanes},
                             {cohort_id: cohort.pending.take() for cohort_id, cohort in cohorts})

    def _run(self, queued: dict[str, list[GatedWindows]],
             cohort_queued: dict[str, list[GatedWindows]]) -> dict[str, list[Prediction]]:
        """Model and assembly for what was taken (the caller holds ``_run_lock``)."""
        everything = [g for items in queued.values() for g in items]
        everything += [b for batches in cohort_queued.values() for b in batches]
        probabilities = self._predictor.probabilities(everything)
        results: dict[str, list[Prediction]] = {}
        row = 0
        for stream_id, items in queued.items():
            lane = self._lanes.get(stream_id)
            if lane is None or not items:
                continue
            predictions: list[Prediction] = []
            for g in items:
                predictions += assemble(g, take_rows(probabilities, row, g.passed), lane.labels)
                row += g.passed
            results[stream_id] = predictions
        for cohort_id, batches in cohort_queued.items():
            cohort = self._cohorts.get(cohort_id)
            if cohort is None:
                continue
            for batch in batches:
                for s, (stream_id, labels) in enumerate(zip(cohort.stream_ids, cohort.labels, strict=True)):
                    n = int(np.count_nonzero(batch.good[s]))
                    predictions = assemble(batch, take_rows(probabilities, row, n), labels, stream=s)
                    row += n
                    if predictions:
                        results.setdefault(stream_id, []).extend(predictions)
        for stream_id, predictions in results.items():
            for prediction in predictions:
                for callback in list(self._callbacks):
                    try:
                        callback(stream_id, prediction)
                    except Exception:
                        logger.exception("gateway callback %r raised", callback)
        return results

    def close(self) -> None:
        """Stop the worker threads (the gateway starts them again if used later)."""
        self._predictor.close()

    def __enter__(self) -> Gateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _lane(self, stream_id: str) -> _Lane:
        lane = self._lanes.get(stream_id)
        if lane is None:
            raise ConfigError(f"no stream {stream_id!r} in this gateway (add_stream it first; open: {len(self._lanes)})")
        return lane

    def __repr__(self) -> str:
        return f"Gateway({str(self.model.path)!r}, streams={len(self._lanes)}, hop_s={self.hop_s:g})"



__all__ = ["Gateway", "GatewayCallback"]
