"""The predictor: gated windows in, :class:`Prediction` out (the model apart from the decision).

The live path is a composition (DESIGN.md, "Shape of the live path")::

    samples ─► StreamPipeline (preprocess → flags → quality gate) ─► GatedWindows
            ─► Predictor.probabilities (onnxruntime: now, or batched across streams)
            ─► assemble (+ the stream's LabelDecision) ─► Prediction

:class:`~emotionkd.sdk.classifier.EmotionClassifier` runs the model at once on what each push
completes; :class:`~emotionkd.sdk.gateway.Gateway` queues the gated windows of many streams and
runs the model once per tick. Both call the same :func:`assemble`, so a gateway stream gets
exactly what a classifier gives. The label decision is kept apart from the model, as silero-vad
keeps its thresholds apart from its network: a fixed threshold, or hysteresis
(:class:`LabelRule`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt

from emotionkd.firmware_bridge.errors import ConfigError
from emotionkd.sdk.quality import OK, GatedWindows

if TYPE_CHECKING:  # onnxruntime is imported only when a model is loaded
    from concurrent.futures import ThreadPoolExecutor

    from emotionkd.sdk.model import OnnxEmotionModel

#: quality of a window the model answered with a non-finite number (a broken or corrupt model)
MODEL_ERROR: Final = "model_error"
_MODEL_ERROR_DETAIL: Final = "the model's output is not a finite probability: a broken model file"
Probabilities = dict[str, npt.NDArray[np.float32]]


@dataclass(frozen=True)
class Prediction:
    """The classifier's answer for one window.

    Attributes:
        start_s, end_s: the window's span on the stream's time axis (s since its first sample).
        arousal, valence: probability of "high" (0–1); None when the window failed the gate or
            the model has no such head (an arousal-only model: ``valence`` is always None).
        arousal_label, valence_label: the contract's class name (``low``/``high``) by the
            stream's :class:`LabelRule` (0.5 unless hysteresis is asked for); None when not
            predicted.
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


@dataclass(frozen=True)
class LabelRule:
    """How a probability of "high" becomes a label.

    Attributes:
        threshold: "high" at or above it (0–1).
        hysteresis: 0 (default) labels every window on its own. Above 0, a stream's label
            changes only when the probability crosses the far side of a band ``hysteresis``
            wide around ``threshold``: it enters "high" at ``threshold + hysteresis / 2`` or
            above and leaves "high" below ``threshold - hysteresis / 2`` (as silero-vad enters
            speech above one threshold and leaves it below a lower one), so a probability
            wavering near 0.5 does not flip the label every second. The first window of a
            stream is labelled by ``threshold``; windows that fail the gate keep the state.
    """

    threshold: float = 0.5
    hysteresis: float = 0.0

    def __post_init__(self) -> None:
        if not (0.0 < self.threshold < 1.0):
            raise ConfigError(f"label threshold must lie strictly between 0 and 1, got {self.threshold!r}")
        half = self.hysteresis / 2
        if not (math.isfinite(self.hysteresis) and self.hysteresis >= 0
                and self.threshold - half > 0 and self.threshold + half < 1):
            raise ConfigError(f"hysteresis must be >= 0 and keep threshold ± hysteresis/2 inside (0, 1), "
                              f"got {self.hysteresis!r} around {self.threshold:g} (try 0.1-0.3)")


class LabelDecision:
    """One stream's label state under a :class:`LabelRule` (per target: high or not yet known)."""

    def __init__(self, rule: LabelRule, class_names: tuple[str, ...]) -> None:
        self.rule = rule
        self.low, self.high = class_names[0], class_names[1]
        self._enter = rule.threshold + rule.hysteresis / 2
        self._leave = rule.threshold - rule.hysteresis / 2
        self._high: dict[str, bool] = {}

    def reset(self) -> None:
        """Forget the state (a new stream)."""
        self._high.clear()

    def label(self, target: str, probability: float) -> str:
        """The label of the next window's ``probability`` of high (in stream order)."""
        if not self.rule.hysteresis:
            return self.high if probability >= self.rule.threshold else self.low
        was = self._high.get(target)
        if was is None:
            now = probability >= self.rule.threshold
        else:
            now = probability >= self._leave if was else probability >= self._enter
        self._high[target] = now
        return self.high if now else self.low


def assemble(gated: GatedWindows, probabilities: Probabilities, labels: LabelDecision,
             stream: int | None = None) -> list[Prediction]:
    """The :class:`Prediction` of every window of one stream of ``gated``, in time order.

    Args:
        gated: windows through the gate (one stream, or S in lockstep with ``stream`` = s).
        probabilities: the model's ``{target: (n, 2)}`` for exactly this stream's windows
            that passed, in order.
        labels: the stream's label state (advanced window by window).
    """
    windows = gated.windows
    at = () if stream is None else (stream,)
    good = gated.good[at].tolist()
    levels = gated.levels_us[at].tolist()
    missing = windows.samples_missing[at].tolist()
    start = (gated.origin_s + windows.start_s).tolist()
    end = (gated.origin_s + windows.end_s).tolist()
    high = {t: p[:, 1].tolist() for t, p in probabilities.items()}
    arousal_p, valence_p = high.get("arousal"), high.get("valence")  # a head the model lacks stays None
    out: list[Prediction] = []
    row = 0
    for i, ok in enumerate(good):
        if not ok:
            verdict = gated.failed[(*at, i)]
            out.append(Prediction(start[i], end[i], None, None, None, None, verdict.reason, verdict.detail,
                                  missing[i], levels[i]))
            continue
        a = arousal_p[row] if arousal_p is not None else None
        v = valence_p[row] if valence_p is not None else None
        row += 1
        if (a is not None and not math.isfinite(a)) or (v is not None and not math.isfinite(v)):
            # a broken model: a per-window verdict, never a label taken from NaN
            out.append(Prediction(start[i], end[i], None, None, None, None, MODEL_ERROR, _MODEL_ERROR_DETAIL,
                                  missing[i], levels[i]))
            continue
        out.append(Prediction(start[i], end[i], a, v,
                              None if a is None else labels.label("arousal", a),
                              None if v is None else labels.label("valence", v),
                              OK, "", missing[i], levels[i]))
    return out


def take_rows(probabilities: Probabilities, row: int, count: int) -> Probabilities:
    """Rows ``[row, row + count)`` of every target's probabilities."""
    return {t: p[row:row + count] for t, p in probabilities.items()}


class Predictor:
    """The model run over gated windows: one call for what is given, cut into batches.

    Args:
        model: the loaded model (shared; onnxruntime sessions are thread-safe).
        max_batch: most windows per onnxruntime call (None: all in one call).
        workers: calls run at once on a thread pool (onnxruntime releases the GIL).
    """

    def __init__(self, model: OnnxEmotionModel, *, max_batch: int | None = None, workers: int = 1) -> None:
        if max_batch is not None and not (isinstance(max_batch, int) and max_batch >= 1):
            raise ConfigError(f"max_batch must be a positive integer, got {max_batch!r}")
        if not (isinstance(workers, int) and workers >= 1):
            raise ConfigError(f"workers must be a positive integer, got {workers!r}")
        self.model = model
        self.max_batch = max_batch
        self.workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._empty: Probabilities = {t: np.zeros((0, 2), np.float32) for t in model.targets}

    def probabilities(self, gated: list[GatedWindows]) -> Probabilities:
        """``{target: (n, 2)}`` for the windows of ``gated`` that passed, in order."""
        parts = [g.good_features() for g in gated if g.passed]
        if not parts:
            return self._empty
        features = np.concatenate(parts) if len(parts) > 1 else parts[0]
        if self.max_batch is None or features.shape[0] <= self.max_batch:
            return self.model.run(features)
        pieces = [features[i:i + self.max_batch] for i in range(0, features.shape[0], self.max_batch)]
        if self.workers > 1:
            if self._pool is None:
                # imported here: only a gateway's parallel workers need it, and concurrent.futures
                # (with queue) is ~0.7 MB of resident memory a wearable's stream would carry
                from concurrent.futures import ThreadPoolExecutor

                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="emotionkd-predictor")
            chunks = list(self._pool.map(self.model.run, pieces))
        else:
            chunks = [self.model.run(piece) for piece in pieces]
        return {t: np.concatenate([c[t] for c in chunks]) for t in self.model.targets}

    def predict(self, gated: list[GatedWindows], labels: LabelDecision) -> list[Prediction]:
        """Immediately: the predictions of one stream's gated windows, in order."""
        if not gated:
            return []
        probabilities = self.probabilities(gated)
        out: list[Prediction] = []
        row = 0
        for g in gated:
            n = g.passed
            out += assemble(g, probabilities if len(gated) == 1 else take_rows(probabilities, row, n), labels)
            row += n
        return out

    def close(self) -> None:
        """Stop the worker threads (started again if used later)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)


__all__ = ["MODEL_ERROR", "LabelDecision", "LabelRule", "Prediction", "Predictor", "assemble", "take_rows"]
